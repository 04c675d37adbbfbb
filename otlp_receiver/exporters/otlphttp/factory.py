"""Factory of the `otlp_http` exporter; the registry maps the Collector's older name `otlphttp` to it."""

from __future__ import annotations

from otlp_receiver.component import CreateSettings
from otlp_receiver.exporters.otlphttp.config import Config
from otlp_receiver.exporters.otlphttp.exporter import OtlpHttpExporter

TYPE = "otlp_http"

__all__ = ["TYPE", "Config", "create"]


def create(config: Config, settings: CreateSettings) -> OtlpHttpExporter:
    authenticator = settings.client_authenticator(config.auth.authenticator) if config.auth else None
    return OtlpHttpExporter(config, name=settings.component_id, telemetry=settings.telemetry,
                            authenticator=authenticator)

"""Factory of the `otlp_grpc` exporter; the registry maps the Collector's older name `otlp` to it."""

from __future__ import annotations

from otlp_receiver.component import CreateSettings
from otlp_receiver.exporters.otlpgrpc.config import Config
from otlp_receiver.exporters.otlpgrpc.exporter import OtlpGrpcExporter

TYPE = "otlp_grpc"

__all__ = ["TYPE", "Config", "create"]


def create(config: Config, settings: CreateSettings) -> OtlpGrpcExporter:
    authenticator = settings.client_authenticator(config.auth.authenticator) if config.auth else None
    return OtlpGrpcExporter(config, name=settings.component_id, telemetry=settings.telemetry,
                            authenticator=authenticator)

"""Factory of the `clickhouse` exporter (see README.md)."""

from __future__ import annotations

from otlp_receiver.component import CreateSettings
from otlp_receiver.exporters.clickhouse.config import Config
from otlp_receiver.exporters.clickhouse.exporter import ClickHouseExporter

TYPE = "clickhouse"

__all__ = ["TYPE", "Config", "create"]


def create(config: Config, settings: CreateSettings) -> ClickHouseExporter:
    return ClickHouseExporter(config, name=settings.component_id, telemetry=settings.telemetry)

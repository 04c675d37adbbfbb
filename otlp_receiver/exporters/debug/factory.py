"""Factory of the `debug` exporter (see README.md)."""

from __future__ import annotations

from otlp_receiver.component import CreateSettings
from otlp_receiver.exporters.debug.config import Config
from otlp_receiver.exporters.debug.exporter import DebugExporter

TYPE = "debug"

__all__ = ["TYPE", "Config", "create"]


def create(config: Config, settings: CreateSettings) -> DebugExporter:
    return DebugExporter(config, settings.component_id)

"""Factory of the `anomaly` processor (see README.md)."""

from __future__ import annotations

from otlp_receiver.component import CreateSettings
from otlp_receiver.processors.anomaly.config import Config
from otlp_receiver.processors.anomaly.processor import AnomalyProcessor

TYPE = "anomaly"

__all__ = ["TYPE", "Config", "create"]


def create(config: Config, settings: CreateSettings) -> AnomalyProcessor:
    return AnomalyProcessor(config, settings.component_id, settings.telemetry)

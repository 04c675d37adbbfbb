"""Factory of the `batch` processor (see README.md)."""

from __future__ import annotations

from otlp_receiver.component import CreateSettings
from otlp_receiver.processors.batch.config import Config
from otlp_receiver.processors.batch.processor import BatchProcessor

TYPE = "batch"

__all__ = ["TYPE", "Config", "create"]


def create(config: Config, settings: CreateSettings) -> BatchProcessor:
    return BatchProcessor(config, settings.component_id, settings.telemetry)

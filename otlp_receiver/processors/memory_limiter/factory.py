"""Factory of the `memory_limiter` processor (see README.md)."""

from __future__ import annotations

from otlp_receiver.component import CreateSettings
from otlp_receiver.processors.memory_limiter.config import Config
from otlp_receiver.processors.memory_limiter.limiter import MemoryLimiter

TYPE = "memory_limiter"

__all__ = ["TYPE", "Config", "create"]


def create(config: Config, settings: CreateSettings) -> MemoryLimiter:
    return MemoryLimiter(config, settings.component_id, settings.telemetry)

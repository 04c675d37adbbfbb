"""Factory of the `query` extension (see README.md)."""

from __future__ import annotations

from otlp_receiver.component import CreateSettings
from otlp_receiver.extensions.query.config import Config
from otlp_receiver.extensions.query.extension import QueryExtension

TYPE = "query"

__all__ = ["TYPE", "Config", "create"]


def create(config: Config, settings: CreateSettings) -> QueryExtension:
    return QueryExtension(config, settings.component_id)

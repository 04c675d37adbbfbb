"""Factory of the `otlp` receiver (see README.md)."""

from __future__ import annotations

from otlp_receiver.component import CreateSettings
from otlp_receiver.receivers.otlp.config import Config, prepare
from otlp_receiver.receivers.otlp.receiver import OtlpReceiver

TYPE = "otlp"

__all__ = ["TYPE", "Config", "create", "prepare"]


def create(config: Config, settings: CreateSettings) -> OtlpReceiver:
    return OtlpReceiver(config, settings)

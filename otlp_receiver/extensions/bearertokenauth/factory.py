"""Factory of the `bearertokenauth` extension (see README.md)."""

from __future__ import annotations

from otlp_receiver.component import CreateSettings
from otlp_receiver.extensions.bearertokenauth.authenticator import BearerTokenAuth
from otlp_receiver.extensions.bearertokenauth.config import Config, prepare

TYPE = "bearertokenauth"

__all__ = ["TYPE", "Config", "create", "prepare"]


def create(config: Config, settings: CreateSettings) -> BearerTokenAuth:
    return BearerTokenAuth(config, settings.component_id)

"""Settings of the `bearertokenauth` extension: the Collector extension's keys (`scheme`, `token`,
`filename`), plus procsight's `tokens`, a list mapping several tokens to tenants."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.confmap import ConfigError
from otlp_receiver.component import DEFAULT_TENANT


@dataclass
class TokenConfig:
    token: str = ""
    filename: str = ""  # a file holding the token (trailing whitespace ignored)
    tenant: str = DEFAULT_TENANT

    def validate(self) -> None:
        if bool(self.token) == bool(self.filename):
            raise ConfigError("", "give exactly one of token and filename")
        if not self.tenant:
            raise ConfigError("tenant", "must not be empty")


@dataclass
class Config:
    scheme: str = "Bearer"
    token: str = ""
    filename: str = ""
    tokens: list[TokenConfig] = field(default_factory=list)

    def validate(self) -> None:
        if self.token and self.filename:
            raise ConfigError("", "give token or filename, not both")
        if not (self.token or self.filename or self.tokens):
            raise ConfigError("", "no token configured: set token, filename or tokens")

    def entries(self) -> list[TokenConfig]:
        single = [TokenConfig(self.token, self.filename)] if (self.token or self.filename) else []
        return single + list(self.tokens)

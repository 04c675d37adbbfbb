"""Settings of the `bearertokenauth` extension: the Collector extension's keys (`header`, `scheme`, `token`,
`tokens`, `filename`, `file_retry`), plus procsight's one addition, `tenants`, which maps tokens to tenants."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.confmap import ConfigError, Duration


@dataclass
class TenantToken:
    """procsight's extension: requests presenting this token (or any line of this file) belong to `tenant`."""

    tenant: str
    token: str = ""
    filename: str = ""

    def validate(self) -> None:
        if bool(self.token) == bool(self.filename):
            raise ConfigError("", "give exactly one of token and filename")
        if not self.tenant:
            raise ConfigError("tenant", "must not be empty")


@dataclass
class FileRetryConfig:
    """Retry reading `filename` at start-up while it does not exist yet (a secret mounted late)."""

    enabled: bool = False
    max_retries: int = 0
    retry_interval: Duration = Duration(0)

    def validate(self) -> None:
        if self.enabled and (self.max_retries <= 0 or self.retry_interval <= 0):
            raise ConfigError("", "with enabled: true, max_retries and retry_interval must be greater than zero")


@dataclass
class Config:
    header: str = "Authorization"  # the HTTP header (gRPC metadata key, in lower case) carrying the token
    scheme: str = "Bearer"  # the value is "<scheme> <token>"; an empty scheme means the bare token
    token: str = ""
    tokens: list[str] = field(default_factory=list)  # a server accepts any; a client sends the first
    filename: str = ""  # one token per line, re-read when the file changes; token and tokens are then ignored
    file_retry: FileRetryConfig = field(default_factory=FileRetryConfig)
    tenants: list[TenantToken] = field(default_factory=list)  # procsight: tokens of other tenants than "default"

    def validate(self) -> None:
        if self.token and self.tokens:
            raise ConfigError("", "either tokens or token should be provided, not both")
        if not (self.token or self.tokens or self.filename or self.tenants):
            raise ConfigError("", "no bearer token provided: set token, tokens, filename or tenants")
        if not self.header or any(c in self.header for c in " :\r\n"):
            raise ConfigError("header", f"{self.header!r} is not a header name")
        if any(not token for token in self.tokens):
            raise ConfigError("tokens", "a token must not be empty")


def prepare(raw: Any) -> Any:
    """procsight once spelt its tenant mapping `tokens: [{token, tenant}]`; `tokens` is now upstream's list of
    tokens, so the old form gets an error saying where it went."""
    if isinstance(raw, dict) and any(isinstance(item, dict) for item in raw.get("tokens") or ()):
        raise ConfigError("tokens", "is a list of tokens, as in the Collector; map tokens to tenants with "
                                    "tenants: [{token: ..., tenant: ...}]")
    return raw


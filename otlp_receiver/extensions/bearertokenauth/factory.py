"""`bearertokenauth`: the Collector extension's keys (`scheme`, `token`, `filename`), plus `tokens`, a
list mapping several tokens to tenants (DESIGN section 4). A request's tenant is the tenant of the
token it presented; the single upstream-style `token`/`filename` maps to the default tenant.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from pathlib import Path

from core.confmap import ConfigError
from otlp_receiver.component import DEFAULT_TENANT, CreateSettings, Unauthenticated

TYPE = "bearertokenauth"

log = logging.getLogger(__name__)


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


class BearerTokenAuth:
    def __init__(self, config: Config, name: str = TYPE) -> None:
        self.config = config
        self.name = name
        self._tokens: list[tuple[bytes, str]] = []

    def start(self) -> None:
        tokens = []
        for entry in self.config.entries():
            secret = entry.token or _read_token(entry.filename, self.name)
            if not secret:
                raise ConfigError(f"extensions.{self.name}", f"empty token for tenant {entry.tenant!r}")
            tokens.append((secret.encode("utf-8"), entry.tenant))
        self._tokens = tokens

    def shutdown(self) -> None:
        self._tokens = []

    def authenticate(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthenticated("missing Authorization header")
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != self.config.scheme.lower() or not presented:
            raise Unauthenticated(f"expected 'Authorization: {self.config.scheme} <token>'")
        candidate = presented.strip().encode("utf-8", "replace")
        tenant = None
        for secret, owner in self._tokens:
            # Compare against every token, so timing does not tell which one nearly matched.
            if hmac.compare_digest(candidate, secret) and tenant is None:
                tenant = owner
        if tenant is None:
            raise Unauthenticated("invalid bearer token")
        return tenant


def _read_token(filename: str, name: str) -> str:
    try:
        return Path(filename).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"extensions.{name}.filename", f"cannot read token file {filename}: {exc.strerror}") from exc


def create(config: Config, settings: CreateSettings) -> BearerTokenAuth:
    return BearerTokenAuth(config, settings.component_id)

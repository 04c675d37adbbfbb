"""`bearertokenauth`: a request's tenant is the tenant of the bearer token it presented; the single
upstream-style `token`/`filename` maps to the default tenant. An `Authenticator` for the receivers.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from core.confmap import ConfigError
from otlp_receiver.component import Unauthenticated
from otlp_receiver.extensions.bearertokenauth.config import Config


class BearerTokenAuth:
    def __init__(self, config: Config, name: str = "bearertokenauth") -> None:
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

"""`bearertokenauth`: checks the token a request presents (server side: an `Authenticator` for receivers) and
sends one (client side: a `ClientAuthenticator` for exporters), as the Collector's extension does.

A server accepts the header value `<scheme> <token>` (the bare token when `scheme` is empty) for every
configured token, compared whole, case-sensitively and in constant time against all of them; the
request's tenant is the tenant of the token it presented (`default` for `token`, `tokens` and
`filename`; procsight's `tenants` name their own). A client sends the first token. Token files are read
at start and re-read when they change (looked at at most once a second, when a token is needed).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.confmap import ConfigError
from otlp_receiver.component import DEFAULT_TENANT, Unauthenticated
from otlp_receiver.extensions.bearertokenauth.config import Config
from otlp_receiver.reloading import Reloading

log = logging.getLogger(__name__)

_WATCH_SECONDS = 1.0


@dataclass(frozen=True)
class _Accepted:
    value: bytes  # the whole header value expected
    tenant: str


class BearerTokenAuth:
    def __init__(self, config: Config, name: str = "bearertokenauth") -> None:
        self.config = config
        self.name = name
        self._header = config.header.lower()
        self._tokens: Reloading[list[_Accepted]] | None = None

    def start(self) -> None:
        if self.config.filename and (self.config.token or self.config.tokens):
            log.warning("%s: a filename is given, so token and tokens are ignored", self.name)
        self._wait_for_file()
        files = [self.config.filename] if self.config.filename else []
        files += [entry.filename for entry in self.config.tenants if entry.filename]
        self._tokens = Reloading(self._load, files, _WATCH_SECONDS)

    def shutdown(self) -> None:
        self._tokens = None

    # -- server side ------------------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str]) -> str:
        presented = headers.get(self._header)
        if not presented:
            raise Unauthenticated(f"missing or empty authorization header: {self.config.header}")
        candidate = presented.encode("utf-8", "surrogateescape")
        tenant = None
        for accepted in self._accepted():
            # Compare against every token, so timing does not tell which one nearly matched.
            if hmac.compare_digest(candidate, accepted.value) and tenant is None:
                tenant = accepted.tenant
        if tenant is None:
            raise Unauthenticated("scheme or token does not match")
        return tenant

    # -- client side ------------------------------------------------------------------------------

    def client_headers(self) -> dict[str, str]:
        accepted = self._accepted()
        if not accepted:
            raise ConfigError(f"extensions.{self.name}", "has no token to send")
        return {self.config.header: accepted[0].value.decode("utf-8", "surrogateescape")}

    # -- tokens -----------------------------------------------------------------------------------

    def _accepted(self) -> list[_Accepted]:
        if self._tokens is None:
            raise Unauthenticated(f"{self.name} is not running")
        return self._tokens.current()

    def _load(self) -> list[_Accepted]:
        config = self.config
        if config.filename:
            default = _read_tokens(config.filename, f"extensions.{self.name}.filename")
        else:
            default = [config.token] if config.token else list(config.tokens)
        pairs = [(token, DEFAULT_TENANT) for token in default]
        for index, entry in enumerate(config.tenants):
            tokens = [entry.token] if entry.token else _read_tokens(entry.filename,
                                                                    f"extensions.{self.name}.tenants[{index}].filename")
            pairs += [(token, entry.tenant) for token in tokens]
        return [_Accepted(self._value(token), tenant) for token, tenant in pairs]

    def _value(self, token: str) -> bytes:
        value = f"{self.config.scheme} {token}" if self.config.scheme else token
        return value.encode("utf-8", "surrogateescape")

    def _wait_for_file(self) -> None:
        """With `file_retry`, waits for `filename` to appear (retry_interval apart, max_retries times)."""
        retry = self.config.file_retry
        if not (retry.enabled and self.config.filename):
            return
        for _ in range(retry.max_retries):
            if Path(self.config.filename).exists():
                return
            time.sleep(retry.retry_interval)


def _read_tokens(filename: str, key: str) -> list[str]:
    """Every non-empty line of the file, trimmed. (The Collector also takes an empty line as a token, which
    would accept a bare scheme; procsight does not.)"""
    try:
        text = Path(filename).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(key, f"cannot read token file {filename}: {exc.strerror}") from exc
    tokens = [line.strip() for line in text.split("\n") if line.strip()]
    if not tokens:
        raise ConfigError(key, f"token file {filename} holds no token")
    return tokens

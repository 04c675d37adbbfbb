"""Config pieces the Collector's config packages share between servers and clients: `auth` (configauth),
`middlewares` (configmiddleware) and header lists (configopaque.MapList: a mapping, or a list of
`{name, value}`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core import __version__
from core.confmap import ConfigError

if TYPE_CHECKING:
    from otlp_receiver.config import ServiceSettings

Headers = dict[str, str]
USER_AGENT = f"procsight/{__version__}"  # what procsight's exporters send unless told otherwise


@dataclass
class AuthConfig:
    authenticator: str  # the id of an authenticator extension, e.g. bearertokenauth or bearertokenauth/ops
    request_params: list[str] = field(default_factory=list)  # HTTP servers: query parameters offered as headers

    def validate(self) -> None:
        if not self.authenticator:
            raise ConfigError("authenticator", "name an extension, e.g. bearertokenauth")


def check_authenticator(auth: AuthConfig | None, settings: ServiceSettings, key: str = "auth") -> None:
    """For `resolve`: the extension `auth.authenticator` names must be one the service runs."""
    if auth is not None and auth.authenticator not in settings.service.extensions:
        raise ConfigError(f"{key}.authenticator", f"'{auth.authenticator}' is not an extension enabled in "
                                                  "service.extensions")


@dataclass
class MiddlewareConfig:
    id: str


def no_middlewares(middlewares: list[MiddlewareConfig]) -> None:
    if middlewares:
        raise ConfigError("middlewares", "procsight has no middleware extensions; remove it")


@dataclass
class HeaderConfig:
    name: str
    value: str


HeaderList = dict[str, str] | list[HeaderConfig]


def header_map(headers: HeaderList, key: str) -> Headers:
    """Headers as a mapping, from either Collector form; names must be valid and appear once."""
    pairs = list(headers.items()) if isinstance(headers, dict) else [(h.name, h.value) for h in headers]
    result: Headers = {}
    seen: set[str] = set()
    for name, value in pairs:
        if not name or not name.isascii() or any(c in name for c in " :\r\n\t") or any(c in value for c in "\r\n"):
            raise ConfigError(key, f"{name!r} is not a valid header")
        if name.lower() in seen:
            raise ConfigError(key, f"duplicate header {name!r}")
        seen.add(name.lower())
        result[name] = value
    return result

"""Cross-origin resource sharing for the HTTP server, as confighttp's `cors` does it (the rs/cors package with
`AllowCredentials: true` and its default methods GET, POST and HEAD).

A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin asking for an allowed
method and headers is answered 204 with the `Access-Control-Allow-*` headers; any other preflight gets a
204 without them, so the browser refuses. An actual request from an allowed origin gets
`Access-Control-Allow-Origin` (and `-Credentials`, `-Expose-Headers`). Neither needs authentication: a
browser sends no credentials on a preflight.
"""

from __future__ import annotations

from collections.abc import Mapping

from otlp_receiver.receivers.otlp.config import CorsConfig

METHODS = ("GET", "POST", "HEAD", "OPTIONS")
DEFAULT_HEADERS = ("accept", "content-type", "x-requested-with")  # rs/cors' when allowed_headers is empty


class Cors:
    def __init__(self, config: CorsConfig | None) -> None:
        self.enabled = config is not None and bool(config.allowed_origins)
        config = config or CorsConfig()
        self.any_origin = "*" in config.allowed_origins
        self.origins = [origin.lower() for origin in config.allowed_origins if origin != "*"]
        self.any_header = "*" in config.allowed_headers
        self.headers = {h.lower() for h in (config.allowed_headers or DEFAULT_HEADERS)} | {"origin"}
        self.exposed = ", ".join(config.exposed_headers)
        self.max_age = config.max_age

    @staticmethod
    def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
        return method == "OPTIONS" and bool(headers.get("access-control-request-method"))

    def preflight(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers answering a preflight (`headers` with lower-case names)."""
        answer = {"Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
        origin = headers.get("origin", "")
        method = headers.get("access-control-request-method", "").upper()
        requested = [h.strip() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()]
        allowed = self._origin_allowed(origin) and method in METHODS and self._headers_allowed(requested)
        if not (self.enabled and allowed):
            return answer
        answer["Access-Control-Allow-Origin"] = "*" if self.any_origin else origin
        answer["Access-Control-Allow-Methods"] = method
        if requested:
            answer["Access-Control-Allow-Headers"] = ", ".join(requested)
        answer["Access-Control-Allow-Credentials"] = "true"
        if self.max_age > 0:
            answer["Access-Control-Max-Age"] = str(self.max_age)
        return answer

    def actual(self, method: str, headers: Mapping[str, str]) -> dict[str, str]:
        """The headers to add to the answer of an actual (not preflight) request."""
        if not self.enabled:
            return {}
        answer = {"Vary": "Origin"}
        origin = headers.get("origin", "")
        if not (self._origin_allowed(origin) and method in METHODS):
            return answer
        answer["Access-Control-Allow-Origin"] = "*" if self.any_origin else origin
        if self.exposed:
            answer["Access-Control-Expose-Headers"] = self.exposed
        answer["Access-Control-Allow-Credentials"] = "true"
        return answer

    def _origin_allowed(self, origin: str) -> bool:
        if not origin:
            return False
        if self.any_origin:
            return True
        origin = origin.lower()
        for allowed in self.origins:
            prefix, star, suffix = allowed.partition("*")
            if origin == allowed or (star and len(origin) >= len(prefix) + len(suffix)
                                     and origin.startswith(prefix) and origin.endswith(suffix)):
                return True
        return False

    def _headers_allowed(self, requested: list[str]) -> bool:
        return self.any_header or all(header.lower() in self.headers for header in requested)

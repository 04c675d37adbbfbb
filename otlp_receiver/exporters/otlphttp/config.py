"""Settings of the `otlp_http` exporter (alias `otlphttp`), as the Collector's otlphttp exporter spells them."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from core.confmap import ConfigError, Duration, check_positive
from otlp_receiver.exporterhelper.config import QueueConfig, RetryConfig
from otlp_receiver.exporterhelper.tls import TLSClientConfig


@dataclass
class Config:
    endpoint: str = ""  # base URL; /v1/logs is appended
    logs_endpoint: str = ""  # the full URL, overriding endpoint + /v1/logs
    tls: TLSClientConfig = field(default_factory=TLSClientConfig)
    headers: dict[str, str] = field(default_factory=dict)
    compression: str = "gzip"
    encoding: str = "proto"  # or json (OTLP/JSON: hex ids, string int64s, camelCase)
    timeout: Duration = Duration("30s")
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        if not (self.endpoint or self.logs_endpoint):
            raise ConfigError("endpoint", "required, e.g. https://collector:4318")
        url = urlsplit(self.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError("endpoint", f"{self.url!r} is not an http(s) URL")
        if self.compression not in ("gzip", "none", ""):
            raise ConfigError("compression", f"expected gzip or none, got {self.compression!r}")
        if self.encoding not in ("proto", "json"):
            raise ConfigError("encoding", f"expected proto or json, got {self.encoding!r}")
        check_positive(self, "timeout")
        for name, value in self.headers.items():
            if not name.isascii() or any(c in name + value for c in "\r\n"):
                raise ConfigError("headers", f"{name!r} is not a valid header")

    @property
    def url(self) -> str:
        return self.logs_endpoint or self.endpoint.rstrip("/") + "/v1/logs"

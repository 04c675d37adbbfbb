"""Settings of the `otlp_http` exporter (alias `otlphttp`): the Collector's otlphttpexporter keys, i.e. the
per-signal endpoints, `encoding`, the exporterhelper's `sending_queue` and `retry_on_failure`, and every
`confighttp.ClientConfig` key, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from core.confmap import ConfigError, Duration, url_problem
from otlp_receiver import configcompression
from otlp_receiver.config import ServiceSettings
from otlp_receiver.confighelpers import (
    AuthConfig,
    HeaderList,
    MiddlewareConfig,
    check_authenticator,
    header_map,
    no_middlewares,
)
from otlp_receiver.configtls import TLSClientConfig
from otlp_receiver.exporterhelper.config import QueueConfig, RetryConfig


@dataclass
class CompressionParams:
    level: int = 0  # 0: the type's default; gzip, zlib, deflate: -2 to 9; zstd: any (nearest of four speeds)


@dataclass
class CookiesConfig:
    """`cookies: {}` keeps the cookies a server sets (a session cookie of a load balancer) for later requests."""


@dataclass
class Config:
    endpoint: str = ""  # base URL; /v1/logs is appended
    logs_endpoint: str = ""  # the full URL, overriding endpoint + /v1/logs
    traces_endpoint: str = ""  # procsight exports logs only: the other signals' URLs are accepted and unused,
    metrics_endpoint: str = ""  # as the Collector leaves them unused without such a pipeline
    profiles_endpoint: str = ""
    encoding: str = "proto"  # or json (OTLP/JSON: hex ids, string int64s, camelCase)
    proxy_url: str = ""
    tls: TLSClientConfig = field(default_factory=TLSClientConfig)  # the URL's scheme decides TLS; insecure is unused
    read_buffer_size: int = 0  # bytes buffered when reading an answer; 0: Python's default
    write_buffer_size: int = 512 * 1024  # bytes per write of a request
    timeout: Duration = Duration("30s")  # the whole request; 0: none
    headers: HeaderList = field(default_factory=dict)
    auth: AuthConfig | None = None  # a client authenticator extension (bearertokenauth)
    compression: str = "gzip"  # gzip, zlib, deflate, snappy, x-snappy-framed, zstd, lz4 or none
    compression_params: CompressionParams = field(default_factory=CompressionParams)
    # Connections: procsight opens one HTTP/1.1 connection per request and keeps none idle, so the limits on
    # idle connections always hold and the HTTP/2 settings have nothing to act on (as in Go over HTTP/1.1).
    max_idle_conns: int = 100
    max_idle_conns_per_host: int = 0
    max_conns_per_host: int = 0  # requests at once; 0: no limit
    idle_conn_timeout: Duration = Duration("90s")
    disable_keep_alives: bool = False
    http2_read_idle_timeout: Duration = Duration(0)
    http2_ping_timeout: Duration = Duration(0)
    force_attempt_http2: bool = True
    cookies: CookiesConfig | None = None
    middlewares: list[MiddlewareConfig] = field(default_factory=list)
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        if not (self.endpoint or self.logs_endpoint):
            raise ConfigError("endpoint", "required (or logs_endpoint), e.g. https://collector:4318")
        key = "logs_endpoint" if self.logs_endpoint else "endpoint"
        if self.url.partition("://")[0].lower() not in ("http", "https"):
            raise ConfigError(key, f"{self.url!r} is not an http(s) URL")
        problem = url_problem(self.url)
        if problem:
            raise ConfigError(key, f"{problem} in {self.url!r}")
        if self.proxy_url and urlsplit(self.proxy_url).scheme not in ("http", "https"):
            raise ConfigError("proxy_url", f"{self.proxy_url!r} is not an http(s) URL")
        configcompression.validate(self.compression, self.compression_params.level)
        if self.encoding not in ("proto", "json"):
            raise ConfigError("encoding", f"invalid encoding type {self.encoding!r} (expected proto or json)")
        for key in ("read_buffer_size", "write_buffer_size", "max_idle_conns", "max_idle_conns_per_host",
                    "max_conns_per_host"):
            if getattr(self, key) < 0:
                raise ConfigError(key, "must be 0 or more")
        self.headers = header_map(self.headers, "headers")
        no_middlewares(self.middlewares)

    def resolve(self, settings: ServiceSettings) -> None:
        check_authenticator(self.auth, settings)

    @property
    def url(self) -> str:
        return self.logs_endpoint or self.endpoint.rstrip("/") + "/v1/logs"

"""Settings of the `otlp` receiver: the Collector's `otlpreceiver` keys, which are `configgrpc.ServerConfig`
(`protocols.grpc`) and `confighttp.ServerConfig` plus the URL paths (`protocols.http`), with their units and
defaults. A key procsight cannot honour with the value given fails start-up naming it; the README's table
says what each does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from core.confmap import ConfigError, Duration
from otlp_receiver.config import ServiceSettings
from otlp_receiver.confighelpers import (
    AuthConfig,
    HeaderList,
    MiddlewareConfig,
    check_authenticator,
    header_map,
    no_middlewares,
)
from otlp_receiver.configtls import TLSServerConfig

MIB = 1024 * 1024
DEFAULT_GRPC_MESSAGE_MIB = 4  # grpc's default, which max_recv_msg_size_mib 0 means
DEFAULT_MAX_REQUEST_BODY = 20 * MIB  # confighttp's, which max_request_body_size 0 means
TRANSPORTS = ("tcp", "tcp4", "tcp6", "unix")
# What confighttp accepts by default as Content-Encoding ("" is a body without one).
UPSTREAM_ENCODINGS = ("", "gzip", "zstd", "zlib", "snappy", "deflate", "lz4", "x-snappy-framed")


@dataclass
class DialerConfig:
    timeout: Duration = Duration(0)  # a listener dials nothing: no effect on a server, as in the Collector


@dataclass
class ServerParameters:
    """gRPC keepalive of the server; 0 keeps grpc's default (infinity for the first three, 2h and 20s)."""

    max_connection_idle: Duration = Duration(0)
    max_connection_age: Duration = Duration(0)
    max_connection_age_grace: Duration = Duration(0)
    time: Duration = Duration(0)
    timeout: Duration = Duration(0)


@dataclass
class EnforcementPolicy:
    """What clients' keepalive pings may do; 0 keeps grpc's default minimum interval (5m)."""

    min_time: Duration = Duration(0)
    permit_without_stream: bool = False


@dataclass
class KeepaliveServerConfig:
    server_parameters: ServerParameters | None = None
    enforcement_policy: EnforcementPolicy | None = None


@dataclass
class ServerCommon:
    """What the gRPC and HTTP servers share (`confignet` plus `tls`, `auth`, `include_metadata`, `middlewares`)."""

    endpoint: str = ""
    transport: str = "tcp"
    dialer: DialerConfig = field(default_factory=DialerConfig)
    tls: TLSServerConfig | None = None
    auth: AuthConfig | None = None
    include_metadata: bool = False  # request headers travel with the records (the batch processor's metadata_keys)
    middlewares: list[MiddlewareConfig] = field(default_factory=list)

    def validate(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ConfigError("transport", f"expected one of {', '.join(TRANSPORTS)} for a server, "
                                           f"got {self.transport!r}")
        if self.transport == "unix":
            if not self.endpoint:
                raise ConfigError("endpoint", "the path of the unix socket to listen on")
        else:
            split_endpoint(self.endpoint)
        no_middlewares(self.middlewares)


@dataclass
class GrpcConfig(ServerCommon):
    endpoint: str = "127.0.0.1:4317"  # host:port; port 0 picks a free one (read it back after start)
    max_recv_msg_size_mib: int = 0  # MiB; 0 means grpc's 4 MiB. Bigger messages get RESOURCE_EXHAUSTED
    max_concurrent_streams: int = 0  # per connection; 0: unlimited
    read_buffer_size: int = 512 * 1024  # bytes, the otlp receiver's default
    write_buffer_size: int = 0  # bytes; 0: grpc's default
    keepalive: KeepaliveServerConfig | None = field(default_factory=KeepaliveServerConfig)

    def validate(self) -> None:
        super().validate()
        if self.max_recv_msg_size_mib < 0 or self.max_recv_msg_size_mib * MIB >= 2**31:
            raise ConfigError("max_recv_msg_size_mib", "must be 0 (grpc's 4 MiB) to 2047 MiB")
        for key in ("max_concurrent_streams", "read_buffer_size", "write_buffer_size"):
            if not 0 <= getattr(self, key) < 2**31:
                raise ConfigError(key, "must be 0 or more (and below 2^31)")
        if self.tls is not None:
            try:
                self.tls.check_grpc()
            except ConfigError as exc:
                raise exc.within("tls") from None

    @property
    def max_message_bytes(self) -> int:
        return (self.max_recv_msg_size_mib or DEFAULT_GRPC_MESSAGE_MIB) * MIB


@dataclass
class CorsConfig:
    allowed_origins: list[str] = field(default_factory=list)  # exact, or with one * (https://*.example.com)
    allowed_headers: list[str] = field(default_factory=list)  # beyond the CORS safelist; "*" allows any
    exposed_headers: list[str] = field(default_factory=list)
    max_age: int = 0  # seconds a browser may cache a preflight answer; 0: the browser's default

    def validate(self) -> None:
        if self.max_age < 0:
            raise ConfigError("max_age", "must be 0 or more seconds")
        for index, origin in enumerate(self.allowed_origins):
            if origin.count("*") > 1:
                raise ConfigError(f"allowed_origins[{index}]", "at most one * per origin")


@dataclass
class HttpConfig(ServerCommon):
    endpoint: str = "127.0.0.1:4318"
    max_request_body_size: int = 0  # bytes, after decompression too; 0 means 20 MiB. Bigger bodies get 413
    logs_url_path: str = "/v1/logs"
    traces_url_path: str = "/v1/traces"  # procsight takes logs only: these paths answer 404, as the
    metrics_url_path: str = "/v1/metrics"  # Collector's do without a traces or metrics pipeline
    cors: CorsConfig | None = None
    response_headers: HeaderList = field(default_factory=dict)
    compression_algorithms: list[str] | None = None  # accepted Content-Encodings; None: every one upstream takes
    # Deadlines from the start of a request (0: none). procsight keeps confighttp's own defaults rather than the
    # otlp receiver's zeros: each connection holds a thread here, so one must not wait forever.
    read_timeout: Duration = Duration(0)
    read_header_timeout: Duration = Duration("1m")
    write_timeout: Duration = Duration("30s")
    idle_timeout: Duration = Duration("1m")
    keep_alives_enabled: bool = True

    def validate(self) -> None:
        super().validate()
        if self.max_request_body_size < 0:
            raise ConfigError("max_request_body_size", "must be 0 (20 MiB) or more bytes")
        for key in ("logs_url_path", "traces_url_path", "metrics_url_path"):
            setattr(self, key, _url_path(key, getattr(self, key)))
        self.response_headers = header_map(self.response_headers, "response_headers")
        for index, encoding in enumerate(self.compression_algorithms or ()):
            if encoding not in UPSTREAM_ENCODINGS:
                raise ConfigError(f"compression_algorithms[{index}]", f"unsupported Content-Encoding {encoding!r} "
                                  f"(expected some of {', '.join(repr(e) for e in UPSTREAM_ENCODINGS)})")

    @property
    def body_limit(self) -> int:
        return self.max_request_body_size or DEFAULT_MAX_REQUEST_BODY

    @property
    def accepted_encodings(self) -> tuple[str, ...]:
        return UPSTREAM_ENCODINGS if self.compression_algorithms is None else tuple(self.compression_algorithms)


@dataclass
class ProtocolsConfig:
    grpc: GrpcConfig | None = None
    http: HttpConfig | None = None


@dataclass
class Config:
    protocols: ProtocolsConfig = field(default_factory=ProtocolsConfig)

    def validate(self) -> None:
        if self.protocols.grpc is None and self.protocols.http is None:
            raise ConfigError("protocols", "must specify at least one protocol (grpc or http) when using the "
                                           "OTLP receiver")

    def resolve(self, settings: ServiceSettings) -> None:
        """Every `auth.authenticator` must be an extension the service runs."""
        for protocol in ("grpc", "http"):
            server: GrpcConfig | HttpConfig | None = getattr(self.protocols, protocol)
            if server is not None:
                check_authenticator(server.auth, settings, f"protocols.{protocol}.auth")


def prepare(raw: Any) -> Any:
    """As in the Collector, `grpc:` or `http:` with no value enables that protocol with its defaults."""
    if isinstance(raw, dict) and isinstance(raw.get("protocols"), dict):
        protocols = dict(raw["protocols"])
        for name in ("grpc", "http"):
            if name in protocols and protocols[name] is None:
                protocols[name] = {}
        raw = {**raw, "protocols": protocols}
    return raw


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """`host:port`, `[::1]:port` or `:port` (all interfaces, as the Collector reads it)."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError("endpoint", f"expected host:port, got {endpoint!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _url_path(key: str, path: str) -> str:
    """As the Collector: the path of the URL given, with a leading / added (`log/ingest` is `/log/ingest`)."""
    if re.search(r"%(?![0-9A-Fa-f]{2})|[\x00-\x20\x7f]", path):
        raise ConfigError(key, f"{path!r} is not a valid URL path (bad % escape, space or control character)")
    url_path = urlsplit(path).path
    return url_path if url_path.startswith("/") else "/" + url_path

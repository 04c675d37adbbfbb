"""Settings of the `otlp_grpc` exporter (alias `otlp`): the Collector's otlpexporter keys, i.e. the exporterhelper's
`timeout`, `sending_queue` and `retry_on_failure` and every `configgrpc.ClientConfig` key, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from core.confmap import ConfigError, Duration, url_problem
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

BALANCERS = ("round_robin", "pick_first")


@dataclass
class KeepaliveClientConfig:
    time: Duration = Duration("10s")  # ping after this long without activity
    timeout: Duration = Duration("10s")  # wait this long for the ping's answer
    permit_without_stream: bool = False


@dataclass
class Config:
    # host:port, or any gRPC target (dns:///host:port, unix:///path); an http:// or https:// prefix is
    # stripped (https:// also means TLS). TLS is on unless tls.insecure is true and no CA is given.
    endpoint: str = ""
    compression: str = "gzip"  # gRPC: gzip or none (grpcio has no zstd or snappy)
    tls: TLSClientConfig = field(default_factory=TLSClientConfig)
    keepalive: KeepaliveClientConfig | None = None
    read_buffer_size: int = 0  # bytes; 0: grpc's default
    write_buffer_size: int = 512 * 1024  # bytes
    wait_for_ready: bool = False  # wait for the connection rather than fail at once while it is down
    headers: HeaderList = field(default_factory=dict)
    user_agent: str = ""  # "" means procsight's
    balancer_name: str = "round_robin"
    authority: str = ""  # overrides the :authority header
    auth: AuthConfig | None = None  # a client authenticator extension (bearertokenauth); needs TLS
    middlewares: list[MiddlewareConfig] = field(default_factory=list)
    timeout: Duration = Duration("5s")  # per attempt; 0: none
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        self._check_endpoint()
        if self.compression not in ("gzip", "none", ""):
            known = self.compression in ("snappy", "zstd")
            raise ConfigError("compression", f"grpcio compresses gRPC messages with gzip only, not {self.compression!r}"
                              if known else f"unsupported compression type {self.compression!r} for gRPC "
                              "(expected gzip or none)")
        try:
            self.tls.check_grpc()
        except ConfigError as exc:
            raise exc.within("tls") from None
        for key in ("read_buffer_size", "write_buffer_size"):
            if not 0 <= getattr(self, key) < 2**31:
                raise ConfigError(key, "must be 0 or more (and below 2^31)")
        if self.balancer_name not in BALANCERS:
            raise ConfigError("balancer_name", f"invalid balancer_name {self.balancer_name!r} "
                                               f"(expected {' or '.join(BALANCERS)})")
        if self.auth is not None and self.plaintext:
            raise ConfigError("auth", "a gRPC client authenticator sends credentials over TLS only, as in the "
                                      "Collector; remove tls.insecure or give tls.ca_file")
        self.headers = header_map(self.headers, "headers")
        no_middlewares(self.middlewares)

    def _check_endpoint(self) -> None:
        if self.endpoint.startswith("unix://") or self.endpoint.startswith("unix:"):
            if not self.endpoint.split(":", 1)[1].lstrip("/"):
                raise ConfigError("endpoint", "unix socket path cannot be empty")
            return
        address = self.target
        if "://" in address:  # a gRPC resolver URI: scheme://[authority]/host:port
            address = urlsplit(address).path.lstrip("/")
        if not address:
            raise ConfigError("endpoint", 'requires a non-empty "endpoint", e.g. collector:4317')
        host, colon, port = address.rpartition(":")
        if not colon or not host:
            raise ConfigError("endpoint", f"{self.endpoint!r} needs a port, e.g. collector:4317")
        if not port.isdigit():
            raise ConfigError("endpoint", f'invalid port "{port}"')
        problem = url_problem(f"grpc://{address}")
        if problem:
            raise ConfigError("endpoint", f"{problem} in {self.endpoint!r}")

    def resolve(self, settings: ServiceSettings) -> None:
        check_authenticator(self.auth, settings)

    @property
    def target(self) -> str:
        """The gRPC target: the endpoint without an http:// or https:// prefix. grpc-go's `passthrough:///`
        (hand the address to the dialer as it is) is grpcio's plain address."""
        for prefix in ("http://", "https://", "passthrough:///"):
            if self.endpoint.startswith(prefix):
                return self.endpoint[len(prefix):].rstrip("/")
        return self.endpoint

    @property
    def plaintext(self) -> bool:
        return self.tls.insecure and not self.tls.has_ca and not self.endpoint.startswith("https://")

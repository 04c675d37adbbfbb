"""Settings of the `otlp` receiver: the Collector's keys (`protocols.grpc`, `protocols.http`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.confmap import ConfigError
from otlp_receiver.config import ServiceSettings

MIB = 1024 * 1024


@dataclass
class AuthConfig:
    authenticator: str  # the id of an authenticator extension, e.g. bearertokenauth or bearertokenauth/ops


@dataclass
class GrpcConfig:
    endpoint: str = "127.0.0.1:4317"  # host:port; port 0 picks a free one (read it back after start)
    max_recv_msg_size_mib: int = 4  # the Collector's default; bigger messages get RESOURCE_EXHAUSTED
    max_concurrent_streams: int = 0  # 0: grpc's default
    auth: AuthConfig | None = None

    def validate(self) -> None:
        split_endpoint(self.endpoint)
        if self.max_recv_msg_size_mib < 1:
            raise ConfigError("max_recv_msg_size_mib", "must be at least 1")


@dataclass
class HttpConfig:
    endpoint: str = "127.0.0.1:4318"
    max_request_body_size: int = 20 * MIB  # bytes, after decompression too; bigger bodies get 413
    logs_url_path: str = "/v1/logs"
    auth: AuthConfig | None = None

    def validate(self) -> None:
        split_endpoint(self.endpoint)
        if self.max_request_body_size < 1:
            raise ConfigError("max_request_body_size", "must be at least 1 byte")
        if not self.logs_url_path.startswith("/"):
            raise ConfigError("logs_url_path", f"must start with '/', got {self.logs_url_path!r}")


@dataclass
class ProtocolsConfig:
    grpc: GrpcConfig | None = None
    http: HttpConfig | None = None


@dataclass
class Config:
    protocols: ProtocolsConfig = field(default_factory=ProtocolsConfig)

    def validate(self) -> None:
        if self.protocols.grpc is None and self.protocols.http is None:
            raise ConfigError("protocols", "enable at least one of grpc and http")

    def resolve(self, settings: ServiceSettings) -> None:
        """Every `auth.authenticator` must be an extension the service runs."""
        for protocol in ("grpc", "http"):
            server: GrpcConfig | HttpConfig | None = getattr(self.protocols, protocol)
            if server is not None and server.auth is not None:
                ext = server.auth.authenticator
                if ext not in settings.service.extensions:
                    raise ConfigError(f"protocols.{protocol}.auth.authenticator",
                                      f"'{ext}' is not an extension enabled in service.extensions")


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

"""Settings of the `otlp_grpc` exporter (alias `otlp`), as the Collector's otlp exporter spells them."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.confmap import ConfigError, Duration, check_positive
from otlp_receiver.exporterhelper.config import QueueConfig, RetryConfig
from otlp_receiver.exporterhelper.tls import TLSClientConfig

COMPRESSIONS = ("gzip", "none", "")


@dataclass
class Config:
    endpoint: str = ""  # host:port; an http:// prefix means plaintext, https:// TLS
    tls: TLSClientConfig = field(default_factory=TLSClientConfig)
    headers: dict[str, str] = field(default_factory=dict)
    compression: str = "gzip"
    timeout: Duration = Duration("5s")
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        if not self.target:
            raise ConfigError("endpoint", "required, e.g. collector:4317")
        if ":" not in self.target:
            raise ConfigError("endpoint", f"{self.endpoint!r} needs a port, e.g. collector:4317")
        if self.compression not in COMPRESSIONS:
            raise ConfigError("compression", f"expected gzip or none, got {self.compression!r}")
        check_positive(self, "timeout")
        for name in self.headers:
            if not name.isascii() or not name.strip():
                raise ConfigError("headers", f"{name!r} is not a valid header name")

    @property
    def target(self) -> str:
        return self.endpoint.split("://", 1)[1].rstrip("/") if "://" in self.endpoint else self.endpoint

    @property
    def plaintext(self) -> bool:
        return self.tls.insecure or self.endpoint.startswith("http://")

"""Settings of the `clickhouse` exporter: the upstream Collector exporter's keys, where procsight implements them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from core.confmap import parse_duration
from otlp_receiver.exporterhelper.config import QueueConfig, RetryConfig, check_duration

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
COMPRESSIONS = ("lz4", "zstd", "gzip", "br", "none")


@dataclass
class Config:
    endpoint: str = "chdb://./procsight-data/clickhouse"  # chdb://PATH (embedded) or http(s)://host:port
    username: str = "default"
    password: str = ""
    database: str = "procsight"
    logs_table_name: str = "security_events"
    ttl: float | str = 0.0  # a Collector duration (720h); 0 keeps rows forever
    create_schema: bool = True
    timeout: str = "5s"
    compress: str = "lz4"  # http transport only; the embedded engine has nothing to compress
    async_insert: bool = False
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        scheme = self.scheme
        if scheme not in ("chdb", "http", "https"):
            raise ValueError(f"endpoint: unsupported endpoint {self.endpoint!r}: use chdb://PATH for the "
                                          "embedded engine or http(s)://host:port for a ClickHouse server "
                                          "(tcp:// and clickhouse:// need the native protocol, not supported)")
        if scheme == "chdb" and not self.chdb_path:
            raise ValueError("endpoint: chdb:// needs a directory, e.g. chdb://./procsight-data/clickhouse")
        if scheme != "chdb" and not urlsplit(self.endpoint).hostname:
            raise ValueError(f"endpoint: no host in {self.endpoint!r}")
        for key in ("database", "logs_table_name"):
            if not _IDENTIFIER.match(getattr(self, key)):
                raise ValueError(f"{key}: {getattr(self, key)!r} is not a plain identifier (letters, digits, _)")
        if check_duration(self.ttl, "ttl") < 0:
            raise ValueError("ttl: cannot be negative")
        if check_duration(self.timeout, "timeout") <= 0:
            raise ValueError("timeout: must be greater than zero")
        if self.compress not in COMPRESSIONS:
            raise ValueError(f"compress: expected one of {', '.join(COMPRESSIONS)}, got {self.compress!r}")

    @property
    def scheme(self) -> str:
        return self.endpoint.split("://", 1)[0].lower() if "://" in self.endpoint else ""

    @property
    def chdb_path(self) -> str:
        return self.endpoint.split("://", 1)[1] if self.scheme == "chdb" else ""

    @property
    def ttl_seconds(self) -> float:
        return parse_duration(self.ttl)

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)

"""Settings of the `clickhouse` exporter: the upstream Collector exporter's keys, where procsight implements them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from core.confmap import ConfigError, Duration, check_positive
from otlp_receiver.exporterhelper.config import QueueConfig, RetryConfig

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
COMPRESSIONS = ("lz4", "zstd", "gzip", "br", "none")


@dataclass
class Config:
    endpoint: str = "chdb://./procsight-data/clickhouse"  # chdb://PATH (embedded) or http(s)://host:port
    username: str = "default"
    password: str = ""
    database: str = "procsight"
    logs_table_name: str = "security_events"
    ttl: Duration = Duration(0)  # 0 keeps rows forever
    create_schema: bool = True
    timeout: Duration = Duration("5s")
    compress: str = "lz4"  # http transport only; the embedded engine has nothing to compress
    async_insert: bool = False
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        scheme = self.scheme
        if scheme not in ("chdb", "http", "https"):
            raise ConfigError("endpoint", f"unsupported endpoint {self.endpoint!r}: use chdb://PATH for the "
                                          "embedded engine or http(s)://host:port for a ClickHouse server "
                                          "(tcp:// and clickhouse:// need the native protocol, not supported)")
        if scheme == "chdb" and not self.chdb_path:
            raise ConfigError("endpoint", "chdb:// needs a directory, e.g. chdb://./procsight-data/clickhouse")
        if scheme != "chdb" and not urlsplit(self.endpoint).hostname:
            raise ConfigError("endpoint", f"no host in {self.endpoint!r}")
        for key in ("database", "logs_table_name"):
            if not _IDENTIFIER.match(getattr(self, key)):
                raise ConfigError(key, f"{getattr(self, key)!r} is not a plain identifier (letters, digits, _)")
        check_positive(self, "timeout")
        if self.compress not in COMPRESSIONS:
            raise ConfigError("compress", f"expected one of {', '.join(COMPRESSIONS)}, got {self.compress!r}")

    @property
    def scheme(self) -> str:
        return self.endpoint.split("://", 1)[0].lower() if "://" in self.endpoint else ""

    @property
    def chdb_path(self) -> str:
        return self.endpoint.split("://", 1)[1] if self.scheme == "chdb" else ""

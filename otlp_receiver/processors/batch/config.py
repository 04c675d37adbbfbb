"""Settings of the `batch` processor: the Collector's keys (`timeout`, `send_batch_size`, `send_batch_max_size`,
`metadata_keys`, `metadata_cardinality_limit`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.confmap import ConfigError, Duration

_UINT32 = 2**32


@dataclass
class Config:
    timeout: Duration = Duration("200ms")  # 0: a batch leaves as soon as it is read, without waiting for more
    send_batch_size: int = 8192  # log records; 0: every request is its own batch
    send_batch_max_size: int = 0  # log records; a bigger batch is split (0: never)
    # One batch per distinct combination of these client metadata values (request headers, carried with
    # `include_metadata: true` on the receiver); matched case-insensitively.
    metadata_keys: list[str] = field(default_factory=list)
    metadata_cardinality_limit: int = 1000  # combinations over the process's lifetime; 0: no limit

    def validate(self) -> None:
        for key in ("send_batch_size", "send_batch_max_size", "metadata_cardinality_limit"):
            if not 0 <= getattr(self, key) < _UINT32:
                raise ConfigError(key, "must be 0 or more (an unsigned 32-bit number)")
        if self.send_batch_max_size and self.send_batch_max_size < self.send_batch_size:
            raise ConfigError("send_batch_max_size", "must be greater or equal to send_batch_size")
        seen: set[str] = set()
        for index, key in enumerate(self.metadata_keys):
            if key.lower() in seen:
                raise ConfigError(f"metadata_keys[{index}]", f"duplicate entry {key.lower()!r} (case-insensitive)")
            seen.add(key.lower())

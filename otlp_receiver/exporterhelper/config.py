"""`sending_queue` and `retry_on_failure`: the Collector's exporterhelper settings, same keys and defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from core.confmap import ConfigError, Duration

SIZERS = ("requests", "items", "bytes")


@dataclass
class QueueBatchConfig:
    """`sending_queue.batch`: accepted so the error can say why it cannot be honoured (see QueueConfig)."""

    flush_timeout: Duration = Duration("200ms")
    min_size: int = 8192
    max_size: int = 0
    sizer: str = ""
    partition: dict[str, Any] = field(default_factory=dict)


@dataclass
class QueueConfig:
    """An in-memory queue of batches in front of an exporter, drained by `num_consumers` threads.

    `queue_size` counts what `sizer` says: batches (`requests`, the default), log records (`items`) or
    protobuf bytes (`bytes`). A full queue holds the pipeline back, and the ingest spool holds what waits,
    whatever `block_on_overflow` says: procsight never drops an acknowledged record to make room. There is
    no `storage`: the ingest spool already makes every acknowledged record durable, so a second on-disk
    queue per exporter would only write the same bytes twice.
    """

    enabled: bool = True
    num_consumers: int = 2  # the Collector defaults to 10; two threads saturate the 2 cores we target
    queue_size: int = 1000
    sizer: str = "requests"
    block_on_overflow: bool = False  # both values block: see above
    wait_for_result: bool = False
    storage: str | None = None
    batch: QueueBatchConfig | None = None

    def validate(self) -> None:
        if self.num_consumers < 1:
            raise ConfigError("num_consumers", "must be at least 1")
        if self.queue_size < 1:
            raise ConfigError("queue_size", "must be at least 1")
        if self.sizer not in SIZERS:
            raise ConfigError("sizer", f"expected one of {', '.join(SIZERS)}, got {self.sizer!r}")
        if self.storage:
            raise ConfigError("storage", "procsight keeps every acknowledged record in its write-ahead spool "
                                         "already; remove storage")
        if self.wait_for_result:
            raise ConfigError("wait_for_result", "procsight answers a client once its records are in the "
                                                 "write-ahead spool, before any exporter runs; remove it")
        if self.batch is not None:
            raise ConfigError("batch", "procsight forms batches before its write-ahead spool, so that a replay "
                                       "forms the same ones (exactly-once into ClickHouse); batch with the batch "
                                       "processor (send_batch_size, timeout) instead")


@dataclass
class RetryConfig:
    """Exponential backoff for retryable export errors, validated as the Collector's `configretry`.

    Deviation from the Collector, on purpose: a batch the receiver acknowledged is never dropped
    because `max_elapsed_time` passed. Past it the exporter logs an error and counts the batch in
    `procsight_exporter_retry_overdue_batches_total`, and keeps retrying at `max_interval` until the
    destination is back or the process stops (then the spool replays it on the next start).
    """

    enabled: bool = True
    initial_interval: Duration = Duration("5s")
    randomization_factor: float = 0.5
    multiplier: float = 1.5
    max_interval: Duration = Duration("30s")
    max_elapsed_time: Duration = Duration("300s")  # 0 means no limit, as in the Collector

    def validate(self) -> None:
        if not 0.0 <= self.randomization_factor <= 1.0:
            raise ConfigError("randomization_factor", "must be within [0, 1]")
        if self.multiplier < 0:
            raise ConfigError("multiplier", "must be non-negative")
        if self.max_elapsed_time:
            for key in ("initial_interval", "max_interval"):
                if self.max_elapsed_time < getattr(self, key):
                    raise ConfigError("max_elapsed_time", f"must not be less than {key}")


@runtime_checkable
class HelperSettings(Protocol):
    """An exporter config that embeds the helper's settings: the service queues and retries for it."""

    sending_queue: QueueConfig
    retry_on_failure: RetryConfig

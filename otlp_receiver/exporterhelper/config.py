"""`sending_queue` and `retry_on_failure`: the Collector's exporterhelper settings, same keys and defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from core.confmap import ConfigError, Duration, check_positive


@dataclass
class QueueConfig:
    """An in-memory queue of batches in front of an exporter, drained by `num_consumers` threads.

    `queue_size` counts batches, as the Collector's default `sizer: requests` does. There is no
    `storage` key: the receiver's ingest spool already makes every acknowledged record durable, so a
    second on-disk queue per exporter would only write the same bytes twice.
    """

    enabled: bool = True
    num_consumers: int = 2  # the Collector defaults to 10; two threads saturate the 2 cores we target
    queue_size: int = 1000

    def validate(self) -> None:
        if self.num_consumers < 1:
            raise ConfigError("num_consumers", "must be at least 1")
        if self.queue_size < 1:
            raise ConfigError("queue_size", "must be at least 1")


@dataclass
class RetryConfig:
    """Exponential backoff for retryable export errors.

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
        check_positive(self, "initial_interval")
        if self.max_interval < self.initial_interval:
            raise ConfigError("max_interval", "must be at least initial_interval")
        if self.multiplier < 1.0:
            raise ConfigError("multiplier", "must be at least 1")
        if not 0.0 <= self.randomization_factor < 1.0:
            raise ConfigError("randomization_factor", "must be in [0, 1)")


@runtime_checkable
class HelperSettings(Protocol):
    """An exporter config that embeds the helper's settings: the service queues and retries for it."""

    sending_queue: QueueConfig
    retry_on_failure: RetryConfig

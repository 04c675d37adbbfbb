"""`sending_queue` and `retry_on_failure`: the Collector's exporterhelper settings, same keys and defaults."""

from __future__ import annotations

from dataclasses import dataclass

from core.confmap import ConfigError, parse_duration


def check_duration(value: str | float, key: str) -> float:
    """Seconds of a Collector duration; a bad one is a ValueError that `decode` reports with the full path."""
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise ValueError(f"{key}: {exc}") from None


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
            raise ValueError("num_consumers: must be at least 1")
        if self.queue_size < 1:
            raise ValueError("queue_size: must be at least 1")


@dataclass
class RetryConfig:
    """Exponential backoff for retryable export errors.

    Deviation from the Collector, on purpose: a batch the receiver acknowledged is never dropped
    because `max_elapsed_time` passed. Past it the exporter logs an error and counts the batch in
    `procsight_exporter_retry_overdue_batches_total`, and keeps retrying at `max_interval` until the
    destination is back or the process stops (then the spool replays it on the next start).
    """

    enabled: bool = True
    initial_interval: str = "5s"
    randomization_factor: float = 0.5
    multiplier: float = 1.5
    max_interval: str = "30s"
    max_elapsed_time: str = "300s"  # 0 means no limit, as in the Collector

    def validate(self) -> None:
        for name in ("initial_interval", "max_interval", "max_elapsed_time"):
            check_duration(getattr(self, name), name)
        if self.initial_seconds <= 0:
            raise ValueError("initial_interval: must be greater than zero")
        if self.max_seconds < self.initial_seconds:
            raise ValueError("max_interval: must be at least initial_interval")
        if self.multiplier < 1.0:
            raise ValueError("multiplier: must be at least 1")
        if not 0.0 <= self.randomization_factor < 1.0:
            raise ValueError("randomization_factor: must be in [0, 1)")

    @property
    def initial_seconds(self) -> float:
        return parse_duration(self.initial_interval)

    @property
    def max_seconds(self) -> float:
        return parse_duration(self.max_interval)

    @property
    def max_elapsed_seconds(self) -> float:
        return parse_duration(self.max_elapsed_time)

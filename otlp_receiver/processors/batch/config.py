"""Settings of the `batch` processor: the Collector's keys (`timeout`, `send_batch_size`, `send_batch_max_size`)."""

from __future__ import annotations

from dataclasses import dataclass

from core.confmap import ConfigError, Duration


@dataclass
class Config:
    timeout: Duration = Duration("200ms")
    send_batch_size: int = 8192
    # Accepted so Collector configs load unchanged; a request is never split, so a batch closes at
    # send_batch_size and may exceed this by at most one request.
    send_batch_max_size: int = 0

    def validate(self) -> None:
        if self.send_batch_size < 1:
            raise ConfigError("send_batch_size", "must be at least 1")
        if self.send_batch_max_size and self.send_batch_max_size < self.send_batch_size:
            raise ConfigError("send_batch_max_size", "must be 0 or at least send_batch_size")

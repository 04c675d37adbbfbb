"""`batch`: how many spooled requests the pipeline groups into one batch, and how long it waits.

Keys and meaning as in the Collector (`timeout`, `send_batch_size`, `send_batch_max_size`), with one
difference that keeps exactly-once delivery: batches are made of whole spooled requests (a request
is never split), and each batch's extent is recorded in the spool before it is exported, so after a
crash the same requests form the same batch with the same id. A request larger than
`send_batch_max_size` therefore travels as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.confmap import ConfigError, Duration
from otlp_receiver.component import CreateSettings, LogBatch

TYPE = "batch"


@dataclass
class Config:
    timeout: Duration = Duration("200ms")
    send_batch_size: int = 8192
    send_batch_max_size: int = 0  # 0: no upper bound beyond whole requests

    def validate(self) -> None:
        if self.send_batch_size < 1:
            raise ConfigError("send_batch_size", "must be at least 1")
        if self.send_batch_max_size and self.send_batch_max_size < self.send_batch_size:
            raise ConfigError("send_batch_max_size", "must be 0 or at least send_batch_size")


class BatchProcessor:
    """Grouping happens where batches are formed (otlp_receiver/pipeline.py reads `config`); by the
    time a batch reaches the processors it is already whole."""

    def __init__(self, config: Config, name: str = TYPE) -> None:
        self.config = config
        self.name = name

    def start(self) -> None:
        pass

    def process(self, batch: LogBatch) -> LogBatch:
        return batch

    def shutdown(self) -> None:
        pass


def create(config: Config, settings: CreateSettings) -> BatchProcessor:
    return BatchProcessor(config, settings.component_id)

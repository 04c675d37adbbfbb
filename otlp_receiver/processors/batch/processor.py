"""`batch`: how many spooled requests form one batch, and how long the pipeline waits for them.

Unlike the Collector's, batches are made of whole spooled requests (a request is never split), and
the pipeline records each batch's extent in the spool before it is processed, so after a crash the
same requests form the same batch with the same id: what keeps ClickHouse inserts exactly-once.
The processor's work is the grouping (`gather`, which the pipeline calls as its `Batcher`); by the
time a batch runs through the processors it is already whole.
"""

from __future__ import annotations

import time

from otlp_receiver.component import LogBatch, ReadEntry
from otlp_receiver.processors.batch.config import Config
from otlp_receiver.spool import SpoolEntry


class BatchProcessor:
    def __init__(self, config: Config, name: str = "batch") -> None:
        self.config = config
        self.name = name

    def gather(self, first: SpoolEntry, read: ReadEntry) -> list[SpoolEntry]:
        """`first` and the requests after it until send_batch_size records or the timeout."""
        entries = [first]
        records = first.records
        deadline = time.monotonic() + self.config.timeout
        while records < self.config.send_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            entry = read(remaining)
            if entry is None:
                break
            entries.append(entry)
            records += entry.records
        return entries

    def start(self) -> None:
        pass

    def process(self, batch: LogBatch) -> LogBatch:
        return batch  # formed whole by gather()

    def shutdown(self) -> None:
        pass

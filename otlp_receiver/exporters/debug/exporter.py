"""`debug`: writes batches to the log, like the Collector's debug exporter.

`verbosity: basic` logs one line per batch, `normal` one line per record (time, severity, body and
the anomaly verdict), `detailed` every field of every record. `sampling_initial` batches per second
are logged, then one in `sampling_thereafter`, as in the Collector.
"""

from __future__ import annotations

import logging
import threading
import time

from core import semconv
from otlp_receiver.component import LogBatch
from otlp_receiver.exporters.debug.config import Config

log = logging.getLogger("procsight.debug")


class DebugExporter:
    def __init__(self, config: Config, name: str = "debug") -> None:
        self.config = config
        self.name = name
        self._lock = threading.Lock()
        self._second = 0
        self._in_second = 0

    def start(self) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def export(self, batch: LogBatch) -> None:
        if not self._sampled():
            return
        log.info("%s: batch %s tenant %s%s: %d log records", self.name, batch.batch_id, batch.tenant,
                 f" metadata {batch.metadata}" if batch.metadata else "", batch.record_count())
        if self.config.verbosity == "basic":
            return
        for ordinal, (resource, _scope, record) in enumerate(batch.records()):
            if self.config.verbosity == "detailed":
                log.info("%s: record %s\nresource %s\n%s", self.name, batch.record_id(ordinal), resource, record)
                continue
            attributes = {kv.key: kv.value for kv in record.attributes}
            score = attributes[semconv.ANOMALY_SCORE].double_value if semconv.ANOMALY_SCORE in attributes else None
            log.info("%s: %s %s %r score=%s severity=%s", self.name, record.time_unix_nano,
                     record.severity_text or record.severity_number, record.body.string_value[:200], score,
                     attributes[semconv.ANOMALY_SEVERITY].string_value if semconv.ANOMALY_SEVERITY in attributes
                     else "-")

    def _sampled(self) -> bool:
        with self._lock:
            second = int(time.monotonic())
            if second != self._second:
                self._second, self._in_second = second, 0
            self._in_second += 1
            count = self._in_second
        if count <= self.config.sampling_initial:
            return True
        return (count - self.config.sampling_initial) % self.config.sampling_thereafter == 0

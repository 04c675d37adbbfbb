"""`debug`: writes batches to the log, like the Collector's debug exporter.

`verbosity: basic` logs one line per batch, `normal` one line per record (time, severity, body and
the anomaly verdict), `detailed` every field of every record. `sampling_initial` batches per second
are logged, then one in `sampling_thereafter`, as in the Collector.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from core import semconv
from core.confmap import ConfigError
from otlp_receiver.component import CreateSettings, LogBatch

TYPE = "debug"
VERBOSITIES = ("basic", "normal", "detailed")

log = logging.getLogger("procsight.debug")


@dataclass
class Config:
    verbosity: str = "basic"
    sampling_initial: int = 2
    sampling_thereafter: int = 1

    def validate(self) -> None:
        if self.verbosity not in VERBOSITIES:
            raise ConfigError("verbosity", f"expected one of {', '.join(VERBOSITIES)}, got {self.verbosity!r}")
        if self.sampling_initial < 0 or self.sampling_thereafter < 1:
            raise ConfigError("sampling_thereafter", "sampling_initial >= 0 and sampling_thereafter >= 1")


class DebugExporter:
    def __init__(self, config: Config, name: str = TYPE) -> None:
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
        log.info("%s: batch %s tenant %s: %d log records", self.name, batch.batch_id, batch.tenant,
                 batch.record_count())
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


def create(config: Config, settings: CreateSettings) -> DebugExporter:
    return DebugExporter(config, settings.component_id)

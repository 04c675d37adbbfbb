"""Scores every process event of a batch against its (tenant, workload) baseline and writes the
verdict into the record (DESIGN section 2): `anomaly_*` attributes, `process.ancestors`, a raised
severity for warn/alert, and the feature vectors as `LogBatch.embeddings`.

Records that are not process or network events pass through untouched and are counted by kind.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otlp_receiver.component import LogBatch
from otlp_receiver.normalize import Normalizer
from otlp_receiver.normalize.values import attributes_dict
from scoring import AnomalyEngine, ProcessEvent, Verdict

if TYPE_CHECKING:
    from otlp_receiver.processors.anomaly.factory import Config

log = logging.getLogger(__name__)

MAX_WORKLOAD_CHARS = 256
# severity_number / severity_text a verdict raises a record to (never lowers it).
RAISED_SEVERITY = {"warn": (13, "WARN"), "alert": (17, "ERROR")}


class AnomalyProcessor:
    def __init__(self, config: Config, name: str = "anomaly", telemetry=None) -> None:  # type: ignore[no-untyped-def]
        self.config = config
        self.name = name
        self.engine: AnomalyEngine | None = None
        self.normalizer = Normalizer()
        self._kinds = telemetry.counter("procsight_normalized_log_records_total",
                                        "Records seen by the anomaly processor, by recognised shape "
                                        "(unrecognised ones pass through unscored)")
        self._scored = telemetry.counter("procsight_scored_log_records_total", "Records scored, by severity")

    def start(self) -> None:
        self.engine = AnomalyEngine(self.config)

    def shutdown(self) -> None:
        if self.engine is not None:
            self.engine.flush()
            self.engine.close()
            self.engine = None

    def process(self, batch: LogBatch) -> LogBatch:
        assert self.engine is not None, "start() first"
        groups: dict[str, list[tuple[int, LogRecord, ProcessEvent]]] = defaultdict(list)
        kinds: dict[str, int] = defaultdict(int)
        ordinal = 0
        for resource_logs in batch.logs.resource_logs:
            resource = attributes_dict(resource_logs.resource.attributes)
            workload = self._workload(resource)
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    normalized = self.normalizer.normalize(batch.tenant, resource, record)
                    kinds[normalized.kind] += 1
                    if normalized.event is not None:
                        group = workload or _bounded(normalized.event.host) or self.config.default_workload
                        groups[group].append((ordinal, record, normalized.event))
                    ordinal += 1
        for kind, count in kinds.items():
            self._kinds.inc(count, kind=kind)
        if not groups:
            return batch
        embeddings = np.zeros((ordinal, self.engine.featurizer.dim), dtype=np.float32)
        for workload, items in groups.items():
            verdicts = self.engine.process([event for _, _, event in items], tenant=batch.tenant,
                                           workload=workload, learn=self.config.learn)
            for (index, record, event), verdict in zip(items, verdicts, strict=True):
                _enrich(record, event, verdict)
                if verdict.vector.shape == (embeddings.shape[1],):
                    embeddings[index] = verdict.vector
                self._scored.inc(severity=verdict.severity)
        batch.embeddings = embeddings
        return batch

    def _workload(self, resource: dict[str, Any]) -> str:
        for key in self.config.workload_key:
            value = resource.get(key)
            if value not in (None, ""):
                return _bounded(str(value))
        return ""


def _bounded(workload: str) -> str:
    return workload[:MAX_WORKLOAD_CHARS]


def _enrich(record: LogRecord, event: ProcessEvent, verdict: Verdict) -> None:
    present = {kv.key for kv in record.attributes}
    added = [
        KeyValue(key="anomaly_score", value=AnyValue(double_value=round(float(verdict.score), 6))),
        KeyValue(key="anomaly_severity", value=AnyValue(string_value=verdict.severity)),
        KeyValue(key="anomaly_reasons", value=_strings(verdict.reasons)),
        KeyValue(key="anomaly_workload", value=AnyValue(string_value=verdict.workload)),
        KeyValue(key="anomaly_nearest", value=AnyValue(string_value=verdict.nearest)),
        KeyValue(key="anomaly_model", value=AnyValue(string_value=verdict.model)),
    ]
    if event.ancestors and "process.ancestors" not in present:
        added.append(KeyValue(key="process.ancestors", value=_strings(event.ancestors)))
    if present & {kv.key for kv in added}:
        # A replayed or re-scored record: replace the old verdict instead of duplicating keys.
        keep = [kv for kv in record.attributes if kv.key not in {a.key for a in added}]
        del record.attributes[:]
        record.attributes.extend(keep)
    record.attributes.extend(added)
    raised = RAISED_SEVERITY.get(verdict.severity)
    if raised and record.severity_number < raised[0]:
        record.severity_number, record.severity_text = raised


def _strings(values: Any) -> AnyValue:
    value = AnyValue()
    value.array_value.values.extend(AnyValue(string_value=str(v)) for v in values)
    return value

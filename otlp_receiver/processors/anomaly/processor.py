"""Scores every process event of a batch against its (tenant, workload) baseline and writes the
verdict into the record (DESIGN section 2): `anomaly_*` attributes, `process.ancestors`, a raised
severity for warn/alert, and the feature vectors as `LogBatch.embeddings`.

Records that are not process or network events pass through untouched and are counted by kind.
"""

from __future__ import annotations

import functools
import logging
import struct
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core import semconv
from core.event import ProcessEvent
from core.otlpwire import field, log_attribute, varint
from otlp_receiver.component import LogBatch
from otlp_receiver.normalize import Normalizer
from otlp_receiver.normalize.values import attributes_dict
from scoring.engine import AnomalyEngine, Verdict

if TYPE_CHECKING:
    from otlp_receiver.processors.anomaly.factory import Config

log = logging.getLogger(__name__)

MAX_WORKLOAD_CHARS = 256
# severity_number / severity_text a verdict raises a record to (never lowers it).
RAISED_SEVERITY = {"warn": (13, "WARN"), "alert": (17, "ERROR")}


@dataclass
class Outcome:
    embeddings: Any  # float32 (records, dim), or None when nothing was scored
    kinds: dict[str, int]  # records by normalised shape
    severities: dict[str, int]  # scored records by severity


class BatchScorer:
    """The work itself: normalise, score per (tenant, workload), enrich the records in place."""

    def __init__(self, config: Config, engine: AnomalyEngine) -> None:
        self.config = config
        self.engine = engine
        self.normalizer = Normalizer()

    def close(self) -> None:
        self.engine.flush()
        self.engine.close()

    def score(self, logs: ExportLogsServiceRequest, tenant: str) -> Outcome:
        groups: dict[str, list[tuple[int, LogRecord, ProcessEvent, dict[str, Any]]]] = defaultdict(list)
        kinds: dict[str, int] = defaultdict(int)
        severities: dict[str, int] = defaultdict(int)
        ordinal = 0
        for resource_logs in logs.resource_logs:
            resource = attributes_dict(resource_logs.resource.attributes)
            workload = self._workload(resource)
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    normalized = self.normalizer.normalize(tenant, resource, record)
                    kinds[normalized.kind] += 1
                    if normalized.event is not None:
                        group = workload or _bounded(normalized.event.host) or self.config.default_workload
                        groups[group].append((ordinal, record, normalized.event, normalized.attributes or {}))
                    ordinal += 1
        if not groups:
            return Outcome(None, dict(kinds), {})
        embeddings = np.zeros((ordinal, self.engine.featurizer.dim), dtype=np.float32)
        for workload, items in groups.items():
            verdicts = self.engine.process([item[2] for item in items], tenant=tenant, workload=workload,
                                           learn=self.config.learn)
            for (index, record, event, present), verdict in zip(items, verdicts, strict=True):
                _enrich(record, event, verdict, present)
                if verdict.vector.shape == (embeddings.shape[1],):
                    embeddings[index] = verdict.vector
                severities[verdict.severity] += 1
        return Outcome(embeddings, dict(kinds), dict(severities))

    def _workload(self, resource: dict[str, Any]) -> str:
        for key in self.config.workload_key:
            value = resource.get(key)
            if value not in (None, ""):
                return _bounded(str(value))
        return ""


class AnomalyProcessor:
    """Runs a BatchScorer in this process, or (`separate_process: true`, the default) in a child
    process, so scoring uses the second core while this one receives, spools and exports."""

    def __init__(self, config: Config, name: str = "anomaly", telemetry=None) -> None:  # type: ignore[no-untyped-def]
        self.config = config
        self.name = name
        self.scorer: BatchScorer | None = None
        self.worker: Any = None
        self._kinds = telemetry.counter("procsight_normalized_log_records_total",
                                        "Records seen by the anomaly processor, by recognised shape "
                                        "(unrecognised ones pass through unscored)")
        self._scored = telemetry.counter("procsight_scored_log_records_total", "Records scored, by severity")

    def start(self) -> None:
        if self.config.separate_process:
            from otlp_receiver.processors.anomaly.worker import ScoringWorker

            self.worker = ScoringWorker(self.config, self.name)
        else:
            self.scorer = BatchScorer(self.config, AnomalyEngine(self.config))

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None
        if self.scorer is not None:
            self.scorer.close()
            self.scorer = None

    def process(self, batch: LogBatch) -> LogBatch:
        if self.worker is not None:
            batch.logs, outcome = self.worker.score(batch.logs, batch.tenant)
        else:
            assert self.scorer is not None, "start() first"
            outcome = self.scorer.score(batch.logs, batch.tenant)
        for kind, count in outcome.kinds.items():
            self._kinds.inc(count, kind=kind)
        for severity, count in outcome.severities.items():
            self._scored.inc(count, severity=severity)
        if outcome.embeddings is not None:
            batch.embeddings = outcome.embeddings
        return batch


def _bounded(workload: str) -> str:
    return workload[:MAX_WORKLOAD_CHARS]


def _enrich(record: LogRecord, event: ProcessEvent, verdict: Verdict, present: dict[str, Any]) -> None:
    """Appends the verdict as serialized LogRecord fields merged in one C call: building KeyValue
    messages attribute by attribute from Python costs several times more per record."""
    if any(key in present for key in semconv.VERDICT_KEYS):
        # A replayed or re-scored record: drop the old verdict instead of duplicating keys.
        keep = [kv for kv in record.attributes if kv.key not in semconv.VERDICT_KEYS]
        del record.attributes[:]
        record.attributes.extend(keep)
    parts = [
        _SCORE_PREFIX + struct.pack("<d", round(float(verdict.score), 6)),
        _static_attribute(semconv.ANOMALY_SEVERITY, verdict.severity),
        _reasons_attribute(tuple(verdict.reasons)),
        _static_attribute(semconv.ANOMALY_WORKLOAD, verdict.workload),
        _static_attribute(semconv.ANOMALY_NEAREST, verdict.nearest),
        _static_attribute(semconv.ANOMALY_MODEL, verdict.model),
    ]
    if event.ancestors and semconv.PROCESS_ANCESTORS not in present:
        parts.append(_ancestors_attribute(event.ancestors))
    if semconv.PROCESS_COMMAND_LINE not in present:
        parts.append(_normalised_attributes(event, present))
    raised = RAISED_SEVERITY.get(verdict.severity)
    if raised and record.severity_number < raised[0]:
        parts.append(_SEVERITY_FIELDS[verdict.severity])
    record.MergeFromString(b"".join(parts))


def _normalised_attributes(event: ProcessEvent, present: dict[str, Any]) -> bytes:
    """procsight's attributes (core/semconv.py) for a record of another shape (Falco, Tetragon, auditd,
    ECS), so every backend and query sees one vocabulary; the record's own attributes stay as they came."""
    attributes = semconv.event_to_attributes(event)
    return b"".join(log_attribute(key, value) for key, value in attributes.items() if key not in present)


@functools.lru_cache(maxsize=16384)  # severities, workloads, models and known-normal command lines repeat
def _static_attribute(key: str, value: str) -> bytes:
    return log_attribute(key, value)


@functools.lru_cache(maxsize=4096)
def _reasons_attribute(reasons: tuple[str, ...]) -> bytes:
    return log_attribute(semconv.ANOMALY_REASONS, reasons)


@functools.lru_cache(maxsize=4096)
def _ancestors_attribute(ancestors: tuple[str, ...]) -> bytes:
    return log_attribute(semconv.PROCESS_ANCESTORS, ancestors)


# The score attribute has a fixed length: its encoding up to the 8 bytes of the double.
_SCORE_PREFIX = log_attribute(semconv.ANOMALY_SCORE, 0.0)[:-8]

# severity_number (field 2, varint) and severity_text (field 3) raised for warn and alert
_SEVERITY_FIELDS = {severity: varint(2 << 3) + varint(number) + field(3, name.encode("ascii"))
                    for severity, (number, name) in RAISED_SEVERITY.items()}

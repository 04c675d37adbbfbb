"""The anomaly processor's work: normalise each record to a `ProcessEvent`, score it against its
(tenant, workload) baseline, and enrich the record in place with the verdict (`enrich.py`).

Records that are not process or network events pass through unscored and are counted by kind; verdict
attributes they arrived with are removed (only procsight writes those) and counted as forged.
It also answers for its baselines while the pipeline runs: what they hold (`baselines`) and learning
what a person acknowledges (`acknowledge`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core.event import ProcessEvent
from core.semconv import event_from_attributes
from otlp_receiver.normalize import Normalizer
from otlp_receiver.normalize.values import attributes_dict
from otlp_receiver.processors.anomaly.config import Config
from otlp_receiver.processors.anomaly.enrich import enrich, mark_unscored, strip_verdict, strip_verdict_from
from scoring.engine import AnomalyEngine

MAX_WORKLOAD_CHARS = 256
INVALID_EVENT = "invalid process event (no executable, or its source's reader failed on it)"
NOT_SCORED_EVENT = "a process record under an event name procsight does not score (not process.exec, " \
                   "network.listen or network.connection)"
MAX_HELD_BACK_SHOWN = 100  # per workload, the most recent: a flood of alert patterns stays readable


@dataclass
class Outcome:
    embeddings: np.ndarray | None  # float32 (records, dim), or None when nothing was scored
    kinds: dict[str, int]  # records by normalised shape
    severities: dict[str, int]  # scored records by severity
    forged: int = 0  # unscored records that arrived carrying verdict attributes (removed)
    unscored: dict[str, int] = field(default_factory=dict)  # records that could not be scored, by reason
    overflow_events: int = 0  # scored in the tenant's overflow baseline: their workload was past the cap


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
        forged = 0
        unscored: dict[str, int] = defaultdict(int)
        ordinal = 0
        for resource_logs in logs.resource_logs:
            forged += strip_verdict_from(resource_logs.resource.attributes)
            forged += sum(strip_verdict_from(scope_logs.scope.attributes) for scope_logs in resource_logs.scope_logs)
            resource = attributes_dict(resource_logs.resource.attributes)
            workload = self._workload(resource)
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    normalized = self.normalizer.normalize(tenant, resource, record)
                    kinds[normalized.kind] += 1
                    if normalized.event is not None:
                        group = workload or _bounded(normalized.event.host) or self.config.default_workload
                        groups[group].append((ordinal, record, normalized.event, normalized.attributes or {}))
                    elif normalized.kind == "invalid":  # named a process but could not be read as one
                        mark_unscored(record, INVALID_EVENT)
                        unscored[INVALID_EVENT] += 1
                    elif normalized.kind == "not_scored":
                        mark_unscored(record, NOT_SCORED_EVENT)
                        unscored[NOT_SCORED_EVENT] += 1
                    else:
                        forged += strip_verdict(record, normalized.attributes or {})
                    ordinal += 1
        for kind, count in self.normalizer.take_counts().items():
            kinds[kind] += count
        if not groups:
            return Outcome(None, dict(kinds), {}, forged=forged, unscored=dict(unscored))
        overflow_before = self.engine.overflow_events[tenant]
        embeddings = np.zeros((ordinal, self.engine.featurizer.dim), dtype=np.float32)
        received = time.time()  # learning keeps the receiver's time, not the senders' (scoring/engine.py process)
        for workload, items in groups.items():
            verdicts = self.engine.process([item[2] for item in items], tenant=tenant, workload=workload,
                                           learn=self.config.learn, received=received)
            for (index, record, event, present), verdict in zip(items, verdicts, strict=True):
                enrich(record, event, verdict, present)
                if verdict.vector.shape == (embeddings.shape[1],):
                    embeddings[index] = verdict.vector
                severities[verdict.severity] += 1
        return Outcome(embeddings, dict(kinds), dict(severities), forged=forged, unscored=dict(unscored),
                       overflow_events=self.engine.overflow_events[tenant] - overflow_before)

    def baselines(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's baselines this engine holds in memory (those used since start), by workload."""
        engine = self.engine
        summaries = []
        for baseline in engine.store.resident():
            if baseline.tenant != tenant:
                continue
            with baseline.lock:
                size = len(baseline)
                first_seen = baseline.first_seen[:size]
                summary = {
                    "workload": baseline.workload, "patterns": size,
                    "trusted_patterns": int(baseline.trusted[:size].sum()),
                    "events_learned": baseline.events_learned,
                    "oldest_pattern": float(first_seen.min()) if size else None,
                    "newest_pattern": float(first_seen.max()) if size else None,
                }
            held = engine.held_back(tenant, baseline.workload)
            thresholds = engine.config.thresholds.for_workload(baseline.workload)
            warmup = engine.config.learning.warmup_events
            summary.update({
                "state": "learning" if baseline.events_learned < warmup else "detecting",
                "warmup_events": warmup,
                "thresholds": {"warn": thresholds.warn, "alert": thresholds.alert},
                "recurrence_windows": engine.config.learning.recurrence_windows,
                "held_back_total": len(held),
                "held_back": [{"command_line": p.example, "executable": p.executable, "first_seen": p.first_seen,
                               "windows_seen": len(p.windows), "occurrences": p.occurrences}
                              for p in held[-MAX_HELD_BACK_SHOWN:][::-1]],
            })
            summaries.append(summary)
        return sorted(summaries, key=lambda item: item["workload"])

    def has_baseline(self, tenant: str, workload: str) -> bool:
        return self.engine.store.has(tenant, _bounded(workload))

    def acknowledge(self, tenant: str, workload: str, attributes: dict[str, Any]) -> None:
        """Learns the event of a stored record now (a person said it is normal), releasing it from hold-back."""
        self.engine.acknowledge(event_from_attributes(attributes), tenant, _bounded(workload))

    def _workload(self, resource: dict[str, Any]) -> str:
        return resource_workload(resource, self.config.workload_key)


def resource_workload(resource: dict[str, Any], workload_key: list[str]) -> str:
    """The workload a resource's attributes name (the first of `workload_key` present), or "" (each record's host
    then, or the default workload)."""
    for key in workload_key:
        value = resource.get(key)
        if value not in (None, ""):
            return _bounded(str(value))
    return ""


def _bounded(workload: str) -> str:
    return workload[:MAX_WORKLOAD_CHARS]

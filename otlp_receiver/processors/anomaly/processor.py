"""The `anomaly` processor: scores every process event of a batch and writes the verdict into its record.

It runs a `BatchScorer` (`scorer.py`) in this process, or (`separate_process: true`, the default) in
`processes` child processes (`worker.py`, `shards.py`), so scoring uses other cores while this one receives,
spools and exports. The feature vectors go to `LogBatch.embeddings` for the ClickHouse `Embedding` column.
It is a `BaselineKeeper`: the query extension's page shows its baselines and acknowledges events into them.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otlp_receiver.component import LogBatch
from otlp_receiver.processors.anomaly.config import Config
from otlp_receiver.processors.anomaly.isolate import Result, merge, single_records, unscored_outcome
from otlp_receiver.processors.anomaly.scorer import BatchScorer, Outcome
from otlp_receiver.processors.anomaly.shards import ShardedScoring
from otlp_receiver.telemetry import Telemetry
from scoring.engine import AnomalyEngine

log = logging.getLogger(__name__)


class AnomalyProcessor:

    def __init__(self, config: Config, name: str = "anomaly", telemetry: Telemetry | None = None) -> None:
        telemetry = telemetry or Telemetry()
        self.config = config
        self.name = name
        self.scorer: BatchScorer | None = None
        self.worker: ShardedScoring | None = None
        self._kinds = telemetry.counter("procsight_normalized_log_records_total",
                                        "Records seen by the anomaly processor, by recognised shape "
                                        "(unrecognised ones pass through unscored)")
        self._scored = telemetry.counter("procsight_scored_log_records_total", "Records scored, by severity")
        self._forged = telemetry.counter("procsight_forged_verdicts_total",
                                         "Unscored records that arrived with verdict attributes (removed)")
        self._overflow = telemetry.counter("procsight_workload_overflow_log_records_total",
                                           "Records whose workload was refused a baseline (the tenant reached "
                                           "max_workloads_per_tenant), scored in the tenant's _overflow baseline")
        self._unscored = telemetry.counter("procsight_unscored_log_records_total",
                                           "Records that could not be scored (marked anomaly_severity=unscored), "
                                           "by reason")

    def start(self) -> None:
        if self.config.separate_process:
            self.worker = ShardedScoring(self.config, self.name)
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
        try:
            outcome = self._score(batch)
        except Exception as exc:  # the scoring process cannot even start: unscored, and saying so
            log.exception("%s: scoring is unavailable; batch %s is marked unscored", self.name, batch.batch_id)
            outcome = unscored_outcome(batch.logs, f"scoring unavailable ({type(exc).__name__})")
        for kind, count in outcome.kinds.items():
            self._kinds.inc(count, kind=kind)
        for severity, count in outcome.severities.items():
            self._scored.inc(count, severity=severity)
        if outcome.forged:
            self._forged.inc(outcome.forged)
        for reason, count in outcome.unscored.items():
            self._unscored.inc(count, reason=_reason_label(reason))
        if outcome.overflow_events:
            self._overflow.inc(outcome.overflow_events, tenant=batch.tenant)
        if outcome.embeddings is not None:
            batch.embeddings = outcome.embeddings
        return batch

    def baselines(self, tenant: str) -> list[dict[str, Any]]:
        if self.worker is not None:
            return self.worker.baselines(tenant)
        assert self.scorer is not None, "start() first"
        return self.scorer.baselines(tenant)

    def acknowledge(self, tenant: str, workload: str, attributes: dict[str, Any]) -> None:
        if self.worker is not None:
            self.worker.acknowledge(tenant, workload, attributes)
        else:
            assert self.scorer is not None, "start() first"
            self.scorer.acknowledge(tenant, workload, attributes)

    def _score(self, batch: LogBatch) -> Outcome:
        if self.worker is not None:
            scored, outcome = self.worker.score(batch.serialized(), batch.tenant)
            batch.set_wire(scored)
            return outcome
        assert self.scorer is not None, "start() first"
        try:
            return self.scorer.score(batch.logs, batch.tenant)
        except Exception:
            # In this process there is no time bound (a thread cannot be stopped), but failures are isolated.
            log.exception("%s: scoring batch %s failed; scoring its records one by one", self.name, batch.batch_id)
            return merge(batch.logs, [self._score_alone(single, batch.tenant) for single in single_records(batch.logs)])

    def _score_alone(self, single: ExportLogsServiceRequest, tenant: str) -> Result:
        assert self.scorer is not None
        try:
            return single, self.scorer.score(single, tenant)
        except Exception as exc:
            return f"scoring failed on this record alone ({type(exc).__name__})"


def _reason_label(reason: str) -> str:
    """A bounded metric label from a reason text ("timed out after 5.0s" -> "timed_out")."""
    for label in ("invalid", "does not score", "timed out", "ran out of scoring time", "died", "unavailable", "failed"):
        if label in reason:
            return label.replace(" ", "_")
    return "other"

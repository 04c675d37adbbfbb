"""The batch processor's settings drive how spooled requests are grouped into batches."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.component import LogBatch, TooManyPartitions
from otlp_receiver.pipeline import Pipeline
from otlp_receiver.processors.batch import processor
from otlp_receiver.processors.batch.config import Config
from otlp_receiver.processors.batch.processor import BatchProcessor
from otlp_receiver.spool import Spool
from otlp_receiver.telemetry import Telemetry

TESTDATA = Path(__file__).parent / "testdata"


def payload(records: int) -> bytes:
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    for index in range(records):
        scope.log_records.add().body.string_value = f"r{index}"
    return request.SerializeToString()


def groups_of(spool: Spool, config: Config | None) -> list[tuple[int, int]]:
    pipeline = Pipeline("logs", spool, [], [], Telemetry(), batcher=BatchProcessor(config) if config else None)
    found = []
    while True:
        first, last, entries = pipeline._collect()
        if not entries:
            return found
        found.append((first, last))


def test_groups_reach_send_batch_size_in_whole_requests(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for _ in range(7):
        spool.append(payload(2), "default", 2)
    config = decode(Config, {"timeout": "1s", "send_batch_size": 5})
    assert groups_of(spool, config) == [(1, 3), (4, 6), (7, 7)]  # 6, 6 and the 2 left after the timeout


def test_a_backlog_of_large_requests_is_batched_by_bytes_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """send_batch_size counts records: a backlog of large ones (8,192 of 1 MiB: 8 GiB) was read into memory as
    one batch, and tripped the memory limiter for every sender."""
    monkeypatch.setattr(processor, "MAX_BATCH_BYTES", 2000)
    spool = Spool(tmp_path)
    large = ExportLogsServiceRequest()
    large.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "x" * 700
    for _ in range(5):
        spool.append(large.SerializeToString(), "default", 1)
    spool.append(payload(1), "default", 1)
    config = decode(Config, {"timeout": "1s", "send_batch_size": 8192})
    assert groups_of(spool, config) == [(1, 3), (4, 6)]  # 3 of ~700 bytes reach 2,000; the rest after the timeout


def test_timeout_closes_a_small_batch(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(payload(1), "default", 1)
    config = decode(Config, {"timeout": "100ms", "send_batch_size": 1000})
    started = time.monotonic()
    assert groups_of(spool, config) == [(1, 1)]
    assert time.monotonic() - started >= 0.1


def test_the_timeout_runs_from_when_the_first_request_was_received(tmp_path: Path) -> None:
    """Requests that waited in the spool (the pipeline was busy) past the timeout are not held again, and
    what is already spooled still joins their batch."""
    spool = Spool(tmp_path)
    for _ in range(3):
        spool.append(payload(1), "default", 1)
    config = decode(Config, {"timeout": "400ms", "send_batch_size": 1000})
    time.sleep(0.4)
    started = time.monotonic()
    pipeline = Pipeline("logs", spool, [], [], Telemetry(), batcher=BatchProcessor(config))
    first, last, _ = pipeline._collect()
    assert (first, last) == (1, 3)
    assert time.monotonic() - started < 0.2  # was held another 400 ms


def test_recorded_groups_are_formed_again_after_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for _ in range(6):
        spool.append(payload(1), "default", 1)
    spool.form_group(1, 4)
    spool.close()
    reopened = Spool(tmp_path)
    config = decode(Config, {"timeout": "10ms", "send_batch_size": 2})
    assert groups_of(reopened, config) == [(1, 4), (5, 6)]


def test_without_a_batch_processor_each_request_is_a_batch(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for _ in range(3):
        spool.append(payload(1), "default", 1)
    assert groups_of(spool, None) == [(1, 1), (2, 2), (3, 3)]


def test_send_batch_size_zero_sends_every_request_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for _ in range(3):
        spool.append(payload(1), "default", 1)
    assert groups_of(spool, decode(Config, {"send_batch_size": 0, "timeout": "1s"})) == [(1, 1), (2, 2), (3, 3)]


def test_send_batch_max_size_splits_in_record_order_with_stable_ids() -> None:
    request = ExportLogsServiceRequest()
    for resource in ("a", "b"):
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.add(key="host.name").value.string_value = resource
        for scope in ("s1", "s2"):
            scope_logs = resource_logs.scope_logs.add()
            scope_logs.scope.name = scope
            for index in range(3):
                scope_logs.log_records.add().body.string_value = f"{resource}-{scope}-{index}"
    processor = BatchProcessor(decode(Config, {"send_batch_size": 4, "send_batch_max_size": 5}))
    batch = LogBatch(logs=request, tenant="t", batch_id="g", metadata={"x": ["1"]})
    parts = processor.split(batch)
    assert [p.batch_id for p in parts] == ["g/0", "g/1", "g/2"]
    assert [p.record_count() for p in parts] == [5, 5, 2]
    flat = [(rl.resource.attributes[0].value.string_value, sl.scope.name, record.body.string_value)
            for p in parts for rl in p.logs.resource_logs for sl in rl.scope_logs for record in sl.log_records]
    assert [body for _, _, body in flat] == [f"{r}-{s}-{i}" for r in "ab" for s in ("s1", "s2") for i in range(3)]
    assert all(body.startswith(f"{resource}-{scope}-") for resource, scope, body in flat)  # resource and scope kept
    assert all(p.tenant == "t" and p.metadata == {"x": ["1"]} for p in parts)
    assert BatchProcessor(decode(Config, {})).split(batch) == [batch]  # no send_batch_max_size: never split


def test_partitions_by_metadata_keys_up_to_the_cardinality_limit() -> None:
    processor = BatchProcessor(decode(Config, {"metadata_keys": ["X-Tenant", "region"],
                                               "metadata_cardinality_limit": 2}))
    assert processor.partition({"x-tenant": ["acme"], "authorization": ["Bearer secret"]}) == {
        "x-tenant": ["acme"], "region": []}  # only the keys asked for: nothing else goes to disk
    assert processor.partition({"x-tenant": ["acme"], "region": ["eu"]}) == {"x-tenant": ["acme"], "region": ["eu"]}
    assert processor.partition({"x-tenant": ["acme"]}) == {"x-tenant": ["acme"], "region": []}  # seen before
    with pytest.raises(TooManyPartitions, match="too many batcher metadata-value combinations"):
        processor.partition({"x-tenant": ["globex"]})
    assert BatchProcessor(decode(Config, {})).partition({"x-tenant": ["acme"]}) == {}


def test_invalid_settings() -> None:
    with pytest.raises(ConfigError, match="send_batch_max_size"):
        decode(Config, {"send_batch_size": 100, "send_batch_max_size": 10})
    with pytest.raises(ConfigError, match="timeout"):
        decode(Config, {"timeout": "soon"})
    with pytest.raises(ConfigError, match=r"metadata_keys\[1\]: duplicate entry 'x-tenant'"):
        decode(Config, {"metadata_keys": ["X-Tenant", "x-tenant"]})
    with pytest.raises(ConfigError, match="unsigned 32-bit"):
        decode(Config, {"metadata_cardinality_limit": -1})


def test_yaml_testdata_decodes() -> None:
    processors = load_yaml(TESTDATA / "config.yaml")["processors"]
    assert decode(Config, processors["batch"]) == Config()
    big = decode(Config, processors["batch/big"], "processors.batch/big")
    assert (big.timeout, big.send_batch_size, big.send_batch_max_size) == (1.0, 10_000, 20_000)
    keyed = decode(Config, processors["batch/2"], "processors.batch/2")
    assert (keyed.metadata_keys, keyed.metadata_cardinality_limit) == (["tenant_id"], 10)

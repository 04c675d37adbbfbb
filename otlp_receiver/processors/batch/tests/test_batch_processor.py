"""The batch processor's settings drive how spooled requests are grouped into batches."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.pipeline import Pipeline
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


def test_timeout_closes_a_small_batch(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(payload(1), "default", 1)
    config = decode(Config, {"timeout": "100ms", "send_batch_size": 1000})
    started = time.monotonic()
    assert groups_of(spool, config) == [(1, 1)]
    assert time.monotonic() - started >= 0.1


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


def test_invalid_settings() -> None:
    with pytest.raises(ConfigError, match="send_batch_max_size"):
        decode(Config, {"send_batch_size": 100, "send_batch_max_size": 10})
    with pytest.raises(ConfigError, match="timeout"):
        decode(Config, {"timeout": "soon"})


def test_yaml_testdata_decodes() -> None:
    processors = load_yaml(TESTDATA / "config.yaml")["processors"]
    assert decode(Config, processors["batch"]) == Config()
    big = decode(Config, processors["batch/big"], "processors.batch/big")
    assert (big.timeout, big.send_batch_size, big.send_batch_max_size) == (1.0, 10_000, 20_000)

"""The debug exporter logs what the pipeline delivers, at the chosen verbosity and sampling."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.component import LogBatch
from otlp_receiver.exporters.debug.config import Config
from otlp_receiver.exporters.debug.exporter import DebugExporter

TESTDATA = Path(__file__).parent / "testdata"


def batch() -> LogBatch:
    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add(severity_text="WARN")
    record.body.string_value = "sh -c id"
    score = record.attributes.add(key="anomaly_score")
    score.value.double_value = 0.7
    return LogBatch(request, "team-a", "s-1-1")


@pytest.mark.parametrize(("verbosity", "expected"), [
    ("basic", ["batch s-1-1 tenant team-a: 1 log records"]),
    ("normal", ["batch s-1-1", "'sh -c id' score=0.7"]),
    ("detailed", ["batch s-1-1", "record s-1-1:0", 'key: "anomaly_score"']),
])
def test_verbosity(caplog: pytest.LogCaptureFixture, verbosity: str, expected: list[str]) -> None:
    caplog.set_level(logging.INFO, logger="procsight.debug")
    DebugExporter(decode(Config, {"verbosity": verbosity})).export(batch())
    text = "\n".join(r.getMessage() for r in caplog.records)
    for fragment in expected:
        assert fragment in text


def test_sampling_logs_the_first_then_one_in_n(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="procsight.debug")
    exporter = DebugExporter(decode(Config, {"sampling_initial": 2, "sampling_thereafter": 100}))
    for _ in range(50):
        exporter.export(batch())
    assert 2 <= len(caplog.records) <= 4  # 2 initial, plus at most one more per second boundary


def test_unknown_verbosity() -> None:
    with pytest.raises(ConfigError, match="verbosity"):
        decode(Config, {"verbosity": "loud"})


def test_yaml_testdata_decodes() -> None:
    exporters = load_yaml(TESTDATA / "config.yaml")["exporters"]
    assert decode(Config, exporters["debug"]) == Config()
    detailed = decode(Config, exporters["debug/detailed"], "exporters.debug/detailed")
    assert (detailed.verbosity, detailed.sampling_initial, detailed.sampling_thereafter) == ("detailed", 10, 5)

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.component import CreateSettings, LogBatch, PermanentError, RetryableError
from otlp_receiver.exporterhelper import QueuedExporter
from otlp_receiver.exporters.otlpgrpc import factory
from otlp_receiver.telemetry import Telemetry
from testing.otlp_sink import Failure, OtlpSink

TESTDATA = Path(__file__).parent / "testdata"


def make_batch(batch_id: str = "1", count: int = 3) -> LogBatch:
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    for i in range(count):
        record = records.add()
        record.body.string_value = f"cmd {i} " + "x" * 1000
        attribute = record.attributes.add()
        attribute.key, attribute.value.double_value = "anomaly_score", 0.5
    return LogBatch(logs=request, batch_id=batch_id)


@pytest.fixture
def sink():
    with OtlpSink() as running:
        yield running


def start_exporter(endpoint: str, telemetry: Telemetry | None = None, **overrides: object):
    config = decode(factory.Config, {"endpoint": endpoint, "tls": {"insecure": True}, "timeout": "2s", **overrides})
    exporter = factory.create(config, CreateSettings("otlp_grpc/forward", Path("."), telemetry or Telemetry()))
    exporter.start()
    return exporter


def test_yaml_testdata_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARD_TOKEN", "abc")
    config = decode(factory.Config, load_yaml(TESTDATA / "config.yaml"), source="config.yaml")
    assert (config.target, config.plaintext, config.timeout) == ("collector.example:4317", True, 2.0)
    assert config.headers == {"X-Tenant": "team-a", "authorization": "Bearer abc"}
    assert factory.TYPE == "otlp_grpc"


@pytest.mark.parametrize(("data", "message"), [
    ({}, "endpoint: required"),
    ({"endpoint": "collector"}, "needs a port"),
    ({"endpoint": "c:4317", "compression": "zstd"}, "compression"),
    ({"endpoint": "c:4317", "tls": {"insecure": "yes"}}, "expected a boolean"),
    ({"endpoint": "c:4317", "tls": {"ca_file": "/nonexistent/ca.pem"}}, "no such file"),
    ({"endpoint": "c:4317", "balancer_name": "round_robin"}, "unknown setting 'balancer_name'"),
])
def test_invalid_config_is_a_clear_error(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        decode(factory.Config, data, "exporters.otlp_grpc")


def test_forwards_records_byte_for_byte_with_headers(sink: OtlpSink) -> None:
    exporter = start_exporter(sink.grpc_endpoint, headers={"X-Tenant": "team-a"})
    batch = make_batch()
    try:
        exporter.export(batch)
    finally:
        exporter.shutdown()
    (received,) = sink.received
    assert received.request == batch.logs
    assert received.headers["x-tenant"] == "team-a"


def test_plaintext_via_http_scheme_without_compression(sink: OtlpSink) -> None:
    exporter = start_exporter(f"http://{sink.grpc_endpoint}", tls={}, compression="none")
    try:
        exporter.export(make_batch())
    finally:
        exporter.shutdown()
    assert len(sink.records()) == 3


@pytest.mark.parametrize(("failure", "expected", "retry_after"), [
    (Failure(grpc.StatusCode.UNAVAILABLE), RetryableError, None),
    (Failure(grpc.StatusCode.DEADLINE_EXCEEDED), RetryableError, None),
    (Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=2.5), RetryableError, 2.5),
    (Failure(grpc.StatusCode.RESOURCE_EXHAUSTED), PermanentError, None),  # no RetryInfo: a hard limit
    (Failure(grpc.StatusCode.INVALID_ARGUMENT), PermanentError, None),
    (Failure(grpc.StatusCode.UNAUTHENTICATED), PermanentError, None),
])
def test_status_codes_map_to_the_otlp_retry_rules(sink: OtlpSink, failure: Failure, expected: type,
                                                  retry_after: float | None) -> None:
    sink.failures.append(failure)
    exporter = start_exporter(sink.grpc_endpoint)
    try:
        with pytest.raises(expected, match=failure.grpc_code.name) as caught:
            exporter.export(make_batch())
    finally:
        exporter.shutdown()
    assert getattr(caught.value, "retry_after", None) == retry_after


def test_unreachable_endpoint_is_retryable(sink: OtlpSink) -> None:
    exporter = start_exporter("127.0.0.1:1", timeout="500ms")
    try:
        with pytest.raises(RetryableError, match=r"UNAVAILABLE|DEADLINE_EXCEEDED"):
            exporter.export(make_batch())
    finally:
        exporter.shutdown()


def test_partial_success_is_counted_not_retried(sink: OtlpSink) -> None:
    sink.partial_rejections = 2
    telemetry = Telemetry()
    exporter = start_exporter(sink.grpc_endpoint, telemetry)
    try:
        exporter.export(make_batch())
    finally:
        exporter.shutdown()
    assert len(sink.received) == 1
    rejected = telemetry.counter("procsight_exporter_rejected_log_records_total", "")
    assert rejected.value(exporter="otlp_grpc/forward") == 2


def test_queued_export_retries_through_throttling(sink: OtlpSink) -> None:
    sink.failures.extend([Failure(grpc.StatusCode.UNAVAILABLE),
                          Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=0.05)])
    telemetry = Telemetry()
    exporter = start_exporter(sink.grpc_endpoint, telemetry,
                              retry_on_failure={"initial_interval": "10ms", "max_interval": "50ms"})
    queued = QueuedExporter(exporter, exporter.config.sending_queue, exporter.config.retry_on_failure, telemetry)
    finished = threading.Event()
    outcome: list[bool] = []
    queued.start()
    queued.submit(make_batch("7"), lambda batch, ok: (outcome.append(ok), finished.set()))
    assert finished.wait(10)
    queued.shutdown()
    assert outcome == [True] and len(sink.received) == 1

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
from otlp_receiver.exporters.otlpgrpc.exporter import channel_options
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
    upstream = decode(factory.Config, load_yaml(TESTDATA / "upstream.yaml"), source="upstream.yaml")
    assert upstream.headers == {"x-tenant": "acme", "x-scope": "logs"}  # the list form
    assert (upstream.balancer_name, upstream.wait_for_ready, upstream.keepalive.time) == ("pick_first", True, 20.0)
    options = dict(channel_options(upstream))
    assert options["grpc.keepalive_time_ms"] == 20000 and options["grpc.lb_policy_name"] == "pick_first"
    assert options["grpc.default_authority"] == "collector.internal"
    assert options["grpc.http2.write_buffer_size"] == 524288  # the otlp exporter's default
    assert options["grpc.primary_user_agent"] == "procsight-forwarder"


@pytest.mark.parametrize(("data", "message"), [
    ({}, 'requires a non-empty "endpoint"'),
    ({"endpoint": "collector"}, "needs a port"),
    ({"endpoint": "collector:otlp"}, 'invalid port "otlp"'),
    ({"endpoint": "collector:99999"}, "port out of range 0-65535"),
    ({"endpoint": "[::1:4317"}, "invalid ipv6 url"),
    ({"endpoint": "unix://"}, "unix socket path cannot be empty"),
    ({"endpoint": "c:4317", "compression": "zstd"}, "grpcio compresses gRPC messages with gzip only"),
    ({"endpoint": "c:4317", "compression": "br"}, "unsupported compression type"),
    ({"endpoint": "c:4317", "tls": {"insecure": "yes"}}, "expected a boolean"),
    ({"endpoint": "c:4317", "tls": {"ca_file": "/nonexistent/ca.pem"}}, "no such file"),
    ({"endpoint": "c:4317", "tls": {"insecure_skip_verify": True}}, "grpcio always verifies"),
    ({"endpoint": "c:4317", "tls": {"max_version": "1.2"}}, "grpcio always offers TLS 1.2 and 1.3"),
    ({"endpoint": "c:4317", "balancer_name": "least_request"}, "invalid balancer_name"),
    ({"endpoint": "c:4317", "tls": {"insecure": True}, "auth": {"authenticator": "bearertokenauth"}},
     "sends credentials over TLS only"),
    ({"endpoint": "c:4317", "headers": [{"name": "a", "value": "1"}, {"name": "A", "value": "2"}]}, "duplicate"),
    ({"endpoint": "c:4317", "sending_queue": {"batch": {"min_size": 10}}}, "batch processor"),
])
def test_invalid_config_is_a_clear_error(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        decode(factory.Config, data, "exporters.otlp_grpc")


def test_endpoint_forms(sink: OtlpSink) -> None:
    for endpoint in (f"http://{sink.grpc_endpoint}", f"dns:///{sink.grpc_endpoint}",
                     f"passthrough:///{sink.grpc_endpoint}"):
        exporter = start_exporter(endpoint, compression="none", wait_for_ready=True)
        try:
            exporter.export(make_batch())
        finally:
            exporter.shutdown()
    assert len(sink.records()) == 9


def test_http_prefix_does_not_mean_plain_text(sink: OtlpSink) -> None:
    """As in the Collector, only tls.insecure makes a gRPC client speak plain text; http:// is stripped."""
    exporter = start_exporter(f"http://{sink.grpc_endpoint}", tls={}, timeout="1s")
    try:
        with pytest.raises(RetryableError, match="UNAVAILABLE"):
            exporter.export(make_batch())
    finally:
        exporter.shutdown()
    assert sink.records() == []


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

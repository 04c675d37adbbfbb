"""The otlp_grpc and otlp_http exporters over TLS, against the test OTLP endpoint serving a self-signed
certificate: trusted through `tls.ca_file`, refused without it, accepted with `insecure_skip_verify`."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import decode
from otlp_receiver.component import CreateSettings, LogBatch, RetryableError
from otlp_receiver.exporters.otlpgrpc import factory as grpc_factory
from otlp_receiver.exporters.otlphttp import factory as http_factory
from otlp_receiver.telemetry import Telemetry
from testing.otlp_sink import OtlpSink


def batch() -> LogBatch:
    request = ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "over tls"
    return LogBatch(logs=request, batch_id="1")


def export_with(factory, settings: dict) -> None:  # type: ignore[no-untyped-def]
    exporter = factory.create(decode(factory.Config, settings), CreateSettings(factory.TYPE, Path("."), Telemetry()))
    exporter.start()
    try:
        exporter.export(batch())
    finally:
        exporter.shutdown()


@pytest.fixture
def tls_sink(self_signed_cert: tuple[Path, Path]):
    with OtlpSink(tls=self_signed_cert) as sink:
        yield sink


def test_grpc_trusts_the_configured_ca(tls_sink: OtlpSink, self_signed_cert: tuple[Path, Path]) -> None:
    export_with(grpc_factory, {"endpoint": f"localhost:{tls_sink.grpc_port}",
                               "tls": {"ca_file": str(self_signed_cert[0])}})
    assert [r.body.string_value for r in tls_sink.records()] == ["over tls"]


def test_grpc_refuses_an_unknown_certificate(tls_sink: OtlpSink) -> None:
    with pytest.raises(RetryableError, match="UNAVAILABLE"):
        export_with(grpc_factory, {"endpoint": f"localhost:{tls_sink.grpc_port}", "timeout": "2s"})
    assert tls_sink.records() == []


def test_http_trusts_the_configured_ca(tls_sink: OtlpSink, self_signed_cert: tuple[Path, Path]) -> None:
    export_with(http_factory, {"endpoint": tls_sink.http_url, "tls": {"ca_file": str(self_signed_cert[0])}})
    assert [r.body.string_value for r in tls_sink.records()] == ["over tls"]


def test_http_refuses_an_unknown_certificate_unless_told_to_skip(tls_sink: OtlpSink) -> None:
    with pytest.raises(RetryableError, match="CERTIFICATE_VERIFY_FAILED"):
        export_with(http_factory, {"endpoint": tls_sink.http_url, "timeout": "2s"})
    assert tls_sink.records() == []
    export_with(http_factory, {"endpoint": tls_sink.http_url, "tls": {"insecure_skip_verify": True}})
    assert len(tls_sink.records()) == 1

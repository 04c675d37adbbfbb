from __future__ import annotations

import json
from email.utils import formatdate
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.component import CreateSettings, LogBatch, PermanentError, RetryableError
from otlp_receiver.exporters.otlphttp import factory
from otlp_receiver.exporters.otlphttp.exporter import retry_after_seconds, to_otlp_json
from otlp_receiver.telemetry import Telemetry
from testing import redirect_trap
from testing.otlp_sink import Failure, OtlpSink

TESTDATA = Path(__file__).parent / "testdata"


def make_batch(count: int = 3) -> LogBatch:
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    for i in range(count):
        record = records.add()
        record.time_unix_nano = 1_700_000_000_000_000_001
        record.severity_number = 17
        record.trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
        record.span_id = bytes.fromhex("eee19b7ec3c1b174")
        record.body.string_value = f"bash -c 'echo {i}' \u00e9\x00"
        attribute = record.attributes.add()
        attribute.key, attribute.value.int_value = "process.pid", 2**62 + i
    return LogBatch(logs=request, batch_id="1")


@pytest.fixture
def sink():
    with OtlpSink() as running:
        yield running


def start_exporter(endpoint: str, telemetry: Telemetry | None = None, **overrides: object):
    config = decode(factory.Config, {"endpoint": endpoint, "timeout": "2s", **overrides})
    exporter = factory.create(config, CreateSettings("otlp_http", Path("."), telemetry or Telemetry()))
    exporter.start()
    return exporter


def test_yaml_testdata_decodes() -> None:
    config = decode(factory.Config, load_yaml(TESTDATA / "config.yaml"), source="config.yaml")
    assert config.url == "https://collector.example:4318/v1/logs"
    assert (config.encoding, config.timeout, config.sending_queue.queue_size) == ("json", 10.0, 50)
    assert config.headers["Authorization"].startswith("Bearer ")
    assert factory.TYPE == "otlp_http"
    upstream = decode(factory.Config, load_yaml(TESTDATA / "upstream.yaml"), source="upstream.yaml")
    assert upstream.url == "https://example.com:4318/v1/logs"
    assert (upstream.compression, upstream.compression_params.level) == ("zstd", 3)
    assert upstream.cookies is not None and factory.Config().cookies is None  # cookies: {enabled: true} switches on
    assert upstream.headers == {"x-tenant": "acme"}


@pytest.mark.parametrize(("data", "message"), [
    ({}, "endpoint: required"),
    ({"endpoint": "collector:4318"}, "not an http"),
    # A mistyped endpoint ran, and failed at every export (or raised a ValueError at start).
    ({"endpoint": "http://c:99999"}, "endpoint: port out of range 0-65535"),
    ({"endpoint": "http://[::1:4318"}, "endpoint: invalid ipv6 url"),
    ({"logs_endpoint": "http://c:4318/v1/logs\r\nInjected: 1"}, "logs_endpoint: a space or control character"),
    ({"endpoint": "http://c:4318", "encoding": "avro"}, "invalid encoding type"),
    ({"endpoint": "http://c:4318", "headers": {"X-A": "b\r\nInjected: 1"}}, "not a valid header"),
    ({"endpoint": "http://c:4318", "compression": "brotli"}, "unsupported compression type"),
    ({"endpoint": "http://c:4318", "compression": "lz4", "compression_params": {"level": 3}}, "takes no level"),
    ({"endpoint": "http://c:4318", "compression_params": {"level": 12}}, "gzip takes -2"),
    ({"endpoint": "http://c:4318", "proxy_url": "socks5://proxy:1080"}, "proxy_url"),
    ({"endpoint": "http://c:4318", "middlewares": [{"id": "x"}]}, "no middleware"),
])
def test_invalid_config_is_a_clear_error(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        decode(factory.Config, data, "exporters.otlp_http")


@pytest.mark.parametrize("compression", ["zlib", "deflate", "zstd", "lz4", "snappy", "x-snappy-framed"])
def test_every_compression_the_collector_offers(sink: OtlpSink, compression: str) -> None:
    exporter = start_exporter(sink.http_url, compression=compression)
    batch = make_batch()
    exporter.export(batch)
    (received,) = sink.received
    assert received.request == batch.logs and received.headers["content-encoding"] == compression


def test_gzip_levels_and_buffer_sizes(sink: OtlpSink) -> None:
    for level in (-2, 1, 9):
        start_exporter(sink.http_url, compression_params={"level": level}, read_buffer_size=1024,
                       write_buffer_size=64).export(make_batch())
    assert len(sink.received) == 3 and all(r.request == make_batch().logs for r in sink.received)


@pytest.mark.parametrize("encoding", ["proto", "json"])
@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_forwards_records_intact(sink: OtlpSink, encoding: str, compression: str) -> None:
    exporter = start_exporter(sink.http_url, encoding=encoding, compression=compression,
                              headers={"X-Scope-OrgID": "team-a"})
    batch = make_batch()
    exporter.export(batch)
    (received,) = sink.received
    assert received.request == batch.logs
    assert received.headers["x-scope-orgid"] == "team-a"
    assert received.headers["content-type"] == ("application/json" if encoding == "json" else "application/x-protobuf")
    assert received.headers.get("content-encoding") == ("gzip" if compression == "gzip" else None)


def test_otlp_json_uses_hex_ids_string_int64_and_camel_case() -> None:
    document = json.loads(to_otlp_json(make_batch(1).logs))
    record = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert record["traceId"] == "5b8efff798038103d269b633813fc60c" and record["spanId"] == "eee19b7ec3c1b174"
    assert record["timeUnixNano"] == "1700000000000000001" and record["severityNumber"] == 17
    assert record["attributes"][0]["value"] == {"intValue": str(2**62)}


def test_logs_endpoint_overrides_the_path(sink: OtlpSink) -> None:
    exporter = start_exporter("http://ignored.invalid:1", logs_endpoint=f"{sink.http_url}/otlp/v1/events")
    exporter.export(make_batch())
    assert len(sink.records()) == 3


@pytest.mark.parametrize(("status", "expected", "retry_after"), [
    (429, RetryableError, 3.0), (503, RetryableError, None), (502, RetryableError, None), (504, RetryableError, 7.0),
    (400, PermanentError, None), (401, PermanentError, None), (413, PermanentError, None), (500, PermanentError, None),
])
def test_status_codes_map_to_the_otlp_retry_rules(sink: OtlpSink, status: int, expected: type,
                                                  retry_after: float | None) -> None:
    sink.failures.append(Failure(http_status=status, retry_after=retry_after))
    exporter = start_exporter(sink.http_url)
    with pytest.raises(expected, match=f"HTTP {status}: scripted failure") as caught:
        exporter.export(make_batch())
    assert getattr(caught.value, "retry_after", None) == retry_after


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_the_records_wait(status: int) -> None:
    """urllib followed a 301/302/303 with a GET to the Location, carrying the configured headers and not the
    records, and read its 200 as delivery: the batch was committed, lost."""
    with redirect_trap(status) as (url, followed):
        exporter = start_exporter(url, headers={"X-Scope-OrgID": "team-a"})
        with pytest.raises(RetryableError, match=f"HTTP {status} \\(a redirect to {url}/followed: procsight does "
                                                 "not follow redirects"):
            exporter.export(make_batch())
    assert followed == []


def test_unreachable_endpoint_is_retryable() -> None:
    exporter = start_exporter("http://127.0.0.1:1")
    with pytest.raises(RetryableError, match="unreachable"):
        exporter.export(make_batch())


def test_partial_success_is_counted_not_retried(sink: OtlpSink) -> None:
    sink.partial_rejections = 1
    telemetry = Telemetry()
    start_exporter(sink.http_url, telemetry).export(make_batch())
    rejected = telemetry.counter("procsight_exporter_rejected_log_records_total", "")
    assert rejected.value(exporter="otlp_http") == 1 and len(sink.received) == 1


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(formatdate(1_000_030, usegmt=True), now=1_000_000) == pytest.approx(30.0)
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None

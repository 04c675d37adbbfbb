"""The hand-written wire encoding decodes to what the official protobuf classes would build."""

from __future__ import annotations

from random import Random

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core.otlpwire import count_log_records, count_parts, field, log_attribute


def test_attributes_of_every_value_type_decode_as_protobuf_builds_them():
    values = {"s": "näive \x00 ctl", "t": True, "f": False, "i": 1 << 40, "neg": -7, "d": 0.25,
              "arr": ["a", "b"], "big": "x" * 20_000}
    record = LogRecord.FromString(b"".join(log_attribute(k, v) for k, v in values.items()))
    decoded = {kv.key: kv.value for kv in record.attributes}
    assert decoded["s"].string_value == "näive \x00 ctl"
    assert decoded["t"].bool_value is True and decoded["f"].HasField("bool_value")
    assert decoded["i"].int_value == 1 << 40 and decoded["neg"].int_value == -7
    assert decoded["d"].double_value == 0.25
    assert [v.string_value for v in decoded["arr"].array_value.values] == ["a", "b"]
    assert decoded["big"].string_value == "x" * 20_000


def test_lone_surrogates_become_valid_utf8():
    record = LogRecord.FromString(log_attribute("k", "bad \ud800 end"))
    assert record.attributes[0].value.string_value == "bad \\ud800 end"


def _request(*scopes: int) -> bytes:
    request = ExportLogsServiceRequest()
    for index, count in enumerate(scopes):
        resource_logs = request.resource_logs.add(schema_url=f"r{index}")
        resource_logs.resource.attributes.add(key="host.name").value.string_value = f"h{index}"
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = "s"
        for number in range(count):
            record = scope_logs.log_records.add(time_unix_nano=number + 1, severity_number=9)
            record.body.string_value = "x" * number
    return request.SerializeToString()


def test_log_records_are_counted_from_the_bytes_as_protobuf_parses_them():
    assert count_log_records(b"") == 0
    assert count_log_records(_request(3, 0, 200)) == 203
    assert count_log_records(field(1, field(2, field(2, b"") * 1000))) == 1000  # empty records count too
    assert count_log_records(b"\x0a\x05\x12") is None  # a field running past the end
    assert count_log_records(b"\x0b") is None  # a group


def _messages(message) -> int:
    """Every message a parsed request holds, counted the slow way (what count_parts reads from bytes)."""
    inner = [item for field, value in message.ListFields() if field.message_type is not None
             for item in (value if field.is_repeated else [value])]
    return len(inner) + sum(_messages(item) for item in inner)


def test_messages_are_counted_from_the_bytes_as_the_parser_builds_them():
    data = _request(3, 0, 200)
    deep = ExportLogsServiceRequest.FromString(data)
    value = deep.resource_logs[0].scope_logs[0].log_records[1].attributes.add(key="k").value
    for _ in range(5):
        value = value.kvlist_value.values.add(key="n").value
    value.array_value.values.add().string_value = "leaf"
    wide_value = deep.resource_logs[0].scope_logs[0].log_records[2].attributes.add(key="w").value
    for name in "cdefg":  # a value's keys are not the record's attributes
        wide_value.kvlist_value.values.add(key=name)
    deep.resource_logs[0].resource.entity_refs.add(type="service", id_keys=["service.name"])
    for name in ("a", "b"):  # the widest holder: the scope's two, not the kvlist's five
        deep.resource_logs[1].scope_logs[0].scope.attributes.add(key=name)
    for request in (ExportLogsServiceRequest.FromString(data), deep):
        records = sum(len(scope.log_records) for resource in request.resource_logs for scope in resource.scope_logs)
        widest = max(len(holder.attributes) for resource in request.resource_logs
                     for holder in [resource.resource, *(scope.scope for scope in resource.scope_logs),
                                    *(record for scope in resource.scope_logs for record in scope.log_records)])
        assert count_parts(request.SerializeToString()) == (records, _messages(request), widest)
    assert widest == 2
    assert count_parts(b"\x0a\x00" * 10) == (0, 10, 0)  # empty ResourceLogs: no record, ten messages
    assert count_parts(b"\x0a\x05\x12") is None and count_parts(b"\x0b") is None


def test_every_cut_and_corruption_of_a_request_is_counted_or_refused_as_upb_would():
    data = _request(2, 5)
    random = Random(5)
    candidates = [data[:cut] for cut in range(len(data))]
    for _ in range(2000):
        mutated = bytearray(data)
        mutated[random.randrange(len(mutated))] = random.randrange(256)
        candidates.append(bytes(mutated))
    for candidate in candidates:
        counted = count_log_records(candidate)
        try:
            parsed = ExportLogsServiceRequest.FromString(candidate)
        except DecodeError:
            continue  # refused by the parser whatever the count said
        if counted is not None:
            assert counted == sum(len(s.log_records) for r in parsed.resource_logs for s in r.scope_logs)

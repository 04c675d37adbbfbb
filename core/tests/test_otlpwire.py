"""The hand-written wire encoding decodes to what the official protobuf classes would build."""

from __future__ import annotations

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core.otlpwire import log_attribute


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

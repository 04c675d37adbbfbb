"""LogBatch: records as a parsed request or as wire bytes, the same batch either way."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otlp_receiver.component import LogBatch


def _request(*bodies: str) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    for body in bodies:
        scope.log_records.add().body.string_value = body
    return request


def test_a_batch_of_wire_bytes_is_counted_and_passed_on_without_being_parsed() -> None:
    wire = _request("a", "b").SerializeToString() + _request("c").SerializeToString()  # two spooled requests
    batch = LogBatch(wire=wire, batch_id="7")
    assert batch.record_count() == 3 and batch.byte_size() == len(wire)
    assert batch.serialized() is wire  # the same bytes object: nothing was parsed or serialized again


def test_reading_logs_parses_once_and_changes_are_kept() -> None:
    batch = LogBatch(wire=_request("a", "b").SerializeToString())
    assert [record.body.string_value for _, _, record in batch.records()] == ["a", "b"]
    batch.logs.resource_logs[0].scope_logs[0].log_records[0].body.string_value = "changed"
    assert ExportLogsServiceRequest.FromString(batch.serialized()).resource_logs[0].scope_logs[0] \
        .log_records[0].body.string_value == "changed"
    assert batch.record_count() == 2 and batch.part(1, 2).record_count() == 1


def test_new_wire_bytes_replace_the_records() -> None:
    batch = LogBatch(logs=_request("a"))
    batch.set_wire(_request("x", "y").SerializeToString())
    assert [record.body.string_value for _, _, record in batch.records()] == ["x", "y"]


def test_a_batch_holds_logs_or_wire_bytes() -> None:
    with pytest.raises(TypeError):
        LogBatch()
    with pytest.raises(TypeError):
        LogBatch(logs=_request("a"), wire=b"")

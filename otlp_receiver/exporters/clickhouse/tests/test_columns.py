"""The Arrow rows read from a batch's wire bytes (columns.py) hold what the protobuf runtime reads from the same
records: every value kind, unknown fields, several resources and scopes, hostile times and severities, and the
evaluation data's records with verdicts. The expectation is written record by record with the runtime, the
way the Collector's exporter reads pdata."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core import semconv
from core.otlpwire import field, varint
from otlp_receiver.component import LogBatch
from otlp_receiver.exporters.clickhouse.columns import (
    _READER,
    batch_to_arrow,
    encode_serialized,
    rows_to_arrow,
    value_to_text,
)
from otlp_receiver.exporters.clickhouse.schema import INSERT_COLUMNS
from testing import EVAL_DIR, EVAL_MISSING
from testing.otlp_values import any_value, key_values

MAX_TIME_NS = 2**63 - 1


def expected_rows(batch: LogBatch) -> list[dict[str, Any]]:
    rows = []
    for ordinal, (resource, scope, record) in enumerate(batch.records()):
        resource_logs = next(r for r in batch.logs.resource_logs if r.resource is resource or r.resource == resource)
        scope_logs = next(s for r in batch.logs.resource_logs for s in r.scope_logs if s.scope == scope)
        resource_attributes = [(kv.key, value_to_text(kv.value)) for kv in resource.attributes]
        attributes = [kv for kv in record.attributes if kv.key != semconv.RECORD_ID]
        last = {kv.key: kv.value for kv in attributes}
        named = next((value_to_text(kv.value) for kv in attributes
                      if kv.key == semconv.EVENT_NAME and value_to_text(kv.value)), "")
        time_ns = record.time_unix_nano
        observed = record.observed_time_unix_nano
        rows.append({
            "Timestamp": time_ns if 0 < time_ns <= MAX_TIME_NS else observed if observed <= MAX_TIME_NS else 0,
            "TraceId": record.trace_id.hex(), "SpanId": record.span_id.hex(), "TraceFlags": record.flags & 0xFF,
            "SeverityText": record.severity_text, "SeverityNumber": record.severity_number & 0xFF,
            "ServiceName": next((v for k, v in resource_attributes if k == semconv.SERVICE_NAME), ""),
            "Body": value_to_text(record.body), "ResourceSchemaUrl": resource_logs.schema_url,
            "ResourceAttributes": resource_attributes, "ScopeSchemaUrl": scope_logs.schema_url,
            "ScopeName": scope.name, "ScopeVersion": scope.version,
            "ScopeAttributes": [(kv.key, value_to_text(kv.value)) for kv in scope.attributes],
            "LogAttributes": [(kv.key, value_to_text(kv.value)) for kv in attributes]
            + [(semconv.RECORD_ID, batch.record_id(ordinal))],
            "EventName": record.event_name or named,
            "AnomalyScore": score(last.get(semconv.ANOMALY_SCORE)),
            "AnomalySeverity": text(last.get(semconv.ANOMALY_SEVERITY)),
            "Workload": text(last.get(semconv.ANOMALY_WORKLOAD)), "TenantId": batch.tenant,
            "RecordId": batch.record_id(ordinal), "AnomalyIncident": text(last.get(semconv.ANOMALY_INCIDENT)),
            "AnomalyIncidentScore": score(last.get(semconv.ANOMALY_INCIDENT_SCORE)),
            "AnomalyTechniques": techniques(last.get(semconv.ANOMALY_TECHNIQUES)),
        })
    return rows


def text(value: AnyValue | None) -> str:
    return "" if value is None else value_to_text(value)


def score(value: AnyValue | None) -> float:
    if value is None:
        return 0.0
    if value.HasField("double_value"):
        number = value.double_value
    else:
        try:
            number = float(value_to_text(value))
        except ValueError:
            number = 0.0
    return float(np.float32(number))


def techniques(value: AnyValue | None) -> list[str]:
    if value is None:
        return []
    if value.HasField("array_value"):
        return [value_to_text(item) for item in value.array_value.values]
    return [value_to_text(value)] if value_to_text(value) else []


def table_rows(table: pa.Table) -> list[dict[str, Any]]:
    table = table.set_column(0, "Timestamp", table.column("Timestamp").cast(pa.int64()))
    rows = table.drop_columns(["Embedding"]).to_pylist()
    for row in rows:
        for name in ("ResourceAttributes", "ScopeAttributes", "LogAttributes"):
            row[name] = list(row[name])
    return rows


def assert_same_rows(batch: LogBatch) -> None:
    table = batch_to_arrow(batch)
    assert table.column_names == list(INSERT_COLUMNS)
    assert table_rows(table) == expected_rows(batch)
    parts = encode_serialized(batch.logs.SerializeToString(), batch.tenant, batch.batch_id, batch.embeddings, 10**6,
                              INSERT_COLUMNS, batch.record_id_prefix, batch.first_ordinal)
    assert pa.ipc.open_stream(parts[0]).read_all().equals(table)  # the encoder process builds the same table


def with_unknown_fields(message: Any, extra: bytes) -> Any:
    """The message as a newer sender's schema would write it: fields this schema does not know, kept by upb."""
    return type(message).FromString(message.SerializeToString() + extra)


def hostile_batch() -> LogBatch:
    request = ExportLogsServiceRequest()
    for resource_index in range(2):
        resource_logs = request.resource_logs.add(schema_url=f"https://schema/{resource_index}")
        resource_logs.resource.attributes.extend(key_values({"service.name": f"svc-{resource_index}",
                                                             "host.name": "h", "n": resource_index}))
        for scope_index in range(2):
            scope_logs = resource_logs.scope_logs.add(schema_url=f"scope-url-{scope_index}")
            scope_logs.scope.name, scope_logs.scope.version = f"scope-{scope_index}", "1.2"
            scope_logs.scope.attributes.extend(key_values({"scope.attr": [1, 2]}))
            records = scope_logs.log_records
            records.add(time_unix_nano=2**64 - 1, observed_time_unix_nano=5, severity_number=-3, flags=0x1FF,
                        trace_id=bytes(range(16)), span_id=bytes(8), severity_text="WARN")
            record = records.add(observed_time_unix_nano=2**64 - 1, event_name="")
            record.body.kvlist_value.values.extend(key_values({"a": {"b": [1.5, True, None]}}))
            record.attributes.extend([
                KeyValue(key=semconv.EVENT_NAME, value=AnyValue(string_value="")),
                KeyValue(key=semconv.EVENT_NAME, value=any_value("from.attribute")),
                KeyValue(key="bytes", value=AnyValue(bytes_value=b"\x00\xff")),
                KeyValue(key="no value"), KeyValue(key="empty", value=AnyValue()),
                KeyValue(key="int", value=any_value(-(2**63))), KeyValue(key="double", value=any_value(-0.0)),
                KeyValue(key="bool", value=any_value(False)), KeyValue(key="list", value=any_value(["a", 1, 2.5])),
                KeyValue(key="map", value=any_value({"k": "v\n\"'"})),
                KeyValue(key="unicode", value=any_value("é\u202e")),
                KeyValue(key=semconv.ANOMALY_SCORE, value=any_value("0.75")),
                KeyValue(key=semconv.ANOMALY_SCORE, value=any_value(3)),
                KeyValue(key=semconv.ANOMALY_INCIDENT_SCORE, value=any_value("not a number")),
                KeyValue(key=semconv.ANOMALY_TECHNIQUES, value=any_value("T1059")),
                KeyValue(key=semconv.RECORD_ID, value=any_value("spoofed")),
                with_unknown_fields(KeyValue(key="unknown in key-value", value=any_value("x")), b"\x18\x05"),
                KeyValue(key="unknown in value", value=with_unknown_fields(any_value("y"), b"\xa0\x06\x01")),
                KeyValue(key="x" * 300, value=any_value("long key" * 100)),
            ])
            records.append(with_unknown_fields(LogRecord(event_name="process.exec", body=any_value(7)),
                                               field(100, b"new") + b"\x38\x04"))  # + dropped_attributes_count
    batch = LogBatch(logs=request, tenant="tenant-a", batch_id="batch-7", record_id_prefix="spool-1",
                     first_ordinal=40)
    batch.embeddings = np.zeros((batch.record_count(), 3), np.float32)
    return batch


def test_every_value_kind_and_unknown_fields() -> None:
    assert_same_rows(hostile_batch())


def test_an_empty_batch() -> None:
    assert batch_to_arrow(LogBatch(logs=ExportLogsServiceRequest(), batch_id="b")).num_rows == 0


@pytest.mark.skipif(not (EVAL_DIR / "gtfobins_attacks.jsonl").exists(), reason=f"NOT CHECKED: {EVAL_MISSING}")
def test_the_evaluation_data_with_verdicts() -> None:
    request = ExportLogsServiceRequest()
    scope_logs = request.resource_logs.add().scope_logs.add()
    for index, line in enumerate((EVAL_DIR / "gtfobins_attacks.jsonl").read_text().splitlines()
                                 + (EVAL_DIR / "benign_web.jsonl").read_text().splitlines()):
        event = semconv.event_from_attributes(json.loads(line))
        record = scope_logs.log_records.add(time_unix_nano=int(event.timestamp * 1e9), event_name=event.event_name,
                                            severity_number=9)
        record.body.string_value = event.command_line
        record.attributes.extend(key_values(semconv.event_to_attributes(event)))
        record.attributes.extend(key_values({
            semconv.ANOMALY_SCORE: index / 997, semconv.ANOMALY_SEVERITY: "warn",
            semconv.ANOMALY_REASONS: [f"seen {index % 7} times on this workload"],
            semconv.ANOMALY_TECHNIQUES: ["T1059.004", "T1105"][: index % 3], semconv.ANOMALY_WORKLOAD: "web",
            semconv.ANOMALY_INCIDENT: f"inc-{index % 5}", semconv.ANOMALY_INCIDENT_SCORE: 0.5}))
    batch = LogBatch(logs=request, batch_id="eval")
    assert_same_rows(batch)
    assert_same_rows(batch)  # again, from the decoded attributes kept


def test_an_int_score_is_not_taken_for_a_double() -> None:
    # varint 2**63 and above are negative int64s; a 9-byte value that is not a double stays an int
    record = LogRecord()
    record.attributes.append(KeyValue(key=semconv.ANOMALY_SCORE, value=AnyValue(int_value=-1)))
    request = ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add().log_records.append(record)
    assert_same_rows(LogBatch(logs=request, batch_id="b"))
    assert varint(-1)[-1] == 0x01  # the 10-byte encoding the reader decodes


def test_bytes_that_are_not_a_request_raise_and_are_never_read_past() -> None:
    # The record walk is C (_records.c): every cut and many corruptions of a real payload either read as rows
    # or raise, and the process survives to check the next one.
    batch = hostile_batch()
    payload = batch.logs.SerializeToString()
    random = np.random.default_rng(7)
    corrupted = [payload[:cut] for cut in range(len(payload))]
    for _ in range(3000):
        mutated = bytearray(payload)
        for position in random.integers(0, len(payload), size=int(random.integers(1, 4))):
            mutated[position] = int(random.integers(0, 256))
        corrupted.append(bytes(mutated))
    outcomes = {"rows": 0, "raised": 0}
    for data in corrupted:
        try:
            table = rows_to_arrow(data, batch)
        except (ValueError, IndexError, DecodeError):
            outcomes["raised"] += 1
        else:
            assert table.num_columns == len(INSERT_COLUMNS)
            outcomes["rows"] += 1
    assert outcomes["raised"] > 100 and outcomes["rows"] > 100, outcomes


def test_large_attribute_values_are_written_but_not_kept_decoded() -> None:
    """The reader keeps decoded attribute entries for the next batch; 16,384 entries of 15 MB values were
    gigabytes held after the requests were gone."""
    _READER.known.clear()
    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add(event_name="process.exec")
    record.attributes.extend([KeyValue(key="process.working_directory", value=any_value("/" + "d" * (1 << 20))),
                              KeyValue(key="process.executable.name", value=any_value("ls"))])
    table = batch_to_arrow(LogBatch(logs=request, batch_id="big"))
    assert len(dict(table.column("LogAttributes")[0].as_py())["process.working_directory"]) == 1 + (1 << 20)
    assert _READER.known and all(len(entry) <= 4096 for entry in _READER.known)

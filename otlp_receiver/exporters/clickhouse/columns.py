"""LogBatch -> one Arrow table in the column order of `schema.INSERT_COLUMNS`.

Both transports insert the same Arrow IPC stream (`FORMAT ArrowStream`): values travel as typed
binary columns, never spliced into SQL, so hostile strings cannot change a statement, and the
columnar build costs one pass over the records. Attribute values become strings the way the
Collector's `pcommon.Value.AsString` renders them, as the upstream exporter stores them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pyarrow as pa
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otlp_receiver.component import LogBatch
from otlp_receiver.exporters.clickhouse.schema import INSERT_COLUMNS

RECORD_ID_ATTRIBUTE = "procsight.record_id"

_STRING_MAP = pa.map_(pa.string(), pa.string())
ARROW_SCHEMA = pa.schema([
    ("Timestamp", pa.timestamp("ns")), ("TraceId", pa.string()), ("SpanId", pa.string()),
    ("TraceFlags", pa.uint8()), ("SeverityText", pa.string()), ("SeverityNumber", pa.uint8()),
    ("ServiceName", pa.string()), ("Body", pa.string()), ("ResourceSchemaUrl", pa.string()),
    ("ResourceAttributes", _STRING_MAP), ("ScopeSchemaUrl", pa.string()), ("ScopeName", pa.string()),
    ("ScopeVersion", pa.string()), ("ScopeAttributes", _STRING_MAP), ("LogAttributes", _STRING_MAP),
    ("EventName", pa.string()), ("AnomalyScore", pa.float32()), ("AnomalySeverity", pa.string()),
    ("Workload", pa.string()), ("TenantId", pa.string()), ("RecordId", pa.string()),
    ("Embedding", pa.list_(pa.float32())),
])
assert tuple(ARROW_SCHEMA.names) == INSERT_COLUMNS


def value_to_text(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False) if kind in (
        "array_value", "kvlist_value") else _scalar_text(value, kind)


def _scalar_text(value: AnyValue, kind: str) -> str:
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return ""


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    if kind in ("bool_value", "int_value", "double_value"):
        return getattr(value, kind)
    return value_to_text(value)


class _MapColumn:
    """Builds a Map(String, String) column from flat keys/values and offsets (no per-row lists)."""

    def __init__(self) -> None:
        self.offsets = [0]
        self.keys: list[str] = []
        self.values: list[str] = []

    def add_row(self) -> None:
        self.offsets.append(len(self.keys))

    def array(self) -> pa.Array:
        return pa.MapArray.from_arrays(pa.array(self.offsets, pa.int32()), pa.array(self.keys, pa.string()),
                                       pa.array(self.values, pa.string()))


def batch_to_arrow(batch: LogBatch) -> pa.Table:
    count = batch.record_count()
    timestamps = np.empty(count, np.int64)
    trace_ids: list[str] = []
    span_ids: list[str] = []
    flags = np.empty(count, np.uint8)
    severity_texts: list[str] = []
    severity_numbers = np.empty(count, np.uint8)
    service_names: list[str] = []
    bodies: list[str] = []
    resource_urls: list[str] = []
    scope_urls: list[str] = []
    scope_names: list[str] = []
    scope_versions: list[str] = []
    event_names: list[str] = []
    scores = np.zeros(count, np.float32)
    severities: list[str] = []
    workloads: list[str] = []
    record_ids: list[str] = []
    resource_maps, scope_maps, log_maps = _MapColumn(), _MapColumn(), _MapColumn()

    row = 0
    for resource_logs in batch.logs.resource_logs:
        resource_keys, resource_values = _flatten(resource_logs.resource.attributes)
        service_name = _lookup(resource_keys, resource_values, "service.name")
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            scope_keys, scope_values = _flatten(scope.attributes)
            for record in scope_logs.log_records:
                timestamps[row] = record.time_unix_nano or record.observed_time_unix_nano
                trace_ids.append(record.trace_id.hex())
                span_ids.append(record.span_id.hex())
                flags[row] = record.flags & 0xFF
                severity_texts.append(record.severity_text)
                severity_numbers[row] = record.severity_number & 0xFF
                service_names.append(service_name)
                bodies.append(value_to_text(record.body))
                resource_urls.append(resource_logs.schema_url)
                scope_urls.append(scope_logs.schema_url)
                scope_names.append(scope.name)
                scope_versions.append(scope.version)
                resource_maps.keys.extend(resource_keys)
                resource_maps.values.extend(resource_values)
                resource_maps.add_row()
                scope_maps.keys.extend(scope_keys)
                scope_maps.values.extend(scope_values)
                scope_maps.add_row()

                record_id = batch.record_id(row)
                event_name = record.event_name
                severity = workload = ""
                for attribute in record.attributes:
                    key, value = attribute.key, attribute.value
                    if key == RECORD_ID_ATTRIBUTE:
                        continue  # ours to set; a sender's value would break the exactly-once key
                    text = value_to_text(value)
                    log_maps.keys.append(key)
                    log_maps.values.append(text)
                    if key == "anomaly_score":
                        scores[row] = value.double_value if value.HasField("double_value") else _to_float(text)
                    elif key == "anomaly_severity":
                        severity = text
                    elif key == "anomaly_workload":
                        workload = text
                    elif key == "event.name" and not event_name:
                        event_name = text
                log_maps.keys.append(RECORD_ID_ATTRIBUTE)
                log_maps.values.append(record_id)
                log_maps.add_row()
                event_names.append(event_name)
                severities.append(severity)
                workloads.append(workload)
                record_ids.append(record_id)
                row += 1

    columns = [
        pa.array(timestamps, pa.timestamp("ns")), pa.array(trace_ids, pa.string()), pa.array(span_ids, pa.string()),
        pa.array(flags), pa.array(severity_texts, pa.string()), pa.array(severity_numbers),
        pa.array(service_names, pa.string()), pa.array(bodies, pa.string()), pa.array(resource_urls, pa.string()),
        resource_maps.array(), pa.array(scope_urls, pa.string()), pa.array(scope_names, pa.string()),
        pa.array(scope_versions, pa.string()), scope_maps.array(), log_maps.array(),
        pa.array(event_names, pa.string()), pa.array(scores), pa.array(severities, pa.string()),
        pa.array(workloads, pa.string()), pa.array([batch.tenant] * count, pa.string()),
        pa.array(record_ids, pa.string()), _embedding_column(batch.embeddings, count),
    ]
    return pa.Table.from_arrays(columns, schema=ARROW_SCHEMA)


def _embedding_column(embeddings: Any, count: int) -> pa.Array:
    """Scored rows keep their vector; unscored (all-zero) rows get an empty array, which search skips."""
    if embeddings is None or count == 0:
        return pa.array([[]] * count, pa.list_(pa.float32()))
    matrix = np.asarray(embeddings, dtype=np.float32)
    if matrix.shape[0] != count:
        raise ValueError(f"batch has {count} records but {matrix.shape[0]} embeddings")
    scored = np.any(matrix != 0.0, axis=1)
    lengths = np.where(scored, matrix.shape[1], 0)
    offsets = np.zeros(count + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(matrix[scored].ravel()))


def _flatten(attributes: Any) -> tuple[list[str], list[str]]:
    return [kv.key for kv in attributes], [value_to_text(kv.value) for kv in attributes]


def _lookup(keys: list[str], values: list[str], wanted: str) -> str:
    for key, value in zip(keys, values, strict=True):
        if key == wanted:
            return value
    return ""


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()

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
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from core import semconv
from otlp_receiver.component import LogBatch
from otlp_receiver.exporters.clickhouse.schema import INSERT_COLUMNS

_STRING_MAP = pa.map_(pa.string(), pa.string())
ARROW_SCHEMA = pa.schema([
    ("Timestamp", pa.timestamp("ns")), ("TraceId", pa.string()), ("SpanId", pa.string()),
    ("TraceFlags", pa.uint8()), ("SeverityText", pa.string()), ("SeverityNumber", pa.uint8()),
    ("ServiceName", pa.string()), ("Body", pa.string()), ("ResourceSchemaUrl", pa.string()),
    ("ResourceAttributes", _STRING_MAP), ("ScopeSchemaUrl", pa.string()), ("ScopeName", pa.string()),
    ("ScopeVersion", pa.string()), ("ScopeAttributes", _STRING_MAP), ("LogAttributes", _STRING_MAP),
    ("EventName", pa.string()), ("AnomalyScore", pa.float32()), ("AnomalySeverity", pa.string()),
    ("Workload", pa.string()), ("TenantId", pa.string()), ("RecordId", pa.string()),
    ("Embedding", pa.list_(pa.float32())), ("AnomalyIncident", pa.string()), ("AnomalyIncidentScore", pa.float32()),
    ("AnomalyTechniques", pa.list_(pa.string())),
])
assert tuple(ARROW_SCHEMA.names) == INSERT_COLUMNS


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # built once: dumps() builds one per call
_json_string = json.encoder.encode_basestring  # the C-accelerated string quoting _JSON uses


def value_to_text(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    if kind == "array_value":
        return _array_text(value.array_value.values)
    if kind == "kvlist_value":
        return _JSON.encode(_plain(value))
    return _scalar_text(value, kind)


def _array_text(values: Any) -> str:
    """JSON of an array; string elements (argv, reasons: nearly all arrays) skip the generic encoder."""
    parts = []
    for item in values:
        text = item.string_value
        if text or item.WhichOneof("value") == "string_value":
            parts.append(_json_string(text))
        else:
            parts.append(_JSON.encode(_plain(item)))
    return "[" + ",".join(parts) + "]"


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


_SPECIAL_KEYS = frozenset({semconv.ANOMALY_SCORE, semconv.ANOMALY_SEVERITY, semconv.ANOMALY_WORKLOAD,
                           semconv.EVENT_NAME, semconv.RECORD_ID, semconv.ANOMALY_INCIDENT,
                           semconv.ANOMALY_INCIDENT_SCORE, semconv.ANOMALY_TECHNIQUES})
# DateTime64(9) holds nanoseconds since the epoch in an Int64: up to 2262-04-11.
_MAX_TIME_NS = 2**63 - 1


def batch_to_arrow(batch: LogBatch) -> pa.Table:
    # The hot loop of the exporter: one pass, per-record work kept to attribute reads and list appends;
    # everything constant per resource or scope is computed once and repeated.
    timestamps: list[int] = []
    trace_ids: list[str] = []
    span_ids: list[str] = []
    flags: list[int] = []
    severity_texts: list[str] = []
    severity_numbers: list[int] = []
    bodies: list[str] = []
    event_names: list[str] = []
    scores: list[float] = []
    severities: list[str] = []
    workloads: list[str] = []
    incidents: list[str] = []
    incident_scores: list[float] = []
    techniques: list[list[str]] = []
    per_scope: dict[str, list] = {name: [] for name in (
        "service", "resource_url", "scope_url", "scope_name", "scope_version")}
    resource_maps, scope_maps, log_maps = _MapColumn(), _MapColumn(), _MapColumn()
    log_keys, log_values, log_offsets = log_maps.keys, log_maps.values, log_maps.offsets
    record_ids = _record_ids(batch)
    row = 0
    for resource_logs in batch.logs.resource_logs:
        resource_keys, resource_values = _flatten(resource_logs.resource.attributes)
        service_name = _lookup(resource_keys, resource_values, semconv.SERVICE_NAME)
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            scope_keys, scope_values = _flatten(scope.attributes)
            records = scope_logs.log_records
            count = len(records)
            for name, value in (("service", service_name), ("resource_url", resource_logs.schema_url),
                                ("scope_url", scope_logs.schema_url), ("scope_name", scope.name),
                                ("scope_version", scope.version)):
                per_scope[name].extend([value] * count)
            resource_maps.repeat(resource_keys, resource_values, count)
            scope_maps.repeat(scope_keys, scope_values, count)
            for record in records:
                timestamps.append(_event_time(record.time_unix_nano, record.observed_time_unix_nano))
                trace_ids.append(record.trace_id.hex())
                span_ids.append(record.span_id.hex())
                flags.append(record.flags & 0xFF)
                severity_texts.append(record.severity_text)
                severity_numbers.append(record.severity_number & 0xFF)
                body = record.body
                bodies.append(body.string_value or value_to_text(body))
                event_name = record.event_name
                score = incident_score = 0.0
                severity = workload = incident = ""
                record_techniques: list[str] = []
                for attribute in record.attributes:
                    key = attribute.key
                    value = attribute.value
                    text = value.string_value or value_to_text(value)
                    if key in _SPECIAL_KEYS:
                        if key == semconv.RECORD_ID:
                            continue  # ours to set; a sender's value would break the exactly-once key
                        if key == semconv.ANOMALY_SCORE:
                            score = _number(value, text)
                        elif key == semconv.ANOMALY_INCIDENT_SCORE:
                            incident_score = _number(value, text)
                        elif key == semconv.ANOMALY_INCIDENT:
                            incident = text
                        elif key == semconv.ANOMALY_TECHNIQUES:
                            record_techniques = _strings(value)
                        elif key == semconv.ANOMALY_SEVERITY:
                            severity = text
                        elif key == semconv.ANOMALY_WORKLOAD:
                            workload = text
                        elif not event_name:
                            event_name = text
                    log_keys.append(key)
                    log_values.append(text)
                log_keys.append(semconv.RECORD_ID)
                log_values.append(record_ids[row])
                log_offsets.append(len(log_keys))
                event_names.append(event_name)
                scores.append(score)
                severities.append(severity)
                workloads.append(workload)
                incidents.append(incident)
                incident_scores.append(incident_score)
                techniques.append(record_techniques)
                row += 1

    string = pa.string()
    columns = [
        pa.array(timestamps, pa.timestamp("ns")), pa.array(trace_ids, string), pa.array(span_ids, string),
        pa.array(flags, pa.uint8()), pa.array(severity_texts, string), pa.array(severity_numbers, pa.uint8()),
        pa.array(per_scope["service"], string), pa.array(bodies, string), pa.array(per_scope["resource_url"], string),
        resource_maps.array(), pa.array(per_scope["scope_url"], string), pa.array(per_scope["scope_name"], string),
        pa.array(per_scope["scope_version"], string), scope_maps.array(), log_maps.array(),
        pa.array(event_names, string), pa.array(scores, pa.float32()), pa.array(severities, string),
        pa.array(workloads, string), pa.array([batch.tenant] * row, string),
        pa.array(record_ids, string), _embedding_column(batch.embeddings, row), pa.array(incidents, string),
        pa.array(incident_scores, pa.float32()), pa.array(techniques, pa.list_(string)),
    ]
    return pa.Table.from_arrays(columns, schema=ARROW_SCHEMA)


class _MapColumn:
    """Builds a Map(String, String) column from flat keys/values and offsets (no per-row lists)."""

    def __init__(self) -> None:
        self.offsets = [0]
        self.keys: list[str] = []
        self.values: list[str] = []

    def repeat(self, keys: list[str], values: list[str], rows: int) -> None:
        """The same entries on `rows` consecutive rows (a resource's or scope's attributes)."""
        self.keys.extend(keys * rows)
        self.values.extend(values * rows)
        width, last = len(keys), self.offsets[-1]
        self.offsets.extend(range(last + width, last + width * rows + 1, width) if width else [last] * rows)

    def array(self) -> pa.Array:
        return pa.MapArray.from_arrays(pa.array(self.offsets, pa.int32()), pa.array(self.keys, pa.string()),
                                       pa.array(self.values, pa.string()))


def _record_ids(batch: LogBatch) -> list[str]:
    record_id = batch.record_id
    return [record_id(ordinal) for ordinal in range(batch.record_count())]


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


def _event_time(time_ns: int, observed_ns: int) -> int:
    """The record's time; the observed (ingest) time when the record has none or one DateTime64(9) cannot hold
    (OTLP times are unsigned 64-bit, up to 2**64-1): one bad time never fails the batch it came in."""
    if 0 < time_ns <= _MAX_TIME_NS:
        return time_ns
    return observed_ns if observed_ns <= _MAX_TIME_NS else 0


def _number(value: AnyValue, text: str) -> float:
    if value.HasField("double_value"):
        return value.double_value
    try:
        return float(text)
    except ValueError:
        return 0.0


def _strings(value: AnyValue) -> list[str]:
    """A string-array attribute as a list (a lone string becomes one item)."""
    if value.HasField("array_value"):
        return [item.string_value or value_to_text(item) for item in value.array_value.values]
    text = value_to_text(value)
    return [text] if text else []


def encode_parts(batch: LogBatch, part_rows: int, columns: tuple[str, ...] = INSERT_COLUMNS) -> list[bytes]:
    """The batch's `columns` as Arrow IPC streams of at most `part_rows` rows each, cut at fixed offsets."""
    table = batch_to_arrow(batch)
    if columns != INSERT_COLUMNS:
        table = table.select(list(columns))
    return [arrow_stream(table.slice(offset, part_rows)) for offset in range(0, table.num_rows, part_rows)]


def encode_serialized(payload: bytes, tenant: str, batch_id: str, embeddings: Any, part_rows: int,
                      columns: tuple[str, ...] = INSERT_COLUMNS) -> list[bytes]:
    """`encode_parts` for an encoder process: the batch arrives as serialized protobuf (cheap to pickle)."""
    logs = ExportLogsServiceRequest.FromString(payload)
    return encode_parts(LogBatch(logs=logs, tenant=tenant, batch_id=batch_id, embeddings=embeddings), part_rows,
                        columns)


def arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()

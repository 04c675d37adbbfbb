"""LogBatch -> one Arrow table in the column order of `schema.INSERT_COLUMNS`.

Both transports insert the same Arrow IPC stream (`FORMAT ArrowStream`): values travel as typed
binary columns, never spliced into SQL, so hostile strings cannot change a statement, and the
columnar build costs one pass over the records. Attribute values become strings the way the
Collector's `pcommon.Value.AsString` renders them, as the upstream exporter stores them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from core import semconv
from core.otlpwire import read_varint, skip_field
from otlp_receiver.component import LogBatch
from otlp_receiver.exporters.clickhouse._records import read_scope_logs
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


def batch_to_arrow(batch: LogBatch) -> pa.Table:
    return rows_to_arrow(batch.serialized(), batch)


def rows_to_arrow(payload: bytes, batch: LogBatch) -> pa.Table:
    """The rows of `payload`, the batch's records serialized (an ExportLogsServiceRequest); the tenant, record
    ids and embeddings are the batch's (its `logs` are not read)."""
    rows = _Rows(batch.record_id)
    rows.request(payload)
    count = len(rows.timestamps)
    string = pa.string()
    per_scope = rows.per_scope
    columns = [
        pa.array(rows.timestamps, pa.timestamp("ns")), pa.array(rows.trace_ids, string),
        pa.array(rows.span_ids, string), pa.array(rows.flags, pa.uint8()), pa.array(rows.severity_texts, string),
        pa.array(rows.severity_numbers, pa.uint8()), pa.array(per_scope["service"], string),
        pa.array(rows.bodies, string), pa.array(per_scope["resource_url"], string), rows.resource_maps.array(),
        pa.array(per_scope["scope_url"], string), pa.array(per_scope["scope_name"], string),
        pa.array(per_scope["scope_version"], string), rows.scope_maps.array(), rows.log_maps.array(),
        pa.array(rows.event_names, string), pa.array(rows.scores, pa.float32()), pa.array(rows.severities, string),
        pa.array(rows.workloads, string), pa.array([batch.tenant] * count, string),
        pa.array(rows.record_ids, string),
        _embedding_column(batch.embeddings, count), pa.array(rows.incidents, string),
        pa.array(rows.incident_scores, pa.float32()), pa.array(rows.techniques, pa.list_(string)),
    ]
    return pa.Table.from_arrays(columns, schema=ARROW_SCHEMA)


class _Rows:
    """Column lists filled by one walk over the wire bytes of an ExportLogsServiceRequest.

    Reading records through the protobuf runtime costs about a microsecond per attribute; walking their bytes
    costs a fraction of that, and an attribute whose bytes repeat (a command line, a reason, the working
    directory) is decoded once (`_Reader.known`). The walk over a scope's records is C (`_records.c`, which
    fills these lists by name); resources and scopes, and whatever the walk does not read itself (a list or
    map value, bytes, a body that is not a string), are parsed by the protobuf runtime and rendered by
    `value_to_text`, the one rendering of a value."""

    def __init__(self, record_id: Callable[[int], str]) -> None:
        self.record_id = record_id
        self.record_ids: list[str] = []
        self.timestamps: list[int] = []
        self.trace_ids: list[str] = []
        self.span_ids: list[str] = []
        self.flags: list[int] = []
        self.severity_texts: list[str] = []
        self.severity_numbers: list[int] = []
        self.bodies: list[str] = []
        self.event_names: list[str] = []
        self.scores: list[float] = []
        self.severities: list[str] = []
        self.workloads: list[str] = []
        self.incidents: list[str] = []
        self.incident_scores: list[float] = []
        self.techniques: list[list[str]] = []
        self.per_scope: dict[str, list[str]] = {name: [] for name in (
            "service", "resource_url", "scope_url", "scope_name", "scope_version")}
        self.resource_maps, self.scope_maps, self.log_maps = _MapColumn(), _MapColumn(), _MapColumn()

    def request(self, data: bytes) -> None:
        for number, start, end in _fields(data, 0, len(data)):
            if number == 1:
                self._resource_logs(data, start, end)

    def _resource_logs(self, data: bytes, start: int, end: int) -> None:
        resource = Resource()
        schema_url = ""
        scopes: list[tuple[InstrumentationScope, str, int]] = []  # scope, its schema url, its record count
        for number, field_start, field_end in _fields(data, start, end):
            if number == 1:
                resource = Resource.FromString(data[field_start:field_end])
            elif number == 2:
                scopes.append(self._scope_logs(data, field_start, field_end))
            elif number == 3:
                schema_url = data[field_start:field_end].decode()
        # Columns of the resource and its scopes, filled once every field is read (the schema url comes last).
        resource_keys, resource_values = _flatten(resource.attributes)
        service_name = _lookup(resource_keys, resource_values, semconv.SERVICE_NAME)
        for scope, scope_url, count in scopes:
            scope_keys, scope_values = _flatten(scope.attributes)
            for name, value in (("service", service_name), ("resource_url", schema_url), ("scope_url", scope_url),
                                ("scope_name", scope.name), ("scope_version", scope.version)):
                self.per_scope[name].extend([value] * count)
            self.resource_maps.repeat(resource_keys, resource_values, count)
            self.scope_maps.repeat(scope_keys, scope_values, count)

    def _scope_logs(self, data: bytes, start: int, end: int) -> tuple[InstrumentationScope, str, int]:
        scope, schema_url, count = read_scope_logs(data, start, end, self, _READER)
        return InstrumentationScope() if scope is None else InstrumentationScope.FromString(scope), schema_url, count


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


# -- reading the wire bytes -----------------------------------------------------------------------------------

def _any_attribute(entry: bytes) -> tuple[str, str, Any]:
    """(key, text, value) of a KeyValue's bytes of a shape _records.c leaves to the protobuf runtime: `value` the
    double for a double (scores), the list of item texts for a list (techniques), else None."""
    attribute = KeyValue.FromString(entry)
    value = attribute.value
    kind = value.WhichOneof("value")
    if kind == "double_value":
        return attribute.key, value_to_text(value), value.double_value
    if kind == "array_value":
        items = [item.string_value or value_to_text(item) for item in value.array_value.values]
        return attribute.key, value_to_text(value), items
    return attribute.key, value_to_text(value), None


def _render_body(body: bytes) -> str:
    """A body's AnyValue bytes that are not a plain string, as text."""
    return value_to_text(AnyValue.FromString(body))


class _Reader(NamedTuple):
    """What _records.c reads attributes and bodies with (a tuple, in this order)."""

    known: dict[bytes, tuple[str, str, Any]]  # attribute entries decoded once, by their bytes (emptied when full)
    max_known: int
    unique_keys: frozenset[str]  # keys whose values differ from record to record: decoded each time, not kept
    any_attribute: Callable[[bytes], tuple[str, str, Any]]
    render_body: Callable[[bytes], str]
    slots: dict[str, int]  # attributes with a column of their own, by their slot in _records.c
    record_id_key: str


# The slots are _records.c's enum, in its order. RECORD_ID's value is never read: the exporter sets it.
_READER = _Reader(
    known={}, max_known=16384,
    unique_keys=frozenset({semconv.PROCESS_PID, semconv.PROCESS_PARENT_PID, semconv.ANOMALY_SCORE,
                           semconv.ANOMALY_INCIDENT_SCORE}),
    any_attribute=_any_attribute, render_body=_render_body,
    slots={key: slot for slot, key in enumerate((
        semconv.RECORD_ID, semconv.ANOMALY_SCORE, semconv.ANOMALY_INCIDENT_SCORE, semconv.ANOMALY_INCIDENT,
        semconv.ANOMALY_TECHNIQUES, semconv.ANOMALY_SEVERITY, semconv.ANOMALY_WORKLOAD, semconv.EVENT_NAME))},
    record_id_key=semconv.RECORD_ID)


def _fields(data: bytes, position: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field in data[position:end]; others are skipped."""
    while position < end:
        tag, start = read_varint(data, position)
        if tag & 7 != 2:
            position = skip_field(data, position)
            continue
        length, start = read_varint(data, start)
        position = start + length
        if position > end:
            raise ValueError("a field runs past its message: not a serialized ExportLogsServiceRequest")
        yield tag >> 3, start, position


def encode_parts(batch: LogBatch, part_rows: int, columns: tuple[str, ...] = INSERT_COLUMNS,
                 payload: bytes | None = None) -> list[bytes]:
    """The batch's `columns` as Arrow IPC streams of at most `part_rows` rows each, cut at fixed offsets;
    `payload` is the batch's records serialized, when the caller has them."""
    table = rows_to_arrow(batch.serialized() if payload is None else payload, batch)
    if columns != INSERT_COLUMNS:
        table = table.select(list(columns))
    return [arrow_stream(table.slice(offset, part_rows)) for offset in range(0, table.num_rows, part_rows)]


def encode_serialized(payload: bytes, tenant: str, batch_id: str, embeddings: Any, part_rows: int,
                      columns: tuple[str, ...] = INSERT_COLUMNS, record_id_prefix: str = "",
                      first_ordinal: int = 0) -> list[bytes]:
    """`encode_parts` for an encoder process: the batch arrives as serialized protobuf (cheap to pickle), read
    as it is."""
    return encode_parts(LogBatch(logs=ExportLogsServiceRequest(), tenant=tenant, batch_id=batch_id,
                                 embeddings=embeddings, record_id_prefix=record_id_prefix,
                                 first_ordinal=first_ordinal), part_rows, columns, payload)


def arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()

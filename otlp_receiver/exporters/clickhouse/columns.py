"""LogBatch -> one Arrow table in the column order of `schema.INSERT_COLUMNS`.

Both transports insert the same Arrow IPC stream (`FORMAT ArrowStream`): values travel as typed
binary columns, never spliced into SQL, so hostile strings cannot change a statement, and the
columnar build costs one pass over the records. Attribute values become strings the way the
Collector's `pcommon.Value.AsString` renders them, as the upstream exporter stores them.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from core import semconv
from core.otlpwire import read_varint, skip_field
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
    return rows_to_arrow(batch.logs.SerializeToString(), batch)


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
    directory) is decoded once (`_Attributes`). The bytes are upb's serialisation (canonical: fields in
    order, each once); anything the walk does not read itself (a map value, bytes, a resource or scope) is
    parsed by the protobuf runtime and rendered by `value_to_text`, the one rendering of a value."""

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
        scope = InstrumentationScope()
        schema_url = ""
        count = 0
        for number, field_start, field_end in _fields(data, start, end):
            if number == 2:
                self._record(data, field_start, field_end)
                count += 1
            elif number == 1:
                scope = InstrumentationScope.FromString(data[field_start:field_end])
            elif number == 3:
                schema_url = data[field_start:field_end].decode()
        return scope, schema_url, count

    def _record(self, data: bytes, position: int, end: int) -> None:
        """One LogRecord's row. The hot loop of the exporter: attribute entries (field 6) first."""
        time_ns = observed_ns = severity_number = flags = 0
        severity_text = event_name = named_by_attribute = severity = workload = incident = ""
        body = trace_id = span_id = b""
        score = incident_score = 0.0
        record_techniques: list[str] = []
        log_keys, log_values = self.log_maps.keys, self.log_maps.values
        while position < end:
            tag = data[position]
            if tag < 0x80 and tag & 7 == 2:
                length = data[position + 1]
                start = position + 2
                if length >= 0x80:
                    length, start = read_varint(data, position + 1)
                position = start + length
                if tag == _ATTRIBUTE:
                    key, text, value = _attribute(data[start:position])
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
                            record_techniques = _strings(value, text)
                        elif key == semconv.ANOMALY_SEVERITY:
                            severity = text
                        elif key == semconv.ANOMALY_WORKLOAD:
                            workload = text
                        elif not named_by_attribute:
                            named_by_attribute = text
                    log_keys.append(key)
                    log_values.append(text)
                elif tag == _BODY:
                    body = data[start:position]
                elif tag == _SEVERITY_TEXT:
                    severity_text = data[start:position].decode()
                elif tag == _TRACE_ID:
                    trace_id = data[start:position]
                elif tag == _SPAN_ID:
                    span_id = data[start:position]
                elif tag == _EVENT_NAME:
                    event_name = data[start:position].decode()
            elif tag == _TIME:
                (time_ns,) = _FIXED64.unpack_from(data, position + 1)
                position += 9
            elif tag == _OBSERVED_TIME:
                (observed_ns,) = _FIXED64.unpack_from(data, position + 1)
                position += 9
            elif tag == _SEVERITY_NUMBER:
                severity_number, position = read_varint(data, position + 1)
            elif tag == _FLAGS:
                (flags,) = _FIXED32.unpack_from(data, position + 1)
                position += 5
            else:  # dropped_attributes_count, or a field this schema does not know: skipped
                position = skip_field(data, position)
        record_id = self.record_id(len(self.record_ids))
        self.record_ids.append(record_id)
        log_keys.append(semconv.RECORD_ID)
        log_values.append(record_id)
        self.log_maps.offsets.append(len(log_keys))
        self.timestamps.append(_event_time(time_ns, observed_ns))
        self.trace_ids.append(trace_id.hex())
        self.span_ids.append(span_id.hex())
        self.flags.append(flags & 0xFF)
        self.severity_texts.append(severity_text)
        self.severity_numbers.append(severity_number & 0xFF)
        self.bodies.append(_body(body))
        self.event_names.append(event_name or named_by_attribute)
        self.scores.append(score)
        self.severities.append(severity)
        self.workloads.append(workload)
        self.incidents.append(incident)
        self.incident_scores.append(incident_score)
        self.techniques.append(record_techniques)


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


def _event_time(time_ns: int, observed_ns: int) -> int:
    """The record's time; the observed (ingest) time when the record has none or one DateTime64(9) cannot hold
    (OTLP times are unsigned 64-bit, up to 2**64-1): one bad time never fails the batch it came in."""
    if 0 < time_ns <= _MAX_TIME_NS:
        return time_ns
    return observed_ns if observed_ns <= _MAX_TIME_NS else 0


def _number(value: Any, text: str) -> float:
    """A score: the double it holds, else its text as a number, else 0."""
    if isinstance(value, float):
        return value
    try:
        return float(text)
    except ValueError:
        return 0.0


def _strings(value: Any, text: str) -> list[str]:
    """A string-array attribute as a list (a lone string becomes one item)."""
    if isinstance(value, list):
        return value
    return [text] if text else []


# -- reading the wire bytes -----------------------------------------------------------------------------------

# LogRecord's fields by tag (field number << 3 | wire type): what the record loop reads.
_TIME, _SEVERITY_NUMBER, _SEVERITY_TEXT, _BODY, _ATTRIBUTE = 0x09, 0x10, 0x1A, 0x2A, 0x32
_FLAGS, _TRACE_ID, _SPAN_ID, _OBSERVED_TIME, _EVENT_NAME = 0x45, 0x4A, 0x52, 0x59, 0x62
_FIXED64, _FIXED32, _DOUBLE = struct.Struct("<Q"), struct.Struct("<I"), struct.Struct("<d")
_STRING_VALUE, _BOOL_VALUE, _INT_VALUE, _DOUBLE_VALUE = 0x0A, 0x10, 0x18, 0x21  # AnyValue's scalar fields
# Attribute entries decoded once, by their bytes (emptied when full): all but those that differ from record
# to record (ids, scores), which are decoded each time.
_MAX_KNOWN_ATTRIBUTES = 16384
_UNIQUE_KEYS = frozenset({semconv.PROCESS_PID, semconv.PROCESS_PARENT_PID, semconv.ANOMALY_SCORE,
                          semconv.ANOMALY_INCIDENT_SCORE})
_known_attributes: dict[bytes, tuple[str, str, Any]] = {}


def _attribute(entry: bytes) -> tuple[str, str, Any]:
    """(key, text, value) of a KeyValue's bytes: the text as `value_to_text` renders the value, and `value`
    the double (for scores) or the list of item texts (for techniques), else None."""
    known = _known_attributes.get(entry)
    if known is not None:
        return known
    decoded = _scalar_attribute(entry) or _any_attribute(entry)
    if decoded[0] not in _UNIQUE_KEYS:
        if len(_known_attributes) >= _MAX_KNOWN_ATTRIBUTES:
            _known_attributes.clear()
        _known_attributes[entry] = decoded
    return decoded


def _scalar_attribute(entry: bytes) -> tuple[str, str, Any] | None:
    """A KeyValue of a key and a scalar value (text, int, double, bool) read from its bytes; None for any
    other shape (a list, a map, bytes, an unknown field), which the protobuf runtime reads."""
    if entry[0] != _STRING_VALUE:  # KeyValue.key is field 1, as AnyValue.string_value
        return None
    length, start = read_varint(entry, 1)
    key_end = start + length
    key = entry[start:key_end].decode()
    if key_end == len(entry):
        return key, "", None  # no value
    if entry[key_end] != 0x12:  # KeyValue.value
        return None
    length, value_start = read_varint(entry, key_end + 1)
    if value_start + length != len(entry):
        return None
    if length == 0:
        return key, "", None  # an empty AnyValue
    tag = entry[value_start]
    if tag == _STRING_VALUE:
        length, start = read_varint(entry, value_start + 1)
        if start + length == len(entry):
            return key, entry[start:].decode(), None
    elif tag == _INT_VALUE:
        number, end = read_varint(entry, value_start + 1)
        if end == len(entry):
            return key, str(number - (1 << 64) if number >= 1 << 63 else number), None
    elif tag == _DOUBLE_VALUE and value_start + 9 == len(entry):
        (double,) = _DOUBLE.unpack_from(entry, value_start + 1)
        return key, repr(double), double
    elif tag == _BOOL_VALUE:
        flag, end = read_varint(entry, value_start + 1)
        if end == len(entry):
            return key, "true" if flag else "false", None
    return None


def _any_attribute(entry: bytes) -> tuple[str, str, Any]:
    attribute = KeyValue.FromString(entry)
    value = attribute.value
    kind = value.WhichOneof("value")
    if kind == "double_value":
        return attribute.key, value_to_text(value), value.double_value
    if kind == "array_value":
        items = [item.string_value or value_to_text(item) for item in value.array_value.values]
        return attribute.key, value_to_text(value), items
    return attribute.key, value_to_text(value), None


def _body(body: bytes) -> str:
    """A body's AnyValue bytes as text: a string read directly, anything else rendered by `value_to_text`."""
    if not body:
        return ""
    if body[0] == _STRING_VALUE:
        length, start = read_varint(body, 1)
        if start + length == len(body):
            return body[start:].decode()
    return value_to_text(AnyValue.FromString(body))


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
    table = rows_to_arrow(batch.logs.SerializeToString() if payload is None else payload, batch)
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

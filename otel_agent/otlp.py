"""OTLP logs protobuf encoding for the agent's hot path.

Why not `Logger.emit` and the SDK's encoder: measured here, `Logger.emit` costs about 55 µs per record
(attribute validation) and the SDK's `encode_logs` about 140 µs (it builds protobuf objects field by field),
so 1,000 execs/s would take 20% of a core before capture does anything. This module writes the same
protobuf wire format directly.

`encode_event` is the agent's one way from an event to a record. Exec events, nearly all of the traffic,
take a path that writes the fields in the order `core.semconv.event_to_attributes` gives them without
building that dict, encodes the attributes that repeat from exec to exec (the executable, the user, the
parent, the directory, the container) once per distinct combination, and writes short values behind
ready-made prefixes: measured here, 4.5 µs per exec record against 19 µs for the generic path.
`tests/test_otlp_encoding.py` checks both paths produce the same bytes for any event and decode to
exactly what the SDK's encoder produces for the same record.

`exporters.py` sends the encoded requests.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from core import semconv
from core.event import EXEC, ProcessEvent
from core.otlpwire import (
    TAG_ARRAY,
    TAG_ATTRIBUTE,
    TAG_STRING,
    TAG_VALUE,
    any_value,
    field,
    key_value,
    length_delimited,
    log_attribute,
    text,
    varint,
)

SEVERITY_INFO = 9
# Attribute values that repeat from exec to exec: their KeyValue encodings are cached.
_CACHED_KEYS = frozenset({
    semconv.EVENT_NAME, semconv.PROCESS_EXECUTABLE_NAME, semconv.PROCESS_EXECUTABLE_PATH, semconv.PROCESS_USER_NAME,
    semconv.PROCESS_PARENT_EXECUTABLE_NAME, semconv.PROCESS_WORKING_DIRECTORY, semconv.CONTAINER_ID,
    semconv.NETWORK_TRANSPORT, semconv.PROCESS_USER_ID, semconv.SOURCE_ADDRESS, semconv.DESTINATION_ADDRESS,
    semconv.PROCESS_COMMAND_ARGS_TRUNCATED,
})
_CACHE_LIMIT = 50_000
_kv_cache: dict[tuple[str, Any], bytes] = {}

_TAG_EVENT_NAME = b"\x62"  # LogRecord.event_name (field 12)


def _attribute(key: str, value: Any) -> bytes:
    """Field 6 of LogRecord: one attribute, from the cache where values repeat."""
    if key not in _CACHED_KEYS:
        return log_attribute(key, value)
    cache_key = (key, value)
    encoded = _kv_cache.get(cache_key)
    if encoded is None:
        if len(_kv_cache) >= _CACHE_LIMIT:
            _kv_cache.clear()
        encoded = _kv_cache[cache_key] = log_attribute(key, value)
    return encoded


_FIXED64 = struct.Struct("<Q")
_SEVERITY = b"\x10" + varint(SEVERITY_INFO) + b"\x1a\x04INFO"  # 2: severity_number, 3: severity_text


def encode_log_record(time_unix_nano: int, observed_unix_nano: int, event_name: str, body: str,
                      attributes: Mapping[str, Any]) -> bytes:
    """A `LogRecord` message (severity INFO), as the SDK's encoder would write it."""
    return b"".join((
        b"\x09", _FIXED64.pack(time_unix_nano),  # 1: time_unix_nano
        _SEVERITY,
        length_delimited(TAG_ARRAY, any_value(body)),  # 5: body
        *[_attribute(key, value) for key, value in attributes.items()],  # 6: attributes
        b"\x59", _FIXED64.pack(observed_unix_nano),  # 11: observed_time_unix_nano
        length_delimited(_TAG_EVENT_NAME, text(event_name)),  # 12: event_name
    ))


def encode_event(event: ProcessEvent, observed_unix_nano: int) -> bytes:
    """An event as an encoded LogRecord: time is the event's (kernel) time, body the command line, attributes
    `event_to_attributes(event)`."""
    time_unix_nano = int(event.timestamp * 1e9)
    if event.event_name != EXEC or event.cpu_percent is not None or event.transport or event.local_address or \
            event.remote_address or event.local_port is not None or event.remote_port is not None:
        return encode_log_record(time_unix_nano, observed_unix_nano, event.event_name, event.command_line,
                                 semconv.event_to_attributes(event))
    line = _string_value(text(event.command_line))
    return b"".join((
        b"\x09", _FIXED64.pack(time_unix_nano), _SEVERITY, TAG_ARRAY, varint(len(line)), line,
        _exec_head(event.executable_name),
        _with_value(_COMMAND_LINE, line),
        _with_value(_COMMAND_ARGS, _args_value(event.command_args)) if event.command_args else b"",
        _PID.int(event.pid) if event.pid is not None else b"",
        _PARENT_PID.int(event.parent_pid) if event.parent_pid is not None else b"",
        _identity(event),
        _STDIN.string(event.stdin) if event.stdin else b"",
        _STDOUT.string(event.stdout) if event.stdout else b"",
        _TRUNCATED if event.command_args_truncated else b"",
        _DELETED if event.executable_deleted else b"",
        b"\x59", _FIXED64.pack(observed_unix_nano), _EXEC_EVENT_NAME,
    ))


def _key(key: str) -> bytes:
    """The fixed start of a KeyValue: its key field and the tag of its value field."""
    return length_delimited(TAG_STRING, text(key)) + TAG_VALUE


class _KeyedAttribute:
    """Encodes attributes of one key. Every length of a short value's attribute fits in one byte, so its
    encoding is a ready-made prefix per value length followed by the value: one lookup and one concatenation."""

    def __init__(self, key: str) -> None:
        self.key = _key(key)
        short = 128 - len(self.key) - 3  # string lengths whose attribute's lengths are all single bytes
        attribute, size_of_key = TAG_ATTRIBUTE[0], len(self.key)
        self._strings = [bytes((attribute, size_of_key + 3 + n)) + self.key + bytes((n + 2, TAG_STRING[0], n))
                         for n in range(short)]
        self._ints = {size: bytes((attribute, size_of_key + 2 + size)) + self.key + bytes((size + 1,)) + b"\x18"
                      for size in range(1, 11)}  # AnyValue.int_value, by the size of the varint

    def string(self, value: str) -> bytes:
        raw = value.encode("utf-8", errors="backslashreplace")
        if len(raw) < len(self._strings):
            return self._strings[len(raw)] + raw
        return _with_value(self.key, _string_value(raw))

    def int(self, value: int) -> bytes:
        encoded = varint(value)
        return self._ints[len(encoded)] + encoded


_COMMAND_LINE = _key(semconv.PROCESS_COMMAND_LINE)
_COMMAND_ARGS = _key(semconv.PROCESS_COMMAND_ARGS)
_PID = _KeyedAttribute(semconv.PROCESS_PID)
_PARENT_PID = _KeyedAttribute(semconv.PROCESS_PARENT_PID)
_STDIN = _KeyedAttribute(semconv.PROCESS_STDIN)
_STDOUT = _KeyedAttribute(semconv.PROCESS_STDOUT)
_TRUNCATED = log_attribute(semconv.PROCESS_COMMAND_ARGS_TRUNCATED, True)
_DELETED = log_attribute(semconv.PROCESS_EXECUTABLE_DELETED, True)
_EXEC_EVENT_NAME = length_delimited(_TAG_EVENT_NAME, text(EXEC))


def _string_value(raw: bytes) -> bytes:
    """An AnyValue holding a string, from its UTF-8 bytes."""
    return TAG_STRING + varint(len(raw)) + raw


def _with_value(key: bytes, value: bytes) -> bytes:
    """One `LogRecord.attributes` entry from a `_key` and an encoded AnyValue."""
    key_value_size = len(key) + len(value) + len(varint(len(value)))
    return b"".join((TAG_ATTRIBUTE, varint(key_value_size), key, varint(len(value)), value))


# An ArrayValue item holding a string of n < 126 bytes: its two lengths are single bytes.
_ARG_HEADS = [bytes((TAG_STRING[0], n + 2, TAG_STRING[0], n)) for n in range(126)]


def _args_value(args: Sequence[str]) -> bytes:
    """An AnyValue holding an array of strings."""
    items = []
    for arg in args:
        raw = arg.encode("utf-8", errors="backslashreplace")
        items.append(_ARG_HEADS[len(raw)] + raw if len(raw) < 126 else length_delimited(TAG_STRING, _string_value(raw)))
    joined = b"".join(items)
    return TAG_ARRAY + varint(len(joined)) + joined


_exec_heads: dict[str, bytes] = {}
_identities: dict[tuple, bytes] = {}


def _exec_head(executable_name: str) -> bytes:
    """The first two attributes of an exec record (event name, executable name), encoded once per executable."""
    encoded = _exec_heads.get(executable_name)
    if encoded is None:
        if len(_exec_heads) >= _CACHE_LIMIT:
            _exec_heads.clear()
        encoded = _exec_heads[executable_name] = log_attribute(semconv.EVENT_NAME, EXEC) + log_attribute(
            semconv.PROCESS_EXECUTABLE_NAME, executable_name)
    return encoded


def _identity(event: ProcessEvent) -> bytes:
    """The attributes from the executable path to the container id, encoded once per distinct combination."""
    key = (event.executable_path, event.user_id, event.real_user_id, event.user_name, event.parent_name,
           event.working_directory, event.container_id)
    encoded = _identities.get(key)
    if encoded is None:
        if len(_identities) >= _CACHE_LIMIT:
            _identities.clear()
        encoded = _identities[key] = b"".join(
            log_attribute(name, value) for name, value in zip(_IDENTITY_KEYS, key, strict=True)
            if value is not None and value != "")
    return encoded


_IDENTITY_KEYS = (semconv.PROCESS_EXECUTABLE_PATH, semconv.PROCESS_USER_ID, semconv.PROCESS_REAL_USER_ID,
                  semconv.PROCESS_USER_NAME, semconv.PROCESS_PARENT_EXECUTABLE_NAME,
                  semconv.PROCESS_WORKING_DIRECTORY, semconv.CONTAINER_ID)


class RequestEncoder:
    """Wraps encoded LogRecords in an ExportLogsServiceRequest for one resource and scope."""

    def __init__(self, resource_attributes: Mapping[str, Any], scope_name: str, scope_version: str) -> None:
        resource = b"".join(field(1, key_value(k, v)) for k, v in resource_attributes.items())
        scope = field(1, text(scope_name)) + field(2, text(scope_version))
        self._resource_field = field(1, resource)  # ResourceLogs.resource
        self._scope_field = field(1, scope)  # ScopeLogs.scope

    def encode(self, records: Sequence[bytes]) -> bytes:
        scope_logs = self._scope_field + b"".join(field(2, record) for record in records)
        return field(1, self._resource_field + field(2, scope_logs))

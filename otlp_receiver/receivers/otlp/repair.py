"""Mending a protobuf logs request whose only faults are in its values, so one bad record does not take the
others with it: invalid UTF-8 in a string field becomes U+FFFD, and an AnyValue nested deeper than
MAX_VALUE_DEPTH levels (the parser stops at 100 messages) becomes a string saying it was cut.

The OTLP specification lets a server refuse such a request whole, but a Collector in front passes invalid
UTF-8 through (open-telemetry/opentelemetry-collector#11449), and a refused request is lost to its sender:
opentelemetry-proto#845 recommends the replacement done here. Only a request that failed to parse is walked;
the walk knows which fields of the logs request are strings and which are messages, and copies every other
field as it came.
"""

from __future__ import annotations

from core.otlpwire import field, read_varint, skip_field, text, varint

MAX_VALUE_DEPTH = 24  # AnyValue levels kept (a kvlist level is 3 messages; the parser allows 100)
CUT_TEXT = f"[value nested deeper than {MAX_VALUE_DEPTH} levels: cut by procsight]"
_CUT = field(1, text(CUT_TEXT))
_STRING = "string"

# Length-delimited fields by message: a string, or the message they hold. Fields not named are copied.
_SCHEMA: dict[str, dict[int, str]] = {
    "request": {1: "resource_logs"},
    "resource_logs": {1: "resource", 2: "scope_logs", 3: _STRING},
    "resource": {1: "key_value", 3: "entity_ref"},
    "entity_ref": {1: _STRING, 2: _STRING, 3: _STRING, 4: _STRING},
    "scope_logs": {1: "scope", 2: "log_record", 3: _STRING},
    "scope": {1: _STRING, 2: _STRING, 3: "key_value"},
    "log_record": {3: _STRING, 5: "any_value", 6: "key_value", 12: _STRING},
    "key_value": {1: _STRING, 2: "any_value"},
    "any_value": {1: _STRING, 5: "array_value", 6: "key_value_list"},
    "array_value": {1: "any_value"},
    "key_value_list": {1: "key_value"},
}


def mend(body: bytes) -> tuple[bytes, int] | None:
    """(the request mended, how many values changed); None when nothing here was at fault, or the bytes are
    not protobuf at all."""
    mended = [0]
    try:
        result = _message(body, "request", 0, mended)
    except (IndexError, ValueError):
        return None
    return (result, mended[0]) if mended[0] else None


def _message(data: bytes, kind: str, depth: int, mended: list[int]) -> bytes:
    fields = _SCHEMA[kind]
    out = bytearray()
    position = 0
    while position < len(data):
        start = position
        tag, position = read_varint(data, position)
        holds = fields.get(tag >> 3) if tag & 7 == 2 else None
        if holds is None:
            position = skip_field(data, start)
            if position > len(data):
                raise IndexError("field cut short")
            out += data[start:position]
            continue
        length, position = read_varint(data, position)
        payload = data[position:position + length]
        if len(payload) != length:
            raise IndexError("field cut short")
        position += length
        out += varint(tag) + _length_prefixed(_value(payload, holds, depth, mended))
    return bytes(out)


def _value(payload: bytes, holds: str, depth: int, mended: list[int]) -> bytes:
    if holds == _STRING:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            mended[0] += 1
            return payload.decode("utf-8", errors="replace").encode("utf-8")
        return payload
    if holds == "any_value":
        if depth >= MAX_VALUE_DEPTH:
            mended[0] += 1
            return _CUT
        depth += 1
    return _message(payload, holds, depth, mended)


def _length_prefixed(payload: bytes) -> bytes:
    return varint(len(payload)) + payload

"""Protobuf wire encoding of the few OTLP shapes written on hot paths (agent records, verdict attributes),
and what the receiver's readers of wire bytes need (a varint, the end of a field).

Building protobuf messages field by field from Python costs several times more than writing the wire
format and letting the C implementation parse or merge it once. Shared by the agent (records) and the
receiver's anomaly processor (verdict attributes); tests on both sides check the bytes decode to what
the official encoders produce.

The C extensions read the same format through `otlpwire.h` (its varint reader, as `read_varint` here).

Wire-format reminders: a tag is `field_number << 3 | wire_type`; wire type 0 is a varint, 1 is 64-bit,
2 is length-delimited. AnyValue: string=1, bool=2, int=3, double=4, array=5; KeyValue: key=1, value=2;
LogRecord.attributes is field 6.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from core._otlpwire import count_log_records, count_parts
from core._otlpwire import mend as mend_values

# How many log records (and, in one walk, messages of any kind) a request's bytes hold, read without parsing, and
# a request with its faulty values mended (otlp_receiver/receivers/otlp/repair.py), in C.
__all__ = ["count_log_records", "count_parts", "mend_values"]

# The most log records a procsight receiver takes in one request (otlp_receiver/receivers/otlp/decode.py says
# why); the agent never batches more.
MAX_RECORDS_PER_REQUEST = 100_000
# And the most messages (lists, records, attributes, nested values): 40 for each record a request may hold.
# Each costs about 100 bytes parsed, so this bounds one request near 400 MB whatever its shape.
MAX_MESSAGES_PER_REQUEST = 40 * MAX_RECORDS_PER_REQUEST

TAG_STRING = b"\x0a"  # field 1, length-delimited: AnyValue.string_value, KeyValue.key, ArrayValue.values
TAG_VALUE = b"\x12"  # field 2, length-delimited: KeyValue.value
TAG_ARRAY = b"\x2a"  # field 5, length-delimited: AnyValue.array_value (also LogRecord.body)
TAG_ATTRIBUTE = b"\x32"  # field 6, length-delimited: LogRecord.attributes


def _varint_of(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 two's complement, as protobuf encodes negative int64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = [_varint_of(n) for n in range(1 << 14)]  # lengths and most ids: a table lookup


def varint(value: int) -> bytes:
    if 0 <= value < 16384:
        return _SMALL_VARINTS[value]
    if 16384 <= value < 2097152:  # pids and ports: three bytes
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
    return _varint_of(value)


def read_varint(data: bytes, position: int) -> tuple[int, int]:
    """(value, position after it) of the base-128 varint at `position`; IndexError when it is cut short."""
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise IndexError("varint longer than 10 bytes")


def skip_field(data: bytes, position: int) -> int:
    """The position after the field whose tag is at `position`; IndexError when it is cut short, ValueError
    for a group (wire types 3 and 4: not in OTLP)."""
    tag, position = read_varint(data, position)
    wire_type = tag & 7
    if wire_type == 0:
        return read_varint(data, position)[1]
    if wire_type == 1:
        return position + 8
    if wire_type == 2:
        length, position = read_varint(data, position)
        return position + length
    if wire_type == 5:
        return position + 4
    raise ValueError(f"wire type {wire_type} (a group) in an OTLP message")


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2) by number."""
    return length_delimited(varint(number << 3 | 2), payload)


# Half of a surrogate pair, which JSON may write alone (`"\ud800"`) and UTF-8 cannot carry.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def mend_lone_surrogates(value: str) -> str:
    """`value` with each lone surrogate replaced by U+FFFD, as the receiver mends invalid UTF-8 in the bytes."""
    return _LONE_SURROGATE.sub("\ufffd", value)


def text(value: str) -> bytes:
    # Protobuf strings must be valid UTF-8: lone surrogates (possible from JSON) stay visible as \udXXX.
    return value.encode("utf-8", errors="backslashreplace")


def any_value(value: Any) -> bytes:
    """An `AnyValue` message for str, bool, int, float, or a list/tuple of those."""
    if isinstance(value, str):
        return length_delimited(TAG_STRING, text(value))
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, tuple | list):
        return length_delimited(TAG_ARRAY, b"".join(map(array_item, value)))
    return length_delimited(TAG_STRING, text(str(value)))


def array_item(value: Any) -> bytes:
    """One entry of an `ArrayValue` (its field 1, an AnyValue)."""
    return length_delimited(TAG_STRING, any_value(value))


def key_value(key: str, value: Any) -> bytes:
    """A `KeyValue` message."""
    return length_delimited(TAG_STRING, text(key)) + length_delimited(TAG_VALUE, any_value(value))


def log_attribute(key: str, value: Any) -> bytes:
    """One `LogRecord.attributes` entry, ready to append to an encoded record or merge into one."""
    return length_delimited(TAG_ATTRIBUTE, key_value(key, value))

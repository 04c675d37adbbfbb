"""What makes two records the same event to normalise: a key read from a record's wire bytes.

Most records repeat: an agent sends the same executable, command line, user and directory again and again,
and only the process ids and the times change. The normaliser keeps what it made of a record under this key
(`Normalizer`), so a repeat costs one serialisation (C) and one walk over the record's top-level fields,
instead of reading every attribute through the protobuf runtime and normalising it again.

The key is the record's bytes without its two times (fields 1 and 11, which the event takes from the record
each time) and with each `process.pid` / `process.parent_pid` attribute that holds an int replaced by a
marker (the ids are returned beside the key). The bytes are upb's serialisation of a parsed message, so they
are canonical: one encoding per message, fields in order. The walk is exact, never a search: an attribute is
recognised only at a field boundary of the record, so text that merely contains those bytes (a hostile
command line) stays in the key, and records that differ anywhere else have different keys. Anything the walk
does not expect (a group, a duplicated id, an id that is not an int) gives no key: the record is normalised
in full, as before.
"""

from __future__ import annotations

from core.otlpwire import read_varint, skip_field

_ATTRIBUTE = 0x32  # LogRecord field 6 (attributes), length-delimited
_TIMES = (0x09, 0x59)  # LogRecord fields 1 (time_unix_nano) and 11 (observed_time_unix_nano), fixed64
# A KeyValue's key field, then its value field's tag: how each id attribute starts.
_PID = b"\n\x0bprocess.pid\x12"
_PARENT_PID = b"\n\x12process.parent_pid\x12"
_ID_KEY_LENGTHS = (len("process.pid"), len("process.parent_pid"))
_PID_MARK, _PARENT_PID_MARK = b"\x00\x01", b"\x00\x02"  # field number 0 never occurs: no record has these bytes
_INT_VALUE = 0x18  # AnyValue field 3 (int_value), varint

RecordKey = tuple[bytes, int | None, int | None]
"""(key, process.pid, process.parent_pid): the ids as the record's int_value, None where absent."""


def record_key(data: bytes) -> RecordKey | None:
    """The key of a LogRecord's serialised bytes, or None when the record is not of the shape keyed."""
    try:
        return _walk(data)
    except (IndexError, ValueError):  # cut short, or a group: not a whole OTLP record
        return None


def _walk(data: bytes) -> RecordKey | None:
    parts: list[bytes] = []
    kept_from = position = 0  # bytes from kept_from to position are copied into the key as they are
    end = len(data)
    ids: list[int | None] = [None, None]
    while position < end:
        tag = data[position]
        if tag < 0x80 and tag & 7 == 2:  # a length-delimited field with a one-byte tag: attributes, body, ...
            length = data[position + 1]
            if length < 0x80:  # a one-byte length, as most fields have: no call
                start = position + 2
            else:
                length, start = read_varint(data, position + 1)
            following = start + length
            if tag == _ATTRIBUTE and data[start + 1] in _ID_KEY_LENGTHS:  # a key as long as an id's: maybe one
                which = 0 if data.startswith(_PID, start) else 1 if data.startswith(_PARENT_PID, start) else -1
                if which >= 0:
                    value = _int_value(data, start + (len(_PID) if which == 0 else len(_PARENT_PID)), following)
                    if value is None or ids[which] is not None:
                        return None  # not an int, or the id twice: normalised in full
                    ids[which] = value
                    parts.append(data[kept_from:position])
                    parts.append(_PID_MARK if which == 0 else _PARENT_PID_MARK)
                    kept_from = following
            position = following
        elif tag in _TIMES:
            parts.append(data[kept_from:position])
            position = kept_from = position + 9
        else:  # any other field, an unknown one included: kept as it is
            position = skip_field(data, position)
    if position != end:
        return None
    parts.append(data[kept_from:])
    return b"".join(parts), ids[0], ids[1]


def _int_value(data: bytes, value_field: int, following: int) -> int | None:
    """The int of an AnyValue that holds only an int_value, starting at its length byte; None otherwise."""
    length = data[value_field]
    if length >= 0x80 or value_field + 1 + length != following or data[value_field + 1] != _INT_VALUE:
        return None
    value, after = read_varint(data, value_field + 2)
    if after != following:
        return None
    return value - (1 << 64) if value >= 1 << 63 else value  # int64 two's complement

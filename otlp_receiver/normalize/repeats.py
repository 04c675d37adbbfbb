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

The walk is C (`_repeats.c`, built by the repository's `setup.py`): in Python it cost about 8 us of the 14 us
a repeated record took to normalise, in C well under one. `tests/test_repeats.py` holds it to the contract
above, on whole records and on every cut and many corruptions of them.
"""

from __future__ import annotations

from otlp_receiver.normalize._repeats import record_key

RecordKey = tuple[bytes, int | None, int | None]
"""(key, process.pid, process.parent_pid): the ids as the record's int_value, None where absent."""

__all__ = ["RecordKey", "record_key"]

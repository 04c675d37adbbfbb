"""A bounded on-disk spool of encoded log records, in segment files, oldest first.

Records wait here while the endpoint is down (or the memory queue is full) and survive an agent restart.
Beyond `max_bytes` whole oldest segments are deleted, and their records counted as `dropped_oldest`.
A segment is a sequence of frames: a 4-byte little-endian length, then one encoded OTLP LogRecord.
A frame cut short by a crash is ignored when the segment is read back. Records the disk refuses (full,
failing) are cut off again, counted as `dropped_unwritable` and logged: the spool, and the agent, go on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
from pathlib import Path

from otel_agent.counters import Counters

log = logging.getLogger(__name__)

_SUFFIX = ".spool"
_LENGTH = struct.Struct("<I")


def _frame(records: list[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(record)) + record for record in records)


def _unframe(data: bytes) -> list[bytes]:
    records, offset = [], 0
    while offset + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        end = offset + _LENGTH.size + length
        if end > len(data):
            log.warning("spool segment ends in a partial record (%d bytes), ignored", len(data) - offset)
            break
        records.append(data[offset + _LENGTH.size:end])
        offset = end
    return records


class DiskSpool:
    def __init__(self, directory: str | Path, max_bytes: int, counters: Counters) -> None:
        self._directory = Path(directory)
        self._directory.mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_bytes
        # Sixteen segments per bound: dropping one loses a sixteenth, not everything.
        self._segment_bytes = max(4096, max_bytes // 16)
        self._counters = counters
        self._lock = threading.RLock()  # `bytes` is read both inside and outside locked sections
        self._sizes: dict[int, tuple[int, int]] = {}  # segment number -> (records, bytes)
        self._in_flight: set[int] = set()  # segments being replayed: never dropped under the reader
        self._current: int | None = None  # segment being appended to
        for path in sorted(self._directory.glob(f"*{_SUFFIX}")):
            if path.stem.isdigit():
                data = path.read_bytes()
                self._sizes[int(path.stem)] = (len(_unframe(data)), len(data))
        if self._sizes:
            log.info("spool %s holds %d records from before", self._directory, self.pending)

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(records for records, _ in self._sizes.values())

    @property
    def bytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._sizes.values())

    def _path(self, number: int) -> Path:
        return self._directory / f"{number:012d}{_SUFFIX}"

    def append(self, records: list[bytes]) -> None:
        if not records:
            return
        data = _frame(records)
        with self._lock:
            if self._current is None:
                self._current = max(self._sizes, default=0) + 1
                self._sizes[self._current] = (0, 0)
            count, size = self._sizes[self._current]
            if not self._write(self._path(self._current), size, data, len(records)):
                return
            self._sizes[self._current] = (count + len(records), size + len(data))
            if size + len(data) >= self._segment_bytes:
                self._current = None
            self._enforce_bound()
        self._counters.add("spooled", len(records))

    def _write(self, path: Path, size: int, data: bytes, records: int) -> bool:
        """Appends `data` to the segment of `size` bytes at `path`; False when the disk refused it (full, failing):
        the part written is cut off again, and the records are counted lost (the agent keeps no more in memory)."""
        try:
            with open(path, "ab") as handle:
                handle.write(data)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.truncate(path, size)
            self._counters.add("dropped_unwritable", records)
            log.error("spool %s cannot write %d records (%s): they are dropped; free space there", self._directory,
                      records, exc.strerror or exc)
            return False
        return True

    def _enforce_bound(self) -> None:
        while self.bytes > self._max_bytes:
            candidates = [n for n in sorted(self._sizes) if n not in self._in_flight]
            if not candidates:
                return
            oldest = candidates[0]
            if oldest == self._current:
                self._current = None
            records, _ = self._sizes.pop(oldest)
            self._path(oldest).unlink(missing_ok=True)
            self._counters.add("dropped_oldest", records)
            log.warning("spool over its bound (%d bytes): dropped the %d oldest records", self._max_bytes, records)

    def take_oldest(self) -> tuple[int, list[bytes]] | None:
        """The oldest segment's records, held until `release`; None if the spool is empty."""
        with self._lock:
            waiting = [n for n in sorted(self._sizes) if n not in self._in_flight and self._sizes[n][0]]
            if not waiting:
                return None
            number = waiting[0]
            if number == self._current:
                self._current = None  # new records go to a new segment while this one is read
            self._in_flight.add(number)
            data = self._path(number).read_bytes()
        return number, _unframe(data)

    def release(self, number: int, unsent: list[bytes]) -> None:
        """Ends a `take_oldest`: the segment is deleted, or rewritten with the records not sent."""
        with self._lock:
            self._in_flight.discard(number)
            path = self._path(number)
            if not unsent:
                self._sizes.pop(number, None)
                path.unlink(missing_ok=True)
                return
            data = _frame(unsent)
            temporary = path.with_suffix(".tmp")
            try:
                temporary.write_bytes(data)
                os.replace(temporary, path)
            except OSError as exc:  # the segment stays whole: its records sent already go again (duplicates)
                temporary.unlink(missing_ok=True)
                log.error("spool %s cannot rewrite %s (%s): its sent records will be sent again", self._directory,
                          path.name, exc.strerror or exc)
                return
            self._sizes[number] = (len(unsent), len(data))

"""A bounded on-disk spool of encoded log records, in segment files, oldest first.

Records wait here while the endpoint is down (or the memory queue is full) and survive an agent restart.
Beyond `max_bytes` whole oldest segments are deleted, and their records counted as `dropped_oldest`.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from otel_agent.counters import Counters

log = logging.getLogger(__name__)

_SUFFIX = ".jsonl"


class DiskSpool:
    def __init__(self, directory: str | Path, max_bytes: int, counters: Counters) -> None:
        self._directory = Path(directory)
        self._directory.mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_bytes
        # Sixteen segments per bound: dropping one loses a sixteenth, not everything.
        self._segment_bytes = max(4096, max_bytes // 16)
        self._counters = counters
        self._lock = threading.Lock()
        self._sizes: dict[int, tuple[int, int]] = {}  # segment number -> (records, bytes)
        self._in_flight: set[int] = set()  # segments being replayed: never dropped under the reader
        self._current: int | None = None  # segment being appended to
        for path in sorted(self._directory.glob(f"*{_SUFFIX}")):
            if path.stem.isdigit():
                data = path.read_bytes()
                self._sizes[int(path.stem)] = (data.count(b"\n"), len(data))
        if self._sizes:
            log.info("spool %s holds %d records from before", self._directory, self.pending)

    @property
    def pending(self) -> int:
        return sum(records for records, _ in self._sizes.values())

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self._sizes.values())

    def _path(self, number: int) -> Path:
        return self._directory / f"{number:012d}{_SUFFIX}"

    def append(self, lines: list[bytes]) -> None:
        if not lines:
            return
        data = b"".join(line + b"\n" for line in lines)
        with self._lock:
            if self._current is None:
                self._current = max(self._sizes, default=0) + 1
                self._sizes[self._current] = (0, 0)
            with open(self._path(self._current), "ab") as handle:
                handle.write(data)
            records, size = self._sizes[self._current]
            self._sizes[self._current] = (records + len(lines), size + len(data))
            if size + len(data) >= self._segment_bytes:
                self._current = None
            self._enforce_bound()
        self._counters.add("spooled", len(lines))

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
        return number, data.splitlines()

    def release(self, number: int, unsent: list[bytes]) -> None:
        """Ends a `take_oldest`: the segment is deleted, or rewritten with the records not sent."""
        with self._lock:
            self._in_flight.discard(number)
            path = self._path(number)
            if not unsent:
                self._sizes.pop(number, None)
                path.unlink(missing_ok=True)
                return
            data = b"".join(line + b"\n" for line in unsent)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(data)
            os.replace(temporary, path)
            self._sizes[number] = (len(unsent), len(data))

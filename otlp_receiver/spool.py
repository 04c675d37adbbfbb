"""The ingest spool: an on-disk write-ahead log of accepted requests.

A request is acknowledged to the client only after `append` returned, and `append` returns only
after the bytes are fsynced, so an acknowledged record survives a crash. Concurrent appends share
one fsync (group commit). Entries get consecutive sequence numbers; the pipeline reads them in
order, groups them into batches (recording each group durably so a replay forms the same batch,
which keeps batch ids - and so ClickHouse deduplication tokens - stable), and commits a group once
every exporter reported it. Fully committed segment files are deleted; on start-up every
uncommitted entry is read again.

Layout of `directory`:
  spool.id                 random id of this spool, part of every batch id (so a wiped spool never
                           reuses ids that ClickHouse still remembers)
  seg-<first seq>.log      entries: header (magic, seq, body length, crc32) + body: received time, record
                           count, tenant, client metadata (JSON, format PSL2; PSL1 entries have none), payload
  groups.log               text lines `G first last` (a batch was formed), `C first last` (committed)
                           and `W n` (everything up to n committed)

A torn write (power loss in the middle of an append) leaves a short or corrupt tail: it is detected
by the header/crc check at start-up, logged, counted and truncated; it was never acknowledged. A disk that
refuses a write (full, over quota, failing) leaves none: the part written is cut off again and `append`
raises SpoolWriteError, which the receivers answer as retryable (UNAVAILABLE / 503).

Corruption anywhere else (a flipped byte on disk) costs only the entries it hit: start-up and the
reader step over a corrupt region to the next intact entry (`_intact_entries`), log it, and count the
entries skipped that were not yet delivered (`procsight_spool_corrupt_entries_total`). Sequence
numbers are never reused: the next one is above every number a segment or groups.log remembers, since
a reused number would share its batch id (and ClickHouse deduplication token) with a delivered batch.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import json
import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from otlp_receiver.telemetry import Telemetry

log = logging.getLogger(__name__)

_MAGIC_V1 = 0x50534C31  # "PSL1": entries without client metadata (still read)
_MAGIC = 0x50534C32  # "PSL2"
_HEADER = struct.Struct("<IQII")  # magic, seq, body length, crc32(body)
_META = struct.Struct("<QIH")  # received unix ns, record count, tenant length
_METADATA_LENGTH = struct.Struct("<I")  # PSL2: length of the JSON client metadata after the tenant
_MAGICS = (_MAGIC, _MAGIC_V1)
_MAGIC_BYTES = tuple(struct.pack("<I", magic) for magic in _MAGICS)
_SEGMENT_PREFIX = "seg-"
# Retry hint for clients of a full spool: it drains at exporter speed, seconds rather than milliseconds.
FULL_RETRY_AFTER = 5.0


class SpoolFullError(Exception):
    """The spool reached its size bound: the client should retry later."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SpoolWriteError(Exception):
    """The disk refused the write (full, over quota, failing): the client should retry later. The request's
    entry was cut off again; only when the fsync failed may it still be delivered, besides the retry."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SpoolClosedError(Exception):
    """append() after close(): the receiver is shutting down."""


@dataclass(slots=True)
class SpoolEntry:
    seq: int
    tenant: str
    records: int
    received_ns: int
    payload: bytes  # the serialized ExportLogsServiceRequest
    metadata: dict[str, list[str]] = field(default_factory=dict)  # the client metadata batches are keyed by


@dataclass
class _Segment:
    first_seq: int
    path: Path
    last_seq: int = -1  # -1 while empty
    size: int = 0


@dataclass
class _Groups:
    """Batch groups formed (`formed`: first -> last) and committed ranges, from groups.log."""

    formed: dict[int, int] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)
    watermark: int = 0  # from a `W n` line: everything up to n was committed

    def highest_seq(self) -> int:
        return max([self.watermark, *self.formed.values(), *self.committed.values()])


def encode_entry(seq: int, tenant: str, records: int, received_ns: int, payload: bytes,
                 metadata: dict[str, list[str]] | None = None) -> bytes:
    tenant_bytes = tenant.encode("utf-8")
    metadata_bytes = json.dumps(metadata or {}, separators=(",", ":")).encode("utf-8")
    body = (_META.pack(received_ns, records, len(tenant_bytes)) + tenant_bytes
            + _METADATA_LENGTH.pack(len(metadata_bytes)) + metadata_bytes + payload)
    return _HEADER.pack(_MAGIC, seq, len(body), zlib.crc32(body)) + body


def _decode_body(seq: int, body: bytes, magic: int = _MAGIC) -> SpoolEntry:
    received_ns, records, tenant_len = _META.unpack_from(body)
    start = _META.size
    tenant = body[start:start + tenant_len].decode("utf-8")
    start += tenant_len
    metadata = {}
    if magic == _MAGIC:
        (metadata_len,) = _METADATA_LENGTH.unpack_from(body, start)
        start += _METADATA_LENGTH.size
        metadata = json.loads(body[start:start + metadata_len])
        start += metadata_len
    return SpoolEntry(seq, tenant, records, received_ns, body[start:], metadata)


class Spool:
    """Thread-safe. Writers call `append`; one reader calls `read`; the pipeline calls `form_group`
    and `commit`."""

    def __init__(self, directory: str | Path, max_bytes: int = 1 << 30, segment_bytes: int = 16 << 20,
                 fsync: bool = True, telemetry: Telemetry | None = None, name: str = "spool") -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.name = name
        self._fsync = fsync
        self._lock = threading.Lock()  # segments, write position, sizes
        self._sync_lock = threading.Lock()  # one fsync at a time; waiting appenders share it
        self._readable = threading.Condition(self._lock)
        self._closed = False
        self._refused_at = -FULL_RETRY_AFTER  # monotonic time of the last append refused for space
        self._segments: list[_Segment] = []
        self._write_file = None
        self._next_seq = 1
        self._written_seq = 0
        self._synced_seq = 0
        self._bytes = 0
        self._groups = _Groups()
        self._watermark = 0  # every seq <= watermark is committed
        self._read_seq = 0
        self._read_handle = None
        self._read_segment: _Segment | None = None
        self._metrics(telemetry)
        self._open()

    # -- opening and recovery ---------------------------------------------------------------------

    def _metrics(self, telemetry: Telemetry | None) -> None:
        telemetry = telemetry or Telemetry()
        self._depth_bytes = telemetry.gauge("procsight_spool_bytes", "Bytes in the ingest spool")
        self._depth_entries = telemetry.gauge("procsight_spool_uncommitted_entries",
                                              "Spool entries not yet delivered by every exporter")
        self._torn = telemetry.counter("procsight_spool_torn_tail_bytes_total",
                                       "Bytes truncated from a corrupt or torn spool tail at start-up")
        self._replayed = telemetry.counter("procsight_spool_replayed_entries_total",
                                           "Uncommitted spool entries found at start-up and replayed")
        self._corrupt = telemetry.counter("procsight_spool_corrupt_entries_total",
                                          "Acknowledged spool entries lost to corruption before delivery (skipped)")

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        id_file = self.directory / "spool.id"
        if not id_file.exists():
            _write_durably(id_file, uuid.uuid4().hex[:12] + "\n")
        self.spool_id = id_file.read_text().strip()
        self._groups = self._read_groups()
        for path in sorted(self.directory.glob(f"{_SEGMENT_PREFIX}*.log"), key=_segment_first_seq):
            self._segments.append(self._recover_segment(path))
        if self._segments:
            last = self._segments[-1]
            self._next_seq = max(last.first_seq, last.last_seq + 1)
        self._watermark = self._initial_watermark()
        self._next_seq = max(self._next_seq, self._watermark + 1, self._groups.highest_seq() + 1)
        self._rewrite_groups()
        self._delete_committed_segments()
        if not self._segments:
            self._new_segment()
        self._write_file = open(self._segments[-1].path, "ab", buffering=0)  # noqa: SIM115 - lives with the spool
        self._written_seq = self._synced_seq = self._next_seq - 1
        self._bytes = sum(s.size for s in self._segments)
        pending = self.uncommitted_entries()
        if pending:
            self._replayed.inc(pending, spool=self.name)
            log.info("spool %s: %d uncommitted entries will be replayed", self.directory, pending)
        self._update_gauges()

    def _recover_segment(self, path: Path) -> _Segment:
        """The segment's intact entries; what follows the last of them (a torn or corrupt tail) is cut."""
        segment = _Segment(first_seq=_segment_first_seq(path), path=path)
        with open(path, "rb") as handle:
            data = handle.read()
        good = 0
        for seq, offset, end in _intact_entries(data, segment.first_seq):
            if offset != good:
                log.error("spool %s: %d corrupt bytes before entry %d; entries %d..%d are lost unless they were "
                          "delivered", path, offset - good, seq, max(segment.last_seq + 1, segment.first_seq), seq - 1)
            segment.last_seq = seq
            good = end
        if good < len(data):
            torn = len(data) - good
            log.warning("spool %s: truncating %d bytes of a torn or corrupt tail (a torn write was never "
                        "acknowledged)", path, torn)
            self._torn.inc(torn, spool=self.name)
            with open(path, "r+b") as handle:
                handle.truncate(good)
                os.fsync(handle.fileno())
        segment.size = good
        return segment

    def _read_groups(self) -> _Groups:
        groups = _Groups()
        path = self.directory / "groups.log"
        if not path.exists():
            return groups
        for line in path.read_text(encoding="ascii", errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "W" and parts[1].isdigit():
                groups.watermark = int(parts[1])
                continue
            if len(parts) != 3 or parts[0] not in ("G", "C") or not (parts[1].isdigit() and parts[2].isdigit()):
                continue  # a torn last line
            target = groups.formed if parts[0] == "G" else groups.committed
            target[int(parts[1])] = int(parts[2])
        return groups

    def _initial_watermark(self) -> int:
        """Highest seq such that every entry up to it is committed (or gone with its segment)."""
        oldest = next((s.first_seq for s in self._segments if s.last_seq >= 0), self._next_seq)
        watermark = max(oldest - 1, self._groups.watermark)
        for first, last in sorted(self._groups.committed.items()):
            if first <= watermark + 1:
                watermark = max(watermark, last)
        return watermark

    def _rewrite_groups(self) -> None:
        """Keeps only what still matters (groups past the watermark), so groups.log stays small."""
        formed = {f: la for f, la in self._groups.formed.items() if f > self._watermark}
        committed = {f: la for f, la in self._groups.committed.items() if f > self._watermark}
        self._groups = _Groups(formed, committed, self._watermark)
        lines = [f"W {self._watermark}\n"]
        lines += [f"G {f} {la}\n" for f, la in sorted(formed.items())]
        lines += [f"C {f} {la}\n" for f, la in sorted(committed.items())]
        _write_durably(self.directory / "groups.log", "".join(lines))
        self._groups_file = open(self.directory / "groups.log", "a", encoding="ascii")  # noqa: SIM115

    def _segment_path(self, first_seq: int) -> Path:
        return self.directory / f"{_SEGMENT_PREFIX}{first_seq:020d}.log"

    def _new_segment(self) -> None:
        path = self._segment_path(self._next_seq)
        path.touch()
        _fsync_dir(self.directory)
        self._segments.append(_Segment(first_seq=self._next_seq, path=path))

    # -- writing ----------------------------------------------------------------------------------

    def append(self, payload: bytes, tenant: str, records: int, received_ns: int | None = None,
               metadata: dict[str, list[str]] | None = None) -> int:
        """Writes one request durably and returns its sequence number.

        Raises SpoolFullError when the spool is at its size bound (nothing was written), SpoolWriteError when the
        disk refused the entry.
        """
        received_ns = received_ns if received_ns is not None else time.time_ns()
        with self._lock:
            if self._closed:
                raise SpoolClosedError(f"spool {self.name} is closed")
            seq = self._next_seq
            data = encode_entry(seq, tenant, records, received_ns, payload, metadata)
            active = self._segments[-1]
            if self._bytes + len(data) > self.max_bytes and active.size and active.last_seq <= self._watermark:
                # Everything written is committed: start a new segment so the old one can be reclaimed.
                self._rotate()
                self._delete_committed_segments()
            if self._bytes + len(data) > self.max_bytes:
                self._refused_at = time.monotonic()
                raise SpoolFullError(f"spool {self.name} is full ({self._bytes} of {self.max_bytes} bytes)",
                                     retry_after=FULL_RETRY_AFTER)
            try:
                active = self._segments[-1]
                if active.size and active.size + len(data) > self.segment_bytes:
                    self._rotate()
                    active = self._segments[-1]
                self._write_entry(active, data)
            except OSError as exc:
                raise self._write_failed(exc) from exc
            self._next_seq = seq + 1
            self._written_seq = seq
            active.size += len(data)
            active.last_seq = seq
            self._bytes += len(data)
            self._depth_bytes.set(self._bytes, spool=self.name)
        try:
            self._sync_through(seq)
        except OSError as exc:
            raise self._write_failed(exc) from exc
        with self._lock:
            self._readable.notify_all()
        return seq

    def _write_entry(self, active: _Segment, data: bytes) -> None:
        """All of `data` at the end of the active segment, or none of it: a short write (a disk filling up) is
        continued, and a failed one cut off again, so no torn entry is left between intact ones."""
        written = 0
        view = memoryview(data)
        try:
            while written < len(data):
                count = self._write_file.write(view[written:])
                if not count:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += count
        except OSError:
            with contextlib.suppress(OSError):  # a disk failing this far leaves a torn entry the reader steps over
                os.ftruncate(self._write_file.fileno(), active.size)
            raise

    def _write_failed(self, exc: OSError) -> SpoolWriteError:
        return SpoolWriteError(f"spool {self.name} cannot write to {self.directory}: {exc.strerror or exc}; free space "
                               "there, or fix the disk", retry_after=FULL_RETRY_AFTER)

    def _rotate(self) -> None:
        """The next segment becomes the active one; a disk refusing it (OSError) leaves the current one active."""
        self._sync_file()
        self._synced_seq = max(self._synced_seq, self._written_seq)
        path = self._segment_path(self._next_seq)
        new_file = open(path, "ab", buffering=0)  # noqa: SIM115 - lives with the spool
        try:
            _fsync_dir(self.directory)
        except OSError:
            new_file.close()
            path.unlink(missing_ok=True)
            raise
        self._write_file.close()
        self._write_file = new_file
        self._segments.append(_Segment(first_seq=self._next_seq, path=path))

    def _sync_through(self, seq: int) -> None:
        """Group commit: whoever holds the sync lock fsyncs everything written so far."""
        if not self._fsync:
            self._synced_seq = max(self._synced_seq, seq)
            return
        with self._sync_lock:
            if self._synced_seq >= seq:
                return  # another appender's fsync (or a rotation) covered this entry
            with self._lock:
                target = self._written_seq
                # A duplicate descriptor: a rotation may close the file while this fsync runs.
                fd = os.dup(self._write_file.fileno())
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._synced_seq = max(self._synced_seq, target)

    def _sync_file(self) -> None:
        if self._fsync:
            os.fsync(self._write_file.fileno())

    # -- reading ----------------------------------------------------------------------------------

    def read(self, timeout: float | None = None) -> SpoolEntry | None:
        """The next durable, uncommitted entry in sequence order (one reader only), or None on timeout
        or close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                self._skip_committed()
                while self._read_seq > self._synced_seq and not self._closed:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return None
                    self._readable.wait(remaining)
                if self._read_seq > self._synced_seq:
                    return None
                seq = self._read_seq
                index = bisect.bisect_right([s.first_seq for s in self._segments], seq) - 1
                segment = self._segments[max(index, 0)]
                after = self._segments[index + 1].first_seq if index + 1 < len(self._segments) else None
            if index < 0:  # the entries' segment was lost (corrupt through to its end, then reclaimed)
                self._skip_corrupt(seq, segment.first_seq)
                continue
            entry = self._read_entry(segment, seq)
            if entry is None:  # nothing intact from `seq` to the end of the segment
                self._skip_corrupt(seq, after if after is not None else self._synced_seq + 1)
                continue
            if entry.seq > seq:
                self._skip_corrupt(seq, entry.seq)
            self._read_seq = entry.seq + 1
            return entry

    def _skip_corrupt(self, first: int, next_intact: int) -> None:
        """Entries first..next_intact-1 could not be read: those not yet committed are lost. Unless a
        group recorded before a restart holds them (its batch commits them), they are committed here, so
        the watermark (and segment reclamation) can pass them."""
        with self._lock:
            lost = [seq for seq in range(first, next_intact) if not self._is_committed(seq)]
            for seq in lost:
                group = next(((f, la) for f, la in self._groups.formed.items() if f <= seq <= la), None)
                if group is None:
                    self._commit_locked(seq, seq)
                elif first <= group[0] and group[1] < next_intact and seq == group[0]:
                    self._commit_locked(*group)  # the whole group is lost: no batch will commit it
        if lost:
            self._corrupt.inc(len(lost), spool=self.name)
            log.error("spool %s: entries %d..%d are corrupt; %d acknowledged entries that were not yet delivered "
                      "are lost", self.directory, first, next_intact - 1, len(lost))
        self._read_seq = max(self._read_seq, next_intact)

    def _is_committed(self, seq: int) -> bool:
        return seq <= self._watermark or any(f <= seq <= la for f, la in self._groups.committed.items())

    def _skip_committed(self) -> None:
        self._read_seq = max(self._read_seq, self._watermark + 1)
        while self._read_seq in self._groups.committed:
            self._read_seq = self._groups.committed[self._read_seq] + 1

    def _read_entry(self, segment: _Segment, seq: int) -> SpoolEntry | None:
        """Entry `seq` (fully written and synced) from its segment file, or the next intact one after it
        when it is corrupt; None when nothing intact follows in the segment."""
        if self._read_handle is None or self._read_segment is not segment:
            if self._read_handle is not None:
                self._read_handle.close()
            self._read_handle = open(segment.path, "rb")  # noqa: SIM115 - kept open across reads
            self._read_segment = segment
        handle = self._read_handle
        while True:
            header = handle.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return self._resync(segment, seq)
            magic, entry_seq, length, crc = _HEADER.unpack(header)
            if magic not in _MAGICS or entry_seq > seq:
                return self._resync(segment, seq)
            if entry_seq < seq:  # committed before a restart, or skipped: step over it
                handle.seek(length, os.SEEK_CUR)
                continue
            body = handle.read(length)
            if len(body) != length or zlib.crc32(body) != crc:
                return self._resync(segment, seq)
            return _decode_body(entry_seq, body, magic)

    def _resync(self, segment: _Segment, seq: int) -> SpoolEntry | None:
        """The first intact entry numbered `seq` or later, found by walking the whole segment (rare: only
        after corruption); the read handle is left just after it."""
        assert self._read_handle is not None
        self._read_handle.seek(0)
        data = self._read_handle.read()
        for entry_seq, offset, end in _intact_entries(data, segment.first_seq):
            if entry_seq >= seq:
                self._read_handle.seek(end)
                return _decode_body(entry_seq, data[offset + _HEADER.size:end], _magic_at(data, offset))
        return None

    # -- groups and commits -----------------------------------------------------------------------

    def recorded_group_of(self, seq: int) -> tuple[int, int] | None:
        """(first, last) of a batch recorded before a restart that holds `seq` (its first entries may have
        been lost to corruption; the batch keeps its id all the same)."""
        with self._lock:
            return next(((first, last) for first, last in self._groups.formed.items() if first <= seq <= last), None)

    def form_group(self, first_seq: int, last_seq: int) -> str:
        """Records durably that entries first..last form one batch; returns its stable batch id."""
        with self._lock:
            if self._groups.formed.get(first_seq) != last_seq:
                self._groups.formed[first_seq] = last_seq
                self._groups_file.write(f"G {first_seq} {last_seq}\n")
                self._groups_file.flush()
                if self._fsync:
                    os.fsync(self._groups_file.fileno())
        return self.batch_id(first_seq, last_seq)

    def batch_id(self, first_seq: int, last_seq: int) -> str:
        return f"{self.spool_id}-{first_seq}-{last_seq}"

    def commit(self, first_seq: int, last_seq: int) -> None:
        """Every exporter reported the group: its entries are never replayed again.

        Not fsynced: losing a commit in a crash means a replay, which exporters deduplicate.
        """
        with self._lock:
            self._commit_locked(first_seq, last_seq)

    def _commit_locked(self, first_seq: int, last_seq: int) -> None:
        self._groups.committed[first_seq] = last_seq
        self._groups_file.write(f"C {first_seq} {last_seq}\n")
        self._groups_file.flush()
        while self._watermark + 1 in self._groups.committed:
            first = self._watermark + 1
            self._watermark = self._groups.committed.pop(first)
            self._groups.formed.pop(first, None)
        self._delete_committed_segments()
        self._update_gauges()

    def _delete_committed_segments(self) -> None:
        # The active (last) segment is always kept: its name carries the next sequence number.
        while len(self._segments) > 1 and self._segments[0].last_seq <= self._watermark:
            segment = self._segments.pop(0)
            segment.path.unlink(missing_ok=True)
            self._bytes -= segment.size

    # -- state ------------------------------------------------------------------------------------

    def uncommitted_entries(self) -> int:
        last = self._next_seq - 1
        committed = sum(la - f + 1 for f, la in self._groups.committed.items())
        return max(0, last - self._watermark - committed)

    def size_bytes(self) -> int:
        return self._bytes

    def is_full(self) -> bool:
        """Refusing appends: one was refused for space in the last FULL_RETRY_AFTER seconds, or the bytes
        reached the bound."""
        return self._bytes >= self.max_bytes or time.monotonic() - self._refused_at < FULL_RETRY_AFTER

    def _update_gauges(self) -> None:
        self._depth_bytes.set(self._bytes, spool=self.name)
        self._depth_entries.set(self.uncommitted_entries(), spool=self.name)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._readable.notify_all()
        with self._sync_lock:
            self._sync_file()
            self._write_file.close()
        self._groups_file.close()
        if self._read_handle is not None:
            self._read_handle.close()


def _intact_entries(data: bytes, first_seq: int) -> Iterator[tuple[int, int, int]]:
    """(seq, offset, end) of each intact entry of a segment's bytes, in order.

    An entry is intact when its header has the magic, its length fits, and its crc matches. The
    first must be `first_seq` and each the next number, so a flipped sequence byte cannot pass; after a
    corrupt region the walk resumes at the next intact entry whose number the region could have held
    (every lost entry takes at least a header's bytes)."""
    expected = first_seq
    position = 0
    while position + _HEADER.size <= len(data):
        entry = _intact_at(data, position)
        if entry is not None and entry[0] == expected:
            yield expected, position, entry[1]
            expected += 1
            position = entry[1]
            continue
        candidate = _find_magic(data, position + 1)
        while candidate != -1:
            entry = _intact_at(data, candidate)
            if entry is not None and expected <= entry[0] <= expected + (candidate - position) // _HEADER.size:
                break
            candidate = _find_magic(data, candidate + 1)
        if candidate == -1 or entry is None:
            return
        position, expected = candidate, entry[0]


def _intact_at(data: bytes, position: int) -> tuple[int, int] | None:
    """(seq, end) of the entry at `position` if its header and crc check out."""
    if position + _HEADER.size > len(data):
        return None
    magic, seq, length, crc = _HEADER.unpack_from(data, position)
    start = position + _HEADER.size
    end = start + length
    if magic not in _MAGICS or length < _META.size or end > len(data) or zlib.crc32(data[start:end]) != crc:
        return None
    return seq, end


def _find_magic(data: bytes, start: int) -> int:
    """The offset of the next header magic (of either format) at or after `start`, or -1."""
    found = [offset for offset in (data.find(magic, start) for magic in _MAGIC_BYTES) if offset != -1]
    return min(found, default=-1)


def _magic_at(data: bytes, offset: int) -> int:
    return int(_HEADER.unpack_from(data, offset)[0])


def _segment_first_seq(path: Path) -> int:
    return int(path.stem[len(_SEGMENT_PREFIX):])


def _write_durably(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["Spool", "SpoolClosedError", "SpoolEntry", "SpoolFullError", "SpoolWriteError"]

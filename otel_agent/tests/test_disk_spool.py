"""The disk spool on its own: framing, a crash-torn tail, release with leftovers, the size bound, a full disk."""

from __future__ import annotations

import pytest

from otel_agent.counters import Counters
from otel_agent.spool import DiskSpool
from testing import NoSmallFileSystem, fill, small_file_system


def test_records_come_back_in_order_and_leftovers_are_kept(tmp_path):
    spool = DiskSpool(tmp_path, 1 << 20, Counters())
    records = [f"record {i}\n\x00 with binary".encode() for i in range(10)]
    spool.append(records)
    number, taken = spool.take_oldest()
    assert taken == records
    spool.release(number, taken[7:])
    assert spool.pending == 3
    assert DiskSpool(tmp_path, 1 << 20, Counters()).take_oldest()[1] == records[7:]  # as a restart sees it


def test_a_record_torn_by_a_crash_is_ignored_and_the_rest_kept(tmp_path):
    spool = DiskSpool(tmp_path, 1 << 20, Counters())
    spool.append([b"first", b"second"])
    (segment,) = tmp_path.glob("*.spool")
    with open(segment, "ab") as handle:
        handle.write(b"\x20\x00\x00\x00half a rec")  # announces 32 bytes, holds 10
    reopened = DiskSpool(tmp_path, 1 << 20, Counters())
    assert reopened.pending == 2
    assert reopened.take_oldest()[1] == [b"first", b"second"]


def test_bound_drops_whole_oldest_segments_and_counts_their_records(tmp_path):
    counters = Counters()
    spool = DiskSpool(tmp_path, 64 * 1024, counters)
    for batch in range(100):
        spool.append([f"{batch:04d}-{i:03d}".encode() * 10 for i in range(10)])
    assert spool.bytes <= 64 * 1024
    assert counters.get("dropped_oldest") + spool.pending == 1000
    assert counters.get("spooled") == 1000
    _, taken = spool.take_oldest()
    assert taken[0].startswith(f"{counters.get('dropped_oldest') // 10:04d}".encode())  # newest survived, in order


def test_a_full_disk_drops_what_it_cannot_hold_counts_it_and_the_spool_goes_on(tmp_path, caplog):
    """The disk's OSError went up into whoever appended: the emitter's worker thread, which has no handler for it."""
    try:
        with small_file_system(tmp_path / "disk") as disk:
            counters = Counters()
            spool = DiskSpool(disk / "spool", 1 << 20, counters)
            spool.append([b"kept"])
            (segment,) = (disk / "spool").glob("*.spool")
            size = segment.stat().st_size
            filler = fill(disk, leave=16 * 1024)
            spool.append([b"x" * 100_000, b"y" * 100_000])  # part of it fits: written, then cut off again
            assert counters.get("dropped_unwritable") == 2 and segment.stat().st_size == size
            assert "cannot write 2 records (No space left on device)" in caplog.text
            filler.unlink()
            spool.append([b"after"])
            assert spool.pending == 2 and DiskSpool(disk / "spool", 1 << 20, Counters()).take_oldest()[1] == [
                b"kept", b"after"]
    except NoSmallFileSystem as exc:
        pytest.skip(f"NOT CHECKED: {exc}")

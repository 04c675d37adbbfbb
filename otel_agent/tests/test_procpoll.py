"""/proc polling on real processes: a poll that lands inside an exec must not lose the process.

Inside an exec the kernel sets the new name before the new argv exists, so for a moment /proc shows
`sleep` with nothing to read. The moment is too short to hit on purpose, so one test stands in for it:
the first read of the child comes back empty, as it does then (`first_read_empty`).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from core.event import ProcessEvent
from otel_agent.counters import Counters
from otel_agent.procpoll import ProcPollSource
from testing import spawn_executed, wait_until


@pytest.fixture
def source() -> Iterator[tuple[ProcPollSource, list[ProcessEvent], Counters]]:
    counters = Counters()
    polled = ProcPollSource(interval=3600.0, counters=counters)  # the thread never polls: the test does
    polled.open()
    events: list[ProcessEvent] = []
    polled.start(events.extend)
    try:
        yield polled, events, counters
    finally:
        polled.stop()


def first_read_empty(polled: ProcPollSource, pid: int) -> None:
    """Makes the first enrichment of `pid` find nothing, as a poll inside its exec does."""
    complete = polled._enricher.complete
    missed: list[int] = []

    def complete_after_one_miss(event: ProcessEvent, cgroup_id: int | None = None) -> bool:
        if event.pid == pid and not missed:
            missed.append(pid)
            return False  # argv not there yet: every field left empty
        return complete(event, cgroup_id)

    polled._enricher.complete = complete_after_one_miss  # type: ignore[method-assign]


def count_reads(polled: ProcPollSource, pid: int) -> list[int]:
    """The enrichments of `pid` from now on, one entry each."""
    complete = polled._enricher.complete
    reads: list[int] = []

    def counting_complete(event: ProcessEvent, cgroup_id: int | None = None) -> bool:
        if event.pid == pid:
            reads.append(pid)
        return complete(event, cgroup_id)

    polled._enricher.complete = counting_complete  # type: ignore[method-assign]
    return reads


def reported(events: list[ProcessEvent], pid: int) -> list[str]:
    return [event.executable_name for event in events if event.pid == pid]


def reported_once(polled, events: list[ProcessEvent], pid: int) -> None:  # type: ignore[no-untyped-def]
    """The child is reported as sleep, and the next poll does not report it again."""
    assert reported(events, pid) == ["sleep"]
    polled.poll()
    assert reported(events, pid) == ["sleep"]


@contextlib.contextmanager
def killed_at_end(child: subprocess.Popen) -> Iterator[subprocess.Popen]:
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def test_a_process_caught_inside_its_exec_is_reported_at_the_next_poll(source) -> None:
    polled, events, _ = source
    with killed_at_end(spawn_executed(["/bin/sleep", "5"])) as child:
        first_read_empty(polled, child.pid)
        polled.poll()
        assert reported(events, child.pid) == []
        polled.poll()
        reported_once(polled, events, child.pid)


def test_an_exec_between_a_polls_table_and_its_report_is_reported_once(source) -> None:
    """The table shows the child under its parent's name; it execs before it is read, so the report is of
    the new program. The next poll must not take the new name for another exec."""
    polled, events, _ = source
    child = _held_before_exec()
    table = polled._table

    def table_then_exec() -> dict[int, tuple[int, str]]:
        taken = table()
        _release(child)
        return taken

    with killed_at_end(child):
        polled._table = table_then_exec  # type: ignore[method-assign]
        polled.poll()
        polled._table = table  # type: ignore[method-assign]
        reported_once(polled, events, child.pid)


def test_an_exec_during_a_report_is_reported_at_the_next_poll(source) -> None:
    """The report reads the child as its parent's fork; it execs right after. The next poll must report the
    new program, not take its name for the one already reported."""
    polled, events, _ = source
    child = _held_before_exec()
    complete = polled._enricher.complete

    def complete_then_exec(event: ProcessEvent, cgroup_id: int | None = None) -> bool:
        done = complete(event, cgroup_id)
        if event.pid == child.pid and child.stdin is not None and not child.stdin.closed:
            _release(child)
        return done

    with killed_at_end(child):
        polled._enricher.complete = complete_then_exec  # type: ignore[method-assign]
        polled.poll()
        assert "sleep" not in reported(events, child.pid)  # read before its exec
        polled.poll()
        assert reported(events, child.pid)[-1:] == ["sleep"]


def _held_before_exec() -> subprocess.Popen:
    """A child that execs sleep once a byte arrives on its stdin (`_release`)."""
    return spawn_executed([sys.executable, "-c", "import os, sys; sys.stdin.read(1); "
                                                 "os.execv('/bin/sleep', ['sleep', '5'])"], stdin=subprocess.PIPE)


def _release(child: subprocess.Popen) -> None:
    assert child.stdin is not None
    child.stdin.write(b"x")
    child.stdin.close()
    wait_until(lambda: _comm(child.pid) == "sleep" and _argv0(child.pid) == "sleep", 10, "the child's exec")


def test_a_process_with_nothing_to_read_twice_is_counted_and_left(source) -> None:
    polled, events, counters = source
    zombie = subprocess.Popen(["/bin/true"])
    try:
        wait_until(lambda: _state(zombie.pid) == "Z", 10, "the child to exit (a zombie until reaped)")
        reads = count_reads(polled, zombie.pid)
        polled.poll()  # nothing to read: looked at again next poll
        polled.poll()  # nothing again: counted, and known from now on
        assert len(reads) == 2
        assert counters.get("enrich_missed") >= 1  # other new zombies on the host count too
        polled.poll()
        assert reported(events, zombie.pid) == []
        assert len(reads) == 2  # not read a third time
    finally:
        zombie.wait()


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as comm:
        return comm.read().strip()


def _argv0(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().split(b"\0")[0].decode()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        raw = stat.read()
    return raw[raw.rfind(b")") + 2:].split()[0].decode()

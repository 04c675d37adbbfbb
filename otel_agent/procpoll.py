"""Polling /proc: the last-resort capture, needing nothing but a readable /proc.

It compares the process table every `proc_poll_interval` and reports processes that appeared since.
Anything that starts and exits between two polls is never seen: this mode misses short-lived
processes (most of a shell pipeline, `curl | sh` itself), and says so when it starts.
"""

from __future__ import annotations

import logging
import os

from core.event import ProcessEvent
from otel_agent.capture import CaptureUnavailable, ThreadedSource
from otel_agent.counters import Counters
from otel_agent.procfs import Clock, Enricher, list_pids, read_stat

log = logging.getLogger(__name__)


class ProcPollSource(ThreadedSource):
    thread_name = "procsight-procpoll"
    name = "proc"

    def __init__(self, interval: float, counters: Counters) -> None:
        super().__init__()
        self._interval = interval
        self._counters = counters
        self._clock = Clock()
        self._enricher = Enricher()
        # pid -> (start ticks, comm): a reused pid has another start time, an exec changes comm
        self._known: dict[int, tuple[int, str]] = {}
        self._retrying: set[int] = set()  # seen last poll with nothing to read yet (see poll)

    def open(self) -> None:
        if not os.path.exists(f"/proc/{os.getpid()}/stat"):
            raise CaptureUnavailable("/proc is not mounted")
        self._known = self._table()
        log.warning("polling /proc every %.2fs: processes living shorter than that are missed", self._interval)

    @staticmethod
    def _table() -> dict[int, tuple[int, str]]:
        table = {}
        for pid in list_pids():
            stat = read_stat(pid)
            if stat is not None:
                table[pid] = stat
        return table

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

    def poll(self) -> None:
        table = self._table()
        self._clock.refresh()
        retrying = set()
        for pid, (ticks, comm) in sorted(table.items(), key=lambda item: item[1][0]):
            # New, or the same process under a new name: it exec'd since (a poll can land between fork and exec).
            if self._known.get(pid) == (ticks, comm):
                continue
            # The name just before the report: an exec since this poll's table is reported now and must not
            # read as another exec next poll; one during the report shows as a new name next poll (a second
            # report at worst, never a lost one).
            before = read_stat(pid)
            if self._report(pid, ticks):
                if before is not None and before[0] == ticks:
                    table[pid] = before
                continue
            if pid in self._retrying:
                self._counters.add("enrich_missed")  # nothing to read twice: gone, or a zombie
            else:
                # Caught inside its exec (the new name is set before the new argv is): once more next poll.
                retrying.add(pid)
                del table[pid]
        self._known, self._retrying = table, retrying

    def _report(self, pid: int, ticks: int) -> bool:
        """Reports the process; False when /proc had nothing of it to read."""
        event = ProcessEvent(executable_name="", command_line="", pid=pid,
                             timestamp=self._clock.from_boot_ticks(ticks))
        alive = self._enricher.complete(event)
        if not event.executable_name:
            return False
        if not alive:
            self._counters.add("enrich_missed")
        self._sink([event])
        return True

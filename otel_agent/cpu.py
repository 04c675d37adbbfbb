"""Periodic CPU sampling: long-running processes above a threshold (the coin-miner heuristic).

Every `cpu_interval` each process's CPU time is compared with the previous sample; a process that used
at least `cpu_threshold_percent` of one core over the whole interval is reported as a `process.cpu`
record carrying `process.cpu.utilization` (percent), with its command line like an exec record.
"""

from __future__ import annotations

import time

from core.event import CPU_SAMPLE, ProcessEvent
from otel_agent.capture import ThreadedSource
from otel_agent.counters import Counters
from otel_agent.procfs import CLOCK_TICKS, Enricher, list_pids


def _cpu_ticks(pid: int) -> tuple[int, int] | None:
    """(start ticks, utime + stime ticks) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()
    try:
        return int(fields[19]), int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return None


class CpuSampler(ThreadedSource):
    thread_name = "procsight-cpu"
    name = "cpu"

    def __init__(self, interval: float, threshold_percent: float, counters: Counters) -> None:
        super().__init__()
        self._interval = interval
        self._threshold = threshold_percent
        self._counters = counters
        self._enricher = Enricher()
        self._previous: dict[int, tuple[int, int]] = {}
        self._previous_at = 0.0

    def open(self) -> None:
        self._sample()

    def _sample(self) -> dict[int, float]:
        """Samples all processes; returns percent of one core since the previous sample, per pid."""
        now = time.monotonic()
        elapsed = now - self._previous_at
        current = {pid: ticks for pid in list_pids() if (ticks := _cpu_ticks(pid)) is not None}
        usage = {}
        for pid, (start, used) in current.items():
            before = self._previous.get(pid)
            if before is not None and before[0] == start and elapsed > 0:
                usage[pid] = (used - before[1]) / CLOCK_TICKS / elapsed * 100.0
        self._previous, self._previous_at = current, now
        return usage

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

    def poll(self) -> None:
        for pid, percent in self._sample().items():
            if percent >= self._threshold:
                self._report(pid, percent)

    def _report(self, pid: int, percent: float) -> None:
        event = ProcessEvent(executable_name="", command_line="", event_name=CPU_SAMPLE, pid=pid,
                             timestamp=time.time(), cpu_percent=round(percent, 1))
        if self._enricher.complete(event):  # still running when read
            self._sink([event])

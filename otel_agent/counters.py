"""Thread-safe event counters of the agent, logged periodically and at exit."""

from __future__ import annotations

import threading
from collections import Counter

# Every counter the agent keeps, in the order they are logged, so a zero still shows.
NAMES = (
    "captured",  # events taken from the capture source
    "lost_in_kernel",  # events the kernel could not hand over (ring/perf buffer full, netlink overrun)
    "truncated",  # execs whose argv was cut at the configured limits
    "self_filtered",  # the agent's own network events, not reported (its export traffic)
    "enrich_missed",  # processes gone before /proc could be read (short-lived): fields left empty
    "errors",  # captured events that failed in processing (each logged with its traceback)
    "spooled",  # records written to the disk spool
    "dropped_oldest",  # spooled records deleted unsent because the spool reached its size bound
    "dropped_unwritable",  # records the spool's disk refused (full or failing): lost, logged as errors
    "exported",  # records the endpoint accepted
    "export_failures",  # export calls that failed (records went to the spool)
)


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Counter[str] = Counter({name: 0 for name in NAMES})

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def get(self, name: str) -> int:
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def describe(self) -> str:
        return " ".join(f"{name}={value}" for name, value in self.snapshot().items())

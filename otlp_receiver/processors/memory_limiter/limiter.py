"""`memory_limiter`: refuses new data while the receiver uses too much memory.

Memory is measured every `check_interval`: the resident set of this process and of every process it
started (the anomaly processor's scoring child, the ClickHouse encoder), since a child's memory is the
receiver's as much as its own. Above the soft limit (limit minus spike) the limiter refuses: as the
pipeline's `AdmissionController` it makes the receivers answer UNAVAILABLE / 503 with a retry hint,
as the Collector's limiter does. Above the soft limit it first gives freed memory back: a garbage collection,
and glibc's `malloc_trim`, since buffers freed by grpc's core and by decoders stay in the heap's arenas and
count as resident (100 held 4 MB gRPC calls: 407 MB resident before, 792 MB while held, 683 MB after they
ended), and would keep the limiter refusing every tenant. Below the soft limit data flows again. Data already
acknowledged is in the spool and keeps flowing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
from collections.abc import Callable

import psutil

from otlp_receiver.component import Backpressure, LogBatch
from otlp_receiver.processors.memory_limiter.config import MIB, Config
from otlp_receiver.processors.memory_limiter.total import total_memory
from otlp_receiver.telemetry import Telemetry

RETRY_AFTER = 5.0  # seconds a refused client is asked to wait

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[], object]:
    """glibc's `malloc_trim(0)`, or a no-op on a C library without it."""
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Collects garbage and returns the heap's free pages to the system."""
    gc.collect()
    _TRIM()


def resident_bytes(process: psutil.Process | None = None) -> int:
    """Resident memory of a process (this one by default) and all its descendants (a child that exited
    meanwhile counts 0)."""
    process = process or psutil.Process()
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            continue
    return total


class MemoryLimiter:
    def __init__(self, config: Config, name: str = "memory_limiter", telemetry: Telemetry | None = None,
                 measure: Callable[[], int] = resident_bytes) -> None:
        telemetry = telemetry or Telemetry()
        self.config = config
        self.name = name
        _, self.soft_limit = config.limits_bytes(total_memory())  # the hard limit is the soft one plus the spike
        self._measure = measure
        self._refusing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gauge = telemetry.gauge("procsight_memory_limiter_refusing",
                                      "1 while the memory limiter refuses new data")
        self._rss = telemetry.gauge("procsight_process_resident_memory_bytes",
                                    "Resident memory of the receiver and the processes it started")

    def start(self) -> None:
        self.check()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-check", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def admit(self) -> None:
        if self._refusing:
            raise Backpressure("memory limit reached, retry later", retry_after=RETRY_AFTER, reason="memory_limit",
                               unavailable=True)

    def process(self, batch: LogBatch) -> LogBatch:
        return batch  # its work is admission, before a request is spooled

    @property
    def refusing(self) -> bool:
        return self._refusing

    def check(self) -> None:
        used = self._measure()
        if used >= self.soft_limit:
            release_free_memory()
            used = self._measure()
        refusing = used >= self.soft_limit
        if refusing != self._refusing:
            log.warning("memory limiter %s: %s (%d MiB used, soft limit %d MiB)", self.name,
                        "refusing new data" if refusing else "accepting data again", used // MIB,
                        self.soft_limit // MIB)
        self._refusing = refusing
        self._gauge.set(int(refusing), processor=self.name)
        self._rss.set(used)

    def _run(self) -> None:
        while not self._stop.wait(self.config.check_interval):
            self.check()

"""`memory_limiter`: refuses new data while the process uses too much memory.

The Collector's keys: `check_interval`, `limit_mib`, `spike_limit_mib`, `limit_percentage`,
`spike_limit_percentage`. Memory is measured every `check_interval` (resident set size). Above the
soft limit (limit minus spike) the receivers answer UNAVAILABLE / 503 with a retry hint, as the
Collector's limiter makes them do, and a garbage collection is forced; below it data flows again.
Data already acknowledged is in the spool and keeps flowing through the pipeline.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass

import psutil

from core.confmap import ConfigError, Duration, check_positive
from otlp_receiver.component import CreateSettings, LogBatch

TYPE = "memory_limiter"
MIB = 1024 * 1024

log = logging.getLogger(__name__)


@dataclass
class Config:
    check_interval: Duration = Duration("1s")
    limit_mib: int = 0
    spike_limit_mib: int = 0  # 0: 20% of the limit, as in the Collector
    limit_percentage: int = 0  # of total system memory, instead of limit_mib
    spike_limit_percentage: int = 0

    def validate(self) -> None:
        check_positive(self, "check_interval")
        if bool(self.limit_mib) == bool(self.limit_percentage):
            raise ConfigError("", "set exactly one of limit_mib and limit_percentage")
        if not 0 <= self.limit_percentage <= 100 or not 0 <= self.spike_limit_percentage <= 100:
            raise ConfigError("limit_percentage", "percentages are 0..100")
        if self.limit_mib and self.spike_limit_mib >= self.limit_mib:
            raise ConfigError("spike_limit_mib", "must be below limit_mib")

    def soft_limit_bytes(self, total_memory: int) -> int:
        if self.limit_mib:
            limit = self.limit_mib * MIB
            spike = self.spike_limit_mib * MIB if self.spike_limit_mib else limit // 5
        else:
            limit = total_memory * self.limit_percentage // 100
            spike = total_memory * self.spike_limit_percentage // 100 if self.spike_limit_percentage else limit // 5
        return max(limit - spike, 0)


class MemoryLimiter:
    def __init__(self, config: Config, name: str = TYPE, telemetry=None,  # type: ignore[no-untyped-def]
                 measure=None) -> None:  # type: ignore[no-untyped-def]
        self.config = config
        self.name = name
        self.soft_limit = config.soft_limit_bytes(psutil.virtual_memory().total)
        self._measure = measure or (lambda: psutil.Process().memory_info().rss)
        self._refusing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gauge = telemetry.gauge("procsight_memory_limiter_refusing",
                                      "1 while the memory limiter refuses new data") if telemetry else None
        self._rss = telemetry.gauge("procsight_process_resident_memory_bytes",
                                    "Resident memory of the receiver") if telemetry else None

    def start(self) -> None:
        self.check()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-check", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def process(self, batch: LogBatch) -> LogBatch:
        return batch

    @property
    def refusing(self) -> bool:
        return self._refusing

    def check(self) -> None:
        used = self._measure()
        if used > self.soft_limit:
            gc.collect()
            used = self._measure()
        refusing = used > self.soft_limit
        if refusing != self._refusing:
            log.warning("memory limiter %s: %s (%d MiB used, soft limit %d MiB)", self.name,
                        "refusing new data" if refusing else "accepting data again", used // MIB,
                        self.soft_limit // MIB)
        self._refusing = refusing
        if self._gauge:
            self._gauge.set(int(refusing), processor=self.name)
            self._rss.set(used)

    def _run(self) -> None:
        while not self._stop.wait(self.config.check_interval):
            self.check()


def create(config: Config, settings: CreateSettings) -> MemoryLimiter:
    return MemoryLimiter(config, settings.component_id, settings.telemetry)

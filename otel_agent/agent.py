"""The host agent: a capture source feeding the OpenTelemetry logs pipeline, with counters.

`create_agent(config)` is the factory; `Agent.start()` picks the capture mode (`auto` tries eBPF, then the
netlink process connector, then /proc polling, and logs which and why) and `Agent.stop()` flushes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

from core.event import EXEC, ProcessEvent
from otel_agent.capture import CaptureSource, CaptureUnavailable
from otel_agent.config import AgentConfig
from otel_agent.counters import Counters
from otel_agent.cpu import CpuSampler
from otel_agent.emitter import Emitter
from otel_agent.netlink import NetlinkSource
from otel_agent.procpoll import ProcPollSource
from otel_agent.sockets import SocketPoller

log = logging.getLogger(__name__)

FALLBACK_ORDER = ("ebpf", "netlink", "proc")


def _sources_for(mode: str, config: AgentConfig, counters: Counters) -> list[CaptureSource]:
    capture = config.capture
    cpu = CpuSampler(capture.cpu_interval, capture.cpu_threshold_percent, counters)
    if mode == "ebpf":
        from otel_agent.ebpf import EbpfSource  # imports nothing of bcc until opened

        return [EbpfSource(capture, counters), cpu]
    sockets = SocketPoller(capture.socket_poll_interval, counters)
    if mode == "netlink":
        return [NetlinkSource(counters), sockets, cpu]
    return [ProcPollSource(capture.proc_poll_interval, counters), sockets, cpu]


def open_capture(config: AgentConfig, counters: Counters) -> tuple[str, list[CaptureSource]]:
    """Opens the configured capture mode, or the first that works here for `auto`."""
    modes = FALLBACK_ORDER if config.mode == "auto" else (config.mode,)
    reasons = []
    for mode in modes:
        sources = _sources_for(mode, config, counters)
        try:
            for source in sources:
                source.open()
        except CaptureUnavailable as exc:
            for source in sources:
                source.stop()
            if config.mode != "auto":
                raise
            reasons.append(f"{mode}: {exc}")
            log.warning("capture mode %s unavailable (%s); trying the next", mode, exc)
            continue
        if reasons:
            log.warning("capturing with %s (fallback: %s)", mode, "; ".join(reasons))
        else:
            log.info("capturing with %s", mode)
        return mode, sources
    raise CaptureUnavailable("no capture mode works here: " + "; ".join(reasons))


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.counters = Counters()
        self.emitter = Emitter(config, self.counters)
        self.mode = ""
        self._sources: list[CaptureSource] = []
        self._own_pid = os.getpid()
        self._stop = threading.Event()
        self._stats_thread: threading.Thread | None = None

    def start(self) -> None:
        self.mode, self._sources = open_capture(self.config, self.counters)
        for source in self._sources:
            source.start(self.submit)
        self._stats_thread = threading.Thread(target=self._log_stats, name="procsight-stats", daemon=True)
        self._stats_thread.start()

    def submit(self, events: Sequence[ProcessEvent]) -> None:
        """Every captured event passes here: one place to count and to drop the agent's own traffic."""
        # The agent's own export connections would otherwise be reported, exported, reported... (eBPF drops
        # them in the kernel; the socket pollers see them here). Its execs are still reported: something
        # exec'ing as the agent is worth seeing.
        kept = [event for event in events if event.event_name == EXEC or event.pid != self._own_pid]
        if len(kept) < len(events):
            self.counters.add("self_filtered", len(events) - len(kept))
        self.counters.add("captured", len(kept))
        try:
            self.emitter.emit(kept)
        except Exception:  # e.g. the spool's disk: capture goes on; the loss is counted and logged, not hidden
            self.counters.add("errors", len(kept))
            log.exception("could not queue %d captured events", len(kept))

    def flush(self, timeout: float = 30.0) -> bool:
        return self.emitter.flush(timeout)

    def stop(self) -> None:
        self._stop.set()
        for source in self._sources:
            source.stop()
        self._sources = []
        self.emitter.shutdown()
        if self._stats_thread is not None:
            self._stats_thread.join()
        log.info("agent stopped: %s", self.counters.describe())

    def _log_stats(self) -> None:
        previous = self.counters.snapshot()
        while not self._stop.wait(self.config.stats_interval):
            current = self.counters.snapshot()
            losing = any(current[k] > previous[k] for k in ("lost_in_kernel", "dropped_oldest"))
            log.log(logging.WARNING if losing else logging.INFO, "agent (%s): %s spool_pending=%d", self.mode,
                    self.counters.describe(), self.emitter.spool.pending)
            previous = current


def create_agent(config: AgentConfig) -> Agent:
    """The factory: an agent built from its config."""
    return Agent(config)

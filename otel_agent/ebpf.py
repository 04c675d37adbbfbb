"""eBPF capture through bcc: execs, parents, TCP connects and listens, straight from kernel tracepoints."""

from __future__ import annotations

import ctypes
import logging
import os
import select
import time

from core.event import CONNECTION, LISTEN, ProcessEvent
from otel_agent import bpf_program
from otel_agent.capture import CaptureUnavailable, ThreadedSource
from otel_agent.config import CaptureConfig
from otel_agent.counters import Counters
from otel_agent.procfs import Clock, Enricher, decode_c_string, split_argv
from otel_agent.sockets import address_text

log = logging.getLogger(__name__)

_HEAD_SIZE = bpf_program.EXEC_EVENT_HEAD.size
# bcc reads tracepoint formats from tracefs to lay out `args`; without them it fails with pages of errors.
_TRACEPOINT_FORMATS = ("/sys/kernel/tracing/events/sched/sched_process_exec/format",
                       "/sys/kernel/debug/tracing/events/sched/sched_process_exec/format")
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


def effective_capabilities() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def may_load_bpf() -> bool:
    """Loading and attaching tracing programs needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN."""
    caps = effective_capabilities()
    tracing = 1 << CAP_BPF | 1 << CAP_PERFMON
    return bool(caps & 1 << CAP_SYS_ADMIN) or caps & tracing == tracing
_POLL_MS = 100  # perf buffer: wait at most this long for a wake-up
# Measured with every exec of a 1,000 execs/s load redirected (`bench/agent.py --redirected`), so that
# every one would wake us, on a quiet machine: 13.7 to 14.1% of a core per 1,000 execs/s without a gap,
# 11.6 to 13.5% with 2 ms, 8.3 to 9.1% with 5 ms; curl|sh pipelines run meanwhile were read in time
# in 100% of cases with each.
MIN_WAKE_GAP = 0.005
_DUP2_FORMAT = "/sys/kernel/tracing/events/syscalls/sys_enter_dup2/format"


class EbpfSource(ThreadedSource):
    thread_name = "procsight-ebpf"
    name = "ebpf"

    def __init__(self, config: CaptureConfig, counters: Counters, ring_buffer: bool = True) -> None:
        """`ring_buffer=False` goes straight to the perf buffer (what kernels before 5.8 get)."""
        super().__init__()
        self._config = config
        self._counters = counters
        self._clock = Clock()
        self._enricher = Enricher()
        self._bpf = None
        self.ring_buffer = ring_buffer
        self._reported = {bpf_program.COUNT_LOST: 0, bpf_program.COUNT_SELF: 0}
        # Filled by the buffer callbacks, handed to the sink after each drain, with what they counted.
        self._batch: list[ProcessEvent] = []
        self._missed = self._truncated = 0
        # Most ring-buffer records do not wake us (see bpf_program): this is how long they may wait.
        self._drain_seconds = config.drain_interval
        # Edge-triggered, so only a record that wakes returns it early. bcc's own ring_buffer_poll waits
        # level-triggered: after one wake-up it returns at once for as long as records keep arriving,
        # measured here as 120 wake-ups/s instead of 50 at 1,000 execs/s.
        self._wake: select.epoll | None = None

    def open(self) -> None:
        try:
            from bcc import BPF  # Debian's python3-bpfcc; absent on hosts without it
        except ImportError as exc:
            raise CaptureUnavailable(f"bcc is not installed ({exc}); install python3-bpfcc") from exc
        if not may_load_bpf():
            raise CaptureUnavailable("not permitted to load BPF programs: needs root, or CAP_BPF and CAP_PERFMON")
        if not any(os.access(path, os.R_OK) for path in _TRACEPOINT_FORMATS):
            raise CaptureUnavailable("tracepoint formats are not readable: tracefs is not mounted at "
                                     "/sys/kernel/tracing, or this user may not read it (run as root)")
        argv = self._config.argv
        errors = []
        for ring_buffer in (True, False) if self.ring_buffer else (False,):  # the ring buffer needs Linux 5.8
            flags = bpf_program.compile_flags(argv.max_args, argv.buffer_bytes, min(argv.max_arg_bytes + 1,
                                              argv.buffer_bytes), self._config.ring_buffer_pages, ring_buffer,
                                              agent_tgid=os.getpid(), have_dup2=os.path.exists(_DUP2_FORMAT))
            try:
                self._bpf = BPF(text=bpf_program.SOURCE.encode(), cflags=flags)
            except Exception as exc:  # bcc raises bare Exception for compile and load errors
                errors.append(f"{'ring' if ring_buffer else 'perf'} buffer: {exc}")
                continue
            self.ring_buffer = ring_buffer
            break
        if self._bpf is None:
            raise CaptureUnavailable("BPF program did not load (" + "; ".join(errors) + ")")
        events = self._bpf[b"events"]
        try:
            if self.ring_buffer:
                events.open_ring_buffer(self._on_event)
                self._wake = select.epoll()
                self._wake.register(events.map_fd, select.EPOLLIN | select.EPOLLET)
            else:
                events.open_perf_buffer(self._on_event_perf, page_cnt=self._config.ring_buffer_pages,
                                        lost_cb=self._on_lost)
        except Exception as exc:  # e.g. buffers too large for locked memory
            self._bpf.cleanup()
            self._bpf = None
            raise CaptureUnavailable(f"BPF output buffer could not be opened: {exc}") from exc
        log.info("eBPF capture attached (%s buffer)", "ring" if self.ring_buffer else "perf")

    def stop(self) -> None:
        super().stop()
        if self._bpf is not None:
            self._drain()  # hand over what is still buffered
            self._account_kernel_counts()
            self._bpf.cleanup()
            self._bpf = None
        if self._wake is not None:
            self._wake.close()
            self._wake = None

    def _run(self) -> None:
        last_accounting = last_wake = time.monotonic()
        while not self._stop.is_set():
            if self.ring_buffer:
                self._wake.poll(self._drain_seconds)  # returns at once for a record that wakes
                self._drain()  # and the others, which do not
                # A host running many redirected execs would wake us for each, about 100 µs of CPU a time
                # on a busy machine: at most one wake-up per MIN_WAKE_GAP, the first of a burst at once.
                since = time.monotonic() - last_wake
                if since < MIN_WAKE_GAP:
                    self._stop.wait(MIN_WAKE_GAP - since)
                last_wake = time.monotonic()
            else:
                self._bpf.perf_buffer_poll(_POLL_MS)
                self._hand_over()
            if time.monotonic() - last_accounting >= 1.0:
                last_accounting = time.monotonic()
                self._account_kernel_counts()
                self._clock.refresh()

    def _drain(self) -> None:
        if self.ring_buffer:
            self._bpf.ring_buffer_consume()
        else:
            self._bpf.perf_buffer_poll(0)
        self._hand_over()

    def _hand_over(self) -> None:
        """What the callbacks collected goes to the sink in one call, their counts in one update each."""
        if self._missed:
            self._counters.add("enrich_missed", self._missed)
        if self._truncated:
            self._counters.add("truncated", self._truncated)
        self._missed = self._truncated = 0
        if self._batch:
            batch, self._batch = self._batch, []
            self._sink(batch)

    def _account_kernel_counts(self) -> None:
        """Ring-buffer losses and the agent's own network events are counted in the kernel (per CPU); perf
        buffer losses arrive through `_on_lost` instead."""
        counts = self._bpf[b"counts"]
        for index, name in ((bpf_program.COUNT_LOST, "lost_in_kernel"), (bpf_program.COUNT_SELF, "self_filtered")):
            if index == bpf_program.COUNT_LOST and not self.ring_buffer:
                continue
            total = counts.sum(index).value
            if total > self._reported[index]:
                if index == bpf_program.COUNT_LOST:
                    log.warning("kernel dropped %d events: ring buffer full (raise capture.ring_buffer_pages)",
                                total - self._reported[index])
                self._counters.add(name, total - self._reported[index])
                self._reported[index] = total

    def _on_lost(self, count: int) -> None:
        log.warning("kernel dropped %d events: perf buffer full (raise capture.ring_buffer_pages)", count)
        self._counters.add("lost_in_kernel", count)

    def _on_event_perf(self, _cpu: int, data: int, size: int) -> None:
        self._on_event(None, data, size)

    def _on_event(self, _ctx: object, data: int, size: int) -> None:
        try:
            raw = ctypes.string_at(data, size)
            event, cgroup_id = self._exec_event(raw) if raw[0] == bpf_program.EV_EXEC else self._net_event(raw)
            if not self._enricher.complete(event, cgroup_id):
                self._missed += 1
        except Exception:  # ctypes would print and swallow it: count and log instead
            self._counters.add("errors")
            log.exception("could not decode a BPF event")
            return
        self._batch.append(event)

    def _exec_event(self, raw: bytes) -> tuple[ProcessEvent, int]:
        (_, pid, ppid, uid, ts, cgroup_id, _, args_len, flags, _, comm, parent_comm,
         filename) = bpf_program.EXEC_EVENT_HEAD.unpack_from(raw)
        args = split_argv(raw[_HEAD_SIZE:_HEAD_SIZE + args_len])
        truncated = bool(flags & bpf_program.FLAG_TRUNCATED)
        self._truncated += truncated
        event = ProcessEvent(
            executable_name=decode_c_string(comm),
            command_line=" ".join(args),
            command_args=args,
            executable_path=decode_c_string(filename),
            parent_name=decode_c_string(parent_comm),
            pid=pid,
            parent_pid=ppid or None,
            real_user_id=uid,
            timestamp=self._clock.from_monotonic(ts),
            command_args_truncated=truncated,
        )
        return event, cgroup_id

    def _net_event(self, raw: bytes) -> tuple[ProcessEvent, int]:
        (kind, pid, ppid, uid, ts, cgroup_id, family, sport, dport, _, saddr, daddr,
         comm) = bpf_program.NET_EVENT.unpack_from(raw)
        size = 4 if family == 2 else 16
        connect = kind == bpf_program.EV_CONNECT
        event = ProcessEvent(
            executable_name=decode_c_string(comm),
            command_line="",
            event_name=CONNECTION if connect else LISTEN,
            pid=pid,
            parent_pid=ppid or None,
            real_user_id=uid,
            timestamp=self._clock.from_monotonic(ts),
            transport="tcp",
            local_address=address_text(saddr[:size]),
            local_port=sport,
            remote_address=address_text(daddr[:size]) if connect else "",
            remote_port=dport if connect else None,
        )
        return event, cgroup_id

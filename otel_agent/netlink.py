"""The netlink process connector: exec, fork and exit events in real time, without BPF.

The kernel sends only pids (and times); argv, uid, paths are read from /proc as soon as the exec event
arrives. A process that exits before that read keeps its pid, parent and time but loses the rest
(counted as `enrich_missed`). Sockets come from the socket poller (`otel_agent.sockets`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import struct

from core.event import ProcessEvent
from otel_agent.capture import CaptureUnavailable, ThreadedSource
from otel_agent.counters import Counters
from otel_agent.procfs import Clock, Enricher, read_argv, read_comm

log = logging.getLogger(__name__)

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
NLMSG_DONE = 3
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_PROC_EVENT = struct.Struct("=IIQ")  # what, cpu, timestamp_ns (CLOCK_MONOTONIC)
_FORK = struct.Struct("=IIII")  # parent_pid, parent_tgid, child_pid, child_tgid
_EXEC = struct.Struct("=II")  # process_pid, process_tgid
_EXIT = struct.Struct("=II")  # process_pid, process_tgid (then exit code, signal, parent)
_RECEIVE_BUFFER = 16 << 20  # absorbs bursts while this thread reads /proc


class NetlinkSource(ThreadedSource):
    thread_name = "procsight-netlink"
    name = "netlink"

    def __init__(self, counters: Counters) -> None:
        super().__init__()
        self._counters = counters
        self._clock = Clock()
        self._enricher = Enricher()
        self._socket: socket.socket | None = None
        self._parents: dict[int, int] = {}  # child tgid -> parent tgid, from fork events
        self._names: dict[int, str] = {}  # tgid -> name, so a parent that exited quickly still has one

    def open(self) -> None:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except OSError as exc:
            raise CaptureUnavailable(f"netlink connector socket refused: {exc.strerror}") from exc
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, 33, _RECEIVE_BUFFER)  # SO_RCVBUFFORCE (root), beyond rmem_max
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
            sock.bind((0, CN_IDX_PROC))
            self._send_op(sock, PROC_CN_MCAST_LISTEN)
        except OSError as exc:
            sock.close()
            raise CaptureUnavailable(f"netlink process connector unavailable: {exc.strerror} "
                                     "(needs root or CAP_NET_ADMIN and CONFIG_PROC_EVENTS)") from exc
        sock.settimeout(0.2)
        self._socket = sock
        log.info("netlink process connector subscribed")

    @staticmethod
    def _send_op(sock: socket.socket, op: int) -> None:
        payload = struct.pack("=I", op)
        cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, os.getpid())
        sock.send(header + cn)

    def stop(self) -> None:
        super().stop()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._send_op(self._socket, PROC_CN_MCAST_IGNORE)
            self._socket.close()
            self._socket = None

    def _run(self) -> None:
        ticks = 0
        while not self._stop.is_set():
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    # The kernel dropped messages; it does not say how many: count the overrun itself.
                    log.warning("netlink receive buffer overrun: the kernel dropped process events")
                    self._counters.add("lost_in_kernel")
                    continue
                raise
            self._handle(data)
            ticks += 1
            if ticks % 10_000 == 0:
                self._clock.refresh()

    def _handle(self, data: bytes) -> None:
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length = _NLMSGHDR.unpack_from(data, offset)[0]
            if length < _NLMSGHDR.size:
                return
            start = offset + _NLMSGHDR.size + _CN_MSG.size
            self._proc_event(data, start)
            offset += (length + 3) & ~3

    def _proc_event(self, data: bytes, start: int) -> None:
        if start + _PROC_EVENT.size > len(data):
            return
        what, _cpu, timestamp_ns = _PROC_EVENT.unpack_from(data, start)
        body = start + _PROC_EVENT.size
        if what == PROC_EVENT_FORK:
            _parent_pid, parent_tgid, child_pid, child_tgid = _FORK.unpack_from(data, body)
            if child_pid == child_tgid:  # a new process, not a thread
                self._parents[child_tgid] = parent_tgid
        elif what == PROC_EVENT_EXEC:
            _pid, tgid = _EXEC.unpack_from(data, body)
            self._exec(tgid, timestamp_ns)
        elif what == PROC_EVENT_EXIT:
            pid, tgid = _EXIT.unpack_from(data, body)
            if pid == tgid:
                self._parents.pop(tgid, None)
                self._names.pop(tgid, None)

    def _exec(self, pid: int, timestamp_ns: int) -> None:
        # argv first: it is what a short-lived process takes with it when it exits.
        args = read_argv(pid)
        event = ProcessEvent(executable_name=read_comm(pid), command_line=" ".join(args), command_args=args, pid=pid,
                             parent_pid=self._parents.get(pid), timestamp=self._clock.from_monotonic(timestamp_ns))
        if event.parent_pid is not None:
            event.parent_name = self._names.get(event.parent_pid, "")
        if not self._enricher.complete(event):
            self._counters.add("enrich_missed")
        if not event.executable_name:
            event.executable_name = "unknown"
        if not event.command_line:
            event.command_line = event.executable_name
        self._names[pid] = event.executable_name
        self._sink([event])

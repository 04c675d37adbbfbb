"""Socket polling for the modes without eBPF: new TCP listeners and new outbound connections.

Every `socket_poll_interval` the kernel's TCP tables (/proc/net/tcp, tcp6: cheap to read) are compared
with the previous poll; only sockets that are new are traced to their process, by looking for the socket's
inode among /proc/PID/fd (the expensive part, so it runs only when something changed). A connection
that opens and closes between two polls is missed, as with /proc polling.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from dataclasses import dataclass

from core.event import CONNECTION, LISTEN, ProcessEvent
from otel_agent.capture import ThreadedSource
from otel_agent.counters import Counters
from otel_agent.procfs import Enricher, list_pids

log = logging.getLogger(__name__)

_LISTEN = "0A"
_ESTABLISHED = "01"


@dataclass(frozen=True, slots=True)
class TcpSocket:
    inode: int
    state: str
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int


def address_text(raw: bytes) -> str:
    """A 4- or 16-byte address as text; an IPv4 peer of a dual-stack socket (::ffff:a.b.c.d) as IPv4."""
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def _address(hex_address: str) -> tuple[str, int]:
    """`0100007F:1F90` (little-endian 32-bit words, as the kernel prints them) to ('127.0.0.1', 8080)."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    return address_text(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))), int(port, 16)


def read_tcp_table() -> list[TcpSocket]:
    sockets = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                lines = handle.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] not in (_LISTEN, _ESTABLISHED) or fields[9] == "0":
                continue
            local, remote = _address(fields[1]), _address(fields[2])
            sockets.append(TcpSocket(int(fields[9]), fields[3], *local, *remote))
    return sockets


def socket_owners(inodes: set[int]) -> dict[int, int]:
    """inode -> pid of a process holding it, for the given socket inodes."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, int] = {}
    for pid in list_pids():
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in descriptors:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            inode = wanted.get(target)
            if inode is not None:
                owners.setdefault(inode, pid)
                if len(owners) == len(wanted):
                    return owners
    return owners


class SocketPoller(ThreadedSource):
    thread_name = "procsight-sockets"
    name = "sockets"

    def __init__(self, interval: float, counters: Counters) -> None:
        super().__init__()
        self._interval = interval
        self._counters = counters
        self._enricher = Enricher()
        self._seen: set[int] = set()  # socket inodes already reported or present at start

    def open(self) -> None:
        self._seen = {s.inode for s in read_tcp_table()}

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

    def poll(self) -> None:
        table = read_tcp_table()
        listening_ports = {s.local_port for s in table if s.state == _LISTEN}
        fresh = [s for s in table if s.inode not in self._seen and (
            s.state == _LISTEN or s.local_port not in listening_ports)]  # accepted sockets are not outbound
        self._seen = {s.inode for s in table}
        if not fresh:
            return
        owners = socket_owners({s.inode for s in fresh})
        now = time.time()
        for sock in fresh:
            pid = owners.get(sock.inode)
            if pid is not None:
                self._report(pid, sock, now)

    def _report(self, pid: int, sock: TcpSocket, now: float) -> None:
        listen = sock.state == _LISTEN
        event = ProcessEvent(executable_name="", command_line="", event_name=LISTEN if listen else CONNECTION,
                             pid=pid, timestamp=now, transport="tcp", local_address=sock.local_address,
                             local_port=sock.local_port, remote_address="" if listen else sock.remote_address,
                             remote_port=None if listen else sock.remote_port)
        if not self._enricher.complete(event):
            self._counters.add("enrich_missed")
        if event.executable_name:
            self._sink([event])

"""Known processes and sockets for the capture tests (and the benchmark's markers)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass

from testing.otlp_sink import FlatRecord, OtlpSink

# A child that listens, connects to its own listener, reports "port pid", and keeps both open
# long enough for the socket pollers to see them.
TCP_CHILD = """
import os, socket, sys, time
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
client = socket.create_connection(listener.getsockname())
print(listener.getsockname()[1], os.getpid(), flush=True)
time.sleep(float(sys.argv[1]))
"""


def marker() -> str:
    return "procsight-test-" + uuid.uuid4().hex[:12]


def own_comm() -> str:
    with open(f"/proc/{os.getpid()}/comm") as handle:
        return handle.read().strip()


def exec_records(sink: OtlpSink, token: str, timeout: float = 10.0) -> list[FlatRecord]:
    """Exec records whose argv contains `token`."""
    return sink.wait_for(lambda r: r.event_name == "process.exec" and any(
        token in arg for arg in r.attributes.get("process.command_args", [])), timeout)


def by_pid(sink: OtlpSink, pid: int, event_name: str = "process.exec", timeout: float = 10.0,
           executable: str = "") -> list[FlatRecord]:
    """Records of `pid`; of one `executable` if given (/proc polling may also catch a child between fork
    and exec, still under its parent's name)."""
    return sink.wait_for(lambda r: r.event_name == event_name and r.attributes.get("process.pid") == pid and (
        not executable or r.attributes.get("process.executable.name") == executable), timeout)


@dataclass
class TcpChild:
    pid: int
    port: int


def tcp_child(hold_seconds: float) -> TcpChild:
    """Runs TCP_CHILD to completion; returns its pid and listening port."""
    result = subprocess.run([sys.executable, "-c", TCP_CHILD, str(hold_seconds)], capture_output=True, text=True,
                            check=True, timeout=30)
    port, pid = result.stdout.split()
    return TcpChild(pid=int(pid), port=int(port))

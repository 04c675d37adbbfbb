"""Socket polling for the modes without eBPF: new TCP listeners and new outbound connections.

Compares the socket table (with owning processes) every `socket_poll_interval`; a connection that
opens and closes between two polls is missed, as with /proc polling.
"""

from __future__ import annotations

import logging
import threading
import time

import psutil

from otel_agent.capture import Sink
from otel_agent.counters import Counters
from otel_agent.procfs import Enricher
from scoring.event import CONNECTION, LISTEN, ProcessEvent

log = logging.getLogger(__name__)

_Key = tuple[int, str, int, str, int]  # pid, local address, local port, remote address, remote port


class SocketPoller:
    name = "sockets"

    def __init__(self, interval: float, counters: Counters) -> None:
        self._interval = interval
        self._counters = counters
        self._enricher = Enricher()
        self._seen: set[_Key] = set()
        self._sink: Sink | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        self._seen = {key for key, _ in self._table()}

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._thread = threading.Thread(target=self._run, name="procsight-sockets", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @staticmethod
    def _table() -> list[tuple[_Key, str]]:
        """(key, event name) for every listening socket and every outbound established connection."""
        connections = psutil.net_connections(kind="tcp")
        listening = {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}
        table = []
        for c in connections:
            if c.pid is None or not c.laddr:
                continue
            if c.status == psutil.CONN_LISTEN:
                table.append(((c.pid, c.laddr.ip, c.laddr.port, "", 0), LISTEN))
            elif c.status == psutil.CONN_ESTABLISHED and c.raddr and c.laddr.port not in listening:
                table.append(((c.pid, c.laddr.ip, c.laddr.port, c.raddr.ip, c.raddr.port), CONNECTION))
        return table

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

    def poll(self) -> None:
        current = self._table()
        now = time.time()
        for key, event_name in current:
            if key not in self._seen:
                self._report(key, event_name, now)
        self._seen = {key for key, _ in current}

    def _report(self, key: _Key, event_name: str, now: float) -> None:
        pid, local_address, local_port, remote_address, remote_port = key
        event = ProcessEvent(executable_name="", command_line="", event_name=event_name, pid=pid, timestamp=now,
                             transport="tcp", local_address=local_address, local_port=local_port,
                             remote_address=remote_address, remote_port=remote_port or None)
        if not self._enricher.complete(event):
            self._counters.add("enrich_missed")
        if event.executable_name:
            self._sink(event)

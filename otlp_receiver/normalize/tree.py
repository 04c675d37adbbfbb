"""A per-host process tree built from the event stream, to fill `process.ancestors`.

Each exec event says "pid P now runs N, child of Q"; events that name their parent (`nginx`, pid Q)
also teach the tree about processes that started before anything was watching. Walking parent pids
then shows that `curl` was started by `sh -c` that nginx started, so "shell under a web server" is
seen through the intermediate shell. Bounded: at most `max_processes` per host (least recently
touched evicted) and `max_hosts` hosts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

MAX_ANCESTORS = 16


class ProcessTree:
    def __init__(self, max_processes: int = 65536, max_hosts: int = 4096) -> None:
        self.max_processes = max_processes
        self.max_hosts = max_hosts
        self._hosts: OrderedDict[tuple[str, str], OrderedDict[int, tuple[str, int | None]]] = OrderedDict()
        self._lock = threading.Lock()

    def observe(self, key: tuple[str, str], pid: int | None, name: str, parent_pid: int | None,
                parent_name: str) -> tuple[str, ...]:
        """Records an exec of `name` as `pid` under `parent_pid` and returns its ancestors, nearest first."""
        with self._lock:
            processes = self._host(key)
            if parent_pid is not None and parent_name:
                known = processes.get(parent_pid)
                if known is None or known[0] != parent_name:
                    # The event knows the parent's name better than a stale entry (pid reuse, exec).
                    processes[parent_pid] = (parent_name, known[1] if known else None)
            ancestors = self._walk(processes, parent_pid, exclude=pid)
            if pid is not None:
                processes[pid] = (name, parent_pid)
                processes.move_to_end(pid)
                while len(processes) > self.max_processes:
                    processes.popitem(last=False)
            return ancestors

    def _host(self, key: tuple[str, str]) -> OrderedDict[int, tuple[str, int | None]]:
        processes = self._hosts.get(key)
        if processes is None:
            processes = self._hosts[key] = OrderedDict()
            while len(self._hosts) > self.max_hosts:
                self._hosts.popitem(last=False)
        else:
            self._hosts.move_to_end(key)
        return processes

    @staticmethod
    def _walk(processes: OrderedDict[int, tuple[str, int | None]], pid: int | None,
              exclude: int | None) -> tuple[str, ...]:
        names: list[str] = []
        seen = {exclude}
        while pid is not None and pid not in seen and len(names) < MAX_ANCESTORS:
            seen.add(pid)
            entry = processes.get(pid)
            if entry is None:
                break
            names.append(entry[0])
            pid = entry[1]
        return tuple(names)

    def size(self, key: tuple[str, str]) -> int:
        return len(self._hosts.get(key, ()))

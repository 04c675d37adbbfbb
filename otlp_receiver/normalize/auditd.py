"""auditd `SYSCALL` + `EXECVE` lines (as the Collector's filelog receiver ships them, one per log
record) assembled into exec events.

The lines of one event share `msg=audit(<time>:<serial>)`. The assembler keeps the first part until
the second arrives (in the same batch or a later one) and emits the event on the record that
completed it. Values auditd hex-encodes (argv with spaces or control bytes, comm, exe, cwd) are
decoded; long arguments split into `aN[0]`, `aN[1]`, ... are joined.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

from core import semconv

_HEADER = re.compile(r"(?:node=(?P<node>\S+)\s+)?type=(?P<type>[A-Z_]+)\s+msg=audit\((?P<ts>[\d.]+):(?P<serial>\d+)\):")
_FIELD = re.compile(r'([A-Za-z0-9_]+(?:\[\d+\])?)=("[^"]*"|\S+)')
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")
_ENCODED = re.compile(r"^(a\d+(\[\d+\])?|comm|exe|cwd|name|proctitle)$")
_TYPES = ("SYSCALL", "EXECVE")
MAX_PENDING = 10_000


def parse_line(line: str) -> tuple[dict[str, str], str, str, float, str] | None:
    """(fields, type, serial, timestamp, node) of one audit line, or None if it is not one."""
    header = _HEADER.search(line)
    if header is None:
        return None
    fields = {key: _value(key, raw) for key, raw in _FIELD.findall(line[header.end():])}
    return fields, header["type"], header["serial"], float(header["ts"]), header["node"] or ""


def _value(key: str, raw: str) -> str:
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return raw[1:-1]
    if _ENCODED.match(key) and _HEX.match(raw):
        return bytes.fromhex(raw).decode("utf-8", "replace").replace("\x00", " ")
    return raw


def argv(execve: dict[str, str]) -> list[str]:
    count = int(execve["argc"]) if execve.get("argc", "").isdigit() else 0
    args = []
    for index in range(min(count, 4096)):
        if f"a{index}" in execve:
            args.append(execve[f"a{index}"])
            continue
        parts = []
        part = 0
        while f"a{index}[{part}]" in execve:
            parts.append(execve[f"a{index}[{part}]"])
            part += 1
        args.append("".join(parts))
    return args


class AuditAssembler:
    """Thread-safe; one per pipeline. Keys include tenant and host so streams never mix."""

    def __init__(self) -> None:
        self._pending: OrderedDict[tuple[str, str, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, tenant: str, host: str, line: str) -> tuple[dict[str, Any] | None, bool]:
        """(record attributes of a completed exec, or None; whether the line was an audit line at all)."""
        parsed = parse_line(line)
        if parsed is None:
            return None, False
        fields, kind, serial, timestamp, node = parsed
        if kind not in _TYPES:
            return None, True
        host = host or node
        key = (tenant, host, serial)
        with self._lock:
            parts = self._pending.pop(key, {})
            parts[kind] = fields
            if len(parts) < len(_TYPES):
                self._pending[key] = parts
                while len(self._pending) > MAX_PENDING:
                    self._pending.popitem(last=False)
                return None, True
        return _attributes(parts["SYSCALL"], parts["EXECVE"], timestamp, host), True

    def pending(self) -> int:
        return len(self._pending)


def _attributes(syscall: dict[str, str], execve: dict[str, str], timestamp: float, host: str) -> dict[str, Any]:
    args = argv(execve)
    exe = syscall.get("exe", "")
    return {
        semconv.PROCESS_EXECUTABLE_NAME: syscall.get("comm") or exe.rsplit("/", 1)[-1],
        semconv.PROCESS_EXECUTABLE_PATH: exe,
        semconv.PROCESS_COMMAND_ARGS: args,
        semconv.PROCESS_COMMAND_LINE: " ".join(args),
        semconv.PROCESS_PID: syscall.get("pid"),
        semconv.PROCESS_PARENT_PID: syscall.get("ppid"),
        semconv.PROCESS_USER_ID: syscall.get("uid"),
        "audit.login_uid": syscall.get("auid"),
        "audit.success": syscall.get("success"),
        semconv.HOST_NAME: host,
        "ts": timestamp,
    }

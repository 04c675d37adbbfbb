"""Reading /proc: process details for enrichment, the fallbacks' process table, and clock conversions.

Every read tolerates the process being gone (short-lived processes often are): a missing field stays empty.
"""

from __future__ import annotations

import os
import pwd
import re
import time
from dataclasses import dataclass

from core.event import ProcessEvent

_CONTAINER_ID = re.compile(r"([0-9a-f]{64})")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def decode(raw: bytes) -> str:
    """Kernel strings are bytes; undecodable bytes stay visible as \\xNN rather than vanish."""
    return raw.decode("utf-8", errors="backslashreplace")


def split_argv(raw: bytes) -> tuple[str, ...]:
    """NUL-separated argv (as in /proc/PID/cmdline and the BPF event) to a tuple."""
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    return tuple(decode(arg) for arg in raw.split(b"\0")) if raw else ()


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def read_argv(pid: int) -> tuple[str, ...]:
    raw = _read(f"/proc/{pid}/cmdline")
    return split_argv(raw) if raw else ()


def read_comm(pid: int) -> str:
    raw = _read(f"/proc/{pid}/comm")
    return decode(raw.rstrip(b"\n")) if raw else ""


def read_exe(pid: int) -> str:
    return _readlink(f"/proc/{pid}/exe")


def read_cwd(pid: int) -> str:
    return _readlink(f"/proc/{pid}/cwd")


@dataclass(frozen=True, slots=True)
class Status:
    ppid: int
    uid: int  # real uid


def read_status(pid: int) -> Status | None:
    raw = _read(f"/proc/{pid}/status")
    if not raw:
        return None
    ppid = uid = -1
    for line in raw.split(b"\n"):
        if line.startswith(b"PPid:"):
            ppid = int(line.split()[1])
        elif line.startswith(b"Uid:"):
            uid = int(line.split()[1])
            break  # Uid comes after PPid
    return Status(ppid, uid) if ppid >= 0 and uid >= 0 else None


def read_stat(pid: int) -> tuple[int, str] | None:
    """(start ticks since boot, comm) from /proc/PID/stat: the start time identifies a pid's incarnation,
    and comm changes when it execs."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    # comm (field 2) may hold spaces and parentheses: it ends at the last ')'.
    end = raw.rfind(b")")
    fields = raw[end + 2:].split()
    try:
        return int(fields[19]), decode(raw[raw.find(b"(") + 1:end])
    except (IndexError, ValueError):
        return None


def container_id_from_cgroup(text: str) -> str:
    """The container id in a /proc/PID/cgroup text (docker, containerd, cri-o, podman), else ''."""
    found = _CONTAINER_ID.findall(text)
    return found[-1] if found else ""


def container_id(pid: int) -> str:
    raw = _read(f"/proc/{pid}/cgroup")
    return container_id_from_cgroup(decode(raw)) if raw else ""


def list_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


class Clock:
    """Converts kernel times to wall-clock nanoseconds.

    BPF's ktime and the proc connector's timestamps are CLOCK_MONOTONIC; /proc start times are ticks
    since boot. The offset is re-read on each call to `refresh` (NTP may slew the wall clock).
    """

    def __init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        self._monotonic_offset = time.time_ns() - time.monotonic_ns()
        self._boot_wall_ns = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)

    def from_monotonic(self, monotonic_ns: int) -> float:
        return (monotonic_ns + self._monotonic_offset) / 1e9

    def from_boot_ticks(self, ticks: int) -> float:
        return (self._boot_wall_ns + ticks * 1_000_000_000 // CLOCK_TICKS) / 1e9


class Enricher:
    """Fills what the capture could not see from /proc and caches (user names, containers by cgroup)."""

    def __init__(self) -> None:
        self._user_names: dict[int, str] = {}
        self._containers: dict[int, str] = {}

    def user_name(self, uid: int) -> str:
        name = self._user_names.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = ""
            self._user_names[uid] = name
        return name

    def container(self, pid: int, cgroup_id: int | None = None) -> str:
        """Container of a process; cached per cgroup id where the capture knows it."""
        if cgroup_id is None:
            return container_id(pid)
        found = self._containers.get(cgroup_id)
        if found is None:
            found = container_id(pid)
            if len(self._containers) > 10_000:
                self._containers.clear()
            self._containers[cgroup_id] = found
        return found

    def complete(self, event: ProcessEvent, cgroup_id: int | None = None) -> bool:
        """Fills missing fields in place; False if the process was already gone (fields left empty)."""
        if event.pid is None:
            return False
        alive = self._read_process(event, event.pid, cgroup_id)
        if event.parent_pid and not event.parent_name:
            event.parent_name = read_comm(event.parent_pid)
        if not event.executable_name:
            event.executable_name = os.path.basename(event.executable_path)
        if not event.command_line:
            event.command_line = " ".join(event.command_args) or event.executable_path or event.executable_name
        if event.user_id is not None and not event.user_name:
            event.user_name = self.user_name(event.user_id)
        return alive

    def _read_process(self, event: ProcessEvent, pid: int, cgroup_id: int | None) -> bool:
        """Reads what is missing from /proc/PID, and stops early once the process is seen to be gone."""
        if not event.command_args:
            event.command_args = read_argv(pid)
        if event.parent_pid is None or event.user_id is None:
            status = read_status(pid)  # a zombie still has one (uid, parent) after its argv is gone
            if status is not None:
                event.parent_pid = status.ppid if event.parent_pid is None else event.parent_pid
                event.user_id = status.uid if event.user_id is None else event.user_id
        if not event.command_args:
            return False  # exited (or a kernel thread): the remaining files say nothing either
        if not event.working_directory:
            event.working_directory = read_cwd(pid)
        if not event.executable_path:
            event.executable_path = read_exe(pid)
        if not event.executable_name:
            event.executable_name = read_comm(pid)
        if not event.container_id:
            event.container_id = self.container(pid, cgroup_id)
        return bool(event.working_directory)

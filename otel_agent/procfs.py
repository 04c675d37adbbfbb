"""Reading /proc: process details for enrichment, the fallbacks' process table, and clock conversions.

Every read tolerates the process being gone (short-lived processes often are): a missing field stays empty.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
import time
from collections import OrderedDict
from dataclasses import dataclass

from core.event import EXEC, ProcessEvent

_CONTAINER_ID = re.compile(r"([0-9a-f]{64})")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MAX_EXEC_NAMES = 4096  # recent execs remembered per Enricher, for naming parents that exited


def decode(raw: bytes) -> str:
    """Kernel strings are bytes; undecodable bytes stay visible as \\xNN rather than vanish."""
    return raw.decode("utf-8", errors="backslashreplace")


def decode_c_string(raw: bytes) -> str:
    """A NUL-padded C string (a BPF event's comm or filename) up to its first NUL, decoded."""
    return raw.partition(b"\0")[0].decode("utf-8", errors="backslashreplace")


def split_argv(raw: bytes) -> tuple[str, ...]:
    """NUL-separated argv (as in /proc/PID/cmdline and the BPF event) to a tuple.

    Decoded whole, then split: a NUL byte is never part of a multi-byte UTF-8 sequence, so this gives
    what decoding each argument would, in one call."""
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    return tuple(decode(raw).split("\0")) if raw else ()


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


def stdio_identity(link: str) -> str:
    """A /proc/PID/fd link as `procsight.stdin`/`stdout` name it: `pipe:<inode>`, `socket:<inode>`, `tty`,
    `file:<path>`; '' for anything else (an eventfd, an unreadable link)."""
    if link.startswith("pipe:["):
        return "pipe:" + link[6:-1]
    if link.startswith("socket:["):
        return "socket:" + link[8:-1]
    if link.startswith(("/dev/pts/", "/dev/tty")) or link == "/dev/console":
        return "tty"
    if link.startswith("/"):
        return "file:" + link
    return ""


def read_stdio(pid: int, fd: int) -> str:
    return stdio_identity(_readlink(f"/proc/{pid}/fd/{fd}"))


def effective_uid(pid: int) -> int | None:
    """The effective uid of a live (or zombie) process, None once it is gone.

    The owner of the /proc/PID directory is the task's effective uid, refreshed on every lookup (the
    kernel's `task_dump_owner`; directories are exempt from its non-dumpable rule): one stat, where
    /proc/PID/status costs a read of a dozen kernel-generated lines, about 8 times as long here.
    """
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def effective_uid_from_file(path: str, real_uid: int) -> int:
    """The effective uid an exec of `path` by `real_uid` gets, for processes gone before /proc was read.

    A setuid file runs as its owner unless its file system is mounted nosuid; anything else keeps the
    real uid. Only an absolute path can be checked (a relative one was relative to a working directory
    that went with the process), and the file may have changed since: this is an estimate.
    """
    if not path.startswith("/"):
        return real_uid
    try:
        info = os.stat(path)
        if not info.st_mode & stat.S_ISUID or os.statvfs(path).f_flag & os.ST_NOSUID:
            return real_uid
    except OSError:
        return real_uid
    return info.st_uid


@dataclass(frozen=True, slots=True)
class Status:
    ppid: int
    uid: int  # real uid
    euid: int  # effective uid


def read_status(pid: int) -> Status | None:
    raw = _read(f"/proc/{pid}/status")
    if not raw:
        return None
    ppid = -1
    for line in raw.split(b"\n"):
        if line.startswith(b"PPid:"):
            ppid = int(line.split()[1])
        elif line.startswith(b"Uid:"):  # real, effective, saved set, file system; after PPid
            uids = line.split()
            return Status(ppid, int(uids[1]), int(uids[2])) if ppid >= 0 else None
    return None


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
        # pid -> executable name of the execs completed lately: the parent of a child read after the parent
        # exited (a shell running a short script) is still named.
        self._exec_names: OrderedDict[int, str] = OrderedDict()

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
        """Fills missing fields in place; False if the process was already gone (fields left empty).

        The effective uid of a process gone before it could be read is derived from its executable
        (`effective_uid_from_file`).
        """
        if event.pid is None:
            return False
        alive = self._read_process(event, event.pid, cgroup_id)
        if event.user_id is None and event.real_user_id is not None:
            event.user_id = effective_uid_from_file(event.executable_path, event.real_user_id)
        if event.parent_pid and not event.parent_name:
            event.parent_name = read_comm(event.parent_pid) or self._exec_names.get(event.parent_pid, "")
        if not event.executable_name:
            event.executable_name = os.path.basename(event.executable_path)
        if event.event_name == EXEC and event.executable_name:
            self._exec_names[event.pid] = event.executable_name
            self._exec_names.move_to_end(event.pid)
            if len(self._exec_names) > MAX_EXEC_NAMES:
                self._exec_names.popitem(last=False)
        if not event.command_line:
            event.command_line = " ".join(event.command_args) or event.executable_path or event.executable_name
        if event.user_id is not None and not event.user_name:
            event.user_name = self.user_name(event.user_id)
        return alive

    def _read_process(self, event: ProcessEvent, pid: int, cgroup_id: int | None) -> bool:
        """One pass over /proc/PID for what the capture did not give, stopping once the process is seen gone.

        The fallbacks know only the pid: argv first (a short-lived process takes it along), then
        /proc/PID/status (parent and uids; a zombie still has one). eBPF gives argv, parent and real uid:
        one stat of /proc/PID gives the effective uid and says whether the process is still there.
        """
        if not event.command_args:
            event.command_args = read_argv(pid)
        if event.parent_pid is None or event.real_user_id is None:
            status = read_status(pid)
            if status is not None:
                event.parent_pid = status.ppid if event.parent_pid is None else event.parent_pid
                event.real_user_id, event.user_id = status.uid, status.euid
            if not event.command_args:
                return False  # exited (or a kernel thread): the remaining files say nothing either
        elif event.user_id is None:
            event.user_id = effective_uid(pid)
            if event.user_id is None:
                return False
        if not event.working_directory:
            event.working_directory = read_cwd(pid)
            if not event.working_directory:
                return False  # exited, a zombie now: no directory, no open files
        if event.event_name == EXEC:
            event.stdin, event.stdout = read_stdio(pid, 0), read_stdio(pid, 1)
        if not event.executable_path:
            event.executable_path = read_exe(pid)
        if not event.executable_name:
            event.executable_name = read_comm(pid)
        if not event.container_id:
            event.container_id = self.container(pid, cgroup_id)
        return bool(event.working_directory)

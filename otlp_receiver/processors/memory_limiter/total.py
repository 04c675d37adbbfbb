"""The memory `limit_percentage` is a share of: the container's limit when the process runs under a
cgroup memory limit, else the host's memory, as the Collector's `TotalMemory()` decides.

- cgroup v2 (`cgroup2` mounted at /sys/fs/cgroup): `/sys/fs/cgroup/memory.max` (inside a container with
  a cgroup namespace, that is the container's limit);
- cgroup v1: `memory.limit_in_bytes` of this process's memory cgroup, found from /proc/self/cgroup and
  /proc/self/mountinfo;
- no limit (`max`, the v1 "unlimited" value, no file): MemTotal of /proc/meminfo.
A limit above the host's memory counts as the host's memory.

`root` is "/" but for tests, which lay out a v1 or v2 tree of their own.
"""

from __future__ import annotations

from pathlib import Path

V1_UNLIMITED = 9223372036854771712  # what cgroup v1 reports for "no limit" (page-aligned 2^63 - 1)


def total_memory(root: Path = Path("/")) -> int:
    host = _host_total(root)
    limit = cgroup_limit(root)
    return min(limit, host) if limit else host


def cgroup_limit(root: Path = Path("/")) -> int | None:
    """The memory limit of this process's cgroup in bytes, None when unlimited or not found."""
    mounts = _mounts(root)
    if mounts.get("/sys/fs/cgroup", ("", "", ""))[1] == "cgroup2":
        return _read_limit(root / "sys/fs/cgroup/memory.max")
    memory = next(((point, mount_root) for point, (mount_root, kind, options) in mounts.items()
                   if kind == "cgroup" and "memory" in options.split(",")), None)
    if memory is None:
        return None
    point, mount_root = memory
    path = _v1_cgroup_path(root)
    if path is not None and path.startswith(mount_root):
        relative = path[len(mount_root):].lstrip("/")
        limit_file = root / point.lstrip("/") / relative / "memory.limit_in_bytes"
        if limit_file.exists():
            return _read_limit(limit_file)
    return _read_limit(root / point.lstrip("/") / "memory.limit_in_bytes")


def _mounts(root: Path) -> dict[str, tuple[str, str, str]]:
    """mount point -> (root of the mount, filesystem type, super options), from /proc/self/mountinfo."""
    mounts = {}
    try:
        lines = (root / "proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        after = line.split(" - ", 1)[1].split()
        if len(after) >= 3:
            mounts[fields[4]] = (fields[3], after[0], after[2])
    return mounts


def _v1_cgroup_path(root: Path) -> str | None:
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and "memory" in parts[1].split(","):
            return parts[2]
    return None


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text.isdigit():
        return None  # "max"
    value = int(text)
    return None if value >= V1_UNLIMITED else value


def _host_total(root: Path) -> int:
    for line in (root / "proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no MemTotal in {root / 'proc/meminfo'}")

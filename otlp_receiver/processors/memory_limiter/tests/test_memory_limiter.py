"""The memory limiter measures the real resident memory of this process and its children, against
limits from the Collector's keys (percentages of the cgroup's limit, else the host's memory)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.component import Backpressure
from otlp_receiver.processors.memory_limiter.config import MIB, Config
from otlp_receiver.processors.memory_limiter.limiter import MemoryLimiter, resident_bytes
from otlp_receiver.processors.memory_limiter.total import V1_UNLIMITED, total_memory
from otlp_receiver.telemetry import Telemetry

TESTDATA = Path(__file__).parent / "testdata"


def test_refuses_above_the_soft_limit_and_reports_it() -> None:
    telemetry = Telemetry()
    limiter = MemoryLimiter(decode(Config, {"limit_mib": 2, "check_interval": "50ms"}), telemetry=telemetry)
    limiter.start()
    try:
        assert limiter.refusing  # a Python process is far above 2 MiB
        assert telemetry.gauge("procsight_memory_limiter_refusing", "").value(processor="memory_limiter") == 1
        with pytest.raises(Backpressure) as refused:
            limiter.admit()
        assert refused.value.reason == "memory_limit" and refused.value.unavailable
    finally:
        limiter.shutdown()


def test_accepts_below_the_soft_limit() -> None:
    limiter = MemoryLimiter(decode(Config, {"limit_percentage": 100, "spike_limit_percentage": 1}))
    limiter.check()
    assert not limiter.refusing
    limiter.admit()  # returns: admitted


def test_spike_defaults_to_a_fifth_of_the_limit() -> None:
    assert decode(Config, {"limit_mib": 1000}).limits_bytes(0) == (1000 * MIB, 800 * MIB)
    assert decode(Config, {"limit_percentage": 50}).limits_bytes(1000 * MIB) == (500 * MIB, 400 * MIB)


def test_limit_mib_wins_over_a_percentage_as_in_the_collector() -> None:
    both = decode(Config, {"limit_mib": 100, "limit_percentage": 50, "spike_limit_percentage": 90})
    assert both.limits_bytes(10_000 * MIB) == (100 * MIB, 80 * MIB)


@pytest.mark.parametrize(("settings", "key"), [
    ({}, ""), ({"limit_mib": 10, "spike_limit_mib": 10}, "spike_limit_mib"),
    ({"limit_mib": 10, "check_interval": "0s"}, "check_interval"),
    ({"limit_percentage": 101}, "limit_percentage"),
    ({"limit_percentage": 50, "spike_limit_percentage": 50}, "spike_limit_percentage"),
    ({"limit_mib": -1}, "limit_mib"),
    ({"limit_mib": 10, "min_gc_interval_when_soft_limited": "10s"}, "min_gc_interval_when_soft_limited"),
])
def test_invalid_settings(settings: dict, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        decode(Config, settings)
    assert key in str(error.value)


def test_the_scoring_child_counts_toward_the_limit() -> None:
    """A child that holds 300 MiB (as the scoring child held 4 GiB in the attack) is measured."""
    before = resident_bytes()
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; x = bytearray(300 << 20); "
                              "x[::4096] = b'1' * len(x[::4096]); print(flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        child.stdout.readline()  # the memory is touched
        assert resident_bytes() - before > 250 * MIB
        limiter = MemoryLimiter(decode(Config, {"limit_mib": (before + 200 * MIB) // MIB, "spike_limit_mib": 1}))
        limiter.check()
        assert limiter.refusing
    finally:
        child.kill()
        child.wait()
    limiter.check()
    assert not limiter.refusing


def lay_out(root: Path, files: dict[str, str]) -> Path:
    """A fake /proc and /sys tree (the kernel's files cannot be changed in a test)."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


MEMINFO = "MemTotal:       16384000 kB\nMemFree:         1000 kB\n"


def test_total_memory_is_the_cgroup_v2_limit_inside_a_container(tmp_path: Path) -> None:
    root = lay_out(tmp_path, {
        "proc/meminfo": MEMINFO,
        "proc/self/mountinfo": "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        "proc/self/cgroup": "0::/\n",
        "sys/fs/cgroup/memory.max": "536870912\n",
    })
    assert total_memory(root) == 512 * MIB
    (root / "sys/fs/cgroup/memory.max").write_text("max\n")
    assert total_memory(root) == 16384000 * 1024


def test_total_memory_is_the_cgroup_v1_limit_of_this_process(tmp_path: Path) -> None:
    root = lay_out(tmp_path, {
        "proc/meminfo": MEMINFO,
        "proc/self/mountinfo": ("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
                                "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
                                "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"),
        "proc/self/cgroup": "5:devices:/\n4:memory:/kubepods/pod1/abc\n0::/\n",
        "sys/fs/cgroup/memory/memory.limit_in_bytes": f"{V1_UNLIMITED}\n",
        "sys/fs/cgroup/memory/kubepods/pod1/abc/memory.limit_in_bytes": "1073741824\n",
    })
    assert total_memory(root) == 1024 * MIB
    (root / "sys/fs/cgroup/memory/kubepods/pod1/abc/memory.limit_in_bytes").write_text(f"{V1_UNLIMITED}\n")
    assert total_memory(root) == 16384000 * 1024


def test_total_memory_of_this_machine_is_at_most_its_ram() -> None:
    assert 0 < total_memory() <= psutil.virtual_memory().total


def test_yaml_testdata_decodes() -> None:
    processors = load_yaml(TESTDATA / "config.yaml")["processors"]
    fixed = decode(Config, processors["memory_limiter"], "processors.memory_limiter")
    assert (fixed.check_interval, fixed.limits_bytes(0)[1]) == (2.0, 1536 * MIB - 1536 * MIB // 5)
    share = decode(Config, processors["memory_limiter/share"], "processors.memory_limiter/share")
    assert share.limits_bytes(1000 * MIB) == (500 * MIB, 400 * MIB)


def test_freed_heap_memory_is_given_back_before_refusing() -> None:
    """Buffers freed into glibc's heap stay resident (grpc's, after held 4 MB messages ended), and kept the limiter
    refusing every tenant. Above the soft limit the heap is trimmed first."""
    blocks = [bytes(100_000) for _ in range(2000)]  # under glibc's mmap threshold: the heap's own pages
    pinned = bytes(100_000)  # above them, so the heap cannot shrink from its top by itself
    del blocks
    held = resident_bytes()
    limit_mib = held // MIB - 40  # freed but resident, ~130 MiB over the limit; trimmed, under it
    limiter = MemoryLimiter(decode(Config, {"limit_mib": limit_mib, "spike_limit_mib": 1}))
    limiter.check()
    assert not limiter.refusing
    assert resident_bytes() < held - 80 * MIB
    assert pinned

"""The eBPF output buffers: the perf-buffer fallback works, a full buffer's losses are counted, and an exec
whose stdio was just redirected is handed over at once."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from core.confmap import decode
from otel_agent.config import CaptureConfig
from otel_agent.counters import Counters
from otel_agent.ebpf import EbpfSource
from otel_agent.tests.conftest import bcc_missing
from otel_agent.tests.workload import marker

pytestmark = pytest.mark.skipif(bool(bcc_missing()), reason=bcc_missing() or "eBPF available")


def test_perf_buffer_fallback_delivers_execs():
    received = []
    source = EbpfSource(CaptureConfig(), Counters(), ring_buffer=False)
    source.open()
    try:
        assert source.ring_buffer is False
        source.start(received.extend)
        token = marker()
        subprocess.run(["/bin/true", token], check=True)
        deadline = time.monotonic() + 10
        while not any(token in e.command_args for e in received) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        source.stop()
    (event,) = [e for e in received if token in e.command_args]
    assert event.command_args == ("/bin/true", token)
    assert event.executable_path == "/bin/true"


def test_full_ring_buffer_losses_are_counted_not_hidden():
    counters = Counters()
    received = []
    tiny = decode(CaptureConfig, {"ring_buffer_pages": 8}, "test")  # 32 KiB: about 80 execs of ~400 bytes
    source = EbpfSource(tiny, counters)
    source.open()  # attached, but nothing drains the buffer until start()
    try:
        subprocess.run(["sh", "-c", "i=0; while [ $i -lt 300 ]; do /bin/true x; i=$((i+1)); done"], check=True)
        source.start(received.extend)
        time.sleep(0.3)
    finally:
        source.stop()
    lost = counters.get("lost_in_kernel")
    assert lost > 0
    assert len(received) + lost >= 300


def test_an_exec_with_redirected_stdio_is_read_at_once_however_long_the_drain_interval():
    """A pipeline member wakes user space at once, so its stdout is read while it runs: here with a 10 s
    drain interval, six times over (other processes' execs may wake the reader by chance, not six times
    within 0.1 s of ours). Redirected by dup2 (subprocess, shells) and by close-then-open (glibc's
    posix_spawn opening a file onto stdout)."""
    arrivals = {}

    def arrive(events):
        for event in events:
            arrivals.setdefault(event.pid, (time.time(), event))

    source = EbpfSource(decode(CaptureConfig, {"drain_interval": "10s"}, "test"), Counters())
    source.open()
    source.start(arrive)
    try:
        expected = {}
        for _ in range(3):
            child = subprocess.Popen(["/bin/sleep", "0.3"], stdout=subprocess.PIPE)
            child.wait()
            child.stdout.close()
            expected[child.pid] = "pipe:"
            pid = os.posix_spawn("/bin/sleep", ["/bin/sleep", "0.3"], os.environ,
                                 file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
            os.waitpid(pid, 0)
            expected[pid] = "file:/dev/null"
    finally:
        source.stop()
    for pid, stdout in expected.items():
        arrived, event = arrivals[pid]
        assert event.stdout.startswith(stdout)
        assert arrived - event.timestamp < 0.1

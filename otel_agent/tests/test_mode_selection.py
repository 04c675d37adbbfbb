"""Mode selection: `auto` falls back, and says why, where eBPF cannot run; an explicit mode does not.

eBPF really cannot run without capabilities, so the agent is started by `setpriv` as root with every
capability dropped (root still owns its files, so the virtualenv under /root stays readable).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest

from otel_agent.ebpf import may_load_bpf
from otel_agent.tests.workload import exec_records, marker
from testing.otlp_sink import OtlpSink

pytestmark = [
    pytest.mark.skipif(not may_load_bpf(), reason="needs capabilities to drop them"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed"),
]
NO_CAPABILITIES = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"]


def agent_without_capabilities(endpoint: str, mode: str, spool: str) -> subprocess.Popen:
    return subprocess.Popen([*NO_CAPABILITIES, sys.executable, "-m", "procsight", "agent", "--mode", mode,
                             "--endpoint", endpoint, "--spool", spool], stderr=subprocess.PIPE, text=True)


def test_auto_falls_back_when_bpf_is_not_permitted_and_says_why(tmp_path):
    with OtlpSink() as endpoint:
        agent = agent_without_capabilities(endpoint.grpc_endpoint, "auto", str(tmp_path / "spool"))
        try:
            token = marker()
            records = []
            deadline = time.monotonic() + 90
            while not records and time.monotonic() < deadline:
                subprocess.run(["/bin/sleep", "1.2", token], check=False, stderr=subprocess.DEVNULL)
                records = exec_records(endpoint, token, timeout=1)
            assert records, "the fallback mode delivered nothing"
        finally:
            agent.send_signal(signal.SIGTERM)
            _, stderr = agent.communicate(timeout=60)
    assert "capture mode ebpf unavailable (not permitted to load BPF programs" in stderr
    assert "(fallback: ebpf: not permitted to load BPF programs" in stderr
    assert "capturing with netlink" in stderr or "capturing with proc" in stderr


def test_an_explicit_mode_that_cannot_run_is_an_error_not_a_fallback(tmp_path):
    agent = agent_without_capabilities("127.0.0.1:9", "ebpf", str(tmp_path / "spool"))
    _, stderr = agent.communicate(timeout=90)
    assert agent.returncode == 1
    assert "procsight agent: not permitted to load BPF programs" in stderr

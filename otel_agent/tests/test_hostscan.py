"""The host scan: snapshot, diff, shared heuristics, lineage, ranking, allow-list, read-only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from core.event import ProcessEvent
from otel_agent.hostscan import AllowList, HostState, ScanError, Socket, host_state, render_text, scan, take_snapshot


def process(pid: int, ppid: int, name: str, path: str, *args: str, uid: int = 0) -> ProcessEvent:
    argv = (path, *args)
    return ProcessEvent(executable_name=name, command_line=" ".join(argv), command_args=argv, executable_path=path,
                        pid=pid, parent_pid=ppid, user_id=uid, user_name="root" if uid == 0 else "www-data")


@pytest.fixture
def compromised_web_host() -> HostState:
    """A web host where nginx started a shell from /tmp that phones home on port 4444."""
    processes = {
        1: process(1, 0, "systemd", "/usr/lib/systemd/systemd"),
        100: process(100, 1, "nginx", "/usr/sbin/nginx", "-g", "daemon off;"),
        200: process(200, 100, "sh", "/tmp/.x/sh", "-i", uid=33),
        300: process(300, 1, "cron", "/usr/sbin/cron", "-f"),
        400: process(400, 1, "apt", "/usr/bin/apt", "update"),
    }
    for event in processes.values():  # lineage as host_state() fills it
        chain, parent = [], processes.get(event.parent_pid)
        while parent is not None:
            chain.append(parent.executable_name)
            parent = processes.get(parent.parent_pid)
        event.ancestors = tuple(chain)
        event.parent_name = chain[0] if chain else ""
    listening = [Socket(100, "tcp", "0.0.0.0", 80), Socket(200, "tcp", "0.0.0.0", 31337)]
    established = [Socket(200, "tcp", "10.0.0.5", 40000, "203.0.113.7", 4444),
                   Socket(400, "tcp", "10.0.0.5", 40001, "198.51.100.2", 443)]
    return HostState(processes, listening, established)


SNAPSHOT = {"version": 1, "processes": ["systemd", "nginx", "cron", "apt"], "listening": ["tcp/80"],
            "remotes": []}


def test_shell_under_nginx_from_tmp_ranks_first_with_every_reason_and_lineage(compromised_web_host):
    findings = scan(SNAPSHOT, compromised_web_host)
    top = findings[0]
    assert top.pid == 200
    assert top.lineage == ["sh(200)", "nginx(100)", "systemd(1)"]
    for expected in ("shell spawned by nginx", "binary in a temp directory (/tmp/.x/sh)",
                     "new process name since the snapshot", "new listening port tcp/31337",
                     "connection to new remote 203.0.113.7:4444 on a non-web port"):
        assert expected in top.reasons
    assert top.red == ["connection to new remote 203.0.113.7:4444 on a non-web port"]
    assert top.score > 0.95
    apt = next(f for f in findings if f.pid == 400)
    assert apt.reasons == ["connection to new remote 198.51.100.2:443"] and apt.red == []
    assert apt.score < top.score
    assert {f.pid for f in findings} == {200, 400}  # systemd, nginx, cron: nothing new, nothing suspicious


def test_allow_list_tunes_out_known_good_findings(tmp_path, compromised_web_host):
    allow_file = tmp_path / "allow.txt"
    allow_file.write_text("# known good\nremote 198.51.100.*\nreason binary in a temp*\nport tcp/31337\n")
    findings = scan(SNAPSHOT, compromised_web_host, AllowList.load(allow_file))
    assert [f.pid for f in findings] == [200]
    assert not any(r.startswith("binary in") or "31337" in r for r in findings[0].reasons)
    allow_file.write_text("process sh\nremote *\n")
    assert scan(SNAPSHOT, compromised_web_host, AllowList.load(allow_file)) == []


def test_allow_list_with_a_bad_line_is_a_clear_error(tmp_path):
    allow_file = tmp_path / "allow.txt"
    allow_file.write_text("process nginx\nkill everything\n")
    with pytest.raises(ScanError, match=r"allow.txt:2: expected 'KIND PATTERN'"):
        AllowList.load(allow_file)


def test_text_report_escapes_hostile_names_and_paints_red(compromised_web_host):
    compromised_web_host.processes[200].executable_name = "sh\x1b[2J"
    text = render_text(scan(SNAPSHOT, compromised_web_host), color=True)
    assert "\x1b[2J" not in text and "sh\\x1b[2J" in text
    assert "\x1b[31mconnection to new remote 203.0.113.7:4444 on a non-web port\x1b[0m" in text
    assert "nothing was stopped or blocked" in text


def test_live_host_new_temp_binary_port_and_remote_are_found(tmp_path):
    snapshot = take_snapshot(host_state())
    sleeper = tmp_path / "procsight-sleeper"
    shutil.copy("/bin/sleep", sleeper)
    holder = subprocess.Popen([str(sleeper), "30"])
    server = subprocess.Popen([sys.executable, "-c", (
        "import socket, sys, time\n"
        "s = socket.socket(); s.bind(('127.0.0.2', 0)); s.listen()\n"
        "c = socket.create_connection(s.getsockname())\n"
        "print(s.getsockname()[1], flush=True); time.sleep(30)\n")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        findings = {f.pid: f for f in scan(snapshot, host_state())}
    finally:
        for child in (holder, server):
            child.kill()
            child.wait()
    assert f"binary in a temp directory ({sleeper})" in findings[holder.pid].reasons
    assert "new process name since the snapshot" in findings[holder.pid].reasons
    assert findings[holder.pid].lineage[1].endswith(f"({os.getpid()})")
    reasons = findings[server.pid].reasons
    assert f"new listening port tcp/{port}" in reasons
    assert f"connection to new remote 127.0.0.2:{port} on a non-web port" in findings[server.pid].red


def test_cli_snapshot_then_scan_json(tmp_path):
    snapshot = tmp_path / "host_snapshot.json"
    done = subprocess.run([sys.executable, "-m", "procsight", "host", "snapshot", "-o", str(snapshot)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    saved = json.loads(snapshot.read_text())
    assert saved["version"] == 1 and saved["processes"]
    done = subprocess.run([sys.executable, "-m", "procsight", "scan", "--snapshot", str(snapshot), "--json",
                           "--cpu-sample", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout)
    assert isinstance(findings, list)
    assert all({"pid", "score", "reasons", "lineage", "red"} <= set(f) for f in findings)


def test_cli_scan_rejects_a_file_that_is_not_a_snapshot(tmp_path):
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"processes": "all"}')
    done = subprocess.run([sys.executable, "-m", "procsight", "scan", "--snapshot", str(bogus)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "not a procsight host snapshot" in done.stderr

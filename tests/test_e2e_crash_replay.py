"""A record acknowledged to a client is durable: `procsight receiver` is killed with SIGKILL after the
acknowledgements, while its onward OTLP destination is down; after a restart every acknowledged
record is in ClickHouse exactly once (the replayed batches are deduplicated) and reaches the OTLP
destination."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
from conftest import WEB_EVENTS, receiver_config, write_config
from test_e2e_clients import send_with_python_sdk

from otlp_receiver.exporters.clickhouse.transport import ChdbTransport
from testing import free_port, wait_until
from testing.otlp_sink import Failure, OtlpSink

RUNS = 5  # WEB_EVENTS five times over, each run a distinct command line


def start_receiver(config: Path, http: str, log: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "procsight", "receiver", "--config", str(config)],
                               stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=config.parent)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://{http}/healthz", timeout=1) as answer:
                if json.loads(answer.read())["status"] == "ok":
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"receiver did not become healthy:\n{log.read_text()}")


def metric(http: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(wanted + " "))


def test_acknowledged_records_survive_sigkill_exactly_once(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    events = [(pid + 1000 * run, ppid, exe, f"{command} --run={run}", parent, uid)
              for run in range(RUNS) for pid, ppid, exe, command, parent, uid in WEB_EVENTS]
    grpc_endpoint, http_endpoint = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    log = tmp_path / "receiver.log"
    with OtlpSink() as sink:
        sink.failures.extend([Failure(grpc.StatusCode.UNAVAILABLE)] * 100_000)  # the onward destination is down
        forward = {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}
        config = write_config(tmp_path / "receiver.yaml", receiver_config(
            tmp_path / "data", {"otlp/forward": forward}, grpc=grpc_endpoint, http=http_endpoint))

        receiver = start_receiver(config, http_endpoint, log)
        try:
            sent = send_with_python_sdk(OTLPLogExporter(endpoint=grpc_endpoint, insecure=True), events)
            assert sent.exported == len(events)  # every record acknowledged
            wait_until(lambda: metric(http_endpoint, "procsight_exporter_sent_log_records_total",
                                      exporter="clickhouse") == len(events), 60, "rows written to ClickHouse")
            assert metric(http_endpoint, "procsight_exporter_sent_log_records_total", exporter="otlp/forward") == 0
        finally:
            receiver.send_signal(signal.SIGKILL)  # a crash: no shutdown, no flush
            receiver.wait(timeout=30)
        assert receiver.returncode == -signal.SIGKILL

        sink.failures.clear()  # the destination is back
        receiver = start_receiver(config, http_endpoint, log)
        try:
            forwarded = sink.wait_for_records(len(events), timeout=60)
            wait_until(lambda: json.loads(urllib.request.urlopen(f"http://{http_endpoint}/healthz", timeout=5).read())
                       ["pipelines"]["logs"]["spool_uncommitted_entries"] == 0, 60, "the spool to be committed")
            replayed = metric(http_endpoint, "procsight_exporter_sent_log_records_total", exporter="clickhouse")
        finally:
            receiver.send_signal(signal.SIGTERM)
            receiver.wait(timeout=60)
        assert receiver.returncode == 0, log.read_text()

    # The replay sent every batch to ClickHouse again; deduplication kept one copy of each.
    assert replayed == len(events)
    assert sorted(r.body.string_value for r in forwarded) == sorted(e[3] for e in events)
    clickhouse = ChdbTransport(str(tmp_path / "data" / "clickhouse"))
    try:
        stats = clickhouse.query("SELECT count() AS n, uniqExact(RecordId) AS ids, groupArray(Body) AS bodies "
                                 "FROM procsight.security_events")[0]
    finally:
        clickhouse.close()
    assert (stats["n"], stats["ids"]) == (len(events), len(events))
    assert sorted(stats["bodies"]) == sorted(e[3] for e in events)

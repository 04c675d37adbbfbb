"""Property-based fuzzing (hypothesis) of the decoders and normalisers, with a time bound per input.

Each target is one row of `TARGETS`: a name, a strategy that builds inputs from the shape the code
expects (audit headers and fields, Falco/Tetragon/ECS documents, OTLP values; OTLP requests and HTTP
bodies from `bench/fuzz_otlp.py`) mixed with noise, and a
check that feeds one input to the code and asserts what must hold whatever the input: no exception
(the documented outcome for a bad record is the kind `invalid`), every bound kept (command line, argv,
ids, bytes waiting for assembly), and no input slower than the deadline. A failure is printed with the
input hypothesis shrank it to.

    .venv/bin/python bench/fuzz.py [--seconds 60] [--deadline-ms 250] [--target NAME ...]

prints the inputs tried per target and every failure found; tests/test_fuzz.py runs each target for a
few seconds in CI. To fuzz another decoder, add a row to `TARGETS`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

# Run as a script, this file's directory comes first on sys.path, where bench/scoring.py would shadow
# the scoring package; the repository root is where `otlp_receiver` and `testing` are.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue  # noqa: E402
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord  # noqa: E402

from bench.fuzz_otlp import TARGETS as OTLP_TARGETS  # noqa: E402
from core.event import MAX_ARGS, MAX_COMMAND_LINE  # noqa: E402
from otlp_receiver.normalize import Normalizer, eventtime  # noqa: E402
from otlp_receiver.normalize.auditd import AuditAssembler, parse_line  # noqa: E402
from otlp_receiver.normalize.normalizer import KINDS, Normalized  # noqa: E402
from otlp_receiver.normalize.tetragon import split_arguments  # noqa: E402
from otlp_receiver.normalize.values import MAX_DEPTH, flatten, to_python  # noqa: E402
from testing.otlp_values import any_value  # noqa: E402

# -- inputs ----------------------------------------------------------------------------------------

NOISE = st.text(alphabet=st.sampled_from([*" =\"'[]():.\\\x00\x1d\n\t-_aA0F9~{}", "é", "\u202e"]), max_size=40)
TEXT = st.one_of(st.text(max_size=40), NOISE)
EDGE_NUMBERS = st.sampled_from([-1, 0, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64, 10**30, 1e308, -0.0])
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), EDGE_NUMBERS,
                         st.floats(allow_nan=False), TEXT)


def containers(children: Any) -> Any:
    return st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3)


JSON_VALUES = st.recursive(JSON_SCALARS, containers, max_leaves=6)
TIMES = st.one_of(st.datetimes().map(lambda d: d.isoformat() + "Z"), st.from_regex(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,12})?(Z|[+-]\d{2}:?\d{2})", fullmatch=True), TEXT, JSON_VALUES)

AUDIT_TYPES = st.one_of(st.sampled_from(["SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE", "EOE", "USER_CMD",
                                         "DAEMON_CONFIG", "UNKNOWN[1329]"]),
                        st.from_regex(r"[A-Z_]{1,8}", fullmatch=True))
AUDIT_KEYS = st.one_of(st.sampled_from(["argc", "a0", "a1", "a2", "a1[0]", "a1[1]", "a1_len", "items", "item", "exe",
                                        "comm", "cwd", "name", "pid", "ppid", "uid", "euid", "proctitle", "cmd",
                                        "msg", "EUID", "key", "node", "type"]),
                       st.from_regex(r"[A-Za-z0-9_\[\]-]{1,70}", fullmatch=True))
AUDIT_VALUES = st.one_of(
    TEXT.map(lambda t: '"' + t.replace('"', "") + '"'),  # quoted
    st.binary(max_size=40).map(lambda b: b.hex().upper()),  # hex-encoded
    st.integers(min_value=-1, max_value=2**40).map(str),
    EDGE_NUMBERS.map(str),
    st.sampled_from(["(null)", "(none)", "?", "'op=PAM:x acct=\"a\"", "res=success'"]),
    NOISE,
)
AUDIT_FIELDS = st.lists(st.builds(lambda k, v: f"{k}={v}", AUDIT_KEYS, AUDIT_VALUES), max_size=12).map(" ".join)


@st.composite
def audit_lines(draw: Any, serials: Any = None) -> str:
    node = draw(st.one_of(st.just(""), TEXT.map(lambda t: f"node={t.replace(' ', '')} ")))
    seconds = draw(st.integers(min_value=0, max_value=10**12))
    fraction = draw(st.one_of(st.just(""), st.from_regex(r"\.\d{1,9}", fullmatch=True)))
    serial = draw(serials if serials is not None else st.integers(min_value=0, max_value=10**20))
    colon = draw(st.sampled_from([":", ""]))
    header = f"{node}type={draw(AUDIT_TYPES)} msg=audit({seconds}{fraction}:{serial}){colon} "
    return draw(NOISE) * draw(st.integers(0, 1)) + header + draw(AUDIT_FIELDS) + draw(NOISE)


def document(required: dict[str, Any], keys: list[str]) -> Any:
    """A document of a source: its required shape, its known keys with any JSON value, and noise keys."""
    values = st.one_of(JSON_VALUES, TEXT, st.integers(min_value=0, max_value=70000), EDGE_NUMBERS,
                       EDGE_NUMBERS.map(str))
    return st.fixed_dictionaries(required, optional={key: values for key in keys}).flatmap(
        lambda base: st.dictionaries(TEXT, JSON_VALUES, max_size=3).map(lambda extra: {**extra, **base}))


FALCO_FIELDS = ["proc.name", "proc.cmdline", "proc.exepath", "proc.exe", "proc.args", "proc.pname", "proc.pid",
                "proc.ppid", "proc.cwd", "user.uid", "user.name", "container.id", "evt.time", "evt.hostname",
                "proc.aname[2]", "proc.aname[3]"]
FALCO = document({"rule": TEXT, "output_fields": document({}, FALCO_FIELDS)},
                 ["time", "hostname", "priority", "output", "Rule"])
TETRAGON_PROCESS = document({}, ["binary", "arguments", "pid", "uid", "cwd", "docker", "process_credentials",
                                 "user", "pod"])
TETRAGON = st.one_of(
    document({"process_exec": document({"process": TETRAGON_PROCESS}, ["parent", "ancestors"])}, ["time", "node_name"]),
    document({"process_exit": document({}, ["process", "parent"])}, ["time", "node_name"]),
)
ECS = document({"process": document({}, ["name", "args", "executable", "command_line", "pid", "parent", "user",
                                         "real_user", "working_directory"])},
               ["event", "@timestamp", "user", "host", "ecs", "container"]).map(
    lambda doc: {**doc, "event": {"category": ["process"], "type": ["start"]}} if "event" not in doc else doc)
ARGUMENTS = st.text(alphabet=st.sampled_from([*' "ab-\\\'', "é"]), max_size=80)

# -- checks --------------------------------------------------------------------------------------------


def record(body: Any) -> LogRecord:
    result = LogRecord(observed_time_unix_nano=1_800_000_000_000_000_000)
    result.body.CopyFrom(body if isinstance(body, AnyValue) else any_value(body))
    return result


def check_outcome(normalizer: Normalizer, result: Normalized) -> None:
    assert result.kind in KINDS, result.kind
    assert not normalizer.failures, dict(normalizer.failures)
    event = result.event
    if event is None:
        return
    assert event.executable_name and event.command_line
    assert len(event.command_line) <= MAX_COMMAND_LINE and len(event.command_args) <= MAX_ARGS
    for number in (event.pid, event.parent_pid, event.user_id, event.real_user_id):
        assert number is None or 0 <= number < 1 << 32, number
    for text in (event.executable_name, event.executable_path, event.command_line, *event.command_args):
        assert isinstance(text, str)


def check_audit_line(line: str) -> None:
    parsed = parse_line(line)
    assert parsed is None or all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.fields.items())
    normalizer = Normalizer()
    check_outcome(normalizer, normalizer.normalize("t", {"host.name": "h"}, record(line)))


def check_audit_assembly(lines: list[tuple[str, str]]) -> None:
    assembler = AuditAssembler(max_pending=8, max_pending_bytes=4096, max_host_pending=4, max_host_pending_bytes=2048)
    normalizer = Normalizer(assembler=assembler)
    for host, line in lines:
        check_outcome(normalizer, normalizer.normalize("t", {"host.name": host}, record(line)))
        count, size = assembler.pending()
        assert count <= 8 and size <= 4096, (count, size)


def check_document(document: dict[str, Any]) -> None:
    normalizer = Normalizer()
    check_outcome(normalizer, normalizer.normalize("t", {}, record(json.dumps(document))))
    try:
        structured = any_value(document)  # a kvlist body; integers beyond int64 have no OTLP form
    except ValueError:
        return
    check_outcome(normalizer, normalizer.normalize("t", {}, record(structured)))
    attributes = record("line")
    attributes.attributes.extend(structured.kvlist_value.values)  # what the Collector's json_parser makes
    check_outcome(normalizer, normalizer.normalize("t", {}, attributes))


def depth(value: Any) -> int:
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return 1 + max((depth(child) for child in children), default=0)


def check_values(value: Any) -> None:
    try:
        converted = any_value(value)
    except ValueError:
        return
    plain = to_python(converted)
    assert depth(plain) <= MAX_DEPTH + 1
    if isinstance(plain, dict):
        assert all(isinstance(key, str) for key in flatten(plain))
    check_document({"body": value})


def check_json_body(text: str) -> None:
    normalizer = Normalizer()
    check_outcome(normalizer, normalizer.normalize("t", {}, record(text)))


def check_split_arguments(arguments: str) -> None:
    args = split_arguments(arguments)
    assert len(args) <= MAX_ARGS + 1
    assert all(arg in arguments for arg in args)  # nothing made up
    if '"' not in arguments:
        assert args == [word for word in arguments.split(" ") if word][: MAX_ARGS + 1]


def check_event_time(value: Any) -> None:
    time_ = eventtime.from_rfc3339(value)
    if time_ is None:
        return
    assert eventtime.MIN_UNIX_NANO <= time_.unix_nano < eventtime.MAX_UNIX_NANO and 0 <= time_.digits <= 9
    rec = LogRecord(time_unix_nano=time_.unix_nano // 10**9 * 10**9)
    eventtime.stamp(rec, time_)
    assert rec.time_unix_nano in (time_.unix_nano, time_.unix_nano // 10**9 * 10**9)


@dataclass(frozen=True)
class Target:
    name: str
    inputs: Any  # a hypothesis strategy
    check: Callable[[Any], None]


TARGETS: tuple[Target, ...] = (
    Target("auditd line", audit_lines(), check_audit_line),
    Target("auditd assembly", st.lists(st.tuples(st.sampled_from(["a", "b"]), audit_lines(st.integers(1, 4))),
                                       max_size=25), check_audit_assembly),
    Target("falco document", FALCO, check_document),
    Target("tetragon document", TETRAGON, check_document),
    Target("tetragon arguments", ARGUMENTS, check_split_arguments),
    Target("ecs document", ECS, check_document),
    Target("otlp values and flatten", JSON_VALUES, check_values),
    Target("json body", st.one_of(JSON_VALUES.map(json.dumps), st.builds(
        lambda n, inner: "{" + '"a":' + "[" * n + inner + "]" * n + "}", st.integers(0, 3000), TEXT.map(json.dumps)),
        TEXT.map(lambda t: "{" + t)), check_json_body),
    Target("event time", TIMES, check_event_time),
    *(Target(name, inputs, check) for name, inputs, check in OTLP_TARGETS),
)


# -- running -------------------------------------------------------------------------------------------


@dataclass
class Report:
    name: str
    tried: int
    seconds: float
    failure: str | None


def fuzz(target: Target, seconds: float, deadline_ms: float, seed: int = 0, chunk: int = 50) -> Report:
    """Runs `target` for about `seconds` (in rounds of `chunk` inputs, each round with its own seed)."""
    tried = 0

    def counted(value: Any) -> None:
        nonlocal tried
        tried += 1
        try:
            target.check(value)
        except Exception as error:
            error.add_note(f"input: {value!r:.4000}")
            raise

    started = time.monotonic()
    round_ = 0
    while time.monotonic() - started < seconds:
        test = settings(max_examples=chunk, deadline=timedelta(milliseconds=deadline_ms), database=None,
                        suppress_health_check=list(HealthCheck), print_blob=False)(given(target.inputs)(counted))
        try:
            hypothesis_seed(seed + round_)(test)()
        except Exception as error:  # the failure is the report
            notes = "\n".join(getattr(error, "__notes__", []))
            return Report(target.name, tried, time.monotonic() - started, f"{type(error).__name__}: {error}\n{notes}")
        round_ += 1
    return Report(target.name, tried, time.monotonic() - started, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per target")
    parser.add_argument("--deadline-ms", type=float, default=250.0, help="time bound per input")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--target", action="append", choices=[t.name for t in TARGETS], help="default: all")
    args = parser.parse_args()
    print(f"seed {args.seed}, {args.seconds:.0f} s per target, {args.deadline_ms:.0f} ms per input")
    print(f"{'target':<26} {'inputs':>9} {'inputs/s':>9}  result")
    failed = False
    for target in TARGETS:
        if args.target and target.name not in args.target:
            continue
        report = fuzz(target, args.seconds, args.deadline_ms, args.seed)
        rate = report.tried / report.seconds if report.seconds else 0.0
        print(f"{report.name:<26} {report.tried:>9} {rate:>9.0f}  {'ok' if report.failure is None else 'FAILED'}",
              flush=True)
        if report.failure:
            failed = True
            print(report.failure)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

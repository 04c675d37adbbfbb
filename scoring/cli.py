"""`procsight score`: offline scoring of JSONL capture files with the receiver's policy.

Reads events as flat record attributes (docs/records.md), in order, and writes each input object plus
`anomaly_score`, `anomaly_severity`, `anomaly_reasons`, `anomaly_techniques`, `anomaly_nearest`, `anomaly_model`,
`process.ancestors` (when the process tree knows them) and, for events of a chain, `anomaly_incident` and
`anomaly_incident_score` to stdout.
A bad line is reported on stderr with its file and line number and skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from core.confmap import ConfigError
from core.event import InvalidEvent, ProcessEvent
from core.runtime import tune_garbage_collection
from core.semconv import (
    ANOMALY_INCIDENT,
    ANOMALY_INCIDENT_SCORE,
    ANOMALY_MODEL,
    ANOMALY_NEAREST,
    ANOMALY_REASONS,
    ANOMALY_SCORE,
    ANOMALY_SEVERITY,
    ANOMALY_TECHNIQUES,
    PROCESS_ANCESTORS,
    event_from_attributes,
)
from scoring.config import EngineConfig

if TYPE_CHECKING:
    from scoring.engine import AnomalyEngine, Verdict

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
PROGRESS_SECONDS = 5.0  # long work says how far it got this often (on stderr)
_JSON = json.JSONEncoder(ensure_ascii=False)  # built once: dumps() with options builds one per line
# For a line UTF-8 cannot carry: a lone surrogate, which a line's JSON may hold as `"\ud800"`, goes out escaped
# as it came in.
_ASCII_JSON = json.JSONEncoder()


@dataclass(slots=True)
class _Line:
    raw: dict[str, Any]
    event: ProcessEvent
    workload: str


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score", help="score JSONL process events offline against a baseline directory",
        description="Score JSONL events (record attribute keys, docs/records.md) in order, learning as the "
                    "receiver does.")
    _files_and_baselines(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--workload", default="default", help="workload to score against (default: default)")
    which.add_argument("--workload-from-field", metavar="FIELD",
                       help="take each event's workload from this field (e.g. workload or host.name)")
    parser.add_argument("--learn-only", action="store_true", help="build the baseline; emit nothing")
    parser.set_defaults(handler=run)

    ack = subparsers.add_parser(
        "ack", help="acknowledge events as normal for a workload (learn them now, whatever their score)",
        description="Learn the patterns of JSONL events (record attribute keys, e.g. lines of `procsight score` "
                    "output) into a baseline directory: the tuning step for a known-good alert.")
    _files_and_baselines(ack)
    ack.add_argument("--workload", required=True, help="workload whose baseline learns them")
    ack.set_defaults(handler=run_ack)


def _files_and_baselines(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSONL files, or - for standard input")
    parser.add_argument("--baselines", required=True, metavar="DIR", help="LanceDB baseline directory or URI")
    parser.add_argument("--tenant", default="default", help="tenant of the baselines (default: default)")
    parser.add_argument("--model", default=EngineConfig.model, help="featurizer (hash128-v2 or hash128-v1)")


def run(args: argparse.Namespace) -> int:
    verb = "learned" if args.learn_only else "scored"
    scored = skipped = 0

    def score(engine: AnomalyEngine) -> None:
        nonlocal scored, skipped
        tune_garbage_collection()
        started = reported = time.monotonic()
        batch: list[_Line] = []
        for item in _read_lines(args.files, args.workload, args.workload_from_field):
            if item is None:
                skipped += 1
                continue
            batch.append(item)
            if len(batch) >= BATCH_SIZE:
                scored += _flush(engine, batch, args, sys.stdout)
                batch = []
                if time.monotonic() - reported >= PROGRESS_SECONDS:
                    reported = time.monotonic()
                    log.info("%s %d events so far (%.0f/s)", verb, scored, scored / (reported - started))
        scored += _flush(engine, batch, args, sys.stdout)
        _output(sys.stdout.flush)  # failing at the interpreter's exit instead, it would not be reported

    status = _with_engine(args, score)
    if not status:
        log.info("%s %d events, skipped %d bad lines", verb, scored, skipped)
    return status


def run_ack(args: argparse.Namespace) -> int:
    acknowledged = 0

    def acknowledge(engine: AnomalyEngine) -> None:
        nonlocal acknowledged
        for item in _read_lines(args.files, args.workload, None):
            if item is not None:
                engine.acknowledge(item.event, args.tenant, args.workload, persist=False)
                acknowledged += 1

    status = _with_engine(args, acknowledge)  # the baselines are written once, at the end
    if not status:
        print(f"acknowledged {acknowledged} events as normal for workload {args.workload!r}", file=sys.stderr)
    return status


def _with_engine(args: argparse.Namespace, work: Callable[[AnomalyEngine], None]) -> int:
    """Runs `work` with the engine, then writes what it learned, also when it failed; the exit status, with any
    problem said in one line (2: the arguments, 1: a file or the baselines' storage)."""
    engine = _prepare(args)
    if engine is None:
        return 2
    try:
        work(engine)
    except _FileFailed as exc:
        print(f"procsight {args.command}: {exc}", file=sys.stderr)
        _close(engine, args)
        return 1
    except BaseException:
        _close(engine, args)
        raise
    return 0 if _close(engine, args) else 1


def _prepare(args: argparse.Namespace) -> AnomalyEngine | None:
    """Checks the input files, then opens the engine; None once a problem with the arguments is reported."""
    unreadable = next((problem for name in args.files if (problem := _unreadable(name))), "")
    if unreadable:
        print(f"procsight {args.command}: {unreadable}", file=sys.stderr)
        return None
    # Imported here: every `procsight` command registers this module, and the agent has no use for LanceDB.
    from scoring.engine import AnomalyEngine

    try:
        return AnomalyEngine(EngineConfig(baselines=args.baselines, model=args.model))
    except ConfigError as exc:
        print(f"procsight {args.command}: --{exc}", file=sys.stderr)
    except (OSError, RuntimeError) as exc:  # LanceDB raises RuntimeError for its I/O errors (a full disk)
        print(f"procsight {args.command}: cannot open the baselines at {args.baselines}: {_storage_error(exc)}",
              file=sys.stderr)
    return None


def _close(engine: AnomalyEngine, args: argparse.Namespace) -> bool:
    """Writes what was learned; False, said in one line, when the baselines' storage refused it."""
    try:
        engine.close()
    except (OSError, RuntimeError) as exc:
        print(f"procsight {args.command}: what this run learned could not be written to {args.baselines}: "
              f"{_storage_error(exc)}", file=sys.stderr)
        return False
    return True


def _storage_error(exc: Exception) -> str:
    """The error's first line, without the Rust source location LanceDB appends."""
    return re.sub(r", /\S+\.rs:\d+:\d+$", "", (str(exc).splitlines() or [type(exc).__name__])[0])[:300]


class _FileFailed(Exception):
    """An input file failed while it was read, or the output while it was written: said in one line."""


def _unreadable(name: str) -> str:
    """Why an input file cannot be read, or "". Checked without opening it: a pipe (`<(zcat x.gz)`) is read once."""
    if name == "-":
        return ""
    if not os.path.exists(name):
        return f"{name}: no such file"
    if os.path.isdir(name):
        return f"{name} is a directory: name JSONL files"
    if not os.access(name, os.R_OK):
        return f"{name}: not readable by this user"
    return ""


def _read_lines(files: list[str], workload: str, workload_field: str | None) -> Iterator[_Line | None]:
    for name in files:
        try:
            stream: TextIO = sys.stdin if name == "-" else open(name, encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError as exc:  # gone, or its permissions changed, since the check before the start
            raise _FileFailed(f"cannot read {name}: {exc.strerror}") from exc
        try:
            for number, text in _numbered(stream, name):
                if not text.strip():
                    continue
                yield _parse(text, name, number, workload, workload_field)
        finally:
            if stream is not sys.stdin:
                stream.close()


def _numbered(stream: TextIO, name: str) -> Iterator[tuple[int, str]]:
    number = 0
    try:
        for number, text in enumerate(stream, start=1):
            yield number, text
    except OSError as exc:  # a disk or network file system failing under the read
        raise _FileFailed(f"reading {name} failed after {number} lines: {exc.strerror or exc}") from exc


def _parse(text: str, name: str, number: int, workload: str, workload_field: str | None) -> _Line | None:
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise InvalidEvent("a line must be a JSON object")
        event = event_from_attributes(raw)
    except ValueError as exc:  # not JSON, an integer longer than Python converts, or an InvalidEvent
        print(f"{name}:{number}: skipped: {exc}", file=sys.stderr)
        return None
    except RecursionError:
        print(f"{name}:{number}: skipped: JSON nested deeper than this reader follows", file=sys.stderr)
        return None
    if workload_field:
        workload = str(raw.get(workload_field) or "default")
    return _Line(raw, event, workload)


def _flush(engine: AnomalyEngine, batch: list[_Line], args: argparse.Namespace, out: TextIO) -> int:
    # Consecutive events of the same workload go to the engine together, keeping stream order.
    start = 0
    while start < len(batch):
        end = start
        while end < len(batch) and batch[end].workload == batch[start].workload:
            end += 1
        run_of = batch[start:end]
        verdicts = _judge(engine, [line.event for line in run_of], run_of[0].workload, args)
        for line, verdict in zip(run_of, verdicts, strict=not args.learn_only):
            line.raw.update({
                ANOMALY_SCORE: round(verdict.score, 4),
                ANOMALY_SEVERITY: verdict.severity,
                ANOMALY_REASONS: verdict.reasons,
                ANOMALY_TECHNIQUES: list(verdict.techniques),
                ANOMALY_NEAREST: verdict.nearest,
                ANOMALY_MODEL: verdict.model,
            })
            if verdict.incident:
                line.raw.update({ANOMALY_INCIDENT: verdict.incident,
                                 ANOMALY_INCIDENT_SCORE: verdict.incident_score})
            if line.event.ancestors:
                line.raw.setdefault(PROCESS_ANCESTORS, list(line.event.ancestors))
            _write_line(out, line.raw)
        start = end
    return len(batch)


def _judge(engine: AnomalyEngine, events: list[ProcessEvent], workload: str, args: argparse.Namespace) -> list[Verdict]:
    """The engine's verdicts on `events`, none with --learn-only; a failure of the baselines' storage in one line."""
    try:
        if args.learn_only:
            engine.learn_only(events, args.tenant, workload)
            return []
        return engine.process(events, args.tenant, workload)
    except (OSError, RuntimeError) as exc:  # LanceDB's I/O errors (a full disk) are RuntimeErrors
        log.debug("the engine failed", exc_info=True)
        raise _FileFailed(f"the baselines at {args.baselines} failed: {_storage_error(exc)}") from exc


def _write_line(out: TextIO, raw: dict[str, Any]) -> None:
    text = _JSON.encode(raw)
    try:
        _output(out.write, text + "\n")
    except UnicodeEncodeError:  # raised before anything of the line is written
        _output(out.write, _ASCII_JSON.encode(raw) + "\n")


def _output(call: Callable[..., object], *args: str) -> None:
    """`call(*args)` on the output. One that cannot be written (a full disk under `> scored.jsonl`) is said in one
    line; a reader that left (`| head`) goes up to procsight/cli.py, which stops quietly."""
    try:
        call(*args)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _FileFailed(f"cannot write the output: {exc.strerror or exc}") from exc

"""Tetragon's JSON export: one event per line, `{"process_exec": {...}, "node_name": ..., "time": ...}`.

Only `process_exec` is an exec; `process_exit`, `process_kprobe`, `process_tracepoint`, the older
`process_connect`/`process_close`/`process_listen`, `process_throttle`... are recognised and passed
through (`tetragon_other`).
"""

from __future__ import annotations

import re
from typing import Any

from core import semconv
from core.event import MAX_ARGS
from otlp_receiver.normalize import eventtime
from otlp_receiver.normalize.fields import Found, basename, executable, first, identifier, mapping, text

# A double quote that can end an argument Tetragon wrapped in quotes: followed by a space or the end.
_CLOSING_QUOTE = re.compile(r'"(?= |$)')


def recognise(document: dict[str, Any]) -> Found | None:
    exec_event = document.get("process_exec")
    if isinstance(exec_event, dict) and isinstance(exec_event.get("process"), dict):
        return Found("tetragon", _exec(document, exec_event), _time(document))
    if ("node_name" in document or "time" in document) and any(
            key.startswith("process_") and isinstance(value, dict) for key, value in document.items()):
        return Found("tetragon_other", None, _time(document))
    return None


def _time(document: dict[str, Any]) -> eventtime.EventTime | None:
    return eventtime.from_rfc3339(document.get("time"))


def _exec(document: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    process = event["process"]
    parent = mapping(event.get("parent"))
    # `process_credentials` (with --enable-process-cred): real uid and euid; `uid` alone is the euid.
    credentials = mapping(process.get("process_credentials"))
    effective = identifier(credentials.get("euid"))
    path, name, deleted = executable(text(process.get("binary")), None)
    arguments = text(process.get("arguments")) or ""
    attrs: dict[str, Any] = {
        semconv.PROCESS_EXECUTABLE_PATH: path,
        semconv.PROCESS_EXECUTABLE_NAME: name,
        semconv.PROCESS_EXECUTABLE_DELETED: deleted,
        # Tetragon reports argv[1:]; the binary stands in for argv[0].
        semconv.PROCESS_COMMAND_ARGS: [path, *split_arguments(arguments)],
        semconv.PROCESS_COMMAND_LINE: f"{path} {arguments}".strip(),
        semconv.PROCESS_PID: identifier(process.get("pid")),
        semconv.PROCESS_USER_ID: identifier(process.get("uid")) if effective is None else effective,
        semconv.PROCESS_REAL_USER_ID: identifier(credentials.get("uid")),
        semconv.PROCESS_USER_NAME: text(mapping(process.get("user")).get("name")),
        semconv.PROCESS_WORKING_DIRECTORY: text(process.get("cwd")),
        semconv.CONTAINER_ID: text(process.get("docker")) or None,
        semconv.PROCESS_PARENT_EXECUTABLE_NAME: basename(text(parent.get("binary")) or "") or None,
        semconv.PROCESS_PARENT_PID: identifier(parent.get("pid")),
        semconv.HOST_NAME: first(document, "node_name"),
    }
    ancestors = event.get("ancestors")
    if isinstance(ancestors, list) and attrs[semconv.PROCESS_PARENT_EXECUTABLE_NAME]:
        names = (basename(text(mapping(a).get("binary")) or "") for a in ancestors[:MAX_ARGS])
        attrs[semconv.PROCESS_ANCESTORS] = [attrs[semconv.PROCESS_PARENT_EXECUTABLE_NAME], *filter(None, names)]
    return attrs


def split_arguments(arguments: str) -> list[str]:
    """Tetragon's `arguments` back into argv[1:], at most `MAX_ARGS` + 1 of them, in linear time.

    Tetragon joins argv with spaces and wraps an argument that contains a space in double quotes,
    without escaping anything (its `process.ArgsDecoder`). So `-c "scp -i key f u@h:~"` is two
    arguments, and the `-i` inside the quotes is no flag of the shell. A shell's rules (shlex) would
    be wrong here: they would eat the backslashes of `C:\\x` or `\\n` and fail on an apostrophe,
    which Tetragon never quotes. A quote only opens a wrapped argument if a closing quote follows
    with a space inside: otherwise it is part of a plain argument, and a plain argument is never
    split inside a wrapped one, so no flag is ever made up from quoted text. (Tetragon's encoding is
    ambiguous for an argument holding `" ` itself; the first such quote closes it.)
    """
    closings = [match.start() for match in _CLOSING_QUOTE.finditer(arguments)]
    args: list[str] = []
    start, closing, end = 0, 0, len(arguments)
    while start < end and len(args) <= MAX_ARGS:
        if arguments[start] == " ":
            start += 1
            continue
        if arguments[start] == '"':
            while closing < len(closings) and closings[closing] <= start:
                closing += 1
            if closing < len(closings) and " " in arguments[start + 1:closings[closing]]:
                args.append(arguments[start + 1:closings[closing]])
                start = closings[closing] + 1
                continue
        stop = arguments.find(" ", start)
        stop = end if stop < 0 else stop
        args.append(arguments[start:stop])
        start = stop
    return args

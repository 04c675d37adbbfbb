"""Falco's JSON output (`json_output: true`, as Falco writes it and falcosidekick forwards it).

An output whose `output_fields` describe a process (`proc.name`, `proc.cmdline`, `proc.exepath`,
`proc.exe`) is scored; the others (Kubernetes and cloud audit rules, Falco's own drop and metrics
outputs) are recognised and passed through (`falco_other`).

`user.uid` is the effective uid: Falco's drivers report the thread's euid on exec, and its user
fields describe that user. Falco has no field for the real uid (`user.loginuid` is the audit login
uid, another thing), so `process.real_user.id` stays unset.
"""

from __future__ import annotations

from typing import Any

from core import semconv
from otlp_receiver.normalize import eventtime
from otlp_receiver.normalize.fields import Found, executable, first, identifier, text

_PROCESS_FIELDS = ("proc.name", "proc.cmdline", "proc.exepath", "proc.exe")
_OUTPUT_KEYS = ("rule", "Rule", "priority", "output")  # `Rule` in falco-talon's examples
_MAX_ANCESTOR = 16  # proc.aname[2] .. proc.aname[16]


def recognise(document: dict[str, Any]) -> Found | None:
    fields = document.get("output_fields")
    if not isinstance(fields, dict) or not any(key in document for key in _OUTPUT_KEYS):
        return None
    time = eventtime.from_rfc3339(document.get("time")) or eventtime.from_unix_nano(fields.get("evt.time"))
    if not any(text(fields.get(key)) for key in _PROCESS_FIELDS):
        return Found("falco_other", None, time)
    return Found("falco", _process(document, fields), time)


def _process(document: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    command_line = text(fields.get("proc.cmdline"))  # "<proc.name> <args>"
    argv0 = text(fields.get("proc.exe"))
    comm = text(fields.get("proc.name")) or (command_line.split(" ", 1)[0] if command_line else None) or argv0
    if not command_line:
        command_line = f"{comm or ''} {text(fields.get('proc.args')) or ''}".strip()
    path, name, deleted = executable(text(fields.get("proc.exepath")), comm)
    parent = text(fields.get("proc.pname"))
    container = text(fields.get("container.id"))
    attrs = {
        semconv.PROCESS_EXECUTABLE_NAME: name,
        semconv.PROCESS_EXECUTABLE_PATH: path,
        semconv.PROCESS_EXECUTABLE_DELETED: deleted,
        semconv.PROCESS_COMMAND_LINE: command_line,
        semconv.PROCESS_PARENT_EXECUTABLE_NAME: parent,
        semconv.PROCESS_PID: identifier(fields.get("proc.pid")),
        semconv.PROCESS_PARENT_PID: identifier(fields.get("proc.ppid")),
        semconv.PROCESS_USER_ID: identifier(fields.get("user.uid")),
        semconv.PROCESS_USER_NAME: text(fields.get("user.name")),
        semconv.PROCESS_WORKING_DIRECTORY: text(fields.get("proc.cwd")),
        semconv.CONTAINER_ID: None if container in (None, "", "host") else container,  # "host": no container
        semconv.HOST_NAME: first(document, "hostname") or first(fields, "evt.hostname"),
    }
    ancestors = []
    for index in range(2, _MAX_ANCESTOR + 1):  # Falco writes them in order: the first missing ends them
        key = f"proc.aname[{index}]"
        if key not in fields:
            break
        ancestor = text(fields[key])
        if ancestor:
            ancestors.append(ancestor)
    if ancestors and parent:
        attrs[semconv.PROCESS_ANCESTORS] = [parent, *ancestors]
    return attrs

"""Flat process attributes: the OpenTelemetry semantic conventions (procsight's agent, other SDKs) and
ECS (Elastic Defend, Auditbeat, Sysmon for Linux through Elastic), as record attributes or as a JSON
document flattened (`{"process": {"name": ...}}` -> `process.name`).

Semantic-convention records are read as they are (`core/semconv.py`). ECS records are exec events only
when ECS says so: `event.kind` event, `event.category` process, and `event.type` start with no
`event.action` that names a fork or a library load (Elastic Defend's Linux `library_loaded` example is
category process, type start, action `loaded`), or, without `event.type` (the mock events of ECS's
Linux event model), an `event.action` that names an exec. Process ends, forks, uid changes, alerts,
API, network, file and registry events are recognised and passed through (`ecs_other`). A document
without any `event` field is read as an exec, as plain `process.*` fields always were.

Users, as ECS defines them (`process.user` is the euid, `process.real_user` the real uid; on a process
event `user.*` is the effective user, except next to `user.effective.*`, Auditbeat's shape, where
`user.*` is the real one and `user.effective.*` the effective one; Elastic Defend adds
`user.Ext.real.*`).
"""

from __future__ import annotations

from typing import Any

from core import semconv
from otlp_receiver.normalize import eventtime
from otlp_receiver.normalize.fields import Found, basename, executable, first, identifier, text, text_list

_SEMCONV_ONLY = (semconv.PROCESS_EXECUTABLE_NAME, semconv.PROCESS_EXECUTABLE_PATH, semconv.PROCESS_COMMAND_ARGS,
                 semconv.PROCESS_PARENT_PID, semconv.PROCESS_PARENT_EXECUTABLE_NAME)
_ECS_PROCESS = ("process.name", "process.args", "process.executable")
_ECS_MARKERS = ("ecs.version", "event.kind", "event.category", "event.type")
_NOT_EXEC_ACTIONS = frozenset({"fork", "load", "loaded", "library_loaded", "already_running"})
# Actions of exec events in the ECS producers: Elastic Defend, ECS's Linux event model, Auditbeat, osquery.
_EXEC_ACTIONS = frozenset({"exec", "execve", "executed", "execution", "start", "started", "creation", "created",
                           "process_started"})


def recognise(flat: dict[str, Any]) -> Found | None:
    if any(key in flat for key in _SEMCONV_ONLY):
        return Found("semconv", flat)
    if any(text(flat.get(key)) is not None or text_list(flat.get(key)) for key in _ECS_PROCESS) or any(
            key in flat for key in _ECS_MARKERS):
        return _ecs(flat)
    if semconv.PROCESS_COMMAND_LINE in flat:
        return Found("semconv", flat)
    return None


def _ecs(flat: dict[str, Any]) -> Found:
    time = eventtime.from_rfc3339(flat.get("@timestamp"))
    args = text_list(flat.get("process.args")) or []
    command_line = first(flat, "process.command_line") or " ".join(args)
    if not _is_exec(flat) or not (command_line or first(flat, "process.name", "process.executable")):
        return Found("ecs_other", None, time)
    path, name, deleted = executable(first(flat, "process.executable"), first(flat, "process.name"))
    effective, real, user_name = _users(flat)
    attrs = {
        semconv.PROCESS_EXECUTABLE_NAME: name,
        semconv.PROCESS_EXECUTABLE_PATH: path,
        semconv.PROCESS_EXECUTABLE_DELETED: deleted,
        semconv.PROCESS_COMMAND_LINE: command_line or name,
        semconv.PROCESS_COMMAND_ARGS: args,
        semconv.PROCESS_PID: identifier(flat.get("process.pid")),
        semconv.PROCESS_PARENT_PID: identifier(flat.get("process.parent.pid")),
        semconv.PROCESS_PARENT_EXECUTABLE_NAME: first(flat, "process.parent.name")
        or basename(first(flat, "process.parent.executable") or "") or None,
        semconv.PROCESS_WORKING_DIRECTORY: first(flat, "process.working_directory"),
        semconv.PROCESS_USER_ID: effective,
        semconv.PROCESS_REAL_USER_ID: real,
        semconv.PROCESS_USER_NAME: user_name,
        semconv.CONTAINER_ID: first(flat, "container.id"),
        semconv.HOST_NAME: first(flat, "host.hostname", "host.name"),
    }
    return Found("ecs", attrs, time)


def _values(value: Any) -> set[str]:
    """An ECS keyword field, single or a list, lower-cased."""
    items = value if isinstance(value, list) else [value]
    return {item.lower() for item in items[:64] if isinstance(item, str)}


def _is_exec(flat: dict[str, Any]) -> bool:
    for key, wanted in (("event.kind", "event"), ("event.category", "process"), ("event.type", "start")):
        if key in flat and wanted not in _values(flat[key]):
            return False
    actions = _values(flat.get("event.action"))
    if "event.type" in flat or "event.action" not in flat:
        return not actions & _NOT_EXEC_ACTIONS
    return bool(actions & _EXEC_ACTIONS)


def _users(flat: dict[str, Any]) -> tuple[int | None, int | None, str | None]:
    """(effective uid, real uid, effective user name)."""
    real = None
    if "process.user.id" in flat:
        effective, name = identifier(flat["process.user.id"]), first(flat, "process.user.name")
    elif "user.effective.id" in flat:
        effective, name = identifier(flat["user.effective.id"]), first(flat, "user.effective.name")
        real = identifier(flat.get("user.id"))
    else:
        effective, name = identifier(flat.get("user.id")), first(flat, "user.name")
    for key in ("process.real_user.id", "user.Ext.real.id"):
        if key in flat:
            real = identifier(flat[key])
    return effective, real, name

"""Stateless shapes: each turns one source's fields into the flat record attributes of `core/semconv.py`
that `event_from_attributes` reads, or returns None when the fields are not that shape."""

from __future__ import annotations

from typing import Any

from core import semconv

# ECS names -> procsight's (semantic convention) names, where they differ.
_ECS = {
    "process.name": semconv.PROCESS_EXECUTABLE_NAME,
    "process.executable": semconv.PROCESS_EXECUTABLE_PATH,
    "process.args": semconv.PROCESS_COMMAND_ARGS,
    "process.parent.name": semconv.PROCESS_PARENT_EXECUTABLE_NAME,
    "process.parent.pid": semconv.PROCESS_PARENT_PID,
    "user.id": semconv.PROCESS_USER_ID,
    "user.name": semconv.PROCESS_USER_NAME,
    "host.hostname": semconv.HOST_NAME,
}
_SEMCONV_KEYS = (semconv.PROCESS_EXECUTABLE_NAME, semconv.PROCESS_EXECUTABLE_PATH, semconv.PROCESS_COMMAND_LINE,
                 semconv.PROCESS_COMMAND_ARGS)
_ECS_KEYS = ("process.name", "process.args", "process.executable")


def process_attributes(attrs: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """Our agent / OpenTelemetry semantic conventions, and ECS `process.*` (renamed where needed)."""
    semconv = any(k in attrs for k in _SEMCONV_KEYS)
    ecs = any(k in attrs and not isinstance(attrs[k], dict) for k in _ECS_KEYS)
    if not (semconv or ecs):
        return None
    if not ecs:
        return attrs, "semconv"
    mapped = dict(attrs)
    for ecs_key, key in _ECS.items():
        if ecs_key in attrs and key not in attrs:
            mapped[key] = attrs[ecs_key]
    return mapped, ("semconv" if semconv else "ecs")


def falco(document: dict[str, Any]) -> dict[str, Any] | None:
    """Falco's JSON output: `output_fields` with `proc.*`, `user.*`, `container.id`."""
    fields = document.get("output_fields")
    if not isinstance(fields, dict) or not ("proc.name" in fields or "proc.cmdline" in fields):
        return None
    name = fields.get("proc.name")
    cmdline = fields.get("proc.cmdline")
    if not cmdline and name:
        cmdline = f"{name} {fields.get('proc.args') or ''}".strip()
    ancestors = [fields[f"proc.aname[{i}]"] for i in range(2, 17) if fields.get(f"proc.aname[{i}]")]
    container = fields.get("container.id")  # Falco's field of the same name
    attrs = {
        semconv.PROCESS_EXECUTABLE_NAME: name,
        semconv.PROCESS_COMMAND_LINE: cmdline,
        semconv.PROCESS_EXECUTABLE_PATH: fields.get("proc.exepath") or fields.get("proc.exe"),
        semconv.PROCESS_PARENT_EXECUTABLE_NAME: fields.get("proc.pname"),
        semconv.PROCESS_PID: fields.get("proc.pid"),
        semconv.PROCESS_PARENT_PID: fields.get("proc.ppid"),
        semconv.PROCESS_USER_ID: fields.get("user.uid"),
        semconv.PROCESS_USER_NAME: fields.get("user.name"),
        semconv.PROCESS_WORKING_DIRECTORY: fields.get("proc.cwd"),
        semconv.CONTAINER_ID: None if container in (None, "host") else container,
        semconv.HOST_NAME: document.get("hostname"),
        "falco.rule": document.get("rule"),
        "falco.priority": document.get("priority"),
    }
    if ancestors and fields.get("proc.pname"):
        attrs[semconv.PROCESS_ANCESTORS] = [fields["proc.pname"], *ancestors]
    return attrs


def tetragon(document: dict[str, Any]) -> dict[str, Any] | None:
    """Tetragon's `process_exec` JSON export."""
    event = document.get("process_exec")
    if not isinstance(event, dict) or not isinstance(event.get("process"), dict):
        return None
    process = event["process"]
    parent = event.get("parent") if isinstance(event.get("parent"), dict) else {}
    binary = str(process.get("binary") or "")
    arguments = str(process.get("arguments") or "")
    pod = process.get("pod") if isinstance(process.get("pod"), dict) else {}
    attrs: dict[str, Any] = {
        semconv.PROCESS_EXECUTABLE_PATH: binary,
        semconv.PROCESS_EXECUTABLE_NAME: _basename(binary),
        semconv.PROCESS_COMMAND_LINE: f"{binary} {arguments}".strip(),
        semconv.PROCESS_COMMAND_ARGS: [binary, *arguments.split()],
        semconv.PROCESS_PID: process.get("pid"),
        semconv.PROCESS_USER_ID: process.get("uid"),
        semconv.PROCESS_WORKING_DIRECTORY: process.get("cwd"),
        semconv.CONTAINER_ID: process.get("docker") or None,
        semconv.PROCESS_PARENT_EXECUTABLE_NAME: _basename(str(parent.get("binary") or "")) or None,
        semconv.PROCESS_PARENT_PID: parent.get("pid"),
        semconv.HOST_NAME: document.get("node_name"),
        "k8s.pod.name": pod.get("name"),
        "k8s.namespace.name": pod.get("namespace"),
    }
    ancestors = event.get("ancestors")
    if isinstance(ancestors, list) and attrs[semconv.PROCESS_PARENT_EXECUTABLE_NAME]:
        names = [_basename(str(a.get("binary") or "")) for a in ancestors if isinstance(a, dict)]
        attrs[semconv.PROCESS_ANCESTORS] = [attrs[semconv.PROCESS_PARENT_EXECUTABLE_NAME], *[n for n in names if n]]
    return attrs


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]

"""Stateless shapes: each turns one source's fields into the flat DESIGN section 1 keys that
`ProcessEvent.from_attributes` reads, or returns None when the fields are not that shape."""

from __future__ import annotations

from typing import Any

# ECS names -> DESIGN (semantic convention) names, where they differ.
_ECS = {
    "process.name": "process.executable.name",
    "process.executable": "process.executable.path",
    "process.args": "process.command_args",
    "process.parent.name": "process.parent.executable.name",
    "process.parent.pid": "process.parent_pid",
    "user.id": "process.user.id",
    "user.name": "process.user.name",
    "host.hostname": "host.name",
}
_SEMCONV_KEYS = ("process.executable.name", "process.executable.path", "process.command_line",
                 "process.command_args")
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
    container = fields.get("container.id")
    attrs = {
        "process.executable.name": name,
        "process.command_line": cmdline,
        "process.executable.path": fields.get("proc.exepath") or fields.get("proc.exe"),
        "process.parent.executable.name": fields.get("proc.pname"),
        "process.pid": fields.get("proc.pid"),
        "process.parent_pid": fields.get("proc.ppid"),
        "process.user.id": fields.get("user.uid"),
        "process.user.name": fields.get("user.name"),
        "process.working_directory": fields.get("proc.cwd"),
        "container.id": None if container in (None, "host") else container,
        "host.name": document.get("hostname"),
        "falco.rule": document.get("rule"),
        "falco.priority": document.get("priority"),
    }
    if ancestors and fields.get("proc.pname"):
        attrs["process.ancestors"] = [fields["proc.pname"], *ancestors]
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
        "process.executable.path": binary,
        "process.executable.name": _basename(binary),
        "process.command_line": f"{binary} {arguments}".strip(),
        "process.command_args": [binary, *arguments.split()],
        "process.pid": process.get("pid"),
        "process.user.id": process.get("uid"),
        "process.working_directory": process.get("cwd"),
        "container.id": process.get("docker") or None,
        "process.parent.executable.name": _basename(str(parent.get("binary") or "")) or None,
        "process.parent_pid": parent.get("pid"),
        "host.name": document.get("node_name"),
        "k8s.pod.name": pod.get("name"),
        "k8s.namespace.name": pod.get("namespace"),
    }
    ancestors = event.get("ancestors")
    if isinstance(ancestors, list) and attrs["process.parent.executable.name"]:
        names = [_basename(str(a.get("binary") or "")) for a in ancestors if isinstance(a, dict)]
        attrs["process.ancestors"] = [attrs["process.parent.executable.name"], *[n for n in names if n]]
    return attrs


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]

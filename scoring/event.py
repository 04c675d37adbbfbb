"""The process event as the scoring engine sees it (DESIGN section 1), free of any wire format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

EXEC = "process.exec"
CONNECTION = "network.connection"
LISTEN = "network.listen"
EVENT_NAMES = (EXEC, CONNECTION, LISTEN)


class InvalidEvent(ValueError):
    """An event lacks what scoring needs (the executable and the command line)."""


@dataclass(slots=True)
class ProcessEvent:
    """One process execution or network event of one process.

    Only `executable_name` and `command_line` are required; everything else is evidence when present.
    """

    executable_name: str
    command_line: str
    command_args: tuple[str, ...] = ()
    event_name: str = EXEC
    executable_path: str = ""
    parent_name: str = ""
    ancestors: tuple[str, ...] = ()  # executable names up the parent chain, nearest first
    pid: int | None = None
    parent_pid: int | None = None
    user_id: int | None = None
    user_name: str = ""
    working_directory: str = ""
    container_id: str = ""
    host: str = ""
    timestamp: float = 0.0  # seconds since the epoch
    command_args_truncated: bool = False
    executable_deleted: bool = False  # the backing file is gone ("(deleted)") or never existed
    cpu_percent: float | None = None
    transport: str = ""
    local_address: str = ""
    local_port: int | None = None
    remote_address: str = ""
    remote_port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def args(self) -> tuple[str, ...]:
        """argv, falling back to a whitespace split of the command line."""
        return self.command_args or tuple(self.command_line.split())

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, Any]) -> ProcessEvent:
        """Builds an event from flat DESIGN section 1 keys (the JSONL shape of `procsight score`)."""
        args = _as_args(attrs.get("process.command_args"))
        command_line = _as_str(attrs.get("process.command_line")) or " ".join(args)
        path = _as_str(attrs.get("process.executable.path"))
        name = _as_str(attrs.get("process.executable.name")) or _basename(path) or (
            _basename(args[0]) if args else "")
        if not name or not command_line:
            raise InvalidEvent("needs process.executable.name (or .path) and process.command_line (or _args)")
        event_name = _as_str(attrs.get("event.name") or attrs.get("EventName")) or EXEC
        return cls(
            executable_name=name,
            command_line=command_line,
            command_args=args,
            event_name=event_name,
            executable_path=path,
            parent_name=_as_str(attrs.get("process.parent.executable.name")),
            ancestors=_as_args(attrs.get("process.ancestors")),
            pid=_as_int(attrs.get("process.pid")),
            parent_pid=_as_int(attrs.get("process.parent_pid")),
            user_id=_as_int(attrs.get("process.user.id")),
            user_name=_as_str(attrs.get("process.user.name")),
            working_directory=_as_str(attrs.get("process.working_directory")),
            container_id=_as_str(attrs.get("container.id")),
            host=_as_str(attrs.get("host.name")),
            timestamp=_as_float(attrs.get("ts", attrs.get("timestamp"))) or 0.0,
            command_args_truncated=bool(attrs.get("process.command_args_truncated", False)),
            executable_deleted=bool(attrs.get("process.executable.deleted", False)),
            cpu_percent=_as_float(attrs.get("process.cpu.utilization")),
            transport=_as_str(attrs.get("network.transport")),
            local_address=_as_str(attrs.get("source.address")),
            local_port=_as_int(attrs.get("source.port")),
            remote_address=_as_str(attrs.get("destination.address")),
            remote_port=_as_int(attrs.get("destination.port")),
        )


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _as_str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _as_args(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, Sequence):
        return tuple(_as_str(v) for v in value)
    return ()


def _as_int(value: Any) -> int | None:
    number = _as_number(value, int)
    return None if number is None else int(number)


def _as_float(value: Any) -> float | None:
    return _as_number(value, float)


def _as_number(value: Any, kind: type[int] | type[float]) -> int | float | None:
    """A number from JSON or attribute values (strings of digits included); None when it is not one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        return None

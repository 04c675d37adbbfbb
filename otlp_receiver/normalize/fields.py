"""Reading one field of a third-party document safely, the executable's name, and what a source
module returns.

A document's values are whatever the sender wrote: a command line may arrive as a map, a pid as a
list nested a thousand deep. Every source module reads its fields through these helpers, so only
scalars (and lists of scalars, for argv) ever reach the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.event import MAX_ARGS
from otlp_receiver.normalize.eventtime import EventTime

# Placeholders sources write where a path is unknown (auditd, Sysmon for Linux).
_NO_PATH = frozenset({"", "(null)", "(none)", "?"})
_DELETED = " (deleted)"  # what the kernel appends to the path of an executable whose file is gone


def text(value: Any) -> str | None:
    """A string or a number as text; None for anything else (maps, lists, null, booleans)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def text_list(value: Any) -> list[str] | None:
    """A list of scalars as text (at most `MAX_ARGS` + 1 kept, so the event's bound can flag the cut);
    None when it is not a list."""
    if not isinstance(value, list):
        return None
    items = (text(item) for item in value[: MAX_ARGS + 1])
    return [item for item in items if item is not None]


def first(document: dict[str, Any], *keys: str) -> str | None:
    """The first of `keys` whose value is text."""
    for key in keys:
        value = text(document.get(key))
        if value is not None:
            return value
    return None


def basename(path: str) -> str:
    """The last component of a POSIX path, or of a Windows path (ECS documents from Windows hosts)."""
    path = path.rstrip("/")
    if "/" not in path and "\\" in path:
        return path.rstrip("\\").rsplit("\\", 1)[-1]
    return path.rsplit("/", 1)[-1]


def executable(path: str | None, name: str | None) -> tuple[str, str, bool]:
    """(path, name, deleted) of the executable.

    The name is the base name of the path, as the semantic conventions define
    `process.executable.name`; the source's own name (comm, which a process can set to anything) only
    when there is no path. A path the kernel marked " (deleted)" is given without the mark, flagged.
    """
    path = path or ""
    deleted = path.endswith(_DELETED)
    if deleted:
        path = path[: -len(_DELETED)]
    if path in _NO_PATH:
        path = ""
    return path, basename(path) or basename(name or ""), deleted


def identifier(value: Any) -> int | None:
    """A pid or a uid: an integer (or a string of digits) below 2^32, the kernel's width for both."""
    if isinstance(value, str) and 0 < len(value) <= 10 and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 32:
        return value
    return None


def mapping(value: Any) -> dict[str, Any]:
    """A nested object of the document, or an empty one when the sender put something else there."""
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class Found:
    """What a source module recognised in one record."""

    kind: str  # one of normalizer.KINDS
    attributes: dict[str, Any] | None = None  # flat core/semconv.py attributes of an event to score
    time: EventTime | None = None  # the source's own time of the record

"""The process tree of an incident: its events linked child to parent by (host, pid), drawn as a tree.

An incident (`anomaly_incident`) is a chain of processes; its stored events carry `pid`, `parent_pid`
and `host`. A process that execs again keeps its pid (`env bash` becomes bash), so a later event with
the pid of an earlier one is drawn as its child. Events whose parent is not in the incident are roots;
the first root shows the ancestors the receiver knew (`process.ancestors`) as context above the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# What a tree node keeps of an event (the full event is one click away).
NODE_FIELDS = ("record_id", "time", "pid", "executable", "command_line", "user", "score", "severity", "reasons",
               "techniques")
SEVERITY_LEVEL = {"none": 0, "warn": 1, "alert": 2}
SEVERITIES = tuple(SEVERITY_LEVEL)


def process_tree(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Root nodes, each `{...NODE_FIELDS, "children": [...]}`, in time order at every level."""
    ordered = sorted(events, key=lambda event: (event.get("time") or "", event.get("record_id") or ""))
    latest: dict[tuple[str, int], dict[str, Any]] = {}  # (host, pid) -> the node of its latest exec so far
    roots: list[dict[str, Any]] = []
    for event in ordered:
        node = {field: event.get(field) for field in NODE_FIELDS}
        node["children"] = []
        host, pid, parent_pid = event.get("host") or "", event.get("pid"), event.get("parent_pid")
        parent = latest.get((host, pid)) if pid is not None else None  # the same process, exec'd again
        if parent is None and parent_pid is not None:
            parent = latest.get((host, parent_pid))
        (parent["children"] if parent is not None else roots).append(node)
        if pid is not None:
            latest[(host, pid)] = node
    return roots


def tree_lines(roots: Sequence[dict[str, Any]], ancestors: Sequence[str] = ()) -> list[tuple[str, dict[str, Any]]]:
    """The tree as (prefix, node) lines for a terminal, `├─`/`└─` drawn; the ancestors (nearest first)
    come first as a chain of context lines, nodes `{"context": name}`, with the roots below them."""
    lines: list[tuple[str, dict[str, Any]]] = []
    for depth, name in enumerate(reversed(ancestors)):
        lines.append(("   " * (depth - 1) + "└─ " if depth else "", {"context": name}))

    def walk(nodes: Sequence[dict[str, Any]], prefix: str) -> None:
        for index, node in enumerate(nodes):
            last = index == len(nodes) - 1
            lines.append((prefix + ("└─ " if last else "├─ "), node))
            walk(node["children"], prefix + ("   " if last else "│  "))

    walk(roots, "   " * (len(ancestors) - 1) if ancestors else "")
    return lines


def highest_severity(severities: Sequence[str]) -> str:
    return max(severities, key=lambda severity: SEVERITY_LEVEL.get(severity, 0), default="none")

"""The ranked triage list in the terminal: red at alert, yellow at warn, white below; an incident's
chain of processes drawn as a tree under it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otlp_receiver.query.incidents import tree_lines

_COLORS = {"alert": "\033[1;31m", "warn": "\033[33m", "none": "\033[37m"}
_RESET = "\033[0m"
MAX_TREE_LINES = 12


def _clean(text: str) -> str:
    """Event text is attacker-controlled: control bytes (escape sequences) are shown, never interpreted."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def where(item: dict[str, Any]) -> str:
    """`web on host-1`; a workload that is only its host's name (no workload attribute was sent, so the
    baseline is per host) is said once: `host vm`."""
    workload, host = _clean(item.get("workload") or ""), _clean(item.get("host") or "")
    if not workload or workload == host:
        return f"host {host}" if host else workload
    return f"{workload} on {host}" if host else workload


def triage_list(results: Sequence[dict[str, Any]], color: bool, title: str) -> str:
    if not results:
        return f"{title}: nothing found\n"
    lines = [f"{title}:"]
    for rank, item in enumerate(results, 1):
        severity = item.get("severity") or "none"
        paint = _COLORS.get(severity, _COLORS["none"]) if color else ""
        reset = _RESET if color else ""
        score = item.get("rank", item["score"])
        extra = ""
        if item.get("kind") == "incident":
            extra = f"  incident of {item['events']} events"
        elif item.get("events", 1) > 1:
            extra = f"  seen {item['events']} times"
        if item.get("relevance") is not None:
            extra += f"  match {item['relevance']:.2f}"
        lines.append(f"{paint}{rank:>3}. {score:.2f} {severity.upper():<5}{reset} {where(item)}  "
                     f"{item.get('time', '')}{extra}")
        lines.append(f"     {paint}{_clean(item.get('command_line', ''))}{reset}")
        if item.get("reasons"):
            lines.append("     why: " + "; ".join(_clean(reason) for reason in item["reasons"]))
        matched = (item.get("matched") or {}).get("techniques")
        if matched:
            lines.append("     matches: " + ", ".join(f"{t['id']} {_clean(t['name'])}" for t in matched))
        if item.get("chain"):
            lines.append("     chain:")
            lines.extend(f"       {line}" for line in _chain(item["chain"], item.get("ancestors", []), color))
        else:
            lineage = [item.get("executable", ""), *item.get("ancestors", [])]
            if any(lineage[1:]):
                lines.append("     lineage: " + " <- ".join(_clean(name) for name in lineage if name))
        if item.get("nearest"):
            lines.append("     nearest normal: " + _clean(item["nearest"]))
    return "\n".join(lines) + "\n"


def _chain(roots: Sequence[dict[str, Any]], ancestors: Sequence[str], color: bool) -> list[str]:
    """The incident's tree, the ancestors of its first process above it; long chains are cut."""
    drawn = []
    for prefix, node in tree_lines(roots, ancestors[:3]):
        if "context" in node:
            drawn.append(f"{prefix}{_clean(node['context'])}")
            continue
        severity = node.get("severity") or "none"
        paint, reset = (_COLORS.get(severity, ""), _RESET) if color else ("", "")
        mark = f"  {paint}{node['score']:.2f} {severity.upper()}{reset}" if severity != "none" else ""
        drawn.append(f"{prefix}{_clean(node.get('command_line') or node.get('executable') or '?')}{mark}")
    if len(drawn) > MAX_TREE_LINES:
        hidden = len(drawn) - MAX_TREE_LINES
        drawn = [*drawn[:MAX_TREE_LINES], f"… {hidden} more (procsight top --json, or the page)"]
    return drawn

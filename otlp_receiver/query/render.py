"""The ranked triage list in the terminal: red at alert, yellow at warn, white below."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_COLORS = {"alert": "\033[1;31m", "warn": "\033[33m", "none": "\033[37m"}
_RESET = "\033[0m"


def _clean(text: str) -> str:
    """Event text is attacker-controlled: control bytes (escape sequences) are shown, never interpreted."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def triage_list(results: Sequence[dict[str, Any]], color: bool, title: str) -> str:
    if not results:
        return f"{title}: nothing found\n"
    lines = [f"{title}:"]
    for rank, item in enumerate(results, 1):
        severity = item.get("severity") or "none"
        paint = _COLORS.get(severity, _COLORS["none"]) if color else ""
        reset = _RESET if color else ""
        extra = f"  distance {item['distance']:.3f}" if item.get("distance") is not None else ""
        where = " / ".join(_clean(part) for part in (item.get("workload", ""), item.get("host", "")) if part)
        lines.append(f"{paint}{rank:>3}. {item['score']:.2f} {severity.upper():<5}{reset} {where}  "
                     f"{item.get('time', '')}{extra}")
        lines.append(f"     {paint}{_clean(item.get('command_line', ''))}{reset}")
        if item.get("reasons"):
            lines.append("     why: " + "; ".join(_clean(reason) for reason in item["reasons"]))
        lineage = [item.get("executable", ""), *item.get("ancestors", [])]
        if any(lineage[1:]):
            lines.append("     lineage: " + " <- ".join(_clean(name) for name in lineage if name))
        if item.get("nearest"):
            lines.append("     nearest normal: " + _clean(item["nearest"]))
    return "\n".join(lines) + "\n"

"""The learning policy: what enters a baseline, and when.

Learning every event right after scoring (as the reference kNN does) lets an attacker teach the model:
run the payload a few times and it becomes normal. So an alert-level pattern is held back ("pending")
until it recurs in enough distinct time windows, or a person acknowledges it. Distinct windows, not
repetitions: a burst of a thousand runs in one minute counts once. A window is a `window_seconds` span from an
occurrence that counted, not a slice of the clock: three runs a second before, at and a second after two hour
boundaries would otherwise be three windows in one hour and two seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_PENDING_PER_WORKLOAD = 10_000


@dataclass(slots=True)
class PendingPattern:
    first_seen: float
    example: str
    executable: str
    vector: np.ndarray  # kept so promotion needs no re-embedding
    techniques: frozenset[str] = frozenset()  # its evidence's ATT&CK techniques, learned with it
    windows: list[float] = field(default_factory=list)  # times of the occurrences that counted, window_seconds apart
    occurrences: int = 0


class HoldBack:
    """Alert-level patterns of one workload that are waiting to be learned."""

    def __init__(self, windows_required: int, window_seconds: float) -> None:
        self.windows_required = windows_required
        self.window_seconds = window_seconds
        self.pending: dict[str, PendingPattern] = {}

    def observe(self, key: str, when: float, example: str, executable: str, vector: np.ndarray,
                techniques: frozenset[str] = frozenset()) -> PendingPattern | None:
        """Records an alert-level occurrence; returns the pattern when it has earned learning."""
        pattern = self.pending.get(key)
        if pattern is None:
            if len(self.pending) >= MAX_PENDING_PER_WORKLOAD:
                self.pending.pop(next(iter(self.pending)))  # oldest first: bounded memory under a flood
            # A copy: the row of a batch's embeddings would keep the whole batch's matrix alive while it waits.
            pattern = self.pending[key] = PendingPattern(when, example, executable, vector.copy(), techniques)
        for counted in pattern.windows:  # a loop, not all(): this runs for every alert-level event
            if abs(when - counted) < self.window_seconds:
                break
        else:
            pattern.windows.append(when)
        pattern.occurrences += 1
        if len(pattern.windows) >= self.windows_required:
            return self.pending.pop(key)
        return None

    def release(self, key: str) -> PendingPattern | None:
        """Removes a pattern a person acknowledged."""
        return self.pending.pop(key, None)

    def progress(self, key: str) -> str:
        pattern = self.pending.get(key)
        seen = len(pattern.windows) if pattern else 0
        return f"held back from learning: seen in {seen} of {self.windows_required} required time windows"

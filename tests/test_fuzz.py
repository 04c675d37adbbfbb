"""The short fuzzing run of CI: every target of bench/fuzz.py for a few seconds (the long run is
`bench/fuzz.py --seconds N`). A failure prints the input hypothesis shrank it to."""

from __future__ import annotations

import pytest

from bench.fuzz import TARGETS, fuzz

SECONDS_PER_TARGET = 3.0
# Generous per input: CI shares two cores; the parsers take well under a millisecond per input.
DEADLINE_MS = 1000.0


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_fuzz_target(target) -> None:  # type: ignore[no-untyped-def]
    report = fuzz(target, SECONDS_PER_TARGET, DEADLINE_MS, seed=0, chunk=25)
    assert report.failure is None, report.failure
    assert report.tried >= 25

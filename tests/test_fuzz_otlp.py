"""The short fuzzing run of the OTLP decoders in CI: each target of bench/fuzz_otlp.py for a bounded
number of inputs, each within a deadline (the long run: bench/fuzz.py, where the targets are registered)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings

from bench.fuzz_otlp import TARGETS

# Generous per input: CI shares two cores; the decoders take well under a millisecond per small input.
DEADLINE = timedelta(seconds=1)


@pytest.mark.parametrize(("name", "inputs", "check"), TARGETS, ids=[row[0] for row in TARGETS])
def test_fuzz_otlp_target(name: str, inputs: Any, check: Any) -> None:
    run = seed(0)(settings(max_examples=150, deadline=DEADLINE, database=None,
                           suppress_health_check=list(HealthCheck))(given(inputs)(check)))
    run()

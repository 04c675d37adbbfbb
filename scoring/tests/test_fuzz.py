"""Hostile and random input through the featurizer and the engine: nothing crashes, scores stay in 0..1."""

from __future__ import annotations

import random

import numpy as np

from core.event import ProcessEvent
from scoring.config import EngineConfig
from scoring.engine import AnomalyEngine

HOSTILE = [
    "'; DROP TABLE security_events; --", "../../../../etc/passwd", "\x00\x01\x1b[2J\x7f", "\ud800", "%s%s%n",
    "${jndi:ldap://x}", "A" * 100_000, "", " ", "\n\n", "ünïcödé☃", "-" * 300, "0x" + "f" * 64,
]


def _random_text(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return rng.choice(HOSTILE)
    return "".join(chr(rng.randrange(0, 0x2FFF)) for _ in range(rng.randrange(0, 40)))


def test_random_and_hostile_events_score_within_bounds(tmp_path):
    rng = random.Random(20261123)
    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path)))
    events = []
    for _ in range(300):
        args = tuple(_random_text(rng) for _ in range(rng.randrange(0, 300 if rng.random() < 0.05 else 6)))
        events.append(ProcessEvent(
            executable_name=_random_text(rng) or "x", command_line=" ".join(args) or "x", command_args=args,
            executable_path=_random_text(rng), parent_name=_random_text(rng), working_directory=_random_text(rng),
            ancestors=tuple(_random_text(rng) for _ in range(rng.randrange(0, 4))),
            user_id=rng.choice([None, 0, 33, 1000, -1, 2**40]), cpu_percent=rng.choice([None, 0.0, 99.0, float("nan")]),
            remote_address=_random_text(rng), remote_port=rng.choice([None, 0, 22, 65535, 10**9])))
    workloads = [_random_text(rng) for _ in range(3)]
    for start in range(0, len(events), 100):
        workload = workloads[start // 100 % 3]
        verdicts = engine.process(events[start:start + 100], workload=workload)
        scores = np.array([v.score for v in verdicts])
        assert np.all((scores >= 0.0) & (scores <= 1.0)) and not np.isnan(scores).any()
        assert all(v.severity in ("none", "warn", "alert") for v in verdicts)
    engine.flush()
    engine.close()

"""The scoring engine: feature hashing, per-workload LanceDB baselines, heuristics, explained scores.

Knows nothing of OTLP or gRPC: it takes `ProcessEvent`s and returns `Verdict`s. Names are imported
lazily, so `from scoring.event import ProcessEvent` (the agent) does not load LanceDB.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoring.config import EngineConfig, LearningConfig, Thresholds, ThresholdsConfig
    from scoring.engine import AnomalyEngine, Verdict
    from scoring.event import ProcessEvent
    from scoring.featurizer import Embedder, get_embedder

_EXPORTS = {
    "AnomalyEngine": "scoring.engine",
    "Verdict": "scoring.engine",
    "EngineConfig": "scoring.config",
    "LearningConfig": "scoring.config",
    "Thresholds": "scoring.config",
    "ThresholdsConfig": "scoring.config",
    "ProcessEvent": "scoring.event",
    "Embedder": "scoring.featurizer",
    "get_embedder": "scoring.featurizer",
}

__all__ = [
    "AnomalyEngine",
    "Embedder",
    "EngineConfig",
    "LearningConfig",
    "ProcessEvent",
    "Thresholds",
    "ThresholdsConfig",
    "Verdict",
    "get_embedder",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scoring' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

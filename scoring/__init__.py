"""The scoring engine: feature hashing, per-workload LanceDB baselines, heuristics, explained scores.

Knows nothing of OTLP or gRPC: it takes `ProcessEvent`s and returns `Verdict`s.
"""

from scoring.config import EngineConfig, LearningConfig, Thresholds, ThresholdsConfig
from scoring.engine import AnomalyEngine, Verdict
from scoring.event import ProcessEvent
from scoring.featurizer import Embedder, get_embedder

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

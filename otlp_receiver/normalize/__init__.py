"""Third-party process events -> `scoring.ProcessEvent` (see README.md)."""

from otlp_receiver.normalize.normalizer import Normalized, Normalizer
from otlp_receiver.normalize.tree import ProcessTree

__all__ = ["Normalized", "Normalizer", "ProcessTree"]

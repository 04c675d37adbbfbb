"""Third-party process events -> `scoring.ProcessEvent` (see README.md)."""

from otlp_receiver.normalize.normalizer import Normalized, Normalizer

__all__ = ["Normalized", "Normalizer"]

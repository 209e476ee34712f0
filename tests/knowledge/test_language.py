"""The embedding model chosen per knowledge base by its language (hanlin.knowledge.language)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from hanlin import KnowledgeBase
from hanlin.config import load_settings
from hanlin.errors import InvalidInputError
from hanlin.knowledge.evaluation import ndcg_at_k
from hanlin.knowledge.language import detect_language, embedder_for
from hanlin.models.embeddings.base import EMBEDDERS, Vectors, normalize
from hanlin.models.embeddings.minilm import MiniLMEmbedder, minilm_installed

EN = (
    "Tomatoes need full sun and regular watering. The plants are pruned every week, and the "
    "fruit is picked when it is red. Compost improves the soil of a vegetable garden."
)
ZH = "乌龙茶是半发酵茶，主要产于福建和台湾。绿茶不发酵，红茶是全发酵茶。"
FR = (
    "Les tomates ont besoin de soleil et d'un arrosage régulier. Les plantes sont taillées "
    "chaque semaine et les fruits sont cueillis quand ils sont rouges."
)


def test_detect_language() -> None:
    assert detect_language([EN]) == "en"
    assert detect_language([ZH * 3]) == "zh"
    assert detect_language([FR]) == "other", "Latin script that is not English"
    assert detect_language([EN, ZH * 2]) == "mixed"
    assert detect_language(["", "1234 5678"]) == "mixed"
    assert detect_language([ZH * 5 + " BM25 HNSW RAG"]) == "zh", "a few English terms"


class _Stub:
    """A deterministic bag-of-words embedder (cheap), registered under two names."""

    dim = 64
    batch_size = 16
    version = "1"
    name = "stub"

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        return normalize(out)

    def embed_query(self, text: str) -> Vectors:
        return self.embed_documents([text])[0]


class _English(_Stub):
    name = "stub-en"


class _Multi(_Stub):
    name = "stub-multi"


@pytest.fixture
def stubs(hanlin_home: Path) -> Iterator[None]:
    (hanlin_home / "hanlin.toml").write_text(
        '[knowledge]\nembed_workers = 1\nembedding_model = "auto"\n'
        'language_embedders = { en = "stub-en", "*" = "stub-multi" }\n'
    )
    EMBEDDERS.register("stub-en", _English)  # type: ignore[arg-type]
    EMBEDDERS.register("stub-multi", _Multi)  # type: ignore[arg-type]
    yield
    EMBEDDERS.unregister("stub-en")
    EMBEDDERS.unregister("stub-multi")
    EMBEDDERS.refresh()


def _folder(root: Path, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / f"{name}.txt").write_text(text, "utf-8")
    return root


def test_english_kb_gets_the_english_embedder_and_keeps_it(stubs: None, tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.knowledge.embedding_model == "auto"
    with KnowledgeBase.create("en") as kb:
        assert kb.embedding_model == "stub-multi"  # until the first documents say otherwise
        kb.add(_folder(tmp_path / "en", garden=EN, more=EN.replace("Tomatoes", "Peppers")))
        assert kb.embedding_model == "stub-en" and kb.embedder.name == "stub-en"
        hits = kb.search("watering tomatoes", k=1)
        assert hits and "Tomatoes" in hits[0].chunk.text
    with KnowledgeBase("en") as kb:  # reopened: the recorded model, not a new guess
        assert kb.embedding_model == "stub-en"
        assert kb.store.get_meta("language") == "en"
        assert kb.store.get_meta("embedding_space") == "stub-en@1"
        kb.add(_folder(tmp_path / "zh", tea=ZH * 4))  # later documents change nothing
        assert kb.embedding_model == "stub-en" and kb.info().stats.vectors == 3


def test_chinese_and_mixed_kbs_get_the_multilingual_embedder(stubs: None, tmp_path: Path) -> None:
    with KnowledgeBase.create("zh") as kb:
        kb.add(_folder(tmp_path / "zh", tea=ZH * 4))
        assert kb.embedding_model == "stub-multi" and kb.store.get_meta("language") == "zh"
    with KnowledgeBase.create("mixed") as kb:
        kb.add(_folder(tmp_path / "mixed", tea=ZH * 4, garden=EN))
        assert kb.embedding_model == "stub-multi" and kb.store.get_meta("language") == "mixed"


def test_language_or_model_given_at_creation(stubs: None, tmp_path: Path) -> None:
    with KnowledgeBase.create("given", language="en") as kb:
        assert kb.embedding_model == "stub-en"  # decided at creation, nothing pending
        assert kb.store.get_meta("embedding_choice") is None
        kb.add(_folder(tmp_path / "zh", tea=ZH * 4))
        assert kb.embedding_model == "stub-en"
    with KnowledgeBase.create("pinned", embedding_model="stub-multi") as kb:
        kb.add(_folder(tmp_path / "en", garden=EN))
        assert kb.embedding_model == "stub-multi"  # an explicit model is never replaced
    with pytest.raises(InvalidInputError):
        KnowledgeBase.create("bad", language="English!")


def test_existing_kbs_keep_their_model(stubs: None, tmp_path: Path) -> None:
    """A knowledge base from before the choice existed records its model and no language."""
    with KnowledgeBase.create("old", embedding_model="stub-multi") as kb:
        kb.store.set_meta("language", "")
    with KnowledgeBase("old") as kb:
        kb.add(_folder(tmp_path / "en", garden=EN))
        assert kb.embedding_model == "stub-multi"


def test_an_uninstalled_language_model_falls_back() -> None:
    table = {"en": "no-such-embedder", "*": "fast-use"}
    assert embedder_for("en", table) == "fast-use"
    assert embedder_for("zh", {"en": "minilm-l6"}) == "fast-use"


@pytest.mark.skipif(not minilm_installed(), reason="hanlin[minilm] not installed")
def test_minilm_is_the_english_embedder_of_auto(hanlin_home: Path, tmp_path: Path) -> None:
    model = MiniLMEmbedder()
    vecs = model.embed_documents(
        ["How do I water tomatoes?", "Tomatoes need regular watering.", "GPU memory bandwidth"]
    )
    assert vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
    # batching by length gives each text the vector it gets alone
    np.testing.assert_allclose(vecs[2], model.embed_query("GPU memory bandwidth"), atol=1e-5)
    (hanlin_home / "hanlin.toml").write_text(
        '[knowledge]\nembed_workers = 1\nembedding_model = "auto"\n'
    )
    with KnowledgeBase.create("minilm") as kb:
        kb.add(_folder(tmp_path / "en", garden=EN))
        assert kb.embedding_model == "minilm-l6" and kb.store.get_meta("language") == "en"


def test_hybrid_is_never_worse_than_its_best_part(stubs: None, tmp_path: Path) -> None:
    """A small fixture where the two retrievers disagree: 40 documents, each about one
    numbered topic, and queries that name the topic by a rare keyword (keyword search finds
    it) in words shared by every document (the bag-of-words dense side is weak)."""
    docs = {
        f"d{i}": f"Report {i} about item code{i * 7919 % 10007}. "
        + " ".join(["the garden soil needs water and sun"] * (1 + i % 3))
        for i in range(40)
    }
    with KnowledgeBase.create("fixture", language="en") as kb:
        kb.add(_folder(tmp_path / "fixture", **docs))
        queries = {f"d{i}": f"which garden report names code{i * 7919 % 10007}" for i in range(40)}
        scores = {}
        for mode in ("keyword", "dense", "hybrid"):
            total = 0.0
            for name, q in queries.items():
                hits = kb.search(q, k=10, mode=mode)  # type: ignore[arg-type]
                ranked = [Path(h.chunk.doc_key.split("#")[0]).stem for h in hits]
                total += ndcg_at_k(ranked, {name: 1}, 10)
            scores[mode] = total / len(queries)
    assert scores["hybrid"] >= max(scores["keyword"], scores["dense"]) - 1e-9, scores

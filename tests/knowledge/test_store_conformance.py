"""The contract every knowledge-store backend must pass (PostgreSQL will run the same suite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from hanlin.knowledge.base import Chunk
from hanlin.knowledge.filters import parse_cli_filter, parse_filter
from hanlin.knowledge.stores.base import ChunkWrite, DocumentWrite, FileRecord, Store
from hanlin.knowledge.stores.sqlite import SQLiteStore

DIM = 16
StoreFactory = Callable[[], Store]


def _sqlite(tmp: Path) -> StoreFactory:
    def make() -> Store:
        store = SQLiteStore(tmp / "kb", exact_search_below=0)  # force the ANN path
        store.set_meta("embedding_dim", str(DIM))
        store.set_meta("embedding_space", "test@1")
        return store

    return make


BACKENDS = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    yield BACKENDS[request.param](tmp_path)


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def doc(
    key: str,
    texts: list[str],
    *,
    seed: int = 0,
    meta: dict | None = None,
    file_path: str | None = None,
) -> DocumentWrite:
    chunks = []
    pos = 0
    for i, text in enumerate(texts):
        c = Chunk(
            text=text,
            ord=i,
            char_start=pos,
            char_end=pos + len(text),
            n_tokens=len(text),
            heading_path=["H"],
            page=i + 1,
        )
        pos += len(text) + 2
        chunks.append(ChunkWrite(c, text.lower(), f"{key}-{i}-{text}", vec(seed * 100 + i)))
    return DocumentWrite(
        key=key,
        file_path=file_path or key,
        source=key,
        title=key.upper(),
        format="txt",
        content_hash=f"h-{key}-{len(texts)}",
        metadata=meta or {},
        n_chars=pos,
        chunks=chunks,
    )


def test_write_search_and_citation_fields(factory: StoreFactory) -> None:
    s = factory()
    s.write(
        [
            doc("a", ["alpha beta", "gamma delta"], seed=1, meta={"lang": "en"}),
            doc("b", ["beta epsilon"], seed=2, meta={"lang": "zh"}),
        ]
    )
    hits = s.keyword_search(["beta"], 10)
    assert {h[0] for h in hits} == {c.id for c in s.get_chunks([h[0] for h in hits])}
    texts = {c.text for c in s.get_chunks([h[0] for h in hits])}
    assert texts == {"alpha beta", "beta epsilon"}
    # the vector of chunk a/1 finds itself first
    dense = s.dense_search(vec(101), 3)
    top = s.get_chunks([dense[0][0]])[0]
    assert top.text == "gamma delta" and dense[0][1] == pytest.approx(1.0, abs=1e-4)
    assert top.doc_key == "a" and top.page == 2 and top.heading_path == ["H"]
    assert top.char_start == 12 and top.title == "A" and top.metadata == {"lang": "en"}


def test_replace_document_leaves_no_stale_chunks(factory: StoreFactory) -> None:
    s = factory()
    s.write([doc("a", ["old words here", "more old words"], seed=1)])
    s.write([doc("a", ["new words"], seed=5)])
    assert s.stats().chunks == 1 and s.stats().documents == 1
    assert s.keyword_search(["old"], 10) == []
    assert [c.text for c in s.get_chunks([h[0] for h in s.keyword_search(["new"], 5)])] == [
        "new words"
    ]
    ids = [h[0] for h in s.dense_search(vec(100), 5)]  # the old first chunk's vector
    assert all(c.text == "new words" for c in s.get_chunks(ids))


def test_delete_documents_and_files(factory: StoreFactory) -> None:
    s = factory()
    s.write(
        [doc("a", ["one"], file_path="/f1"), doc("b", ["two"], file_path="/f2")],
        files=[FileRecord("/f1", 1, 3, 1, "x", "ok"), FileRecord("/f2", 1, 3, 1, "y", "ok")],
    )
    assert s.delete_documents(["a"]) == 1
    assert s.keyword_search(["one"], 5) == []
    assert s.delete_file("/f2") == 1
    assert s.get_file("/f2") is None and s.stats().documents == 0
    assert s.dense_search(vec(0), 5) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"lang": "zh"}, {"b", "c"}),
        ({"year": {"gte": 2021}}, {"b", "c"}),
        ({"year": {"lt": 2021}}, {"a"}),
        ({"lang": {"in": ["en", "fr"]}}, {"a"}),
        ({"lang": "zh", "year": {"lte": 2021}}, {"b"}),
        ({"lang": {"ne": "zh"}}, {"a"}),
        ({"format": "txt"}, {"a", "b", "c"}),
        ({"nested.tag": "x"}, {"c"}),
    ],
)
def test_filters_apply_to_both_retrievers(
    factory: StoreFactory, spec: dict, expected: set[str]
) -> None:
    s = factory()
    s.write(
        [
            doc("a", ["shared term"], seed=1, meta={"lang": "en", "year": 2020}),
            doc("b", ["shared term"], seed=2, meta={"lang": "zh", "year": 2021}),
            doc(
                "c",
                ["shared term"],
                seed=3,
                meta={"lang": "zh", "year": 2023, "nested": {"tag": "x"}},
            ),
        ]
    )
    flt = parse_filter(spec)
    kw = {c.doc_key for c in s.get_chunks([h[0] for h in s.keyword_search(["shared"], 10, flt)])}
    dn = {c.doc_key for c in s.get_chunks([h[0] for h in s.dense_search(vec(1), 10, flt)])}
    assert kw == expected and dn == expected


def test_cli_filter_syntax() -> None:
    f = parse_cli_filter(["year>=2020", "lang=zh|en", "status!=draft", "score<0.5"])
    assert f is not None
    ops = [(c.key, c.op, c.value) for c in f.conditions]
    assert ops == [
        ("year", "gte", 2020),
        ("lang", "in", ["zh", "en"]),
        ("status", "ne", "draft"),
        ("score", "lt", 0.5),
    ]


def test_reopen_keeps_everything_and_indexes_catch_up(factory: StoreFactory) -> None:
    s = factory()
    s.write([doc("a", ["persisted text"], seed=1)])
    s.flush()
    s.write([doc("b", ["written after flush"], seed=2)])  # not flushed: index must catch up
    s.close()
    s2 = factory()
    assert {c.text for c in s2.get_chunks([h[0] for h in s2.keyword_search(["flush"], 5)])} == {
        "written after flush"
    }
    assert s2.get_chunks([s2.dense_search(vec(200), 1)[0][0]])[0].text == "written after flush"


def test_derived_indexes_rebuild_when_missing(factory: StoreFactory, tmp_path: Path) -> None:
    s = factory()
    s.write([doc(f"d{i}", [f"word{i} common"], seed=i) for i in range(30)])
    s.flush()
    s.close()
    for p in (tmp_path / "kb").glob("vectors.*"):
        p.unlink()
    import shutil

    shutil.rmtree(tmp_path / "kb" / "keyword", ignore_errors=True)
    s2 = factory()
    assert len(s2.keyword_search(["common"], 100)) == 30
    assert s2.get_chunks([s2.dense_search(vec(700), 1)[0][0]])[0].doc_key == "d7"


def test_vector_reuse_and_reembedding(factory: StoreFactory) -> None:
    s = factory()
    d = doc("a", ["reuse me"], seed=1)
    s.write([d])
    got = s.vectors_for_text_hashes([d.chunks[0].text_hash])
    assert np.allclose(got[d.chunks[0].text_hash], vec(100))
    s.clear_vectors()
    assert s.stats().vectors == 0 and s.chunks_without_vectors(10)[0][1] == "reuse me"
    cid = s.chunks_without_vectors(10)[0][0]
    s.set_vectors([cid], np.vstack([vec(9)]))
    assert s.dense_search(vec(9), 1)[0][0] == cid


def test_write_is_atomic(factory: StoreFactory) -> None:
    s = factory()
    s.write([doc("a", ["kept"], seed=1)])
    bad = doc("b", ["never stored"], seed=2)
    bad.chunks[0].chunk.text = None  # type: ignore[assignment]  # violates NOT NULL mid-write
    with pytest.raises(Exception):  # noqa: B017 - any backend error is fine, state is what matters
        s.write([doc("c", ["also never"], seed=3), bad])
    assert s.stats().documents == 1
    assert s.keyword_search(["never"], 5) == []

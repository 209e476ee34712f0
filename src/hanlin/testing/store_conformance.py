"""The conformance suite every knowledge store passes — the built-in SQLite store, the PostgreSQL
store and any third party's: subclass :class:`StoreConformanceTests` and say how to open yours.

::

    # conftest.py — before the suite is imported, so pytest rewrites its asserts
    pytest.register_assert_rewrite("hanlin.testing.store_conformance")

    # test_my_store.py
    from hanlin.config import load_settings
    from hanlin.testing.store_conformance import StoreConformanceTests

    class TestMyStore(StoreConformanceTests):
        @pytest.fixture
        def open_store(self, tmp_path):
            settings = load_settings()
            return lambda: MyStore(tmp_path / "kb", analyzer_version="test", settings=settings)

``open_store`` returns a function that opens the same (initially empty) store each time it is
called: the suite closes and reopens it to check what persists. Every method of
:class:`~hanlin.knowledge.stores.base.Store` is called here and its result checked; a backend
passes it unchanged. The class name does not start with ``Test``, so pytest collects only the
subclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from hanlin.errors import InvalidInputError
from hanlin.knowledge.base import Chunk
from hanlin.knowledge.filters import parse_filter
from hanlin.knowledge.stores.base import (
    ChunkWrite,
    DocumentWrite,
    FileRecord,
    SourceRecord,
    Store,
    Vector,
)

DIM = 16
OpenStore = Callable[[], Store]


def vec(seed: int) -> Vector:
    """A unit vector of :data:`DIM` floats, the same for the same seed."""
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def doc(
    key: str,
    texts: list[str],
    *,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
    file_path: str | None = None,
    vectors: bool = True,
) -> DocumentWrite:
    """A document of one chunk per text; chunk ``i`` gets ``vec(seed * 100 + i)`` and its text
    lower-cased as keyword tokens."""
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
        vector = vec(seed * 100 + i) if vectors else None
        chunks.append(ChunkWrite(c, text.lower(), f"{key}-{i}-{text}", vector))
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


def texts_of(store: Store, hits: list[tuple[int, float]]) -> list[str]:
    """The texts of search hits, in hit order."""
    return [c.text for c in store.get_chunks([h[0] for h in hits])]


class StoreSession:
    """Opens the store under test the way a knowledge base does (embedding meta first),
    reopens it, and closes whatever is open when the test ends."""

    def __init__(self, open_store: OpenStore) -> None:
        self._open = open_store
        self.current: Store | None = None

    def open(self) -> Store:
        store = self._open()
        if store.get_meta("embedding_space") is None:  # a reopened store keeps its own
            store.set_meta("embedding_dim", str(DIM))
            store.set_meta("embedding_space", "test@1")
        self.current = store
        return store

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None

    def reopen(self) -> Store:
        self.close()
        return self.open()


class StoreConformanceTests:
    """The contract of :class:`~hanlin.knowledge.stores.base.Store`; subclass it and override
    :meth:`open_store`."""

    @pytest.fixture
    def open_store(self) -> OpenStore:
        """Override: a function opening the store under test (the same store each call)."""
        raise NotImplementedError("override the open_store fixture in the subclass")

    @pytest.fixture
    def stores(self, open_store: OpenStore) -> Iterator[StoreSession]:
        session = StoreSession(open_store)
        yield session
        session.close()

    @pytest.fixture
    def store(self, stores: StoreSession) -> Store:
        return stores.open()

    # --- metadata -------------------------------------------------------------------------
    def test_meta_is_kept_and_replaced(self, store: Store) -> None:
        assert store.get_meta("no-such-key") is None
        store.set_meta("analyzer", "v1")
        store.set_meta("analyzer", "v2")
        assert store.get_meta("analyzer") == "v2"
        assert store.get_meta("embedding_dim") == str(DIM)

    # --- sources and files ----------------------------------------------------------------
    def test_sources_are_listed_in_order_and_updated_by_uri(self, store: Store) -> None:
        a = store.add_source("/docs", "path", {"recursive": True})
        b = store.add_source("https://example.org/a", "url", {})
        assert (a.uri, a.kind, a.options) == ("/docs", "path", {"recursive": True})
        assert a.id != b.id
        again = store.add_source("/docs", "path", {"recursive": False})
        assert again.id == a.id and again.options == {"recursive": False}
        assert store.list_sources() == [
            SourceRecord(a.id, "/docs", "path", {"recursive": False}),
            SourceRecord(b.id, "https://example.org/a", "url", {}),
        ]

    def test_files_are_recorded_replaced_and_listed(self, store: Store) -> None:
        src1 = store.add_source("/one", "path", {}).id
        src2 = store.add_source("/two", "path", {}).id
        b = FileRecord("/one/b.txt", src1, 10, 111, "hb", "ok")
        a = FileRecord("/one/a.txt", src1, 20, 222, "ha", "ok")
        c = FileRecord("/two/c.pdf", src2, 30, 333, None, "failed", "broken xref", "re-save it")
        for record in (b, a, c):
            store.record_file(record)
        assert store.get_file("/one/a.txt") == a
        assert store.get_file("/two/c.pdf") == c
        assert store.get_file("/nowhere") is None
        assert store.list_files() == [a, b, c]  # by path
        assert store.list_files(src1) == [a, b] and store.list_files(src2) == [c]
        fixed = FileRecord("/two/c.pdf", src2, 31, 334, "hc", "ok")
        store.record_file(fixed)
        assert store.get_file("/two/c.pdf") == fixed
        stats = store.stats()
        assert (stats.files, stats.failed_files) == (3, 0)
        store.record_file(FileRecord("/one/a.txt", src1, 20, 222, None, "failed", "gone", None))
        assert store.stats().failed_files == 1

    def test_delete_file_removes_its_documents(self, store: Store) -> None:
        store.write(
            [
                doc("a", ["one"], file_path="/f1"),
                doc("a#2", ["one more"], file_path="/f1"),
                doc("b", ["two"], file_path="/f2"),
            ],
            files=[FileRecord("/f1", 1, 3, 1, "x", "ok"), FileRecord("/f2", 1, 3, 1, "y", "ok")],
        )
        assert store.delete_file("/f1") == 2
        assert store.get_file("/f1") is None and store.get_file("/f2") is not None
        assert [d.key for d in store.list_documents()] == ["b"]
        assert store.keyword_search(["one"], 5) == []
        assert store.delete_file("/never-seen") == 0

    def test_remove_source_forgets_its_files_and_documents(self, store: Store) -> None:
        gone = store.add_source("/gone", "path", {})
        kept = store.add_source("/kept", "path", {})
        store.write(
            [doc("g", ["gone words"], file_path="/gone/a"), doc("k", ["kept"], file_path="/kept")],
            files=[
                FileRecord("/gone/a", gone.id, 3, 1, "x", "ok"),
                FileRecord("/gone/b", gone.id, 3, 1, None, "failed", "broken", None),
                FileRecord("/kept", kept.id, 3, 1, "y", "ok"),
            ],
        )
        assert store.remove_source("/gone") == 1
        assert [s.uri for s in store.list_sources()] == ["/kept"]
        assert [f.path for f in store.list_files()] == ["/kept"]
        assert [d.key for d in store.list_documents()] == ["k"]
        assert store.keyword_search(["gone"], 5) == []
        assert store.remove_source("/never-added") == 0

    # --- documents ------------------------------------------------------------------------
    def test_write_search_and_citation_fields(self, store: Store) -> None:
        store.write(
            [
                doc("a", ["alpha beta", "gamma delta"], seed=1, meta={"lang": "en"}),
                doc("b", ["beta epsilon"], seed=2, meta={"lang": "zh"}),
            ]
        )
        hits = store.keyword_search(["beta"], 10)
        assert all(score > 0 for _, score in hits)
        assert set(texts_of(store, hits)) == {"alpha beta", "beta epsilon"}
        dense = store.dense_search(vec(101), 3)  # the vector of chunk a/1 finds itself first
        assert [score for _, score in dense] == sorted((s for _, s in dense), reverse=True)
        top = store.get_chunks([dense[0][0]])[0]
        assert top.text == "gamma delta" and dense[0][1] == pytest.approx(1.0, abs=1e-4)
        assert top.doc_key == "a" and top.source == "a" and top.title == "A"
        assert (top.ord, top.page, top.heading_path, top.kind) == (1, 2, ["H"], "paragraph")
        assert (top.char_start, top.char_end) == (12, 23)
        assert top.metadata == {"lang": "en"}

    def test_write_records_files_and_deletes_keys_together(self, store: Store) -> None:
        store.write([doc("old", ["stale words"], file_path="/f")])
        record = FileRecord("/f", 1, 9, 5, "h2", "ok")
        store.write([doc("new", ["fresh words"], file_path="/f")], [record], ["old"])
        assert store.get_document("old") is None and store.get_document("new") is not None
        assert store.get_file("/f") == record
        assert texts_of(store, store.keyword_search(["words"], 5)) == ["fresh words"]

    def test_documents_are_listed_and_read_back(self, store: Store) -> None:
        store.write(
            [
                doc("b", ["x y", "z"], seed=1, file_path="/f", meta={"year": 2024}),
                doc("a", ["w"], seed=2, file_path="/f"),
                doc("c", ["v"], seed=3, file_path="/g"),
            ]
        )
        assert [d.key for d in store.list_documents()] == ["a", "b", "c"]
        assert [d.key for d in store.list_documents(limit=2)] == ["a", "b"]
        b = store.get_document("b")
        assert b is not None
        assert (b.key, b.source, b.title, b.format) == ("b", "b", "B", "txt")
        assert (b.content_hash, b.n_chunks, b.n_chars) == ("h-b-2", 2, 8)
        assert b.metadata == {"year": 2024} and b.updated_at > 0
        assert store.get_document("nope") is None
        assert store.document_key(b.id) == "b" and store.document_key(b.id + 1000) is None
        assert store.document_hashes("/f") == {"a": "h-a-1", "b": "h-b-2"}
        assert store.document_hashes("/nowhere") == {}

    def test_a_documents_chunks_come_back_in_order(self, store: Store) -> None:
        store.write([doc("b", ["first part", "second part", "third part"], seed=1)])
        store.write([doc("a", ["other"], seed=9)])
        chunks = store.document_chunks("b")
        assert [c.text for c in chunks] == ["first part", "second part", "third part"]
        assert all(c.doc_key == "b" for c in chunks)
        assert store.document_chunks("nope") == []

    def test_replace_document_leaves_no_stale_chunks(self, store: Store) -> None:
        store.write([doc("a", ["old words here", "more old words"], seed=1)])
        store.write([doc("a", ["new words"], seed=5)])
        assert store.stats().chunks == 1 and store.stats().documents == 1
        assert store.keyword_search(["old"], 10) == []
        assert texts_of(store, store.keyword_search(["new"], 5)) == ["new words"]
        ids = [h[0] for h in store.dense_search(vec(100), 5)]  # the old first chunk's vector
        assert all(c.text == "new words" for c in store.get_chunks(ids))

    def test_delete_documents(self, store: Store) -> None:
        store.write([doc("a", ["one"], seed=1), doc("b", ["two"], seed=2)])
        assert store.delete_documents(["a", "missing"]) == 1
        assert store.keyword_search(["one"], 5) == []
        assert store.delete_documents(["b"]) == 1
        assert store.stats().documents == 0 and store.stats().chunks == 0
        assert store.dense_search(vec(100), 5) == []

    def test_write_is_atomic(self, store: Store) -> None:
        store.write([doc("a", ["kept"], seed=1)])
        bad = doc("b", ["never stored"], seed=2)
        bad.chunks[0].chunk.text = None  # type: ignore[assignment]  # violates NOT NULL
        with pytest.raises(Exception):  # noqa: B017 - any backend error; the state matters
            store.write([doc("c", ["also never"], seed=3), bad])
        assert store.stats().documents == 1
        assert store.keyword_search(["never"], 5) == []

    # --- search ---------------------------------------------------------------------------
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
        self, store: Store, spec: dict[str, Any], expected: set[str]
    ) -> None:
        store.write(
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
        kw = store.get_chunks([h[0] for h in store.keyword_search(["shared"], 10, flt)])
        dn = store.get_chunks([h[0] for h in store.dense_search(vec(1), 10, flt)])
        assert {c.doc_key for c in kw} == expected and {c.doc_key for c in dn} == expected

    def test_score_dense_is_exact_cosine_of_the_given_chunks(self, store: Store) -> None:
        store.write([doc("a", ["first", "second"], seed=1), doc("b", ["third"], seed=2)])
        ids = list(store.iter_chunk_ids())
        by_text = {c.text: c.id for c in store.get_chunks(ids)}
        scores = store.score_dense(vec(100), [by_text["first"], by_text["third"]])
        assert set(scores) == {by_text["first"], by_text["third"]}
        assert scores[by_text["first"]] == pytest.approx(1.0, abs=1e-4)
        assert scores[by_text["third"]] == pytest.approx(float(vec(100) @ vec(200)), abs=1e-4)
        assert store.score_dense(vec(100), []) == {}

    def test_get_chunks_keeps_the_order_asked_and_skips_unknown_ids(self, store: Store) -> None:
        store.write([doc("a", ["one", "two", "three"], seed=1)])
        ids = list(store.iter_chunk_ids())
        assert len(ids) == 3 and ids == sorted(ids)
        missing = max(ids) + 1000
        got = store.get_chunks([ids[2], missing, ids[0]])
        assert [c.text for c in got] == ["three", "one"]
        assert store.get_chunks([]) == []
        store.delete_documents(["a"])
        assert list(store.iter_chunk_ids()) == []

    # --- vectors --------------------------------------------------------------------------
    def test_vectors_are_found_by_text_hash_and_by_id(self, store: Store) -> None:
        d = doc("a", ["reuse me", "and me"], seed=1)
        store.write([d])
        h0, h1 = (w.text_hash for w in d.chunks)
        got = store.vectors_for_text_hashes([h0, h1, "unknown-hash"])
        assert set(got) == {h0, h1}
        assert np.allclose(got[h0], vec(100)) and np.allclose(got[h1], vec(101))
        ids = list(store.iter_chunk_ids())
        by_id = store.vectors_for_ids([*ids, max(ids) + 1000])
        assert set(by_id) == set(ids)
        first = store.get_chunks([ids[0]])[0]
        assert np.allclose(by_id[ids[0]], vec(100 + first.ord))

    def test_chunks_without_vectors_get_them_later(self, store: Store) -> None:
        store.write([doc("a", ["no vector yet", "nor this", "nor that"], vectors=False)])
        assert store.stats().vectors == 0 and store.dense_search(vec(5), 3) == []
        assert store.vectors_for_ids(list(store.iter_chunk_ids())) == {}
        assert len(store.chunks_without_vectors(2)) == 2
        pending = store.chunks_without_vectors(10)
        assert sorted(text for _, text in pending) == ["no vector yet", "nor that", "nor this"]
        ids = [cid for cid, _ in pending]
        store.set_vectors(ids, np.vstack([vec(7), vec(8), vec(9)]))
        assert store.chunks_without_vectors(10) == [] and store.stats().vectors == 3
        assert store.dense_search(vec(8), 1)[0][0] == ids[1]

    def test_clear_vectors_then_reembed(self, store: Store) -> None:
        d = doc("a", ["reuse me"], seed=1)
        store.write([d])
        store.clear_vectors()
        assert store.stats().vectors == 0
        assert store.vectors_for_text_hashes([d.chunks[0].text_hash]) == {}
        ((cid, text),) = store.chunks_without_vectors(10)
        assert text == "reuse me"
        store.set_vectors([cid], np.vstack([vec(9)]))
        assert store.dense_search(vec(9), 1)[0][0] == cid

    # --- re-embedding ---------------------------------------------------------------------
    def test_staged_vectors_stay_invisible_until_the_swap(self, stores: StoreSession) -> None:
        store = stores.open()
        store.write([doc("a", ["first", "second"], seed=1), doc("b", ["third"], seed=2)])
        ids = list(store.iter_chunk_ids())
        assert store.count_staged_vectors("test@2") == 0
        assert [row[0] for row in store.chunks_without_staged_vectors("test@2", 10)] == ids
        store.stage_vectors("test@2", ids[:2], np.vstack([vec(900), vec(901)]))
        assert store.count_staged_vectors("test@2") == 2
        assert store.chunks_without_staged_vectors("test@2", 10) == [(ids[2], "B", "third", ["H"])]
        assert store.count_staged_vectors("other@1") == 0  # staged per space
        # search, stats and meta still see the live vectors
        assert texts_of(store, store.dense_search(vec(100), 1)) == ["first"]
        assert store.dense_search(vec(900), 1)[0][1] < 0.99
        assert store.stats().vectors == 3
        assert store.get_meta("embedding_space") == "test@1"
        with pytest.raises(InvalidInputError, match="1 chunks"):
            store.swap_staged_vectors("test@2", {"embedding_space": "test@2"})
        assert store.get_meta("embedding_space") == "test@1"  # an incomplete swap changes nothing
        assert texts_of(store, store.dense_search(vec(100), 1)) == ["first"]
        store = stores.reopen()  # staged vectors persist: an interrupted re-embed resumes
        assert store.count_staged_vectors("test@2") == 2
        store.stage_vectors("test@2", [ids[2]], np.vstack([vec(902)]))
        assert store.chunks_without_staged_vectors("test@2", 10) == []

    def test_swap_changes_vectors_and_meta_together(self, stores: StoreSession) -> None:
        store = stores.open()
        store.write([doc("a", ["first", "second"], seed=1), doc("b", ["third"], seed=2)])
        ids = list(store.iter_chunk_ids())
        small = [v[:8] / np.linalg.norm(v[:8]) for v in (vec(900), vec(901), vec(902))]
        store.stage_vectors("test@2", ids, np.vstack(small))  # a model of another dimension
        store.swap_staged_vectors(
            "test@2",
            {"embedding_model": "test", "embedding_space": "test@2", "embedding_dim": "8"},
        )
        for reopen in (False, True):
            s = stores.reopen() if reopen else store
            assert s.get_meta("embedding_space") == "test@2" and s.get_meta("embedding_dim") == "8"
            assert s.get_meta("embedding_model") == "test"
            assert s.count_staged_vectors("test@2") == 0
            assert s.dense_search(small[1], 1)[0][0] == ids[1]
            assert s.dense_search(small[1], 1)[0][1] == pytest.approx(1.0, abs=1e-3)
            assert np.allclose(s.vectors_for_ids([ids[2]])[ids[2]], small[2])
            assert s.stats().vectors == 3
            assert texts_of(s, s.keyword_search(["third"], 5)) == ["third"]

    def test_staged_vectors_of_deleted_chunks_and_discard(self, store: Store) -> None:
        store.write([doc("a", ["first"], seed=1), doc("b", ["second"], seed=2)])
        ids = list(store.iter_chunk_ids())
        store.stage_vectors("test@2", ids, np.vstack([vec(900), vec(901)]))
        store.delete_documents(["a"])
        assert store.count_staged_vectors("test@2") == 1
        store.stage_vectors("test@2", ids[:1], np.vstack([vec(902)]))  # deleted meanwhile
        assert store.count_staged_vectors("test@2") == 1
        store.discard_staged_vectors()
        assert store.count_staged_vectors("test@2") == 0
        assert store.chunks_without_staged_vectors("test@2", 10) == [(ids[1], "B", "second", ["H"])]
        assert texts_of(store, store.dense_search(vec(200), 1)) == ["second"]

    # --- keyword tokens -------------------------------------------------------------------
    def test_chunk_texts_page_by_id_and_set_tokens_changes_keyword_search(
        self, store: Store
    ) -> None:
        store.write([doc("a", ["Alpha", "Beta"], seed=1), doc("b", ["Gamma"], seed=2)])
        first = store.chunk_texts(0, 2)
        rest = store.chunk_texts(first[-1][0], 2)
        rows = first + rest
        assert len(first) == 2 and len(rest) == 1
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)
        assert [(title, text, path) for _, title, text, path in rows] == [
            ("A", "Alpha", ["H"]),
            ("A", "Beta", ["H"]),
            ("B", "Gamma", ["H"]),
        ]
        assert store.chunk_texts(rows[-1][0], 10) == []
        store.set_tokens([rows[0][0], rows[2][0]], ["renamed alpha", "renamed gamma"])
        assert store.keyword_search(["alpha"], 5) != []  # "renamed alpha" still has it
        assert texts_of(store, store.keyword_search(["gamma"], 5)) == ["Gamma"]
        assert sorted(texts_of(store, store.keyword_search(["renamed"], 5))) == ["Alpha", "Gamma"]
        store.set_tokens([rows[1][0]], ["other"])
        assert store.keyword_search(["beta"], 5) == []

    # --- housekeeping ---------------------------------------------------------------------
    def test_export_gives_documents_back_as_written(self, store: Store) -> None:
        a = doc("a", ["first text", "second text"], seed=1, meta={"lang": "en"}, file_path="/a")
        b = doc("b", ["no vector yet"], vectors=False)
        store.write([a, b])
        got = store.export_documents(["b", "missing", "a"])
        assert [d.key for d in got] == ["b", "a"]
        exported = got[1]
        assert (exported.file_path, exported.metadata, exported.n_chars) == (
            "/a",
            {"lang": "en"},
            a.n_chars,
        )
        for mine, theirs in zip(exported.chunks, a.chunks, strict=True):
            assert mine.chunk == theirs.chunk
            assert (mine.tokens, mine.text_hash) == (theirs.tokens, theirs.text_hash)
            assert mine.vector is not None and theirs.vector is not None
            assert np.allclose(mine.vector, theirs.vector, atol=1e-6)
        assert got[0].chunks[0].vector is None

    def test_stats_count_everything(self, store: Store) -> None:
        store.write(
            [doc("a", ["one", "two"], seed=1), doc("b", ["three"], vectors=False)],
            files=[FileRecord("a", 1, 1, 1, "h", "ok"), FileRecord("x", 1, 1, 1, None, "failed")],
        )
        s = store.stats()
        assert (s.documents, s.chunks, s.files, s.failed_files, s.vectors) == (2, 3, 2, 1, 2)
        assert s.size_bytes >= 0

    def test_lock_is_reentrant_and_writes_inside_it_work(self, store: Store) -> None:
        with store.locked(), store.locked():
            store.set_meta("k", "v")
            store.write([doc("a", ["locked write"], seed=1)])
            store.flush()
        assert store.get_meta("k") == "v"
        assert texts_of(store, store.keyword_search(["locked"], 5)) == ["locked write"]

    def test_reopen_keeps_everything_and_indexes_catch_up(self, stores: StoreSession) -> None:
        s = stores.open()
        src = s.add_source("/docs", "path", {"a": 1})
        s.set_meta("analyzer", "v1")
        s.write([doc("a", ["persisted text"], seed=1)], [FileRecord("a", src.id, 1, 1, "h", "ok")])
        s.flush()
        s.write([doc("b", ["written after flush"], seed=2)])  # not flushed: must catch up
        s2 = stores.reopen()
        assert texts_of(s2, s2.keyword_search(["flush"], 5)) == ["written after flush"]
        assert texts_of(s2, s2.dense_search(vec(200), 1)) == ["written after flush"]
        assert s2.get_meta("analyzer") == "v1" and s2.list_sources() == [src]
        assert s2.get_file("a") == FileRecord("a", src.id, 1, 1, "h", "ok")
        assert [d.key for d in s2.list_documents()] == ["a", "b"]

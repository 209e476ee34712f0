"""The PostgreSQL store runs the same packaged conformance suite as the SQLite store, twice:
through its exact path and through its HNSW index; plus what only a server store must show."""

from __future__ import annotations

from pathlib import Path

import pytest

from hanlin.config import load_settings
from hanlin.knowledge.stores.base import STORES
from hanlin.knowledge.stores.postgres import PostgresStore
from hanlin.testing.store_conformance import OpenStore, StoreConformanceTests, doc, vec


class TestPostgresStoreExact(StoreConformanceTests):
    @pytest.fixture
    def open_store(self, tmp_path: Path, pg_url: str) -> OpenStore:
        settings = load_settings(database_url=pg_url)
        return lambda: PostgresStore(tmp_path / "kb", analyzer_version="test", settings=settings)


class TestPostgresStoreHNSW(StoreConformanceTests):
    @pytest.fixture
    def open_store(self, tmp_path: Path, pg_url: str) -> OpenStore:
        settings = load_settings(database_url=pg_url)
        return lambda: PostgresStore(
            tmp_path / "kb",
            analyzer_version="test",
            settings=settings,
            exact_search_below=0,  # force the index path
        )


def test_postgres_is_registered_like_a_plugin() -> None:
    assert STORES.origin("postgres") == "hanlin.knowledge.stores.postgres:PostgresStore"
    assert STORES.lookup("postgres") is PostgresStore


def test_two_knowledge_bases_share_tables_but_never_rows(tmp_path: Path, pg_url: str) -> None:
    settings = load_settings(database_url=pg_url)
    a = PostgresStore(tmp_path / "a", settings=settings)
    b = PostgresStore(tmp_path / "b", settings=settings)
    for s in (a, b):
        s.set_meta("embedding_dim", "16")
    a.write([doc("x", ["apple pie"], seed=1)])
    b.write([doc("x", ["banana bread"], seed=2)])
    assert [c.text for c in a.get_chunks([h[0] for h in a.keyword_search(["bread"], 5)])] == []
    assert b.get_chunks([h[0] for h in b.dense_search(vec(100), 5)])[0].text == "banana bread"
    assert a.stats().chunks == 1 and b.stats().chunks == 1
    b_ids = list(b.iter_chunk_ids())
    assert a.get_chunks(b_ids) == [] and a.vectors_for_ids(b_ids) == {}

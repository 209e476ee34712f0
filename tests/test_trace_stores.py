"""Every trace store (SQLite, PostgreSQL) passes the packaged conformance suite; the SQLite
file, damaged or held by another process, fails with an error that names it and says what to
do, and :func:`open_trace_store` picks the backend from the settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

pytest.register_assert_rewrite("hanlin.testing.trace_store_conformance")

from hanlin.config import load_settings  # noqa: E402
from hanlin.errors import StoreCorruptError, StoreLockedError  # noqa: E402
from hanlin.testing.trace_store_conformance import (  # noqa: E402
    OpenTraceStore,
    TraceStoreConformanceTests,
    chat_trace,
)
from hanlin.tracing import SqliteTraceStore, TraceQuery, open_trace_store  # noqa: E402
from hanlin.tracing.postgres import PostgresTraceStore  # noqa: E402


class TestSqliteTraceStore(TraceStoreConformanceTests):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> OpenTraceStore:
        return lambda: SqliteTraceStore(tmp_path / "traces.sqlite")


class TestPostgresTraceStore(TraceStoreConformanceTests):
    @pytest.fixture
    def open_store(self, pg_url: str) -> OpenTraceStore:
        return lambda: PostgresTraceStore(pg_url)


def test_a_damaged_file_raises_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    path.write_bytes(b"this is not a database, just garbage bytes \x00\xff" * 200)
    store = SqliteTraceStore(path)
    with pytest.raises(StoreCorruptError) as caught:
        store.write(chat_trace(1, 0))
    assert str(path) in caught.value.message and "aside" in (caught.value.hint or "")
    with pytest.raises(StoreCorruptError):
        store.list_traces(TraceQuery())  # every call, not only the first
    path.unlink()  # moved aside, as the hint says: a new file starts
    store.write(chat_trace(1, 0))
    assert store.count() == 2
    store.close()


def test_a_file_damaged_after_opening_raises_the_same_error(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    store = SqliteTraceStore(path)
    store.write(chat_trace(1, 0))
    store.close()
    data = bytearray(path.read_bytes())
    data[:100] = b"\xff" * 100  # the header
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match=r"traces\.sqlite"):
        SqliteTraceStore(path).count()


def test_a_file_held_by_another_writer_raises_locked(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite"
    store = SqliteTraceStore(path, busy_timeout=0.2)
    store.write(chat_trace(1, 0))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreLockedError) as caught:
            store.write(chat_trace(2, 0))
        assert str(path) in caught.value.message
        assert store.count() == 2  # readers are not blocked (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.write(chat_trace(2, 0))
    assert store.count() == 4
    store.close()


def test_open_trace_store_follows_database_url(
    hanlin_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HANLIN_DATABASE_URL", raising=False)
    store = open_trace_store(load_settings())
    assert isinstance(store, SqliteTraceStore)
    assert store.path == hanlin_home / "traces.sqlite"
    monkeypatch.setenv("HANLIN_DATABASE_URL", "postgresql://u@localhost/db")
    assert isinstance(open_trace_store(load_settings()), PostgresTraceStore)


def test_the_sqlite_text_index_stays_consistent_through_prunes(tmp_path: Path) -> None:
    store = SqliteTraceStore(tmp_path / "traces.sqlite")
    for n in range(1, 41):
        store.write(chat_trace(n, n * 100, model=f"m{n % 3}"))
        if n % 7 == 0:
            store.index_text(limit=5)  # part of the spans, as an idle writer would
    store.prune(max_spans=30, limit=4)
    while store.index_text(limit=9):
        pass
    store.prune(older_than_ns=2**62, limit=1_000)  # everything: rowids start over
    store.write(chat_trace(99, 0))
    store.index_text()
    conn = sqlite3.connect(tmp_path / "traces.sqlite")
    conn.execute("INSERT INTO spans_text(spans_text, rank) VALUES ('integrity-check', 1)")
    assert conn.execute("SELECT upto FROM spans_text_upto").fetchone()[0] == 2
    assert [t.trace_id for t in store.list_traces(TraceQuery(text="POST /chat"))] == [f"{99:032x}"]
    store.close()

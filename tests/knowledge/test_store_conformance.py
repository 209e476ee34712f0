"""The built-in SQLite store runs the packaged conformance suite, plus what only it has: derived
index files that are rebuilt when missing."""

from __future__ import annotations

import inspect
import re
import shutil
from pathlib import Path

import pytest

import hanlin.testing.store_conformance as conformance
from hanlin.config import load_settings
from hanlin.knowledge.filters import parse_cli_filter
from hanlin.knowledge.stores.base import STORES, Store
from hanlin.knowledge.stores.sqlite import SQLiteStore
from hanlin.testing.store_conformance import (
    OpenStore,
    StoreConformanceTests,
    StoreSession,
    doc,
    vec,
)


class TestSQLiteStore(StoreConformanceTests):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> OpenStore:
        settings = load_settings()
        return lambda: SQLiteStore(
            tmp_path / "kb",
            analyzer_version="test",
            settings=settings,
            exact_search_below=0,  # force the ANN path
        )

    def test_derived_indexes_rebuild_when_missing(
        self, stores: StoreSession, tmp_path: Path
    ) -> None:
        s = stores.open()
        s.write([doc(f"d{i}", [f"word{i} common"], seed=i) for i in range(30)])
        s.flush()
        stores.close()
        for p in (tmp_path / "kb").glob("vectors.*"):
            p.unlink()
        shutil.rmtree(tmp_path / "kb" / "keyword", ignore_errors=True)
        s2 = stores.open()
        assert len(s2.keyword_search(["common"], 100)) == 30
        assert s2.get_chunks([s2.dense_search(vec(700), 1)[0][0]])[0].doc_key == "d7"


def test_sqlite_is_registered_like_a_plugin() -> None:
    assert "sqlite" in STORES.names()
    assert STORES.origin("sqlite") == "hanlin.knowledge.stores.sqlite:SQLiteStore"
    assert STORES.lookup("sqlite") is SQLiteStore


def test_the_suite_calls_every_protocol_method() -> None:
    methods = {n for n, v in vars(Store).items() if callable(v) and not n.startswith("_")}
    assert len(methods) >= 29  # the protocol as of writing; new methods must be covered too
    source = inspect.getsource(conformance)
    called = {n for n in methods if re.search(rf"\.{n}\(", source)}
    assert called == methods, f"never called by the suite: {sorted(methods - called)}"


def test_the_suite_is_not_collected_on_its_own() -> None:
    assert not StoreConformanceTests.__name__.startswith("Test")
    # pytest rewrote the suite's asserts (tests/conftest.py registers it), so a failing
    # check shows the values compared, not a bare AssertionError
    assert hasattr(conformance, "@py_builtins")


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

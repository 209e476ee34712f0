"""A third-party store, installed through a real ``hanlin.stores`` entry point: picked by name
from the settings, used by a knowledge base, and run through the packaged conformance suite."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin import KnowledgeBase
from hanlin.config import Settings, load_settings
from hanlin.errors import NotFoundError
from hanlin.knowledge.stores.base import STORES
from hanlin.testing.store_conformance import OpenStore, StoreConformanceTests

PLUGIN = "hanlin_journaled_store"

# The plugin: SQLite underneath, only the Store protocol on top (so a knowledge base that
# reached past the protocol would fail), and a journal of the calls it received.
PLUGIN_SOURCE = """
from hanlin.knowledge.stores.base import Store
from hanlin.knowledge.stores.sqlite import SQLiteStore

PROTOCOL = [n for n, v in vars(Store).items() if callable(v) and not n.startswith("_")]


class JournaledStore:
    journal: list[str] = []

    def __init__(self, directory, *, analyzer_version, settings):
        self.inner = SQLiteStore(
            directory / "journaled", analyzer_version=analyzer_version, settings=settings
        )


def _delegate(name):
    def method(self, *args, **kwargs):
        JournaledStore.journal.append(name)
        return getattr(self.inner, name)(*args, **kwargs)

    method.__name__ = name
    return method


for _name in PROTOCOL:
    setattr(JournaledStore, _name, _delegate(_name))
"""


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Install the plugin as a distribution on ``sys.path``; yields its store class."""
    site = tmp_path_factory.mktemp("site")
    (site / f"{PLUGIN}.py").write_text(textwrap.dedent(PLUGIN_SOURCE), "utf-8")
    info = site / f"{PLUGIN}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PLUGIN}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[hanlin.stores]\njournaled = {PLUGIN}:JournaledStore\n", "utf-8"
    )
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    STORES.refresh()
    try:
        yield STORES.lookup("journaled")
    finally:
        sys.path.remove(str(site))
        sys.modules.pop(PLUGIN, None)
        importlib.invalidate_caches()
        STORES.refresh()


def _settings(store: str) -> Settings:
    settings = load_settings()
    return settings.model_copy(
        update={"knowledge": settings.knowledge.model_copy(update={"store": store})}
    )


class TestJournaledStore(StoreConformanceTests):
    @pytest.fixture
    def open_store(self, plugin: Any, tmp_path: Path) -> OpenStore:
        settings = _settings("journaled")
        return lambda: plugin(tmp_path / "kb", analyzer_version="test", settings=settings)


@pytest.mark.embedded_only  # reads the embedded catalog file (kb.json)
def test_a_plugin_store_is_picked_by_name_and_recorded(plugin: Any, tmp_path: Path) -> None:
    assert STORES.origin("journaled") == f"{PLUGIN}:JournaledStore"
    assert plugin.__module__ == PLUGIN  # imported from the entry point, not from this file
    (tmp_path / "notes.md").write_text("# Tides\n\nThe moon pulls the tides twice a day.\n")
    plugin.journal.clear()
    with KnowledgeBase.create("notes", settings=_settings("journaled")) as kb:
        assert isinstance(kb.store, plugin)
        assert kb.add(tmp_path / "notes.md").ok
        hits = kb.search("moon tides", k=3)
        assert hits and "moon" in hits[0].chunk.text
    assert {"write", "keyword_search", "set_meta"} <= set(plugin.journal)
    assert (kb.path / "kb.json").read_text().strip() == '{"store": "journaled"}'
    assert (kb.path / "journaled" / "kb.sqlite").exists()
    assert not (kb.path / "kb.sqlite").exists()  # nothing but the plugin wrote the data
    # the knowledge base keeps the store it was created with, whatever the setting says now
    default = _settings("sqlite")
    assert KnowledgeBase.names(default) == ["notes"]
    with KnowledgeBase("notes", default) as again:
        assert isinstance(again.store, plugin)
        assert "moon" in again.search("moon", k=1)[0].chunk.text


def test_an_unknown_store_name_says_what_exists(plugin: Any) -> None:
    settings = _settings("journalled")
    with pytest.raises(NotFoundError) as err:
        KnowledgeBase.create("typo", settings=settings)
    assert "unknown knowledge store 'journalled'" in str(err.value)
    assert "did you mean 'journaled'?" in str(err.value)
    assert "journaled, postgres, sqlite" in str(err.value) and "knowledge.store" in str(err.value)
    assert not (settings.home / "kb" / "typo").exists()  # nothing left behind

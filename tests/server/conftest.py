"""Fixtures for the server tests: a fake OpenAI upstream, a small real knowledge base, and the
server itself — in process (``TestClient``) or as a real uvicorn server on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hanlin.config import Settings, load_settings
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.server.app import create_app
from hanlin.testing.upstream import UpstreamServer
from tests.conftest import JobWorkers, home_database, job_worker, lasting_home

TEA = """# Oolong tea

Oolong tea is partially oxidised, between green and black tea. Most oolong is grown in Fujian
and in Taiwan.

## Brewing

Brew oolong at 90 degrees for three minutes; the leaves can be steeped several times.
"""
RIVERS = """# 长江

长江是中国最长的河流，全长约六千三百公里，流经青海、四川、湖北和上海等地，最后注入东海。
"""
GARDEN = """# Gardening

Tomatoes need full sun and regular watering. Prune the suckers weekly.
"""
MODEL = "fake/gpt-test"


def make_settings(home: Path, upstream_url: str, **server: Any) -> Settings:
    """Settings whose ``fake`` endpoint is the fake upstream; ``server`` overrides.
    Starlette's ``TestClient`` sends ``Host: testserver``, so that name is an allowed host."""
    server.setdefault("allowed_hosts", ["testserver"])
    return load_settings(
        home=home,
        models={
            "endpoints": {"fake": {"base_url": upstream_url}},
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "cooldown": 0.0,
            "retries": 0,
        },
        knowledge={"embed_workers": 1},
        server=server,
    )


def build_kb(settings: Settings, name: str = "docs") -> KnowledgeBase:
    """A knowledge base of three small documents (English and Chinese)."""
    src = settings.home / f"src-{name}"
    src.mkdir(parents=True, exist_ok=True)
    (src / "tea.md").write_text(TEA, "utf-8")
    (src / "rivers.md").write_text(RIVERS, "utf-8")
    (src / "garden.md").write_text(GARDEN, "utf-8")
    kb = KnowledgeBase.create(name, settings=settings)
    report = kb.add(src)
    assert report.ok, report.skipped
    return kb


class LiveServer:
    """A real uvicorn server for an app, on a random 127.0.0.1 port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True, name="hanlin-test"
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture()
def upstream(upstream_server: UpstreamServer) -> Iterator[UpstreamServer]:
    upstream_server.app.reset()
    yield upstream_server
    upstream_server.app.reset()


@pytest.fixture(scope="session")
def shared_settings(request: pytest.FixtureRequest, upstream_server: UpstreamServer) -> Settings:
    """One app directory with the knowledge base ``docs``, shared by read-only tests (with a
    database of its own on PostgreSQL, which these settings name)."""
    home = lasting_home(request, "served")
    with home_database(home):
        settings = make_settings(home, upstream_server.url)
    build_kb(settings).close()
    return settings


@pytest.fixture(scope="session")
def live(shared_settings: Settings) -> Iterator[LiveServer]:
    """A real server over :func:`shared_settings` (no keys: loopback), with its job worker
    on PostgreSQL."""
    with job_worker(shared_settings):
        server = LiveServer(create_app(shared_settings))
        yield server
        server.stop()


@pytest.fixture()
def fresh_settings(
    hanlin_home: Path, upstream: UpstreamServer
) -> Iterator[Callable[..., Settings]]:
    """Settings in this test's own app directory, with server overrides. On PostgreSQL a job
    worker runs with the latest settings made, as ``hanlin worker`` beside the server."""
    workers = JobWorkers()

    def make(**server: Any) -> Settings:
        settings = make_settings(hanlin_home, upstream.url, **server)
        workers.follow(settings)
        return settings

    yield make
    workers.stop()


@pytest.fixture()
def client(fresh_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """The app in process (lifespan running), in this test's own app directory."""
    with TestClient(create_app(fresh_settings())) as c:
        yield c


def wait_job(client: Any, kb: str, job: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll a job until it is no longer running."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/api/kb/{kb}/jobs/{job}").json()
        if body["status"] != "running":
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job still running after {timeout} s: {body}")
        time.sleep(0.05)

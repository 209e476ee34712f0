"""Fixtures for the MCP server's tests: a HANLIN_HOME with a small knowledge base and
``hanlin mcp serve --http`` in a subprocess (with and without API keys). Ports and the npm
packages come from the MCP client's fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hanlin.config import Settings, load_settings
from tests.agents.mcp.conftest import free_port, npm_dir, wait_http
from tests.conftest import copy_home, home_database, lasting_home, use_database
from tests.server.conftest import build_kb

__all__ = ["kb_settings", "npm_dir"]


@pytest.fixture(scope="session")
def _kb_home(request: pytest.FixtureRequest) -> Path:
    home = lasting_home(request, "mcp-home")
    with home_database(home):
        build_kb(kb_settings(home)).close()
    return home


@pytest.fixture()
def kb_home(_kb_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HANLIN_HOME with the knowledge base ``docs`` (tea, rivers, garden), built once per
    session; the test runs with its database (on PostgreSQL). Tests only read it: one that
    changes it works on :func:`~tests.conftest.copy_home`."""
    use_database(monkeypatch, _kb_home)
    return _kb_home


def kb_settings(home: Path, **server: object) -> Settings:
    return load_settings(home=home, knowledge={"embed_workers": 1}, server=server)


@pytest.fixture()
def http_server(kb_home: Path) -> Iterator[tuple[str, Path]]:
    """``hanlin mcp serve --http`` on a free loopback port; yields (url, its HANLIN_HOME)."""
    yield from _serve(kb_home, {})


@pytest.fixture()
def keyed_http_server(
    kb_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    """The same with ``server.require_keys``: every request needs an API key."""
    home = copy_home(kb_home, tmp_path / "home")
    use_database(monkeypatch, home)
    from hanlin.access.auth import open_apikeys
    from hanlin.config import load_settings

    # it refuses to start keyless (the key file, or the database of HANLIN_DATABASE_URL)
    open_apikeys(load_settings(home=home)).create(["admin"], name="boot")
    yield from _serve(home, {"HANLIN_SERVER__REQUIRE_KEYS": "true"})


def _serve(home: Path, extra_env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    port = free_port()
    env = {**os.environ, "HANLIN_HOME": str(home), **extra_env}
    cmd = [sys.executable, "-m", "hanlin", "mcp", "serve", "--http", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/mcp", proc)
        yield f"http://127.0.0.1:{port}/mcp", home
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

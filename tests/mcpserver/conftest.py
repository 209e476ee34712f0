"""Fixtures for the MCP server's tests: a HANLIN_HOME with a small knowledge base and
``hanlin mcp serve --http`` in a subprocess (with and without API keys). Ports and the npm
packages come from the MCP client's fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hanlin.config import Settings, load_settings
from tests.agents.mcp.conftest import free_port, npm_dir, wait_http
from tests.server.conftest import build_kb

__all__ = ["kb_settings", "npm_dir"]


@pytest.fixture(scope="session")
def kb_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HANLIN_HOME with the knowledge base ``docs`` (tea, rivers, garden)."""
    home = tmp_path_factory.mktemp("mcp-home")
    build_kb(kb_settings(home)).close()
    return home


def kb_settings(home: Path, **server: object) -> Settings:
    return load_settings(home=home, knowledge={"embed_workers": 1}, server=server)


@pytest.fixture()
def http_server(kb_home: Path) -> Iterator[tuple[str, Path]]:
    """``hanlin mcp serve --http`` on a free loopback port; yields (url, its HANLIN_HOME)."""
    yield from _serve(kb_home, {})


@pytest.fixture()
def keyed_http_server(kb_home: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The same with ``server.require_keys``: every request needs an API key."""
    home = tmp_path / "home"
    shutil.copytree(kb_home, home)
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

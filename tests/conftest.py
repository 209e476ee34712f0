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
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("hanlin-home")
    monkeypatch.setenv("HANLIN_HOME", str(home))
    monkeypatch.delenv("HANLIN_CONFIG", raising=False)
    yield home

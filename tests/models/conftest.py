"""Fixtures for gateway tests: one fake upstream per session, and gateways pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hanlin.config import load_settings
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import UpstreamServer


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture()
def upstream(upstream_server: UpstreamServer) -> Iterator[UpstreamServer]:
    upstream_server.app.reset()
    yield upstream_server
    upstream_server.app.reset()


@pytest.fixture()
def make_gateway(
    upstream: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Gateway]]:
    """Build a gateway whose endpoints (by default ``fake``) point at the fake upstream."""
    made: list[Gateway] = []

    def build(
        endpoints: tuple[str, ...] = ("fake",), keys: dict[str, str] | None = None, **models: Any
    ) -> Gateway:
        for env, value in (keys or {}).items():
            monkeypatch.setenv(env, value)
        base = upstream.url
        cfg: dict[str, Any] = {
            "endpoints": {name: {"base_url": base} for name in endpoints},
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "cooldown": 0.0,
        }
        cfg.update(models)
        gw = Gateway(load_settings(models=cfg))
        made.append(gw)
        return gw

    yield build
    for gw in made:
        gw.close()

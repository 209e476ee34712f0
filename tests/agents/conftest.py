"""Shared fixtures of the agent tests: the fake OpenAI-compatible upstream (one per module, reset
around each test) and a gateway whose endpoint ``fake`` is that upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hanlin.config import load_settings
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import UpstreamServer


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture()
def upstream(upstream_server: UpstreamServer) -> Iterator[UpstreamServer]:
    upstream_server.app.reset()
    yield upstream_server
    upstream_server.app.reset()


@pytest.fixture()
def gateway(upstream: UpstreamServer) -> Iterator[Gateway]:
    cfg: dict[str, Any] = {
        "endpoints": {"fake": {"base_url": upstream.url}},
        "retries": 0,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "cooldown": 0.0,
    }
    gw = Gateway(load_settings(models=cfg))
    yield gw
    gw.close()

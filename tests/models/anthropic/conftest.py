"""Fixtures for the Anthropic provider tests: one fake upstream per module, a provider on it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest

from hanlin.models.providers.anthropic import AnthropicProvider
from hanlin.testing.upstream import FakeUpstream, UpstreamServer
from tests.models.anthropic.support import (
    KEY,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as running:
        yield running


@pytest.fixture
def upstream(server: UpstreamServer) -> Iterator[FakeUpstream]:
    server.app.reset()
    yield server.app
    server.app.reset()


@pytest.fixture
async def provider(
    server: UpstreamServer, upstream: FakeUpstream
) -> AsyncIterator[AnthropicProvider]:
    endpoint = dataclasses.replace(AnthropicProvider.presets()[0], base_url=server.url)
    p = AnthropicProvider(endpoint, KEY)
    yield p
    await p.aclose()

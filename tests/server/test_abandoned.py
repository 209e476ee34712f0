"""Abandoned requests stop: a real server with the bundled local model, clients that give up.

Requests whose clients time out or close the connection — streamed or not, running or still
waiting for the model — must stop generating, so a fresh request is served within about its own
generation time; the model's queue is bounded (429 with ``Retry-After`` when full) and
``/api/health`` reports what runs and waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin.config import load_settings
from hanlin.models.gateway import Gateway
from hanlin.models.providers.llamacpp import bundled_model_path, unload_models
from hanlin.server.app import create_app
from hanlin.testing.upstream import UpstreamServer
from tests.bundled import require_bundled_model

from .conftest import LiveServer

require_bundled_model()

pytestmark = pytest.mark.slow

MODEL = "local/gemma3-270m"
#: exactly 10^4 lowercase letters or spaces: the model cannot end its answer early, so a
#: request with a large max_tokens generates until it is stopped
ENDLESS = "\n".join(
    [
        "root ::= a a a a a a a a a a",
        "a ::= b b b b b b b b b b",
        "b ::= c c c c c c c c c c",
        "c ::= d d d d d d d d d d",
        "d ::= [a-z ]",
    ]
)
LONG: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Tell me a long story."}],
    "max_tokens": 2000,
    "grammar": ENDLESS,
}
LONG_BODY = {"grammar": ENDLESS}
SHORT: dict[str, Any] = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Hi"}],
    "max_tokens": 5,
    "temperature": 0,
}


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield bundled_model_path(tmp_path_factory.mktemp("models-home"))
    unload_models()  # this module's model (its own n_ctx) is not kept for other tests


def serve(home: Path, gguf: Path, queue_limit: int) -> LiveServer:
    options = {"model_path": str(gguf), "n_ctx": 2560, "queue_limit": queue_limit}
    settings = load_settings(
        home=home,
        models={"endpoints": {"local": {"provider": "llamacpp", "options": options}}, "retries": 0},
    )
    return LiveServer(create_app(settings))


def local_load(url: str) -> dict[str, Any]:
    health = httpx.get(url + "/api/health", timeout=5).json()
    return dict(health["local_models"][MODEL]) | {"status": health["status"]}


def wait_for(url: str, timeout: float = 10.0, **expected: int) -> dict[str, Any]:
    """Poll /api/health until the local model's load matches ``expected``."""
    deadline = time.monotonic() + timeout
    while True:
        load = local_load(url)
        if all(load[k] == v for k, v in expected.items()) or time.monotonic() > deadline:
            return load
        time.sleep(0.05)


async def abandon_plain(client: httpx.AsyncClient, url: str) -> str:
    try:
        resp = await client.post(url, json=LONG, timeout=1.0)
    except httpx.TimeoutException:
        return "abandoned"
    return f"answered {resp.status_code}"


async def abandon_stream(client: httpx.AsyncClient, url: str) -> str:
    async def read() -> None:
        async with client.stream("POST", url, json=LONG | {"stream": True}) as resp:
            async for _ in resp.aiter_bytes():
                pass

    try:
        await asyncio.wait_for(read(), 1.0)  # closes the connection when it gives up
    except TimeoutError:
        return "abandoned"
    return "answered"


def test_abandoned_requests_stop_and_a_fresh_one_is_served(hanlin_home: Path, gguf: Path) -> None:
    server = serve(hanlin_home, gguf, queue_limit=32)  # room for all 20 to wait
    url = server.url + "/v1/chat/completions"
    try:
        with httpx.Client(timeout=60) as client:
            client.post(url, json=SHORT).raise_for_status()  # loads the model
            started = time.perf_counter()
            assert client.post(url, json=SHORT).status_code == 200
            own = time.perf_counter() - started

        async def twenty() -> list[str]:
            async with httpx.AsyncClient(timeout=60) as client:
                plain = [abandon_plain(client, url) for _ in range(15)]
                streams = [abandon_stream(client, url) for _ in range(5)]
                return await asyncio.gather(*plain, *streams)

        assert asyncio.run(twenty()) == ["abandoned"] * 20
        # nothing generates for clients that left: the model is idle within a moment
        load = wait_for(server.url, running=0, waiting=0)
        assert (load["running"], load["waiting"], load["status"]) == (0, 0, "ok")
        started = time.perf_counter()
        resp = httpx.post(url, json=SHORT, timeout=60)
        fresh = time.perf_counter() - started
        assert resp.status_code == 200 and resp.json()["usage"]["completion_tokens"] == 5
        assert fresh <= 3 * own + 3.0, f"fresh request took {fresh:.2f} s (own {own:.2f} s)"
    finally:
        server.stop()


def test_a_full_queue_answers_429_with_retry_after(hanlin_home: Path, gguf: Path) -> None:
    server = serve(hanlin_home, gguf, queue_limit=1)
    url = server.url + "/v1/chat/completions"
    try:
        httpx.post(url, json=SHORT, timeout=60).raise_for_status()  # loads the model

        async def scenario() -> tuple[httpx.Response, float, dict[str, Any]]:
            async with httpx.AsyncClient(timeout=60) as client:
                running = asyncio.ensure_future(client.post(url, json=LONG))
                await asyncio.to_thread(wait_for, server.url, running=1)
                waiting = asyncio.ensure_future(client.post(url, json=LONG))
                busy = await asyncio.to_thread(wait_for, server.url, running=1, waiting=1)
                started = time.perf_counter()
                refused = await client.post(url, json=SHORT)
                took = time.perf_counter() - started
                for task in (running, waiting):  # the clients give up
                    task.cancel()
                await asyncio.gather(running, waiting, return_exceptions=True)
            return refused, took, busy

        refused, took, busy = asyncio.run(scenario())
        assert busy["status"] == "busy" and busy["limit"] == 1
        assert refused.status_code == 429 and took < 5.0  # refused at once, not queued
        assert int(refused.headers["Retry-After"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == "rate_limit_exceeded" and "queue_limit" in error["hint"]
        load = wait_for(server.url, running=0, waiting=0)
        assert (load["running"], load["waiting"], load["status"]) == (0, 0, "ok")
        assert httpx.post(url, json=SHORT, timeout=60).status_code == 200
    finally:
        server.stop()


def test_a_busy_local_model_fails_over_to_the_next_deployment(
    hanlin_home: Path, gguf: Path, upstream: UpstreamServer
) -> None:
    options = {"model_path": str(gguf), "n_ctx": 2560, "queue_limit": 0}  # no call may wait
    endpoints = {
        "local": {"provider": "llamacpp", "options": options},
        "fake": {"base_url": upstream.url},
    }
    routes = {"chat": {"deployments": [MODEL, "fake/gpt-test"]}}
    settings = load_settings(
        home=hanlin_home, models={"endpoints": endpoints, "routes": routes, "retries": 0}
    )
    gw = Gateway(settings)

    async def go() -> tuple[str | None, float]:
        long = gw.astream("Tell me a long story.", MODEL, max_tokens=2000, extra_body=LONG_BODY)
        await anext(long)  # the local model is busy with it now
        try:
            started = time.perf_counter()
            resp = await gw.achat("Hi", "chat", max_tokens=5)
            return resp.served_by, time.perf_counter() - started
        finally:
            await long.aclose()

    try:
        served_by, took = asyncio.run(go())
    finally:
        gw.close()
    assert served_by == "fake/gpt-test" and took < 5.0  # at once, without waiting for local

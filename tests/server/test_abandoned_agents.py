"""Abandoned agent requests stop: a client that times out or closes the connection — on an
``agent:`` chat model or an agent run, streamed or not — cancels the run, so no further model
call or tool step is made for it. A real server, an agent that would call its tool for dozens of
steps, and the fake upstream's request log as the record of the steps taken."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hanlin.config import Settings
from hanlin.server.app import create_app
from hanlin.testing.upstream import UpstreamServer
from tests.agents.test_loop import calls_stream
from tests.server.conftest import MODEL, LiveServer

PATH = "/v1/chat/completions"
STEPS = 40
#: each model reply takes this long, so a run of STEPS steps outlives its client many times over
STEP_S = 0.25
LOOPER = f"""
name: looper
model: {MODEL}
tools: [calculator]
limits: {{max_steps: {STEPS}, max_seconds: 120}}
"""


def model_calls(upstream: UpstreamServer) -> int:
    return sum(1 for path, _, _ in list(upstream.app.requests) if path == PATH)


def give_up(server: LiveServer, upstream: UpstreamServer, how: str) -> str | None:
    """Start the request and leave once the agent has taken a few steps; the run's id when
    its stream told it."""
    chat = {"model": "agent:looper", "messages": [{"role": "user", "content": "count"}]}
    run = {"input": "count"}
    path, body = {
        "chat": ("/v1/chat/completions", chat),
        "chat-stream": ("/v1/chat/completions", chat | {"stream": True}),
        "run": ("/v1/agents/looper/runs", run | {"stream": False}),
        "run-stream": ("/v1/agents/looper/runs", run),
    }[how]
    seen: list[str] = []

    async def request(http: httpx.AsyncClient) -> None:
        if not how.endswith("stream"):
            await http.post(path, json=body)
            return
        async with http.stream("POST", path, json=body) as resp:
            async for line in resp.aiter_lines():
                if line.startswith("data: {") and not seen:
                    seen.append(json.loads(line[6:]).get("run_id"))

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            task = asyncio.ensure_future(request(http))
            deadline = time.monotonic() + 30
            while model_calls(upstream) < 3 and time.monotonic() < deadline and not task.done():
                await asyncio.sleep(0.02)
            assert not task.done(), "the agent answered before its client gave up"
            task.cancel()  # the client gives up: its connection closes
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    return seen[0] if seen else None


@pytest.mark.parametrize("how", ["chat", "chat-stream", "run", "run-stream"])
def test_an_abandoned_agent_request_takes_no_further_steps(
    how: str, fresh_settings: Callable[..., Settings], upstream: UpstreamServer
) -> None:
    settings = fresh_settings()
    (settings.home / "agents").mkdir(parents=True, exist_ok=True)
    (settings.home / "agents" / "looper.yaml").write_text(LOOPER, "utf-8")
    for i in range(STEPS):
        reply = calls_stream(("calculator", json.dumps({"expression": f"{i} + 1"})))
        reply.first_byte_delay = STEP_S
        upstream.app.script(PATH, reply)
    server = LiveServer(create_app(settings))
    try:
        run_id = give_up(server, upstream, how)
        time.sleep(2 * STEP_S)  # the step in flight when the client left unwinds
        taken = model_calls(upstream)
        time.sleep(8 * STEP_S)  # long enough for several more steps, had the run gone on
        later = model_calls(upstream)
        assert taken >= 2, "the agent never got going: the test shows nothing"
        assert later == taken < STEPS, f"{later - taken} model calls after the client left"
        if run_id is not None:
            status: dict[str, Any] = httpx.get(f"{server.url}/v1/agents/runs/{run_id}").json()
            assert status["status"] == "cancelled", (status, taken)
    finally:
        server.stop()

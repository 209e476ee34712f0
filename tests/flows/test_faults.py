"""Faults at the level of a run: a code node that hangs or eats memory is stopped by its limits,
and a model that errors (HTTP 500, connection refused) is retried per the node's policy — each
a clear error naming the node and the cause, the run's state intact and the run resumable."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from hanlin.config import load_settings
from hanlin.flows import FlowEngine, Workflow
from hanlin.flows.events import NodeRetryEvent
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import Reply, UpstreamServer

from .conftest import CountingServer
from .test_model_nodes import CHAT, reply


def code_flow(code: str, settings: str) -> str:
    indented = "\n".join("      " + line for line in code.splitlines())
    branch = "on_error: branch" in settings
    text = f"""
name: faulty
nodes:
  - {{id: start, type: start, inputs: {{n: integer}}}}
  - {{id: before, type: template, template: "kept {{{{start.n}}}}"}}
  - id: work
    type: code
    {settings.replace(", ", chr(10) + "    ")}
    code: |
{indented}
    inputs: {{n: "{{{{start.n}}}}"}}
    outputs: {{x: integer}}
  - {{id: out, type: answer, answer: "{{{{work.x}}}}"}}
"""
    if branch:
        text += """  - {id: oops, type: answer, answer: "failed: {{work.error}}"}
edges: [start -> before, before -> work, work -> out, work.error -> oops]
"""
    return text


HANG = "def main(n):\n    while True:\n        n += 1\n    return {'x': n}"
HOG = "def main(n):\n    hog = bytearray(1024 * 1024 * 1024)\n    return {'x': len(hog)}"


def test_a_hanging_code_node_is_stopped_by_its_timeout() -> None:
    engine = FlowEngine(load_settings())
    try:
        t = time.monotonic()
        run = engine.run(Workflow.from_yaml(code_flow(HANG, "timeout_s: 1")), {"n": 1})
        took = time.monotonic() - t
        assert run.status == "failed"
        assert "step 'work'" in (run.error or "")
        # the sandbox's wall clock is held to the node's timeout: no process outlives it
        assert "1 s" in (run.error or ""), run.error
        assert took < 8
        assert run.state["before"]["outputs"] == {"output": "kept 1"}  # earlier work kept
        history = {s.node: s.status for s in engine.history(run.id)}
        assert history == {"start": "done", "before": "done", "work": "failed"}

        branch = code_flow(HANG, "wall_seconds: 1, on_error: branch")
        taken = engine.run(Workflow.from_yaml(branch), {"n": 1})
        assert taken.status == "done"
        answer = (taken.outputs or {})["answer"]
        assert answer.startswith("failed: the code failed (killed: wall-clock limit of 1 s")
    finally:
        engine.close()


def test_a_code_node_that_eats_memory_is_stopped_by_the_sandbox_limit() -> None:
    engine = FlowEngine(load_settings())
    try:
        wf = Workflow.from_yaml(code_flow(HOG, "memory_mb: 128"))
        run = engine.run(wf, {"n": 1})
        assert run.status == "failed"
        assert "step 'work'" in (run.error or "")
        assert "memory limit of 128 MB exceeded" in (run.error or ""), run.error
        assert run.state["before"]["outputs"] == {"output": "kept 1"}
        branch = engine.run(
            Workflow.from_yaml(code_flow(HOG, "memory_mb: 128, on_error: branch")), {"n": 2}
        )
        assert "memory limit of 128 MB" in (branch.outputs or {})["answer"]
    finally:
        engine.close()


LLM_FLOW = """
name: asks
nodes:
  - {id: start, type: start, inputs: {q: string}}
  - {id: send, type: http_request, method: POST, url: "URL/log", body: {q: "{{start.q}}"}}
  - id: ask
    type: llm
    model: fake/m
    stream: false
    prompt: "{{start.q}}"
    retry: {max_attempts: 3, backoff_s: 0.01}
  - {id: out, type: answer, answer: "{{ask.text}}"}
"""


@pytest.fixture()
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


def test_a_model_that_errors_is_retried_then_fails_naming_the_provider_error(
    upstream: UpstreamServer,
) -> None:
    with CountingServer() as counting:
        settings = load_settings(
            models={"endpoints": {"fake": {"base_url": upstream.url}}, "retries": 0},
            workflows={"allowed_hosts": [counting.url.removeprefix("http://")]},
        )
        gateway = Gateway(settings)
        engine = FlowEngine(settings, gateway=gateway)
        try:
            broken = Reply(status=500, json={"error": {"message": "upstream exploded"}})
            upstream.app.script(CHAT, broken, broken, broken)
            wf = Workflow.from_yaml(LLM_FLOW.replace("URL", counting.url))
            run = engine.start(wf, {"q": "hello"})
            events = list(engine.stream(run.id))
            failed = engine.store.get_run(run.id)
            assert failed.status == "failed"
            assert sum(isinstance(e, NodeRetryEvent) for e in events) == 2  # 3 attempts
            error = failed.error or ""
            assert "step 'ask'" in error and "fake" in error and "500" in error, error
            assert failed.state["send"]["status"] == "done"  # the request before it is kept

            upstream.app.script(CHAT, reply("fixed"))  # the provider recovers: resume
            done = engine.drive(run.id)
            assert done.status == "done" and done.outputs == {"answer": "fixed"}
            assert counting.total == 1  # the earlier side effect was not repeated
        finally:
            engine.close()
            gateway.close()


def test_a_model_that_refuses_connections_fails_the_node_saying_so() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    settings = load_settings(
        models={"endpoints": {"fake": {"base_url": f"http://127.0.0.1:{port}/v1"}}, "retries": 0}
    )
    gateway = Gateway(settings)
    engine = FlowEngine(settings, gateway=gateway)
    try:
        wf = Workflow.from_yaml(
            LLM_FLOW.replace(
                '  - {id: send, type: http_request, method: POST, url: "URL/log", '
                'body: {q: "{{start.q}}"}}\n',
                "",
            )
        )
        run = engine.run(wf, {"q": "hello"})
        assert run.status == "failed"
        error = run.error or ""
        assert "step 'ask'" in error and "fake" in error, error
        assert "connect" in error.lower(), error
        steps = engine.history(run.id)
        assert steps[-1].node == "ask" and steps[-1].attempts == 3
    finally:
        engine.close()
        gateway.close()

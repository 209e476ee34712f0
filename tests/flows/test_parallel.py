"""Parallel branches: a node with several plain outgoing edges runs its branches at once (at
most ``workflows.max_parallel``), a join waits for all its live inputs, and a run killed with
one branch finished and another in flight resumes without repeating the finished one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hanlin.config import load_settings
from hanlin.flows import FlowEngine, Workflow

from .conftest import CountingServer

FORK = """
name: fork
nodes:
  - {id: start, type: start, inputs: {tag: string}}
  - {id: a, type: http_request, method: POST, url: "FAST/a", body: {tag: "{{start.tag}}"}}
  - {id: b, type: http_request, method: POST, url: "SLOW/b", body: {tag: "{{start.tag}}"}}
  - {id: join, type: end, outputs: {a: "{{a.json.echo}}", b: "{{b.json.echo}}"}}
edges:
  - start -> a
  - start -> b
  - a -> join
  - b -> join
"""


def _engine(*servers: CountingServer, max_parallel: int = 8) -> FlowEngine:
    hosts = [s.url.removeprefix("http://") for s in servers]
    settings = load_settings(workflows={"allowed_hosts": hosts, "max_parallel": max_parallel})
    return FlowEngine(settings)


def _fork(fast: CountingServer, slow: CountingServer) -> Workflow:
    return Workflow.from_yaml(FORK.replace("FAST", fast.url).replace("SLOW", slow.url))


def test_branches_run_at_once_and_the_join_waits_for_both() -> None:
    with CountingServer(delay=0.6) as fast, CountingServer(delay=0.6) as slow:
        engine = _engine(fast, slow)
        try:
            engine.run(_fork(fast, slow), {"tag": "warm-up"})  # imports, first connections
            t = time.monotonic()
            run = engine.run(_fork(fast, slow), {"tag": "x"})
            took = time.monotonic() - t
            steps = [s.node for s in engine.history(run.id)]
        finally:
            engine.close()
    assert run.status == "done", run.error
    assert run.outputs == {"a": '{"tag": "x"}', "b": '{"tag": "x"}'}
    assert took < 1.1, f"{took:.2f} s: the branches ran one after the other"  # sum: 1.2 s
    assert steps[-1] == "join" and sorted(steps[:-1]) == ["a", "b", "start"]


def test_max_parallel_bounds_the_branches() -> None:
    with CountingServer(delay=0.4) as fast, CountingServer(delay=0.4) as slow:
        engine = _engine(fast, slow, max_parallel=1)
        try:
            t = time.monotonic()
            run = engine.run(_fork(fast, slow), {"tag": "x"})
            took = time.monotonic() - t
        finally:
            engine.close()
    assert run.status == "done", run.error
    assert took >= 0.8  # one at a time


def test_a_join_after_a_branch_not_taken_runs_once_its_live_inputs_are_done() -> None:
    wf = Workflow.from_yaml(
        """
name: join
nodes:
  - {id: start, type: start, inputs: {n: integer}}
  - {id: check, type: if_else, cases: [{id: big, when: "start.n > 10"}]}
  - {id: big, type: template, template: "big {{start.n}}"}
  - {id: side, type: template, template: "side {{start.n}}"}
  - {id: pick, type: variable_aggregator, variables: ["{{big.output}}", "{{side.output}}"]}
  - {id: out, type: end, outputs: {picked: "{{pick.output}}", side: "{{side.output}}"}}
edges:
  - start -> check
  - start -> side
  - check.big -> big
  - big -> pick
  - side -> pick
  - pick -> out
"""
    )
    engine = FlowEngine(load_settings())
    try:
        small = engine.run(wf, {"n": 3})
        large = engine.run(wf, {"n": 30})
        history = {s.node: s.status for s in engine.history(small.id)}
    finally:
        engine.close()
    assert small.outputs == {"picked": "side 3", "side": "side 3"}
    assert large.outputs == {"picked": "big 30", "side": "side 30"}
    assert history["big"] == "skipped" and history["pick"] == "done"


@pytest.mark.slow
def test_kill_9_with_one_branch_done_resumes_only_the_unfinished_branch() -> None:
    with CountingServer(delay=0.0) as fast, CountingServer(delay=4.0) as slow:
        engine = _engine(fast, slow)
        hosts = [s.url.removeprefix("http://") for s in (fast, slow)]
        env = {**os.environ, "HANLIN_WORKFLOWS__ALLOWED_HOSTS": json.dumps(hosts)}
        run_id = engine.start(_fork(fast, slow), {"tag": "t"}).id
        proc = subprocess.Popen(
            [sys.executable, "-m", "hanlin", "workflow", "resume", run_id, "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until branch a is checkpointed, b in flight
                if any(s.node == "a" for s in engine.store.steps(run_id)) and slow.total:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("branch a was never checkpointed")
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
        run = engine.drive(run_id)
        steps = engine.history(run_id)
        engine.close()
    assert run.status == "done", run.error
    assert run.outputs == {"a": '{"tag": "t"}', "b": '{"tag": "t"}'}
    assert fast.keys == {f"{run_id}:a": 1}  # the finished branch was not sent again
    assert slow.keys == {f"{run_id}:b": 2}  # in flight at the kill: sent again, same key
    assert [s.node for s in steps].count("a") == 1

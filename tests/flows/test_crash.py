"""Durability with real processes: ``kill -9`` at random moments, then resume, until the run
ends — every run completes correctly and no recorded side effect is repeated; a paused run is
answered from another process."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hanlin.config import load_settings
from hanlin.flows import FlowEngine, Workflow

from .conftest import CountingServer

CRASHY = """
name: crashy
nodes:
  - {id: start, type: start, inputs: {tag: string}}
  - {id: first, type: http_request, method: POST, url: "URL/first", body: {tag: "{{start.tag}}"}}
  - id: each
    type: iteration
    items: [0, 1, 2, 3, 4]
    body:
      nodes:
        - {id: hit, type: http_request, method: POST, url: "URL/item", body: {i: "{{each.item}}"}}
    output: "{{hit.json.echo}}"
  - {id: last, type: http_request, method: POST, url: "URL/last", body: {seen: "{{each.output}}"}}
  - {id: out, type: end, outputs: {items: "{{each.output}}", first: "{{first.json.echo}}"}}
"""


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hanlin", "workflow", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_kill_9_at_random_points_never_repeats_a_recorded_side_effect() -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    # slow enough (7 requests × 0.4 s after start-up) that a resume is always killed at least once
    with CountingServer(delay=0.4) as server:
        host = server.url.removeprefix("http://")
        env = {**os.environ, "HANLIN_WORKFLOWS__ALLOWED_HOSTS": json.dumps([host])}
        settings = load_settings(workflows={"allowed_hosts": [host]})
        engine = FlowEngine(settings)
        wf = Workflow.from_yaml(CRASHY.replace("URL", server.url))
        run_id = engine.start(wf, {"tag": "t"}).id
        kills = 0
        for _ in range(40):
            proc = _cli("resume", run_id, "--json", env=env)
            try:
                proc.wait(timeout=rng.uniform(0.3, 2.5))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()  # reaped: its pid is gone, so the next resume takes the run over
            if engine.store.get_run(run_id).status == "done":
                break
            if kills >= 12:
                break
        final = _cli("resume", run_id, "--json", env=env)
        final.communicate(timeout=120)
        run = engine.store.get_run(run_id)
        steps = engine.history(run_id)
        engine.close()
    note = f"seed {seed}, {kills} kills"
    replays = sum(s.status == "replayed" for s in steps)
    print(note, f"{replays} replayed", dict(server.keys))
    assert run.status == "done", (note, run.error)
    assert run.outputs is not None and run.outputs["first"] == '{"tag": "t"}'
    assert run.outputs["items"] == [f'{{"i": {i}}}' for i in range(5)], note
    expected = {f"{run_id}:{k}" for k in ("first", "last", *(f"each[{i}].hit" for i in range(5)))}
    assert set(server.keys) == expected, note
    # a request is sent again only when a kill landed while it was in flight
    assert sum(server.keys.values()) <= len(expected) + kills, (note, server.keys)
    assert kills >= 1, note
    finished = {s.node for s in steps if s.status in ("done", "replayed")}
    assert {"start", "first", "each", "last", "out"} <= finished


@pytest.mark.slow
def test_a_paused_run_is_answered_from_another_process(tmp_path: Path) -> None:
    path = tmp_path / "review.yaml"
    path.write_text(
        """
name: review
nodes:
  - {id: start, type: start, inputs: {draft: string}}
  - id: ask
    type: human_input
    kind: edit
    prompt: "Edit {{start.draft}}"
    value: "{{start.draft}}"
  - {id: out, type: answer, answer: "final: {{ask.text}}"}
""",
        "utf-8",
    )
    env = dict(os.environ)
    first = _cli("run", str(path), "--input", "draft=v1", "--json", env=env)
    stdout, stderr = first.communicate(timeout=120)
    events = [json.loads(line) for line in stdout.splitlines()]
    assert first.returncode == 0, stderr
    paused = events[-1]
    assert paused["type"] == "run_paused" and paused["pending"]["value"] == "v1"
    run_id = paused["run_id"]
    bad = _cli("answer", run_id, "--data", '{"txt": "x"}', env=env)
    _, err = bad.communicate(timeout=120)
    assert bad.returncode == 2 and "'text' is a required property" in err
    good = _cli("answer", run_id, "--data", '{"text": "v2"}', "--json", env=env)
    stdout, stderr = good.communicate(timeout=120)
    assert good.returncode == 0, stderr
    last = json.loads(stdout.splitlines()[-1])
    assert last["type"] == "run_finished" and last["outputs"] == {"answer": "final: v2"}

"""One conformance test over both run stores (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hanlin.errors import ConflictError, NotFoundError
from hanlin.flows.base import PendingInput, RunInterruptedError, RunRecord, StepRecord
from hanlin.flows.postgres import PostgresFlowStore
from hanlin.flows.sqlite import SqliteFlowStore
from hanlin.flows.store import FlowStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FlowStore]:
    if request.param == "postgres":
        opened: FlowStore = PostgresFlowStore(request.getfixturevalue("pg_url"))
    else:
        opened = SqliteFlowStore(tmp_path / "workflows.sqlite")
    yield opened
    opened.close()


def _run(run_id: str, workflow: str = "wf") -> RunRecord:
    return RunRecord(
        id=run_id, workflow=workflow, definition={"name": workflow, "nodes": []},
        inputs={"q": "问题"}, status="pending",
    )  # fmt: skip


def test_the_store_conforms(store: FlowStore) -> None:
    alive = lambda owner, at: False  # noqa: E731 - every owner counts as alive
    gone = lambda owner, at: True  # noqa: E731
    created = store.create_run(_run("r1"))
    store.create_run(_run("r2", "other"))
    assert created.created_at > 0 and store.get_run("r1").inputs == {"q": "问题"}
    assert [r.id for r in store.list_runs(workflow="wf")] == ["r1"]
    assert {r.id for r in store.list_runs()} == {"r1", "r2"}
    with pytest.raises(NotFoundError, match="no workflow run 'nope'"):
        store.get_run("nope")

    run = store.claim("r1", "me", alive)
    assert run.status == "running" and run.owner == "me"
    with pytest.raises(ConflictError, match="running in another process"):
        store.claim("r1", "you", alive)
    step = StepRecord(node="start", type="start", status="done", outputs={"q": "问题"})
    state = {"start": {"status": "done", "outputs": {"q": "问题"}, "branch": None}}
    assert store.checkpoint("r1", "me", step, state) == 1
    inner = StepRecord(node="each[0].x", type="template", status="done", outputs={"o": 1})
    assert store.checkpoint("r1", "me", inner, None) == 2
    assert store.get_run("r1").state == state and store.get_run("r1").steps == 2
    assert [s.node for s in store.steps("r1")] == ["start", "each[0].x"]
    assert store.steps("r1")[0].outputs == {"q": "问题"}

    # a dead owner's run is taken over; the old owner's next checkpoint is refused
    assert store.claim("r1", "you", gone).owner == "you"
    with pytest.raises(RunInterruptedError, match="taken over"):
        store.checkpoint("r1", "me", step, state)

    store.record_effect("r1", "node:send", {"outputs": {"status": 200}, "branch": None})
    store.record_effect("r1", "node:send", {"outputs": {"status": 500}, "branch": None})
    assert store.get_effect("r1", "node:send") == {"outputs": {"status": 200}, "branch": None}
    assert store.get_effect("r1", "node:other") is None
    assert store.get_effect("r2", "node:send") is None

    form = PendingInput(node="ask", prompt="ok?", kind="approve", schema={"type": "object"})
    paused = store.finish("r1", "you", "paused", pending=form)
    assert paused.status == "paused" and paused.owner is None
    assert paused.pending is not None and paused.pending.schema_ == {"type": "object"}
    assert store.list_runs(status="paused")[0].id == "r1"
    store.claim("r1", "me", alive)  # a paused run is claimed by whoever resumes it
    assert store.cancel("r1").status == "cancelled"
    with pytest.raises(RunInterruptedError, match="cancelled"):
        store.checkpoint("r1", "me", step, state)
    assert store.finish("r1", "me", "done", outputs={"a": 1}).status == "cancelled"
    with pytest.raises(ConflictError, match="cancelled"):
        store.claim("r1", "me", gone)
    with pytest.raises(ConflictError):
        store.cancel("r1")

    store.claim("r2", "me", alive)
    done = store.finish("r2", "me", "done", outputs={"answer": "好"})
    assert done.status == "done" and done.outputs == {"answer": "好"}
    with pytest.raises(ConflictError, match="done"):
        store.claim("r2", "me", gone)


def test_runs_keep_who_started_them_and_page(store: FlowStore) -> None:
    for i in range(3):
        run = _run(f"k{i}").model_copy(update={"started_by": "key_a" if i < 2 else "key_b"})
        store.create_run(run)
    assert store.get_run("k0").started_by == "key_a"
    assert [r.id for r in store.list_runs(started_by="key_a")] == ["k1", "k0"]
    assert [r.id for r in store.list_runs(started_by="key_a", limit=1, offset=1)] == ["k0"]
    assert store.list_runs(started_by="key_c") == []
    assert len(store.list_runs()) == 3

    # a drive that stops before the end lets go of its run: still running, no owner
    store.claim("k0", "me", lambda owner, at: False)
    store.release("k0", "someone else")
    assert store.get_run("k0").owner == "me"
    store.release("k0", "me")
    left = store.get_run("k0")
    assert left.status == "running" and left.owner is None
    assert store.claim("k0", "you", lambda owner, at: owner is None).owner == "you"


def test_a_checkpoint_writes_several_steps_an_effect_and_the_end_at_once(
    store: FlowStore,
) -> None:
    store.create_run(_run("r3"))
    store.claim("r3", "me", lambda owner, at: False)
    steps = [
        StepRecord(node="start", type="start", status="done", outputs={"q": "问题"}),
        StepRecord(node="send", type="http_request", status="done", outputs={"status": 200}),
    ]
    state = {n.node: {"status": "done", "outputs": n.outputs, "branch": None} for n in steps}
    effect = ("node:send", {"outputs": {"status": 200}, "branch": None})
    assert store.checkpoint("r3", "me", steps, state, effect) == 2
    assert store.get_effect("r3", "node:send") == effect[1]
    assert [s.node for s in store.steps("r3")] == ["start", "send"]
    end = StepRecord(node="out", type="end", status="done", outputs={"a": 1})
    assert store.checkpoint("r3", "me", [end], state, done={"a": 1}) == 3
    run = store.get_run("r3")
    assert run.status == "done" and run.outputs == {"a": 1} and run.owner is None
    with pytest.raises(RunInterruptedError):  # a finished run takes no more checkpoints
        store.checkpoint("r3", "me", end, state)

"""Schedule (cron) triggers: next-fire computation, checks at validation time, fires claimed
once per (workflow, trigger, time) on both stores, catch-up after a downtime under an injected
clock, and a server that starts a run on an every-second schedule."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hanlin.cli.main import main
from hanlin.config import Settings, load_settings
from hanlin.flows import FlowEngine, Workflow, WorkflowInvalidError
from hanlin.flows.base import RunRecord, TriggerSpec
from hanlin.flows.postgres import PostgresFlowStore
from hanlin.flows.schedule import Scheduler
from hanlin.flows.sqlite import SqliteFlowStore
from hanlin.flows.store import FlowStore
from hanlin.flows.triggers import latest_fire, missed_between, next_fire
from hanlin.server.app import create_app

TICK = """
name: tick
triggers:
  - {id: five, schedule: "*/5 * * * *", inputs: {q: scheduled}}
nodes:
  - {id: start, type: start, inputs: {q: string}}
  - {id: out, type: answer, answer: "got {{start.q}}"}
"""


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FlowStore]:
    if request.param == "postgres":
        opened: FlowStore = PostgresFlowStore(request.getfixturevalue("pg_url"))
    else:
        opened = SqliteFlowStore(tmp_path / "workflows.sqlite")
    yield opened
    opened.close()


def test_next_and_latest_fire_times() -> None:
    five = TriggerSpec(schedule="*/5 * * * *")
    assert next_fire(five, at("2025-01-01T12:03:10")) == at("2025-01-01T12:05:00")
    assert next_fire(five, at("2025-01-01T12:05:00")) == at("2025-01-01T12:10:00")
    # a time that is itself on the schedule is the latest fire at that moment
    assert latest_fire(five, at("2025-01-01T12:05:00")) == at("2025-01-01T12:05:00")
    assert latest_fire(five, at("2025-01-01T12:09:59")) == at("2025-01-01T12:05:00")
    assert missed_between(five, at("2025-01-01T12:00:00"), at("2025-01-01T13:00:00")) == 11
    # six fields: seconds first
    seconds = TriggerSpec(schedule="*/10 * * * * *")
    assert next_fire(seconds, at("2025-01-01T12:00:01")) == at("2025-01-01T12:00:10")
    # nine o'clock on weekdays in Shanghai is 01:00 UTC; 2025-01-04 is a Saturday
    nine = TriggerSpec(schedule="0 9 * * 1-5", timezone="Asia/Shanghai")
    assert next_fire(nine, at("2025-01-03T02:00:00")) == at("2025-01-06T01:00:00")


def test_triggers_are_checked_with_the_workflow_and_round_trip() -> None:
    bad = TICK.replace(
        '  - {id: five, schedule: "*/5 * * * *", inputs: {q: scheduled}}',
        '  - {id: typo, schedule: "61 * * * *", inputs: {q: x}}\n'
        '  - {id: mars, schedule: "* * * * *", timezone: Mars/Base, inputs: {q: x}}\n'
        '  - {id: empty, schedule: "0 9 * * *"}\n'
        '  - {id: short, schedule: "* * *", inputs: {q: x}}',
    )
    with pytest.raises(WorkflowInvalidError) as caught:
        Workflow.from_yaml(bad)
    text = str(caught.value)
    assert "trigger 'typo' (triggers[0]): '61 * * * *' is not a cron expression" in text
    assert "trigger 'mars' (triggers[1]): unknown timezone 'Mars/Base'" in text
    assert "trigger 'empty' (triggers[2]): its inputs: missing workflow input 'q'" in text
    assert "trigger 'short' (triggers[3])" in text and "five fields" in text
    Workflow.from_yaml(TICK.replace("id: five, ", ""))  # a trigger's key defaults to its schedule
    with pytest.raises(WorkflowInvalidError, match="same key"):
        Workflow.from_yaml(
            TICK.replace(
                '  - {id: five, schedule: "*/5 * * * *", inputs: {q: scheduled}}',
                '  - {schedule: "* * * * *", inputs: {q: a}}\n'
                '  - {schedule: "* * * * *", inputs: {q: b}}',
            )
        )
    with pytest.raises(WorkflowInvalidError, match=r"triggers\.0\.cron"):
        Workflow.from_yaml(TICK.replace("schedule:", "cron:"))
    wf = Workflow.from_yaml(TICK)
    assert Workflow.from_yaml(wf.to_yaml()).spec == wf.spec
    assert wf.to_yaml().startswith("name: tick\ntriggers:\n- id: five\n")


def _run(run_id: str) -> RunRecord:
    return RunRecord(id=run_id, workflow="tick", definition={}, inputs={}, status="running")


def test_a_fire_is_claimed_once_and_never_before_a_later_one(store: FlowStore) -> None:
    assert store.last_fire("tick", "five") is None
    assert store.claim_fire("tick", "five", 100.0, "armed")
    assert store.claim_fire("tick", "five", 400.0, "fired", _run("r1"))
    assert not store.claim_fire("tick", "five", 400.0, "fired", _run("r2"))  # the same fire
    assert not store.claim_fire("tick", "five", 300.0, "fired", _run("r3"))  # back in time
    last = store.last_fire("tick", "five")
    assert last is not None and (last.scheduled_at, last.outcome, last.run_id) == (
        400.0,
        "fired",
        "r1",
    )
    # the claim created its run, and only its run
    assert [r.id for r in store.list_runs("tick")] == ["r1"]
    assert store.get_run("r1").status == "running" and store.get_run("r1").owner is None
    # other triggers and workflows are keyed apart
    assert store.claim_fire("tick", "hourly", 400.0, "fired", _run("r4"))
    assert store.claim_fire("other", "five", 400.0, "armed")


def _scheduler(settings: Settings, store: FlowStore, wf: Workflow) -> Scheduler:
    return Scheduler(settings, store, workflows=lambda: [wf])


def test_two_schedulers_on_one_store_start_each_fire_once(store: FlowStore) -> None:
    wf = Workflow.from_yaml(TICK)
    settings = load_settings()
    one, two = _scheduler(settings, store, wf), _scheduler(settings, store, wf)
    t0 = at("2025-01-01T12:01:00")
    assert one.tick(t0) == [] and two.tick(t0) == []  # first seen: armed, nothing runs
    started = one.tick(t0 + 240) + two.tick(t0 + 240)  # 12:05 has come
    assert [r.inputs for r in started] == [{"q": "scheduled"}]
    assert one.tick(t0 + 250) + two.tick(t0 + 250) == []  # still 12:05: nothing new
    assert len(two.tick(t0 + 540) + one.tick(t0 + 541)) == 1  # 12:10
    assert len(store.list_runs("tick")) == 2


def test_after_a_downtime_the_latest_missed_fire_runs_once(store: FlowStore) -> None:
    wf = Workflow.from_yaml(TICK)
    settings = load_settings()
    t0 = at("2025-01-01T12:01:00")
    _scheduler(settings, store, wf).tick(t0)
    # down from 12:01 until 15:02: 36 fires missed; a fresh scheduler (a restart) runs the
    # 15:00 one, once
    restarted = _scheduler(settings, store, wf)
    (run,) = restarted.tick(at("2025-01-01T15:02:00"))
    last = store.last_fire("tick", "five")
    assert last is not None and last.scheduled_at == at("2025-01-01T15:00:00")
    assert last.run_id == run.id
    assert restarted.tick(at("2025-01-01T15:03:00")) == []
    assert len(restarted.tick(at("2025-01-01T15:05:00"))) == 1

    # catch_up: skip runs none of the missed fires, and the next one on time
    skip = Workflow.from_yaml(
        TICK.replace("inputs: {q: scheduled}", "catch_up: skip, inputs: {q: s}")
    )
    sched = _scheduler(settings, store, skip)
    assert sched.tick(at("2025-01-01T15:06:00")) == []  # seen before: nothing due yet
    assert sched.tick(at("2025-01-01T18:02:00")) == []  # missed 18:00 by two minutes
    last = store.last_fire("tick", "five")
    assert last is not None and last.outcome == "skipped"
    assert len(sched.tick(at("2025-01-01T18:05:00"))) == 1  # on time


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    try:
        main(["workflow", *args])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr()
    return capsys.readouterr().out


def test_scheduled_runs_run_and_a_server_fires_an_every_second_schedule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings()
    folder = settings.home / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    every_second = TICK.replace('"*/5 * * * *"', '"* * * * * *"')
    (folder / "tick.yaml").write_text(every_second, "utf-8")

    shown = cli(capsys, "show", "tick")
    assert "five" in shown and "* * * * * *" in shown and "next fire" in shown
    assert "* * * * * *" in cli(capsys, "ls")

    engine = FlowEngine(settings)
    try:
        with TestClient(create_app(settings)):
            deadline = time.monotonic() + 15
            done: list[RunRecord] = []
            while not done:
                assert time.monotonic() < deadline, engine.store.list_runs("tick")
                time.sleep(0.1)
                done = [r for r in engine.store.list_runs("tick") if r.status == "done"]
        assert done[0].outputs == {"answer": "got scheduled"}
        assert done[0].started_by is None
    finally:
        engine.close()

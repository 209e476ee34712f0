"""``GET /v1/workflows/{name}`` lists the workflow's schedule triggers with their next fire and
their last one: the rows ``hanlin workflow show`` prints
(:func:`hanlin.flows.schedule.schedule_rows`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi.testclient import TestClient

from hanlin.config import Settings
from hanlin.flows import RunRecord
from hanlin.flows.store import open_flow_store
from hanlin.server.app import create_app
from tests.server.test_workflows_api import ECHO, write_workflows

TICK = """name: tick
triggers:
  - {id: five, schedule: "*/5 * * * *", timezone: Asia/Shanghai, inputs: {q: scheduled}}
nodes:
  - {id: start, type: start, inputs: {q: string}}
  - {id: out, type: answer, answer: "got {{start.q}}"}
"""


def test_show_lists_schedule_triggers_with_next_and_last_fire(
    fresh_settings: Callable[..., Settings],
) -> None:
    settings = fresh_settings()
    settings = settings.model_copy(
        update={"workflows": settings.workflows.model_copy(update={"schedules": False})}
    )
    write_workflows(settings, tick=TICK, echo=ECHO)
    store = open_flow_store(settings)
    run = RunRecord(id="r-fired", workflow="tick", definition={}, inputs={}, status="done")
    assert store.claim_fire("tick", "five", 1_800_000_000.0, "fired", run)
    store.close()
    with TestClient(create_app(settings)) as client:
        shown = client.get("/v1/workflows/tick").json()
        assert client.get("/v1/workflows/echo").json()["triggers"] == []
    [trigger] = shown["triggers"]
    assert trigger["trigger"] == "five" and trigger["schedule"] == "*/5 * * * *"
    assert trigger["timezone"] == "Asia/Shanghai" and trigger["inputs"] == {"q": "scheduled"}
    upcoming = datetime.fromisoformat(trigger["next_fire"])
    assert upcoming.minute % 5 == 0 and upcoming.utcoffset() is not None
    assert upcoming.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
    assert datetime.fromisoformat(trigger["last_fire"]).timestamp() == 1_800_000_000.0
    assert (trigger["last_outcome"], trigger["last_run"]) == ("fired", "r-fired")

"""Schedule triggers' times and checks: cron expressions read by croniter (maintained by
pallets-eco) — five fields, or six with seconds first — in a trigger's IANA timezone, and the
problems of a workflow's ``triggers`` found when it is validated. :mod:`.schedule` fires them."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hanlin.flows.base import TriggerSpec, WorkflowSpec

if TYPE_CHECKING:
    from hanlin.flows.graph import Graph

_CRON_FIX = (
    "write five fields (minute hour day-of-month month day-of-week), or six with seconds "
    "first, e.g. '*/5 * * * *' or '*/10 * * * * *'"
)


def _cron(trigger: TriggerSpec, start: float) -> Any:
    from croniter import croniter

    fields = trigger.schedule.split()
    if len(fields) not in (5, 6) and not trigger.schedule.startswith("@"):
        raise ValueError(f"it has {len(fields)} fields")
    begin = datetime.fromtimestamp(start, ZoneInfo(trigger.timezone))
    return croniter(trigger.schedule, begin, second_at_beginning=len(fields) == 6)


def next_fire(trigger: TriggerSpec, after: float) -> float:
    """The first scheduled time strictly after ``after`` (epoch seconds)."""
    return float(_cron(trigger, after).get_next(float))


def latest_fire(trigger: TriggerSpec, now: float) -> float:
    """The most recent scheduled time at or before ``now`` (epoch seconds)."""
    # croniter's previous time excludes its start: start just after ``now``
    return float(_cron(trigger, now + 0.001).get_prev(float))


def missed_between(trigger: TriggerSpec, after: float, until: float, cap: int = 1000) -> int:
    """How many scheduled times fall in (``after``, ``until``) — at most ``cap``."""
    it, count = _cron(trigger, after), 0
    while count < cap and it.get_next(float) < until:
        count += 1
    return count


def trigger_problems(spec: WorkflowSpec, graph: Graph | None) -> list[tuple[str | None, str, str]]:
    """Every problem of the workflow's triggers: a bad cron expression or timezone, two
    triggers under one key, inputs the start node refuses."""
    from hanlin.flows.nodes.basic import check_inputs

    problems: list[tuple[str | None, str, str]] = []
    seen: set[str] = set()
    start = None
    if graph is not None:
        start = next((n for n in graph.order if graph.nodes[n].type == "start"), None)
    for i, trigger in enumerate(spec.triggers):
        where = f"trigger {trigger.key!r} (triggers[{i}])"
        if trigger.key in seen:
            problems.append(
                (None, f"{where}: another trigger has the same key", "give each trigger an `id`")
            )
        seen.add(trigger.key)
        try:
            ZoneInfo(trigger.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                (
                    None,
                    f"{where}: unknown timezone {trigger.timezone!r}",
                    "use an IANA name such as 'UTC' or 'Asia/Shanghai'",
                )
            )
            continue
        try:
            next_fire(trigger, time.time())
        except Exception as exc:  # croniter raises its own errors (ValueError, KeyError …)
            problems.append(
                (None, f"{where}: {trigger.schedule!r} is not a cron expression ({exc})", _CRON_FIX)
            )
        if start is not None and graph is not None:
            try:
                check_inputs(graph.configs[start], dict(trigger.inputs))  # type: ignore[arg-type]
            except Exception as exc:
                problems.append(
                    (
                        None,
                        f"{where}: its inputs: {getattr(exc, 'message', exc)}",
                        "give the start node's required inputs in the trigger's `inputs`",
                    )
                )
    return problems


__all__ = ["latest_fire", "missed_between", "next_fire", "trigger_problems"]

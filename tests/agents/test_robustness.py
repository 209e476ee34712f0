"""The hostile-tool suite of ``bench/agent_robustness.py``: every scenario must end, within its
budget, with an expected stop reason, a message, and its own check passing — no hang, no crash.

Each scenario runs ``Agent.arun`` on its own event loop in its own thread against the fake
OpenAI-compatible upstream; a run that does not return within the budget is reported as a hang
(the thread is abandoned, not waited for), an exception escaping the loop as a crash.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "agent_robustness.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_robustness", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["agent_robustness"] = module
    spec.loader.exec_module(module)
    return module


ar = _load()
SCENARIOS = {s.name: s for s in ar.scenarios()}


def _param(name: str) -> Any:
    s = SCENARIOS[name]
    marks = [pytest.mark.timeout(s.budget + 20)]
    if s.group == "mcp":  # each starts a Python MCP server subprocess (~1.5 s of CPU)
        marks.append(pytest.mark.slow)
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with ar.upstream() as srv:
        srv.app.record_requests = False
        yield srv


def test_the_suite_has_fifty_scenarios_in_every_group() -> None:
    groups = {s.group for s in SCENARIOS.values()}
    assert len(SCENARIOS) >= 50
    assert {"arguments", "types", "tools", "names", "loops", "parallel", "model", "mcp"} <= groups


@pytest.mark.parametrize("name", [_param(n) for n in SCENARIOS])
def test_scenario_ends_clearly_within_its_limit(name: str, server: Any, tmp_path: Path) -> None:
    s = SCENARIOS[name]
    outcome = ar.run_scenario(s, server, tmp_path)
    assert outcome.status == "ok", f"{outcome.status}: {outcome.problem} — {outcome.message}"
    assert outcome.seconds < s.budget
    assert outcome.stop_reason in s.expect and outcome.message.strip()


def test_a_hang_is_reported_not_waited_for(server: Any, tmp_path: Path) -> None:
    """The harness itself: a run stuck past its budget comes back as a hang, on time."""
    import asyncio
    import time

    from hanlin.agents.loop import AgentLimits
    from hanlin.agents.tools.base import tool

    @tool(timeout=None)
    async def stuck() -> str:
        """Outlasts the scenario's budget (then ends, so the upstream can shut down)."""
        await asyncio.sleep(2)
        return "late"

    async def tools(stack: Any, ctx: Any) -> list[Any]:
        return [stuck]

    s = ar.Scenario(
        "harness_hang",
        "harness",
        ar.one_call("stuck", "{}"),
        tools,
        limits=AgentLimits(max_seconds=30),
        budget=0.5,
    )
    started = time.perf_counter()
    outcome = ar.run_scenario(s, server, tmp_path)
    assert outcome.status == "hang" and time.perf_counter() - started < 3

"""Agent definitions: YAML and Python specs, clear errors, lookup by name, and building agents
(tools, approvals, planner mode, MCP servers) that run against the fake upstream."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from hanlin.agents.events import ApprovalRequest, PlanEvent, SubtaskEvent
from hanlin.agents.loop import Agent
from hanlin.agents.planner import PlannerAgent
from hanlin.agents.spec import (
    AgentSpec,
    AgentSpecError,
    list_agent_specs,
    load_agent_spec,
    open_agent,
)
from hanlin.errors import NotFoundError
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import UpstreamServer
from tests.agents.test_loop import answer, calls_stream
from tests.agents.test_planner import (
    MODEL,
    PATH,
    bodies,
    plan,
    prompt_text,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
FLAKY_SERVER = Path(__file__).resolve().parent / "mcp" / "flaky_server.py"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, "agent.yaml", text)
    with pytest.raises(AgentSpecError) as info:
        load_agent_spec(path)
    message = str(info.value)
    assert str(path) in message
    return message


# --- errors -----------------------------------------------------------------------------------


def test_an_unknown_key_names_it_suggests_a_fix_and_lists_the_valid_keys(tmp_path: Path) -> None:
    message = load_error(tmp_path, "name: a\ntols: [calculator]\n")
    assert "unknown key 'tols'" in message and "did you mean 'tools'?" in message
    assert "valid keys: name, description, model, system, mode, tools, mcp_servers" in message
    nested = load_error(tmp_path, "name: a\nlimits:\n  max_stepz: 3\n")
    assert "unknown key 'max_stepz' in limits (did you mean 'max_steps'?)" in nested
    assert "valid keys: max_steps, max_seconds, max_tokens, max_cost_usd, tool_timeout" in nested


def test_an_unknown_tool_or_tool_option_is_explained(tmp_path: Path) -> None:
    message = load_error(tmp_path, "name: a\ntools: [calculator, calculater]\n")
    assert "unknown tool 'calculater' in tools[1] (did you mean 'calculator'?)" in message
    assert "available tools: calculator, current_time, http_get, kb_search" in message
    missing = load_error(tmp_path, "name: a\ntools:\n  - name: kb_search\n")
    assert "tool kb_search in tools[0]: option kb: Field required" in missing
    typo = load_error(tmp_path, "name: a\ntools:\n  - {name: python, memory: 100}\n")
    assert "unknown option 'memory' for tool python" in typo
    assert "did you mean 'memory_mb'?" in typo and "wall_seconds" in typo
    web = load_error(tmp_path, "name: a\ntools:\n  - {name: web_search, engine: brave}\n")
    assert "tool web_search in tools[0]: unknown option 'engine'" in web and "provider" in web


def test_bad_limits_say_which_limit_and_why(tmp_path: Path) -> None:
    message = load_error(tmp_path, "name: a\nlimits: {max_steps: 0, max_seconds: -5}\n")
    assert "limits.max_steps: Input should be greater than or equal to 1 (got 0)" in message
    assert "limits.max_seconds: Input should be greater than 0 (got -5)" in message
    mode = load_error(tmp_path, "name: a\nmode: autopilot\n")
    assert "mode: Input should be 'tools' or 'planner' (got 'autopilot')" in mode


def test_broken_yaml_and_bad_mcp_entries_are_reported(tmp_path: Path) -> None:
    assert "is not valid YAML" in load_error(tmp_path, "name: a\ntools: [calculator\n")
    assert "is a mapping of keys, not list" in load_error(tmp_path, "- calculator\n")
    both = load_error(
        tmp_path, "name: a\nmcp_servers:\n  x: {command: run-it, url: 'http://h/mcp'}\n"
    )
    assert "MCP server x: give either `command` (stdio) or `url`" in both


# --- lookup -----------------------------------------------------------------------------------


def test_specs_are_found_by_path_by_name_and_built_in(hanlin_home: Path) -> None:
    agents = hanlin_home / "agents"
    write(agents, "helper.yaml", "description: Helps\ntools: [calculator]\n")
    write(agents, "broken.yaml", "name: broken\ntools: [nope]\n")
    helper = load_agent_spec("helper")
    assert helper.name == "helper" and helper.tools[0].name == "calculator"
    assert load_agent_spec(agents / "helper.yaml") == helper
    assert load_agent_spec("assistant").name == "assistant"  # built in
    listed = {i.name: i for i in list_agent_specs()}
    assert set(listed) == {"assistant", "broken", "helper"}
    assert listed["helper"].description == "Helps" and listed["helper"].error is None
    assert listed["broken"].error is not None and "unknown tool 'nope'" in listed["broken"].error
    with pytest.raises(NotFoundError) as info:
        load_agent_spec("nobody")
    assert "known agents: assistant, broken, helper" in str(info.value)
    with pytest.raises(NotFoundError):
        load_agent_spec("missing/agent.yaml")


def test_python_and_yaml_specs_are_the_same(tmp_path: Path) -> None:
    data = {
        "name": "calc",
        "model": "fake/m",
        "tools": ["calculator", {"name": "kb_search", "kb": "docs", "k": 3}],
        "limits": {"max_steps": 4},
    }
    spec = AgentSpec.validated(data)
    from_yaml = AgentSpec.from_yaml(spec.to_yaml())
    assert from_yaml == spec
    path = write(
        tmp_path,
        "calc.yaml",
        "name: calc\nmodel: fake/m\ntools:\n  - calculator\n"
        "  - kb_search: {kb: docs, k: 3}\nlimits: {max_steps: 4}\n",
    )
    assert load_agent_spec(path) == spec


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_loads(path: Path) -> None:
    spec = load_agent_spec(path)
    assert spec.description and spec.tools


# --- building and running ---------------------------------------------------------------------


def test_the_example_assistant_runs_with_its_tools_and_approvals(
    gateway: Gateway,
    upstream: UpstreamServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the example's workspace is relative to the current directory
    spec = load_agent_spec(EXAMPLES / "assistant.yaml").model_copy(update={"model": MODEL})
    upstream.app.script(
        PATH,
        calls_stream(("calculator", '{"expression": "2340 * 0.17"}')),
        calls_stream(("write_file", '{"path": "answer.txt", "content": "397.8"}')),
        answer("17% of 2,340 is 397.8; saved to answer.txt."),
    )

    async def go() -> tuple[Agent | PlannerAgent, list[str]]:
        async with open_agent(spec, gateway) as agent:
            result = await agent.arun("What is 17% of 2,340? Save it.")
        return agent, [r.content for r in result.tool_results]

    agent, results = asyncio.run(go())
    assert isinstance(agent, Agent) and agent.limits.max_steps == 8
    assert results[0] == "397.8"
    assert (tmp_path / "agent-workspace" / "answer.txt").read_text() == "397.8"  # auto-approved
    sent = bodies(upstream)[0]
    assert sent["messages"][0]["content"].startswith("You are a concise, careful assistant.")
    names = {t["function"]["name"] for t in sent["tools"]}
    assert names == {
        "calculator", "current_time", "read_file", "write_file", "list_dir", "remember", "recall"
    }  # fmt: skip


def test_the_example_analyst_runs_in_planner_mode(
    gateway: Gateway,
    upstream: UpstreamServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = load_agent_spec(EXAMPLES / "analyst.yaml").model_copy(update={"model": MODEL})
    upstream.app.script(
        PATH,
        plan(("1", "Compute 1000 * 1.05 ** 10", [])),
        calls_stream(("calculator", '{"expression": "1000 * 1.05 ** 10"}')),
        answer("1628.89"),
        answer("After 10 years at 5% the 1000 grows to 1628.89."),
    )

    async def go() -> tuple[Agent | PlannerAgent, object]:
        async with open_agent(spec, gateway) as agent:
            return agent, await agent.arun("What does 1000 become at 5% for 10 years?")

    agent, result = asyncio.run(go())
    assert isinstance(agent, PlannerAgent) and agent.max_subtasks == 5
    assert agent.limits.max_steps == 25 and agent.limits.max_tokens == 60000
    events = getattr(result, "events")  # noqa: B009
    assert isinstance(events[1], PlanEvent)
    assert [e.status for e in events if isinstance(e, SubtaskEvent)] == ["running", "done"]
    assert getattr(result, "text") == "After 10 years at 5% the 1000 grows to 1628.89."  # noqa: B009
    assert "1628.89" in prompt_text(bodies(upstream)[-1])


def test_side_effects_ask_the_callback_given_to_open_agent(
    gateway: Gateway, upstream: UpstreamServer, tmp_path: Path
) -> None:
    spec = AgentSpec.validated(
        {"name": "w", "model": MODEL, "tools": [{"name": "write_file", "workspace": str(tmp_path)}]}
    )
    asked: list[str] = []

    def approve(request: ApprovalRequest) -> bool:
        asked.append(request.tool)
        return False

    upstream.app.script(
        PATH, calls_stream(("write_file", '{"path": "x.txt", "content": "hi"}')), answer("No.")
    )

    async def go() -> list[str]:
        async with open_agent(spec, gateway, approval_callback=approve) as agent:
            result = await agent.arun("Write hi to x.txt")
        return [r.content for r in result.tool_results]

    results = asyncio.run(go())
    assert asked == ["write_file"] and results[0].startswith("not approved")
    assert not (tmp_path / "x.txt").exists()


def test_building_fails_clearly_for_a_missing_kb_web_search_or_mcp_client(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def build(data: dict[str, Any]) -> None:
        async with open_agent(AgentSpec.validated(data), gateway):
            pass

    with pytest.raises(AgentSpecError, match="knowledge base 'nope', which does not exist"):
        asyncio.run(build({"name": "k", "tools": [{"name": "kb_search", "kb": "nope"}]}))
    # the optional modules simulated absent
    monkeypatch.setitem(sys.modules, "hanlin.agents.tools.websearch", None)
    with pytest.raises(AgentSpecError, match="uses web_search, which is not available"):
        asyncio.run(build({"name": "w", "tools": ["web_search"]}))
    monkeypatch.setitem(sys.modules, "hanlin.agents.mcp", None)
    data = {"name": "m", "mcp_servers": {"t": {"command": "x"}}}
    with pytest.raises(AgentSpecError) as info:
        asyncio.run(build(data))
    assert "uses MCP servers (t), but the MCP client is not available" in str(info.value)
    assert info.value.hint is not None and "hanlin[mcp]" in info.value.hint


def test_an_mcp_server_named_but_not_configured_is_an_error(gateway: Gateway) -> None:
    async def build() -> None:
        async with open_agent(AgentSpec.validated({"name": "m", "mcp_servers": ["docs"]}), gateway):
            pass

    with pytest.raises(AgentSpecError, match="names MCP server 'docs', which is not in"):
        asyncio.run(build())


@pytest.mark.slow
def test_mcp_tools_from_an_inline_server_are_ordinary_tools(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    spec = AgentSpec.validated(
        {
            "name": "m",
            "model": MODEL,
            "mcp_servers": {"flaky": {"command": sys.executable, "args": [str(FLAKY_SERVER)]}},
        }
    )
    upstream.app.script(
        PATH, calls_stream(("flaky__echo", json.dumps({"text": "hello"}))), answer("Echoed.")
    )

    async def go() -> tuple[list[str], list[str]]:
        async with open_agent(spec, gateway) as agent:
            names = sorted(agent.tools)
            result = await agent.arun("Echo hello")
        return names, [r.content for r in result.tool_results]

    names, results = asyncio.run(go())
    assert "flaky__echo" in names
    assert results == ["echo: hello"]


def test_the_built_in_assistant_builds_with_its_tools(gateway: Gateway, hanlin_home: Path) -> None:
    async def go() -> tuple[list[str], bool]:
        async with open_agent("assistant", gateway, user="erin") as agent:
            assert isinstance(agent, Agent)
            return sorted(agent.tools), agent.approval.needs_approval(agent.tools["remember"])

    names, remember_asks = asyncio.run(go())
    assert names == [
        "calculator", "current_time", "http_get", "list_dir", "python", "read_file", "recall",
        "remember", "write_file",
    ]  # fmt: skip
    assert remember_asks is False  # saving to one's own memory does not ask
    assert (hanlin_home / "workspaces" / "assistant").is_dir()


def test_the_python_tools_isolation_is_a_spec_option_the_model_is_told(gateway: Gateway) -> None:
    data = {"name": "py", "model": "fake/m", "tools": [{"name": "python", "isolation": "hook"}]}

    async def go() -> str:
        async with open_agent(AgentSpec.validated(data), gateway) as agent:
            assert isinstance(agent, Agent)
            (tool,) = [t for t in agent.tools.values() if t.name == "python"]
            return tool.description

    description = asyncio.run(go())
    assert "not a security boundary" in description
    with pytest.raises(Exception, match="isolation"):
        AgentSpec.validated(data | {"tools": [{"name": "python", "isolation": "docker"}]})

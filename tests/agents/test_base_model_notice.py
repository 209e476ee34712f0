"""Base models in chat and agents: one library answer to "is this a base model?", a notice said
once wherever one is used for chat or an agent (``hanlin chat``, ``hanlin agent run``, the
``/v1/agents`` stream, ``/v1/models``), agents that force their tool call so a base model can
run them, and example agents that fail without a key by naming the key — before creating
anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hanlin.agents.events import FinalEvent, NoticeEvent, TextEvent, ToolResultEvent
from hanlin.agents.spec import AgentSpec, AgentSpecError, load_agent_spec, open_agent
from hanlin.config import load_settings
from hanlin.errors import NotFoundError
from hanlin.models.base import builtin_endpoints, provider_classes
from hanlin.models.base_models import base_model_notice, is_base_model
from hanlin.models.catalog import AliasStore
from hanlin.models.gateway import Gateway
from hanlin.server.app import create_app
from hanlin.testing.upstream import UpstreamServer
from tests.agents.test_loop import answer, calls_stream
from tests.models.test_cli_models import cli

PATH = "/v1/chat/completions"
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "agents"
BASE = "fake/base-1"  # a base model by the `rag.base_models` pattern of these tests
CHAT = "fake/chat-1"
TOML = (
    '[models]\ndefault = "{default}"\nretries = 0\n\n'
    '[models.endpoints.fake]\nbase_url = "{url}"\nmodels = ["base-1", "chat-1"]\n\n'
    '[rag]\nbase_models = ["local/gemma3-270m", "fake/base-*"]\n'
)


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as srv:
        yield srv


@pytest.fixture
def home(
    server: UpstreamServer, hanlin_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """HANLIN_HOME whose default model is the base model ``fake/base-1`` on the fake upstream,
    with the agent ``calc``; the current directory is an empty folder."""
    server.app.reset()
    toml = TOML.replace("{default}", BASE).replace("{url}", server.url)
    (hanlin_home / "hanlin.toml").write_text(toml, encoding="utf-8")
    agents = hanlin_home / "agents"
    agents.mkdir()
    (agents / "calc.yaml").write_text(
        "tools: [calculator]\nlimits: {max_steps: 3, max_seconds: 30}\n", "utf-8"
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("COLUMNS", "400")  # one notice, one line
    return hanlin_home


def notices(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("note:")]


# --- which models are base models -------------------------------------------------------------


def test_the_bundled_model_and_names_that_route_to_it_are_base_models(hanlin_home: Path) -> None:
    routes = {
        "offline": {"deployments": ["local/gemma3-270m", "deepseek/deepseek-chat"]},
        "online": {"deployments": ["deepseek/deepseek-chat", "local/gemma3-270m"]},
    }
    settings = load_settings(models={"routes": routes})
    AliasStore(hanlin_home / "aliases.json").save(
        {"tiny": load_settings(models={"routes": routes}).models.routes["offline"]}
    )
    assert is_base_model(settings, None)  # models.default is the bundled model
    assert is_base_model(settings, "local/gemma3-270m")
    assert is_base_model(settings, "offline") and is_base_model(settings, "tiny")
    # the first deployment decides: a fallback to the base model does not make one
    assert not is_base_model(settings, "online")
    assert not is_base_model(settings, "deepseek/deepseek-chat")
    assert not is_base_model(settings, "local/gemma3-270m", patterns=[])
    with pytest.raises(NotFoundError):
        is_base_model(settings, "nowhere/model")
    assert not is_base_model(settings, "nowhere/model", missing_ok=True)


def test_the_notice_names_the_model_and_how_to_get_a_chat_model(hanlin_home: Path) -> None:
    settings = load_settings()
    text = base_model_notice(settings, None)
    assert text is not None and text.startswith("local/gemma3-270m is a base model")
    for way in ("hanlin keys set deepseek", "Ollama", "vLLM", "models.default"):
        assert way in text
    assert base_model_notice(settings, "deepseek/deepseek-chat") is None
    assert base_model_notice(settings, "nowhere/model") is None  # the call reports that


# --- hanlin chat ------------------------------------------------------------------------------


def test_chat_with_a_base_model_says_so_once_on_stderr(
    home: Path, server: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.app.script(PATH, answer("I'm a user."), answer("Paris."))
    code, out, err = cli(capsys, "chat", "hi")
    assert code == 0, err
    assert out == "I'm a user.\n"  # stdout stays the answer alone
    [note] = notices(err)
    assert f"{BASE} is a base model" in note and "hanlin keys set deepseek" in note

    code, out, err = cli(capsys, "chat", "-m", CHAT, "capital of France?")
    assert code == 0, err
    assert out == "Paris.\n" and notices(err) == []


# --- agents -----------------------------------------------------------------------------------


def test_an_agent_on_a_base_model_announces_it_first_and_once(
    home: Path, server: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.app.script(PATH, answer("51"), answer("52"))
    code, out, err = cli(capsys, "agent", "run", "--agent", "calc", "what is 17*3?")
    assert code == 0, err
    assert out.strip() == "51"
    [note] = notices(err)
    assert f"{BASE} is a base model" in note and "examples/agents/clock.yaml" in note

    code, out, err = cli(capsys, "agent", "run", "--agent", "calc", "--json", "17*3?")
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["type"] == "notice" and events[0]["code"] == "base_model"
    assert events[0]["model"] == BASE
    assert [e["type"] for e in events].count("notice") == 1


def test_the_notice_is_said_once_per_agent_and_not_for_chat_models(
    home: Path, server: UpstreamServer
) -> None:
    server.app.script(PATH, answer("one"), answer("two"), answer("three"))
    gateway = Gateway(load_settings())

    async def runs() -> tuple[list[Any], list[Any], list[Any]]:
        async with open_agent("calc", gateway) as agent:
            first = (await agent.arun("a")).events
            second = (await agent.arun("b")).events
        spec = load_agent_spec("calc").model_copy(update={"model": CHAT})
        async with open_agent(spec, gateway) as agent:
            third = (await agent.arun("c")).events
        return first, second, third

    try:
        first, second, third = gateway.run_sync(runs())
    finally:
        gateway.close()
    assert isinstance(first[0], NoticeEvent) and first[0].model == BASE
    assert not any(isinstance(e, NoticeEvent) for e in second + third)


def test_a_forced_tool_call_whose_result_is_the_answer_needs_one_model_step(
    home: Path, server: UpstreamServer
) -> None:
    server.app.script(PATH, calls_stream(("calculator", '{"expression": "17 * 3"}')))
    spec = AgentSpec(
        name="forced",
        tools=["calculator"],  # type: ignore[list-item]
        first_tool_choice="calculator",
        answer_from="tool",
    )
    gateway = Gateway(load_settings())

    async def run() -> Any:
        async with open_agent(spec, gateway) as agent:
            return await agent.arun("what is 17 times 3?")

    try:
        result = gateway.run_sync(run())
    finally:
        gateway.close()
    assert result.stop_reason == "answer" and result.text == "51" and result.steps == 1
    # the model only filled in the arguments: no notice, one call, the tool forced
    assert not any(isinstance(e, NoticeEvent) for e in result.events)
    [body] = [b for p, _, b in server.app.requests if p == PATH]
    assert body["tool_choice"]["function"]["name"] == "calculator"
    assert [type(e) for e in result.events[-2:]] == [TextEvent, FinalEvent]
    assert result.messages[-1].text == "51"


def test_a_failed_forced_call_ends_the_run_with_its_error(
    home: Path, server: UpstreamServer
) -> None:
    server.app.script(PATH, calls_stream(("calculator", '{"expression": "17% * 2,340 = 2,340"}')))
    spec = AgentSpec(
        name="forced",
        tools=["calculator"],  # type: ignore[list-item]
        first_tool_choice="required",
        answer_from="tool",
    )
    gateway = Gateway(load_settings())

    async def run() -> Any:
        async with open_agent(spec, gateway) as agent:
            return await agent.arun("What is 17% of 2,340?")

    try:
        result = gateway.run_sync(run())
    finally:
        gateway.close()
    assert result.stop_reason == "error" and result.text == ""
    assert result.error.startswith("no answer: the tool call failed (calculator: cannot evaluate")
    assert [e.is_error for e in result.events if isinstance(e, ToolResultEvent)] == [True]


def test_forced_calls_are_checked_when_defined_and_built(home: Path) -> None:
    with pytest.raises(AgentSpecError) as planner:
        AgentSpec.validated(
            {"name": "p", "mode": "planner", "tools": ["calculator"], "answer_from": "tool"}
        )
    assert "apply to mode: tools, not planner" in str(planner.value)
    spec = AgentSpec(name="typo", tools=["calculator"], first_tool_choice="calculater")  # type: ignore[list-item]
    gateway = Gateway(load_settings())

    async def build() -> None:
        async with open_agent(spec, gateway):
            pass

    try:
        with pytest.raises(AgentSpecError) as typo:
            gateway.run_sync(build())
    finally:
        gateway.close()
    assert "first_tool_choice 'calculater' is not one of its tools" in typo.value.message
    assert "calculator" in (typo.value.hint or "")


def test_the_server_streams_the_notice_and_flags_base_models(
    home: Path, server: UpstreamServer
) -> None:
    server.app.script(PATH, answer("51"))
    settings = load_settings(server={"allowed_hosts": ["testserver"]})
    with TestClient(create_app(settings)) as client:
        with client.stream("POST", "/v1/agents/calc/runs", json={"input": "17*3?"}) as resp:
            assert resp.status_code == 200
            events = [
                json.loads(line[6:])
                for line in resp.iter_lines()
                if line.startswith("data: ") and line != "data: [DONE]"
            ]
        models = {m["id"]: m for m in client.get("/v1/models?all=true").json()["data"]}
        one = client.get("/v1/models/local/gemma3-270m").json()
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["run", "notice"] and kinds.count("notice") == 1
    assert events[1]["code"] == "base_model" and events[1]["model"] == BASE
    assert models[BASE]["hanlin"]["base_model"] is True
    assert models[CHAT]["hanlin"]["base_model"] is False
    assert models["deepseek/deepseek-chat"]["hanlin"]["base_model"] is False
    assert one["hanlin"]["base_model"] is True


# --- example agents without a key -------------------------------------------------------------

KEYED = [p for p in sorted(EXAMPLES.glob("*.yaml")) if p.stem != "clock"]


def test_every_agent_example_in_the_readme_and_docs_is_checked_here() -> None:
    named = set()
    for doc in (REPO / "README.md", REPO / "docs" / "agents.md"):
        named |= set(re.findall(r"examples/agents/([\w-]+)\.yaml", doc.read_text("utf-8")))
    assert named, "the README names example agents"
    assert named <= {p.stem for p in KEYED} | {"clock"}


@pytest.mark.parametrize("path", KEYED, ids=lambda p: p.stem)
def test_an_example_without_its_key_says_which_key_and_creates_nothing(
    path: Path,
    hanlin_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for endpoint in builtin_endpoints(provider_classes()).values():
        if endpoint.key_env:
            monkeypatch.delenv(endpoint.key_env, raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("COLUMNS", "400")
    spec = load_agent_spec(path)
    assert spec.model is not None
    provider = spec.model.split("/", 1)[0]
    variable = builtin_endpoints(provider_classes())[provider].key_env
    before = sorted(hanlin_home.rglob("*"))

    code, out, err = cli(capsys, "agent", "run", "--agent", str(path), "What is 17% of 2,340?")

    assert code == 1 and out == ""
    assert f"no API key for {provider}" in err
    assert f"hanlin keys set {provider}" in err and f"set {variable}" in err
    assert list(cwd.iterdir()) == []  # no workspace folder (./analysis, ./agent-workspace)
    assert sorted(hanlin_home.rglob("*")) == before  # no workspaces, memory or usage files

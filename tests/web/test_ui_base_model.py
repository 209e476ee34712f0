"""The web UI says when a base model is in use: under the chat's model picker while one is chosen
(in the page's language), and first in an agent run on one. Headless Chromium against the real
server, with the fake upstream as the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin.testing.upstream import UpstreamServer
from tests.agents.test_loop import answer

pytestmark = pytest.mark.slow


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def base_server(hanlin_home: Path, upstream: UpstreamServer, request: pytest.FixtureRequest) -> str:
    """A server whose ``fake/base-1`` is a base model and ``fake/chat-1`` is not."""
    (hanlin_home / "hanlin.toml").write_text(
        f'[models]\ndefault = "fake/base-1"\nretries = 0\n\n'
        f'[models.endpoints.fake]\nbase_url = "{upstream.url}"\nmodels = ["base-1", "chat-1"]\n\n'
        '[rag]\nbase_models = ["fake/base-*"]\n',
        encoding="utf-8",
    )
    (hanlin_home / "agents").mkdir()
    (hanlin_home / "agents" / "calc.yaml").write_text("tools: [calculator]\n", "utf-8")
    url: str = request.getfixturevalue("server_url")
    return url


def test_the_chat_and_agent_pages_say_when_a_base_model_is_used(
    page: Any,
    base_server: str,
    upstream: UpstreamServer,
    artifacts_dir: Path,
    console_errors: list[str],
) -> None:
    from playwright.sync_api import expect

    page.goto(base_server + "/")
    notice = page.get_by_test_id("model-notice")
    select = page.get_by_test_id("model-select")
    select.select_option("fake/base-1")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("fake/base-1 is a base model")
    expect(notice).to_contain_text("Ollama")
    page.screenshot(path=str(artifacts_dir / "base-model-chat.png"))
    select.select_option("fake/chat-1")
    expect(notice).to_be_hidden()
    select.select_option("fake/base-1")
    page.get_by_test_id("lang-toggle").click()
    expect(notice).to_contain_text("fake/base-1 是基础模型")
    page.get_by_test_id("lang-toggle").click()

    upstream.app.script("/v1/chat/completions", answer("I'm a user."))
    page.locator('[data-testid="agent-item"][data-name="calc"] a').click()
    page.get_by_test_id("agent-input").fill("What is 17% of 2,340?")
    page.get_by_test_id("agent-run").click()
    expect(page.get_by_test_id("agent-final")).to_be_visible()
    agent_notice = page.get_by_test_id("agent-notice")
    expect(agent_notice).to_have_count(1)
    expect(agent_notice).to_contain_text("fake/base-1 is a base model")
    expect(agent_notice).to_contain_text("examples/agents/clock.yaml")
    page.screenshot(path=str(artifacts_dir / "base-model-agent.png"))
    assert console_errors == []

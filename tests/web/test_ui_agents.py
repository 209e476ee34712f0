"""The agents page in headless Chromium against the real server: pick an agent in the sidebar,
give it a goal, watch the tool call and result stream in, approve a write, deny the next one,
and read the outcome — in English and Chinese. Screenshots land in ``test-artifacts/ui/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin.testing.upstream import UpstreamServer
from tests.agents.test_loop import answer, calls_stream

pytestmark = pytest.mark.slow
PATH = "/v1/chat/completions"


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def agent_server(
    hanlin_home: Path, upstream: UpstreamServer, tmp_path: Path, request: pytest.FixtureRequest
) -> str:
    """A server whose ``scribe`` agent writes files in a workspace, on the fake model."""
    (hanlin_home / "hanlin.toml").write_text(
        f'[models]\ndefault = "fake/any"\nretries = 0\n\n'
        f'[models.endpoints.fake]\nbase_url = "{upstream.url}"\n',
        encoding="utf-8",
    )
    agents = hanlin_home / "agents"
    agents.mkdir()
    (agents / "scribe.yaml").write_text(
        "description: Writes notes\n"
        f"tools: [calculator, {{name: files, workspace: {tmp_path / 'ws'}}}]\n"
        "limits: {max_steps: 4, max_seconds: 60}\n",
        "utf-8",
    )
    url: str = request.getfixturevalue("server_url")
    return url


def test_run_an_agent_and_approve_its_write(
    page: Any,
    agent_server: str,
    upstream: UpstreamServer,
    tmp_path: Path,
    artifacts_dir: Path,
    console_errors: list[str],
) -> None:
    from playwright.sync_api import expect

    write = json.dumps({"path": "note.txt", "content": "青岛灯塔"})
    upstream.app.script(
        PATH,
        calls_stream(("calculator", '{"expression": "6*7"}')),
        calls_stream(("write_file", write)),
        answer("Saved the note; 6*7 is 42."),
    )
    page.goto(agent_server + "/")
    item = page.locator('[data-testid="agent-item"][data-name="scribe"]')
    expect(item).to_be_visible()
    item.locator("a").click()
    expect(page.get_by_test_id("agent-view")).to_be_visible()
    expect(page.get_by_test_id("agent-title")).to_have_text("scribe")
    expect(page.get_by_test_id("agent-desc")).to_contain_text("calculator, files")

    page.get_by_test_id("agent-input").fill("Compute 6*7 and save a note")
    page.get_by_test_id("agent-run").click()
    expect(page.locator('[data-testid="agent-result"][data-tool="calculator"]')).to_contain_text(
        "42"
    )
    approval = page.get_by_test_id("agent-approval")
    expect(approval).to_contain_text("write_file")
    expect(approval).to_contain_text("青岛灯塔")
    page.screenshot(path=str(artifacts_dir / "20-agent-approval.png"))
    assert not (tmp_path / "ws" / "note.txt").exists()  # nothing happens before the answer
    approval.get_by_test_id("agent-approve").click()
    expect(approval.get_by_test_id("agent-decision")).to_have_text("Allowed")
    final = page.get_by_test_id("agent-final")
    expect(final).to_have_attribute("data-stop", "answer")
    expect(page.get_by_test_id("agent-text").last).to_have_text("Saved the note; 6*7 is 42.")
    assert (tmp_path / "ws" / "note.txt").read_text("utf-8") == "青岛灯塔"
    page.screenshot(path=str(artifacts_dir / "21-agent-done.png"))

    # A second run, in Chinese: the write is denied and the model is told so.
    page.get_by_test_id("lang-toggle").click()
    upstream.app.script(
        PATH, calls_stream(("write_file", write.replace("note", "other"))), answer("好的，未保存。")
    )
    page.get_by_test_id("agent-input").fill("再保存一份")
    page.get_by_test_id("agent-input").press("Enter")
    second = page.get_by_test_id("agent-approval").nth(1)
    expect(second).to_contain_text("允许 write_file")
    second.get_by_test_id("agent-deny").click()
    expect(second.get_by_test_id("agent-decision")).to_have_text("已拒绝")
    denied = page.locator('[data-testid="agent-result"][data-tool="write_file"]').last
    expect(denied).to_have_class("agent-result is-error")
    expect(page.get_by_test_id("agent-final").last).to_contain_text("完成")
    assert not (tmp_path / "ws" / "other.txt").exists()
    page.screenshot(path=str(artifacts_dir / "22-agent-denied-zh.png"))
    assert not console_errors, console_errors

"""``hanlin agent``: run, approvals (``--yes``, denied without a terminal), JSON events, ls, show,
and a real ``hanlin agent run`` subprocess against the fake upstream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hanlin.testing.upstream import UpstreamServer
from tests.agents.test_loop import answer, calls_stream
from tests.models.test_cli_models import cli

PATH = "/v1/chat/completions"
HANLIN = str(Path(sys.executable).with_name("hanlin"))


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as srv:
        yield srv


@pytest.fixture
def home(
    server: UpstreamServer, hanlin_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    server.app.reset()
    (hanlin_home / "hanlin.toml").write_text(
        f'[models]\ndefault = "fake/any"\nretries = 0\n\n'
        f'[models.endpoints.fake]\nbase_url = "{server.url}"\n',
        encoding="utf-8",
    )
    agents = hanlin_home / "agents"
    agents.mkdir()
    (agents / "calc.yaml").write_text(
        "description: adds\ntools: [calculator]\nlimits: {max_steps: 3, max_seconds: 30}\n",
        "utf-8",
    )
    (agents / "writer.yaml").write_text(
        f"tools: [{{name: files, workspace: {tmp_path / 'ws'}}}]\nlimits: {{max_steps: 3}}\n",
        "utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def test_run_streams_the_tool_steps_and_the_answer(
    home: Path, server: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.app.script(PATH, calls_stream(("calculator", '{"expression": "17*3"}')), answer("51"))
    code, out, err = cli(capsys, "agent", "run", "--agent", "calc", "what is 17*3?")
    assert code == 0, err
    assert out.strip() == "51"
    assert "→ calculator" in err and "← calculator 51" in err
    assert "answer · 2 steps" in err


def test_a_write_is_denied_without_a_terminal_and_allowed_with_yes(
    home: Path, server: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    args = json.dumps({"path": "a.txt", "content": "hi"})
    server.app.script(PATH, calls_stream(("write_file", args)), answer("No."))
    code, _, err = cli(capsys, "agent", "run", "-a", "writer", "save hi")
    assert code == 0
    assert "denied write_file" in err and "--yes" in err
    assert not (home / "ws" / "a.txt").exists()

    server.app.script(PATH, calls_stream(("write_file", args)), answer("Saved."))
    code, out, err = cli(capsys, "agent", "run", "-a", "writer", "--yes", "save hi")
    assert code == 0 and out.strip() == "Saved."
    assert (home / "ws" / "a.txt").read_text("utf-8") == "hi"


def test_json_prints_one_event_per_line(
    home: Path, server: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.app.script(PATH, calls_stream(("calculator", '{"expression": "2+2"}')), answer("4"))
    code, out, _ = cli(capsys, "agent", "run", "-a", "calc", "--json", "2+2")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events][-1] == "final"
    assert {"tool_call", "tool_result", "step", "text"} <= {e["type"] for e in events}
    assert events[-1]["text"] == "4" and events[-1]["usage"]["total_tokens"] > 0


def test_a_model_failure_exits_1_with_the_step(
    home: Path, server: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from hanlin.testing.upstream import Reply

    server.app.script(PATH, Reply(status=400, json={"error": {"message": "bad model"}}))
    code, _, err = cli(capsys, "agent", "run", "-a", "calc", "2+2")
    assert code == 1
    assert "agent step 1" in err and "bad model" in err


def test_ls_and_show(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "agent", "ls")
    assert code == 0 and "calc" in out and "assistant" in out and "calculator" in out
    code, out, _ = cli(capsys, "agent", "show", "calc")
    assert code == 0 and json.loads(out)["tools"][0]["name"] == "calculator"
    code, _, err = cli(capsys, "agent", "show", "nobody")
    assert code == 2 and "no agent named 'nobody'" in err and "calc" in err


@pytest.mark.slow
def test_a_real_agent_run_process(home: Path, server: UpstreamServer, hanlin_home: Path) -> None:
    server.app.script(PATH, calls_stream(("calculator", '{"expression": "6*7"}')), answer("42"))
    env = {**os.environ, "HANLIN_HOME": str(hanlin_home)}
    proc = subprocess.run(
        [HANLIN, "agent", "run", "-a", "calc", "6*7?"],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "42"


def test_web_search_keys_are_stored_and_listed_masked(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOCHA_API_KEY", raising=False)
    code, _, err = cli(capsys, "keys", "set", "bocha", "--value", "sk-bocha-secret-9876")
    assert code == 0 and "Bocha" in err
    code, out, _ = cli(capsys, "keys", "ls", "--json")
    rows = [r for r in json.loads(out) if r["provider"] == "bocha"]
    assert rows == [
        {
            "provider": "bocha",
            "source": "file",
            "variable": "BOCHA_API_KEY",
            "key": "…9876",
            "in_use": True,
        }
    ]
    assert "sk-bocha-secret" not in out + err

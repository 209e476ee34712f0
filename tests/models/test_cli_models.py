"""``hanlin chat``, ``hanlin models`` and ``hanlin keys`` as a user runs them.

In-process through :func:`hanlin.cli.main.main` for most cases, and as a real subprocess where
stdin, a terminal or incremental output matters; the model is the fake upstream over HTTP.
"""

from __future__ import annotations

import io
import json
import os
import pty
import select
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin.cli.main import main
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import Reply, UpstreamServer

CHAT = "/v1/chat/completions"
KEY = "sk-test-0123456789-SECRET-wxyz"
HANLIN = str(Path(sys.executable).with_name("hanlin"))


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as srv:
        yield srv


@pytest.fixture
def fake(
    server: UpstreamServer, hanlin_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> UpstreamServer:
    """The fake upstream as endpoint ``fake`` (the default model ``fake/any``, priced)."""
    server.app.reset()
    (hanlin_home / "hanlin.toml").write_text(
        f"""
[models]
default = "fake/any"
retries = 0

[models.endpoints.fake]
base_url = "{server.url}"

[models.prices."fake/any"]
input = 1.0
output = 2.0
""",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)  # no hanlin.toml from the working directory
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("DEEPSEEK_API_KEY", "DASHSCOPE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return server


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``hanlin ARGS`` in-process: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def bodies(server: UpstreamServer) -> list[Any]:
    return [body for path, _, body in server.app.requests if path == CHAT]


# --- chat ---------------------------------------------------------------------------------------


def test_chat_streams_the_answer_with_a_footer_on_stderr(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.app.script(CHAT, rec.openai_text_stream("openai", ["流式", "回答", " done"]))
    code, out, err = cli(capsys, "chat", "hi")
    assert code == 0, err
    assert out == "流式回答 done\n"  # plain text, nothing else on stdout
    assert "fake/any" in err and "19 in / 10 out tokens" in err and "$0.000039" in err
    assert bodies(fake)[-1]["stream"] is True


def test_chat_json_has_every_field_and_the_configured_price(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "chat", "--json", "hi")
    assert code == 0, err
    data = json.loads(out)
    assert data["text"] == rec.TEXT
    assert data["model"] == "fake/any" and data["served_by"] == "fake/any"
    assert data["tool_calls"] == [] and data["finish_reason"] == "stop"
    assert data["usage"] == {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "cached_tokens": 0,
        "total_tokens": 29,
    }
    # 19 tokens at $1/M in + 10 at $2/M out; CNY at the default 7.1 rate
    assert data["cost"]["usd"] == pytest.approx(39e-6)
    assert data["cost"]["cny"] == pytest.approx(39e-6 * 7.1)
    assert data["latency_ms"] > 0
    assert not bodies(fake)[-1].get("stream"), "--json must not stream"
    assert err == ""


def test_chat_json_reports_tool_calls_and_null_cost_without_a_price(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.app.script(CHAT, rec.openai_tool_call("openai"))
    code, out, _ = cli(capsys, "chat", "--json", "-m", "fake/unpriced", "weather?")
    assert code == 0
    data = json.loads(out)
    assert data["cost"] is None and data["finish_reason"] == "tool_calls"
    assert data["tool_calls"] == [
        {"id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "name": "get_weather", "arguments": rec.TOOL_ARGS}
    ]


def test_no_stream_prints_the_whole_answer(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "chat", "--no-stream", "hi")
    assert code == 0 and out == rec.TEXT + "\n" and "19 in / 10 out" in err
    assert not bodies(fake)[-1].get("stream")


def test_system_prompt_and_options_reach_the_upstream(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(
        capsys, "chat", "--system", "Answer in one word.", "-t", "0.2", "--max-tokens", "5", "hi"
    )
    assert code == 0, err
    body = bodies(fake)[-1]
    assert body["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "hi"},
    ]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 5


@pytest.mark.parametrize(
    ("args", "stdin", "sent"),
    [
        ((), "what is 2+2?\n", "what is 2+2?\n"),
        (("-",), "from a pipe", "from a pipe"),
        (("summarize this",), "piped context", "summarize this\n\npiped context"),
    ],
)
def test_the_prompt_comes_from_stdin(
    fake: UpstreamServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    stdin: str,
    sent: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, _, err = cli(capsys, "chat", "--json", *args)
    assert code == 0, err
    assert bodies(fake)[-1]["messages"] == [{"role": "user", "content": sent}]


def test_an_empty_prompt_is_refused(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))
    code, _, err = cli(capsys, "chat")
    assert code == 2 and "the prompt is empty" in err
    assert bodies(fake) == []


def test_unknown_option_and_model_exit_2_with_a_suggestion(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "chat", "--temprature", "1", "hi")
    assert code == 2 and "--temperature" in err
    code, _, err = cli(capsys, "chat", "-m", "deepseek/deepseek-chatt", "hi")
    assert code == 2 and "did you mean deepseek-chat" in err
    code, _, err = cli(capsys, "chat", "-m", "deepsek/deepseek-chat", "hi")
    assert code == 2 and "did you mean deepseek" in err
    code, _, err = cli(capsys, "chat", "-t", "7", "hi")
    assert code == 2 and "temperature" in err
    assert bodies(fake) == []


def test_a_missing_key_names_the_command_and_the_variable(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "chat", "-m", "deepseek/deepseek-chat", "hi")
    assert code != 0 and out == ""
    assert "hanlin keys set deepseek" in err and "DEEPSEEK_API_KEY" in err


def test_model_errors_surface_with_their_hint(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.app.script(CHAT, rec.openai_error(400, None, "bad request from upstream"))
    code, out, err = cli(capsys, "chat", "hi")
    assert code == 2 and out == ""
    assert "error:" in err and "bad request from upstream" in err


# --- keys ---------------------------------------------------------------------------------------


def test_keys_set_ls_rm_round_trip_never_prints_the_key(
    fake: UpstreamServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hanlin_home: Path,
) -> None:
    seen: list[str] = []

    def run(*args: str) -> tuple[int, str, str]:
        code, out, err = cli(capsys, *args)
        seen.extend([out, err])
        return code, out, err

    code, _, err = run("keys", "set", "deepseek", "--value", KEY)
    assert code == 0 and "…wxyz" in err
    key_file = hanlin_home / "keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert json.loads(key_file.read_text())["deepseek"] == KEY

    monkeypatch.setattr(sys, "stdin", io.StringIO("sk-qwen-from-a-pipe-1234\nnot this line\n"))
    assert run("keys", "set", "qwen")[0] == 0
    assert json.loads(key_file.read_text())["qwen"] == "sk-qwen-from-a-pipe-1234"

    code, out, _ = run("keys", "ls")
    assert code == 0 and "deepseek" in out and "…wxyz" in out and "…1234" in out
    rows = json.loads(run("keys", "ls", "--json")[1])
    assert {(r["provider"], r["source"], r["key"]) for r in rows} == {
        ("deepseek", "file", "…wxyz"),
        ("qwen", "file", "…1234"),
    }

    # the environment wins, and is listed (masked) too
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY.replace("wxyz", "envv"))
    rows = json.loads(run("keys", "ls", "--json")[1])
    by = {(r["provider"], r["source"]): r for r in rows}
    assert by[("deepseek", "env")]["in_use"] and not by[("deepseek", "file")]["in_use"]
    assert by[("deepseek", "env")]["key"] == "…envv"
    monkeypatch.delenv("DEEPSEEK_API_KEY")

    code, out, _ = run("models", "ls", "--provider", "deepseek", "--json")
    assert {r["key"] for r in json.loads(out)} == {"file"}

    assert run("keys", "path")[1].strip() == str(key_file)
    assert run("keys", "rm", "deepseek")[0] == 0
    assert "deepseek" not in json.loads(key_file.read_text())
    code, _, err = run("keys", "rm", "deepseek")
    assert code == 2 and "no stored key" in err

    for text in seen:
        assert KEY not in text and "sk-qwen-from-a-pipe-1234" not in text


def test_keys_set_unknown_provider_suggests_a_name(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str], hanlin_home: Path
) -> None:
    code, out, err = cli(capsys, "keys", "set", "deepsek", "--value", KEY)
    assert code == 2 and "did you mean deepseek" in err
    assert KEY not in out + err
    assert not (hanlin_home / "keys.json").exists()


def test_a_stored_key_is_sent_and_masked_when_the_upstream_echoes_it(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "keys", "set", "fake", "--value", KEY)[0] == 0
    code, out, err = cli(capsys, "chat", "--json", "hi")
    assert code == 0 and KEY not in out + err
    assert fake.app.requests[-1][1]["authorization"] == f"Bearer {KEY}"

    # a provider's error body that repeats the key must not put it on the screen
    echo = rec.openai_error(401, "invalid_api_key", f"Incorrect API key provided: {KEY}.")
    for args in (("chat", "hi"), ("chat", "--json", "hi")):
        fake.app.script(CHAT, echo)
        code, out, err = cli(capsys, *args)
        assert code != 0 and "Incorrect API key provided: ***" in err
        assert KEY not in out + err


# --- models and aliases -------------------------------------------------------------------------


def test_models_ls_lists_the_presets_and_filters_by_kind(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "models", "ls", "--json")
    assert code == 0
    rows = json.loads(out)
    names = {r["name"] for r in rows}
    endpoints = {r["endpoint"] for r in rows}
    assert {"deepseek", "qwen", "zhipu", "moonshot", "openai", "siliconflow"} <= endpoints
    assert {"deepseek/deepseek-chat", "qwen/qwen-plus", "fake/*"} <= names
    chat = next(r for r in rows if r["name"] == "deepseek/deepseek-chat")
    assert chat["kind"] == "chat" and chat["context"] == 128_000 and chat["key"] == "missing"
    assert chat["price"]["currency"] == "CNY" and chat["price"]["input"] > 0

    code, out, _ = cli(capsys, "models", "ls", "--kind", "embedding", "--json")
    embeddings = json.loads(out)
    assert embeddings and {r["kind"] for r in embeddings} == {"embedding"}
    assert "qwen/text-embedding-v4" in {r["name"] for r in embeddings}

    code, out, _ = cli(capsys, "models", "ls", "--kind", "rerank")
    assert code == 0 and "siliconflow/BAAI/bge-reranker-v2-m3" in out
    assert "deepseek-chat" not in out

    code, out, _ = cli(capsys, "models", "ls", "--provider", "deepseek")
    assert code == 0 and "deepseek/deepseek-chat" in out and "qwen" not in out
    assert "2 / 3 / 0.2 CNY" in out and "✗ missing" in out

    code, _, err = cli(capsys, "models", "ls", "--kind", "vision")
    assert code == 2
    code, _, err = cli(capsys, "models", "ls", "--provider", "deepsek")
    assert code == 2 and "did you mean deepseek" in err


def test_models_show_a_model_and_a_provider(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "models", "show", "deepseek/deepseek-chat")
    assert code == 0
    for text in ("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "128,000", "CNY", "tools"):
        assert text in out
    data = json.loads(cli(capsys, "models", "show", "fake/any", "--json")[1])
    assert data["base_url"] == fake.url and data["price"]["input"] == 1.0
    code, out, _ = cli(capsys, "models", "show", "qwen")
    assert code == 0 and "qwen/qwen-plus" in out and "DASHSCOPE_API_KEY" in out
    code, _, err = cli(capsys, "models", "show", "deepsek")
    assert code == 2 and "did you mean deepseek" in err


def test_alias_create_show_use_and_remove(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str], hanlin_home: Path
) -> None:
    code, _, err = cli(capsys, "models", "alias", "fast", "fake/any")
    assert code == 0 and "fast" in err
    assert json.loads((hanlin_home / "aliases.json").read_text())["fast"]["deployments"] == [
        "fake/any"
    ]

    listed = json.loads(cli(capsys, "models", "ls", "--aliases", "--json")[1])
    assert listed == [
        {"name": "fast", "targets": ["fake/any"], "strategy": "fallback", "source": "alias"}
    ]
    shown = json.loads(cli(capsys, "models", "show", "fast", "--json")[1])
    assert shown["strategy"] == "fallback" and shown["targets"][0]["name"] == "fake/any"
    code, out, _ = cli(capsys, "models", "show", "fast")
    assert code == 0 and "fake/any" in out and "fallback" in out

    code, out, _ = cli(capsys, "chat", "-m", "fast", "--json", "hi")
    data = json.loads(out)
    assert data["model"] == "fast" and data["served_by"] == "fake/any"
    assert data["cost"]["usd"] == pytest.approx(39e-6)
    assert bodies(fake)[-1]["model"] == "any"

    assert cli(capsys, "models", "unalias", "fast")[0] == 0
    code, _, err = cli(capsys, "chat", "-m", "fast", "hi")
    assert code == 2
    code, _, err = cli(capsys, "models", "unalias", "fast")
    assert code == 2 and "no alias" in err


def test_alias_refuses_bad_names_and_targets(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str], hanlin_home: Path
) -> None:
    code, _, err = cli(capsys, "models", "alias", "deepseek/deepseek-chat", "fake/any")
    assert code == 2 and "shadow" in err
    code, _, err = cli(capsys, "models", "alias", "smart", "fake/any", "deepseek/deepseek-chatt")
    assert code == 2 and "did you mean deepseek-chat" in err
    code, _, err = cli(capsys, "models", "alias", "smart", "nosuch/model")
    assert code == 2 and "nosuch" in err
    code, _, err = cli(capsys, "models", "alias", "x", "fake/any", "--strategy", "random")
    assert code == 2
    assert not (hanlin_home / "aliases.json").exists()

    assert cli(capsys, "models", "alias", "fast", "fake/any")[0] == 0
    code, _, err = cli(capsys, "models", "alias", "faster", "fast")
    assert code == 2 and "fake/any" in err  # points at the alias's own targets


def test_a_two_target_alias_answers_from_the_second_when_the_first_fails(
    fake: UpstreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "models", "alias", "chain", "fake/first", "fake/second")
    assert code == 0 and "fake/first → fake/second" in err
    shown = json.loads(cli(capsys, "models", "show", "chain", "--json")[1])
    assert [t["name"] for t in shown["targets"]] == ["fake/first", "fake/second"]

    down = Reply(status=500, json={"error": {"message": "internal error"}})
    fake.app.script(CHAT, down)
    code, out, err = cli(capsys, "chat", "-m", "chain", "--json", "hi")
    assert code == 0, err
    assert json.loads(out)["served_by"] == "fake/second"
    assert [b["model"] for b in bodies(fake)] == ["first", "second"]

    fake.app.reset()
    fake.app.script(CHAT, down)  # streaming fails over too, before the first token
    code, out, err = cli(capsys, "chat", "-m", "chain", "hi")
    assert code == 0 and out == rec.TEXT + "\n"
    assert "chain → fake/second" in err
    assert [b["model"] for b in bodies(fake)] == ["first", "second"]


# --- the real command in a subprocess: pipes, terminals, incremental output ---------------------


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return {**env, "HANLIN_HOME": str(home), "COLUMNS": "200", **extra}


@pytest.mark.timeout(120)
def test_piped_stdin_is_context_and_text_arrives_as_it_streams(
    fake: UpstreamServer, hanlin_home: Path, tmp_path: Path
) -> None:
    pieces = ["one ", "two ", "three ", "four ", "five"]
    slow = rec.openai_text_stream("openai", pieces)
    slow.chunk_delay = 0.25
    fake.app.script(CHAT, slow)
    proc = subprocess.Popen(
        [HANLIN, "chat", "translate this"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(hanlin_home),
        cwd=tmp_path,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write("第一行\n".encode())
    proc.stdin.close()
    first = os.read(proc.stdout.fileno(), 1024)
    first_at = time.monotonic()
    rest = proc.stdout.read()
    done_at = time.monotonic()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 0, err
    assert (first + rest).decode() == "".join(pieces) + "\n"
    assert first.decode().startswith("one") and len(first) < len(first + rest)
    assert done_at - first_at > 0.4, "the first words must be written before the stream ends"
    assert b"fake/any" in err
    assert bodies(fake)[-1]["messages"][0]["content"] == "translate this\n\n第一行\n"


@pytest.mark.timeout(120)
def test_no_prompt_on_a_terminal_is_a_clear_error(hanlin_home: Path, tmp_path: Path) -> None:
    master, slave = pty.openpty()
    try:
        r = subprocess.run(
            [HANLIN, "chat"],
            stdin=slave,
            capture_output=True,
            text=True,
            env=_env(hanlin_home),
            cwd=tmp_path,
            timeout=60,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 2
    assert "no prompt given" in r.stderr and "hanlin chat" in r.stderr


@pytest.mark.timeout(120)
def test_keys_set_prompts_with_hidden_input_on_a_terminal(
    hanlin_home: Path, tmp_path: Path
) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [HANLIN, "keys", "set", "deepseek"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=_env(hanlin_home),
        cwd=tmp_path,
        # no controlling terminal: getpass turns echo off on the pty it reads (stdin) instead
        # of opening /dev/tty, which would be the terminal running the tests
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        # click writes the text, then getpass turns echo off and writes the final ": " — type
        # only after that, or the key is echoed (and flushed away by getpass's TCSAFLUSH)
        while b"API key for deepseek: " not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 1024)
        os.write(master, KEY.encode() + b"\n")
        proc.wait(timeout=30)
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, seen
    assert KEY.encode() not in seen, "the key was echoed"
    assert json.loads((hanlin_home / "keys.json").read_text())["deepseek"] == KEY

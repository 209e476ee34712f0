"""``hanlin traces`` as a user runs it: commands made in other processes (`kb ask`, `chat`)
leave traces that `ls` lists, `show` draws as a tree, `rate` marks, and `export` writes as span
lines or as chat data for fine-tuning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hanlin.testing.upstream import UpstreamServer


def hanlin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hanlin", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
        timeout=300,
    )


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


def test_traces_from_other_commands_listed_shown_rated_exported(
    hanlin_home: Path, tmp_path: Path, upstream: UpstreamServer
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text("# Tea\n\nOolong tea is grown in Fujian and Taiwan.\n", "utf-8")
    assert hanlin("kb", "create", "docs").returncode == 0
    assert hanlin("kb", "add", "docs", str(docs)).returncode == 0
    r = hanlin("kb", "ask", "docs", "Where is oolong tea grown?")
    assert r.returncode == 0, r.stderr
    (hanlin_home / "hanlin.toml").write_text(
        f'[models.endpoints.fake]\nbase_url = "{upstream.url}"\n', "utf-8"
    )
    r = hanlin("chat", "-m", "fake/gpt-test", "Say hello")
    assert r.returncode == 0, r.stderr

    r = hanlin("traces", "ls", "--json")
    assert r.returncode == 0, r.stderr
    traces = json.loads(r.stdout)
    names = [t["name"] for t in traces]
    assert names[0] == "chat fake/gpt-test" and "answer docs" in names
    answer = next(t for t in traces if t["name"] == "answer docs")
    assert answer["kb"] == "docs" and answer["spans"] >= 2

    r = hanlin("traces", "show", answer["trace_id"][:10])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    root = next(i for i, line in enumerate(lines) if "answer docs" in line)
    child = next(i for i, line in enumerate(lines) if "search docs" in line)
    assert child > root and lines[child].index("search") > lines[root].index("answer")
    assert "Where is oolong tea grown?" in r.stdout

    r = hanlin("traces", "rate", answer["trace_id"][:10], "up", "--comment", "right")
    assert r.returncode == 0, r.stderr
    rated = json.loads(hanlin("traces", "ls", "--rated", "up", "--json").stdout)
    assert [(t["trace_id"], t["comment"]) for t in rated] == [(answer["trace_id"], "right")]
    assert json.loads(hanlin("traces", "ls", "--kb", "nope", "--json").stdout) == []

    out = tmp_path / "chat.jsonl"
    r = hanlin("traces", "export", "--model", "fake/gpt-test", "--format", "tune", "-o", str(out))
    assert r.returncode == 0, r.stderr
    (row,) = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert row["messages"][0]["content"] == "Say hello" and row["messages"][1]["content"]

    r = hanlin("traces", "export")
    spans = [json.loads(line) for line in r.stdout.splitlines()]
    assert {s["trace_id"] for s in spans} == {t["trace_id"] for t in traces}

    bad = hanlin("traces", "show", "zzzz")
    assert bad.returncode != 0 and "trace id" in bad.stderr
    assert "since" in hanlin("traces", "ls", "--since", "yesterday").stderr

"""``hanlin prompt`` as a user runs it, each command its own process: create a version from a
file with typed variables, see it listed and shown, move a label and see the move in the
history, diff two versions, render with values — and clear errors with exit code 2 for a bad
value, an unknown variable, a missing prompt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FILE = "Greet {name} in a {tone} tone; list {items}.\n"


def hanlin(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hanlin", "prompt", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )


def ok(*args: str, stdin: str | None = None) -> str:
    done = hanlin(*args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_create_label_diff_render_round_trip(hanlin_home: Path, tmp_path: Path) -> None:
    template = tmp_path / "greet.txt"
    template.write_text(FILE, "utf-8")
    made = ok(
        "create", "greet", "--file", str(template), "--var", "tone:str=friendly",
        "--var", "items:list", "-m", "first cut", "--temperature", "0.2",
    )  # fmt: skip
    assert made.strip() == "created greet@1"
    again = ok("create", "greet", "-f", str(template), "--var", "tone:str=friendly",
               "--var", "items:list", "--temperature", "0.2")  # fmt: skip
    assert "identical to greet@1; nothing created" in again
    shorter = ok("create", "greet", "-f", "-", "-m", "shorter", stdin="Hi {name}!\n")
    assert shorter.strip() == "created greet@2"

    listed = json.loads(ok("ls", "--json"))
    greet = next(p for p in listed if p["name"] == "greet")
    assert greet["latest"] == 2 and greet["labels"] == {"production": 1}
    assert {"rag.answer.en", "agent.assistant"} <= {p["name"] for p in listed}

    shown = json.loads(ok("show", "greet", "--json"))  # NAME alone: its production version
    assert shown["version"] == 1 and shown["config"] == {
        "model": None,
        "temperature": 0.2,
        "max_tokens": None,
    }
    assert [(v["name"], v["type"], v["required"]) for v in shown["variables"]] == [
        ("name", "str", True),
        ("tone", "str", False),
        ("items", "list", True),
    ]
    assert ok("label", "greet", "production", "2").strip() == "greet:production → 2 (was 1)"
    ok("label", "greet", "staging", "1")
    history = json.loads(ok("show", "greet:staging", "--json"))["label_history"]
    assert [(m["label"], m["version"], m["previous"], m["actor"]) for m in history] == [
        ("production", 1, None, "local"),
        ("production", 2, 1, "local"),
        ("staging", 1, None, "local"),
    ]
    text = ok("show", "greet")
    assert text.startswith("greet@2  (production)") and "Hi {name}!" in text
    assert "staging → 1" in text

    diff = ok("diff", "greet", "1", "2")
    assert "-Greet {name} in a {tone} tone; list {items}." in diff and "+Hi {name}!" in diff
    assert '-tone: str, optional, default "friendly"' in diff and "-temperature: 0.2" in diff

    assert ok("render", "greet", "--var", "name=Ada").strip() == "Hi Ada!"
    rendered = ok("render", "greet@1", "--var", "name=Ada", "--var", "items=tea,cake")
    assert rendered == "Greet Ada in a friendly tone; list tea\ncake.\n"
    as_json = json.loads(ok("render", "greet:staging", "--var", "name=B", "--var",
                            'items=["x"]', "--json"))  # fmt: skip
    assert as_json == {"name": "greet", "version": 1, "text": "Greet B in a friendly tone; list x."}


def test_errors_name_the_problem_and_exit_2(hanlin_home: Path, tmp_path: Path) -> None:
    template = tmp_path / "t.txt"
    template.write_text("{count} cups\n", "utf-8")
    ok("create", "cups", "-f", str(template), "--var", "count:int")
    bad = hanlin("render", "cups", "--var", "count=three")
    assert (
        bad.returncode == 2 and "cannot read 'three' as int for the variable 'count'" in bad.stderr
    )
    unknown = hanlin("render", "cups", "--var", "count=2", "--var", "size=big")
    assert unknown.returncode == 2 and "has no variable 'size'" in unknown.stderr
    missing = hanlin("render", "cups")
    assert missing.returncode == 2 and "needs the variable 'count' (int)" in missing.stderr
    absent = hanlin("show", "cupz")
    assert absent.returncode == 2 and "did you mean 'cups'?" in absent.stderr
    typo = hanlin("create", "cups", "-f", str(template), "--var", "count:integer")
    assert typo.returncode == 2 and "--var name:type" in typo.stderr
    builtin = hanlin("label", "rag.answer.en", "production", "9")
    assert builtin.returncode == 2 and "no version 9" in builtin.stderr

"""The ``hanlin kb`` commands as a user types them (the real entry point, in a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def hanlin(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hanlin", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, "COLUMNS": "250"},
        timeout=300,
    )


def test_cli_round_trip(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text("# 茶\n\n乌龙茶是半发酵茶，主要产于福建和台湾。\n", "utf-8")
    (docs / "bikes.txt").write_text("A derailleur moves the chain between sprockets.\n")
    (docs / "bad.pdf").write_bytes(b"not a pdf at all")

    assert hanlin("kb", "create", "cli").returncode == 0
    r = hanlin("kb", "add", "cli", str(docs))
    assert r.returncode == 1, "a skipped file must make `kb add` fail"
    assert "bad.pdf" in r.stderr and "2 documents added" in r.stderr

    r = hanlin("kb", "search", "cli", "乌龙茶产地", "--json", "-k", "2")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    assert hits[0]["source"].endswith("tea.md") and "福建" in hits[0]["text"]
    assert {"dense", "keyword"} <= set(hits[0]["scores"])

    r = hanlin("kb", "search", "cli", "chain", "--mode", "keyword", "--filter", "format=txt")
    assert r.returncode == 0 and "derailleur" in r.stdout

    r = hanlin("kb", "show", "cli", "--json")
    info = json.loads(r.stdout)
    assert info["documents"] == 2 and info["embedding_model"] == "fast-use"
    assert [Path(f["path"]).name for f in info["failures"]] == ["bad.pdf"]

    r = hanlin("kb", "docs", "cli", "--json")
    keys = [d["doc"] for d in json.loads(r.stdout)]
    assert len(keys) == 2
    tea = next(k for k in keys if k.endswith("tea.md"))
    assert hanlin("kb", "delete-doc", "cli", tea).returncode == 0
    assert hanlin("kb", "delete-doc", "cli", tea).returncode == 2
    assert "乌龙" not in hanlin("kb", "search", "cli", "乌龙茶", "--json").stdout

    (docs / "bad.pdf").unlink()
    assert hanlin("kb", "sync", "cli").returncode == 0

    r = hanlin("kb", "search", "cli", stdin="derailleur\n\n")  # interactive prompt
    assert r.returncode == 0 and "derailleur" in r.stdout

    assert "cli" in hanlin("kb", "ls").stdout
    assert hanlin("kb", "rm", "cli", "--yes").returncode == 0
    r = hanlin("kb", "show", "cli")
    assert r.returncode == 2 and "hanlin kb create cli" in r.stderr


def test_cli_bad_usage_is_explained() -> None:
    r = hanlin("kb", "search", "missing", "x")
    assert r.returncode == 2 and "no knowledge base named 'missing'" in r.stderr
    hanlin("kb", "create", "f")
    r = hanlin("kb", "search", "f", "x", "--filter", "???")
    assert r.returncode == 2 and "key=value" in r.stderr

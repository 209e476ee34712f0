"""The ingest pipeline's queue: groups embedded in worker processes while later files are
parsed, written in order; the same chunk text is embedded once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hanlin import KnowledgeBase
from hanlin.config import load_settings
from hanlin.knowledge import ingest

TOPICS = ["tomato", "violin", "glacier", "bitcoin", "falcon", "pottery", "volcano", "sonnet"]


def _write_corpus(root: Path, n: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        zh = f"中文段落：关于第{i}号文件的说明。" if i % 3 == 0 else ""
        (root / f"doc{i:03d}.md").write_text(
            f"# Note {i} on {topic}\n\nThis note number {i} is about the {topic}. {zh}\n", "utf-8"
        )


def test_identical_chunks_are_embedded_once_and_both_searchable(tmp_path: Path) -> None:
    text = "# Shared\n\nThe quarterly review of the lighthouse keeper's logbook.\n"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(text, "utf-8")
    (tmp_path / "docs" / "b.md").write_text(text, "utf-8")
    with KnowledgeBase.create("dup") as kb:
        report = kb.add(tmp_path / "docs")
        assert report.chunks_written == 2 and report.chunks_embedded == 1
        hits = kb.search("lighthouse keeper logbook", k=5, mode="dense")
        assert {Path(h.chunk.source).name for h in hits} == {"a.md", "b.md"}
        assert hits[0].score == pytest.approx(hits[1].score)


@pytest.mark.slow
def test_many_groups_through_worker_processes_match_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_corpus(tmp_path / "docs", 300)
    monkeypatch.setattr(ingest, "GROUP_CHUNKS", 40)  # several groups in flight at once
    results = {}
    for workers in (2, 1):
        settings = load_settings(knowledge={"embed_workers": workers})
        with KnowledgeBase.create(f"w{workers}", settings=settings) as kb:
            report = kb.add(tmp_path / "docs")
            assert report.ok and report.chunks_written == 300 == report.chunks_embedded
            hits = kb.search("note 117 about the sonnet", k=3, mode="hybrid")
            assert Path(hits[0].chunk.source).name == "doc117.md"
            dense = kb.search("glacier", k=300, mode="dense")
            results[workers] = {Path(h.chunk.source).name: h.score for h in dense}
            assert kb.sync().files_unchanged == 300
    assert results[2].keys() == results[1].keys() and len(results[2]) == 300
    a = np.array([results[2][k] for k in sorted(results[2])])
    b = np.array([results[1][k] for k in sorted(results[1])])
    assert np.allclose(a, b, atol=1e-5)  # same vectors, stored against the right chunks


def test_chunk_context_has_the_title_unless_it_is_only_an_id() -> None:
    from hanlin.knowledge.ingest import context_text

    body = "The river rises in the Black Forest."
    assert context_text("The Danube", ["Course"], body) == f"The Danube\nCourse\n{body}"
    assert context_text("多瑙河", [], body) == f"多瑙河\n{body}"
    assert context_text("The Danube", [], "The Danube rises.") == "The Danube rises."  # no repeat
    for id_like in ("6364-2", "20240101", "001_002", ""):  # file stems that say nothing
        assert context_text(id_like, [], body) == body

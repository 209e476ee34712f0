"""The knowledge base as a user drives it from Python: add, search, sync, failures, models."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hanlin import KnowledgeBase
from hanlin.errors import (
    AlreadyExistsError,
    EmbeddingModelMismatch,
    InvalidInputError,
    NotFoundError,
)

ZH_DOC = """# 向量数据库

向量数据库使用近似最近邻索引。常见的算法是 HNSW。

## 中文分词

BM25 检索在中文场景下依赖结巴分词。没有分词，整句话会被当成一个词。
"""
EN_DOC = """# Gardening

Tomatoes need full sun and regular watering. Prune the suckers weekly.

## Soil

Loamy soil with compost gives the best harvest of tomatoes.
"""
FIN_DOC = "Quarterly revenue grew 12 percent, driven by cloud subscriptions and services.\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "vector.md").write_text(ZH_DOC, "utf-8")
    (root / "sub" / "garden.md").write_text(EN_DOC, "utf-8")
    (root / "finance.txt").write_text(FIN_DOC, "utf-8")
    (root / "notes.xyz").write_text("unsupported type inside a folder is ignored", "utf-8")
    return root


@pytest.fixture
def kb() -> Iterator[KnowledgeBase]:
    with KnowledgeBase.create("t") as k:
        yield k


def test_add_folder_and_search_both_languages(kb: KnowledgeBase, corpus: Path) -> None:
    report = kb.add(corpus)
    assert report.ok and report.documents_added == 3 and report.ignored == 1
    for mode in ("hybrid", "keyword", "dense"):
        hits = kb.search("结巴分词", k=3, mode=mode)  # type: ignore[arg-type]
        assert hits, mode
        if mode != "dense":
            assert hits[0].chunk.source.endswith("vector.md")
    top = kb.search("how much sun do tomatoes need", k=1)[0]
    assert top.chunk.source.endswith("garden.md")
    assert set(top.scores) == {"dense", "keyword"} and set(top.ranks) >= {"keyword"}
    # the citation points at the exact place in the original text
    hit = kb.search("中文分词 BM25", k=1, mode="keyword")[0]
    assert hit.chunk.heading_path[-1] == "中文分词"
    text = (corpus / "vector.md").read_text("utf-8")
    assert "结巴分词" in hit.chunk.text
    assert hit.chunk.text.strip() in text


def test_re_adding_is_idempotent_and_sync_tracks_changes(kb: KnowledgeBase, corpus: Path) -> None:
    kb.add(corpus)
    chunks = kb.store.stats().chunks
    again = kb.add(corpus)
    assert again.files_unchanged == 3 and again.documents_added == 0
    assert kb.store.stats().chunks == chunks

    (corpus / "finance.txt").write_text(FIN_DOC + "\nOperating margin reached 31 percent.\n")
    (corpus / "sub" / "garden.md").unlink()
    (corpus / "new.md").write_text("# Coffee\n\nArabica beans grow at high altitude.\n")
    report = kb.sync()
    assert (report.documents_updated, report.documents_added, report.documents_deleted) == (1, 1, 1)
    assert kb.search("operating margin", k=1, mode="keyword")[0].chunk.source.endswith(
        "finance.txt"
    )
    assert not kb.search("tomatoes", k=5, mode="keyword")
    assert kb.search("arabica", k=1, mode="keyword")[0].chunk.title == "Coffee"
    assert kb.sync().files_unchanged == 3  # nothing changed: nothing done


def test_bad_files_are_reported_and_skipped(kb: KnowledgeBase, corpus: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf \x00\x01\x02")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 64)
    report = kb.add(corpus)
    assert not report.ok
    skipped = {Path(s.path).name: s for s in report.skipped}
    assert set(skipped) == {"broken.pdf", "empty.txt", "binary.txt"}
    assert all(s.reason and s.hint for s in skipped.values())
    assert report.documents_added == 3  # the good ones are in
    failures = {Path(f.path).name for f in kb.info().failures}
    assert failures == set(skipped)
    # fixing a file and syncing clears its failure
    (corpus / "empty.txt").write_text("now it has words about sailing boats")
    kb.sync()
    assert "empty.txt" not in {Path(f.path).name for f in kb.info().failures}
    assert kb.search("sailing boats", k=1, mode="keyword")[0].chunk.source.endswith("empty.txt")


def test_records_with_metadata_filters(kb: KnowledgeBase, tmp_path: Path) -> None:
    from hanlin.knowledge.loaders import LoaderOptions

    data = tmp_path / "items.jsonl"
    rows = [
        {"id": "a", "body": "solar panels on the roof", "year": 2019, "lang": "en"},
        {"id": "b", "body": "solar farms in the desert", "year": 2023, "lang": "en"},
        {"id": "c", "body": "太阳能 光伏 发电", "year": 2024, "lang": "zh"},
    ]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    opts = LoaderOptions(text_fields=["body"], metadata_fields=["year", "lang"], id_field="id")
    assert kb.add(data, loader_options=opts).documents_added == 3
    hits = kb.search("solar", k=5, filters={"year": {"gte": 2020}})
    assert [h.chunk.metadata["year"] for h in hits] == [2023, 2024] or {
        h.chunk.doc_key.rsplit("#", 1)[1] for h in hits
    } == {"b", "c"}
    assert all(h.chunk.metadata["year"] >= 2020 for h in hits)
    only_zh = kb.search("太阳能", k=5, filters={"lang": "zh"}, mode="keyword")
    assert [h.chunk.doc_key.rsplit("#", 1)[1] for h in only_zh] == ["c"]


def test_embedding_model_change_forces_reembed(kb: KnowledgeBase, corpus: Path) -> None:
    kb.add(corpus)
    kb.store.set_meta("embedding_space", "fast-use@some-older-version")
    kb.close()
    with KnowledgeBase("t") as stale:
        with pytest.raises(EmbeddingModelMismatch, match="reembed"):
            stale.search("tomatoes", mode="dense")
        assert stale.search("tomatoes", mode="keyword")  # keyword search still works
        assert stale.reembed() == stale.store.stats().chunks
        assert stale.search("tomato harvest", k=1, mode="dense")


def test_names_and_missing_things_give_actionable_errors(kb: KnowledgeBase) -> None:
    with pytest.raises(AlreadyExistsError, match="kb rm t"):
        KnowledgeBase.create("t")
    with pytest.raises(NotFoundError, match="hanlin kb create nope"):
        KnowledgeBase("nope")
    with pytest.raises(InvalidInputError):
        KnowledgeBase.create("../escape")
    with pytest.raises(InvalidInputError, match="mode"):
        kb.search("x", mode="fuzzy")  # type: ignore[arg-type]
    report = kb.add("/definitely/not/here")
    assert not report.ok and "no such file" in report.skipped[0].reason
    assert KnowledgeBase.names() == ["t"]


@pytest.mark.embedded_only
def test_store_stays_consistent_sqlite_integrity(kb: KnowledgeBase, corpus: Path) -> None:
    kb.add(corpus)
    con = sqlite3.connect(kb.path / "kb.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    orphans = con.execute(
        "SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)"
    ).fetchone()[0]
    assert orphans == 0


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (
            b"<html><head><title>Tea</title></head><body><article><h1>Tea</h1>"
            b"<p>Oolong tea is partially oxidised, between green and black tea.</p>"
            b"<p>It is grown in Fujian and Taiwan.</p></article></body></html>"
        )
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_add_url_from_local_server(kb: KnowledgeBase) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tea.html"
        refused = kb.add(url)  # the SSRF guard refuses loopback unless it is allowed
        assert not refused.ok and "loopback" in refused.skipped[0].reason
        kb.settings.knowledge.allow_private_urls = True
        report = kb.add(url)
        assert report.ok and report.documents_added == 1
        hit = kb.search("oolong oxidised", k=1)[0]
        assert hit.chunk.source == url and hit.chunk.title == "Tea"
        assert kb.sync().files_unchanged == 1
    finally:
        server.shutdown()


def test_analyzer_change_retokenizes_stored_chunks(kb: KnowledgeBase, corpus: Path) -> None:
    kb.add(corpus)
    ids = list(kb.store.iter_chunk_ids())
    kb.store.set_tokens(ids, ["stale"] * len(ids))  # what an older analyzer left behind
    kb.store.set_meta("analyzer", "hanlin-analyzer/0;old")
    assert not kb.search("结巴分词", mode="keyword")
    kb.close()
    with KnowledgeBase("t") as fresh:
        hits = fresh.search("结巴分词", k=1, mode="keyword")
        assert hits and hits[0].chunk.source.endswith("vector.md")
        assert not fresh.search("stale", mode="keyword")
        assert fresh.store.get_meta("analyzer") == fresh.analyzer.version


def test_symlink_loops_and_broken_links_are_reported(kb: KnowledgeBase, corpus: Path) -> None:
    (corpus / "sub" / "loop").symlink_to(corpus, target_is_directory=True)
    (corpus / "dangling.md").symlink_to(corpus / "does-not-exist.md")
    report = kb.add(corpus)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert "loop" in reasons and "loop" in reasons["loop"]
    assert "dangling.md" in reasons and "broken" in reasons["dangling.md"]
    assert report.documents_added == 3  # the real files, once each
    assert kb.store.stats().documents == 3


def test_glob_sources_are_rescanned_on_sync(kb: KnowledgeBase, corpus: Path) -> None:
    report = kb.add(str(corpus / "**" / "*.md"))
    assert report.ok and report.documents_added == 2  # vector.md and sub/garden.md only
    (corpus / "sub" / "later.md").write_text("# Later\n\nA file that matches the glob later.\n")
    assert kb.sync().documents_added == 1
    assert {Path(d.key).name for d in kb.documents()} == {"vector.md", "garden.md", "later.md"}

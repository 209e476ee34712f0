"""Masking at ingest: stored chunks, titles, metadata and index files hold no raw values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hanlin.config import load_settings
from hanlin.guard.checksums import id_check_char, luhn_check_digit
from hanlin.guard.detect import detector
from hanlin.knowledge.base import Block, LoadedDocument
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.knowledge.masking import mask_document

PHONE = "13912345678"
ID17 = "44030419851120123"
ID_CARD = ID17 + id_check_char(ID17)
CARD = "6222020200001234" + "56"
CARD += luhn_check_digit(CARD)
RAW = [PHONE, ID_CARD, CARD]


def _files_holding(root: Path, values: list[str]) -> list[str]:
    """Files under ``root`` whose bytes contain any value (UTF-8 or UTF-16)."""
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for v in values:
                if v.encode() in data or v.encode("utf-16-le") in data:
                    hits.append(f"{path.relative_to(root)}: {v}")
    return hits


def _write_docs(folder: Path) -> None:
    folder.mkdir()
    (folder / "客户.md").write_text(
        f"# 客户 {PHONE}\n\n张女士的手机 {PHONE}，身份证 {ID_CARD}。\n\n"
        f"## 付款\n\n银行卡 {CARD}，再次确认手机 {PHONE}。\n",
        "utf-8",
    )
    (folder / "rows.csv").write_text(f"id,name,phone,note\n1,王先生,{PHONE},卡号 {CARD}\n", "utf-8")


def test_mask_document_keeps_block_offsets_true() -> None:
    text = f"电话 {PHONE} 完\n第二段 {ID_CARD} 和 {PHONE}"
    cut = text.index("\n")
    doc = LoadedDocument(
        "k",
        "s",
        f"标题 {PHONE}",
        text,
        [
            Block("paragraph", text[:cut], 0, cut),
            Block("paragraph", text[cut + 1 :], cut + 1, len(text)),
        ],
        "txt",
        {"phone": PHONE, "n": 3, "tags": [ID_CARD]},
    )
    out = mask_document(detector(), doc)
    assert out.text == "电话 <PHONE_1> 完\n第二段 <ID_CARD_1> 和 <PHONE_1>"
    assert out.title == "标题 <PHONE_1>"
    assert out.metadata == {"phone": "<PHONE_1>", "n": 3, "tags": ["<ID_CARD_1>"]}
    for b in out.blocks:
        assert out.text[b.start : b.end] == b.text
    assert [b.text for b in out.blocks] == out.text.split("\n")


def test_a_block_boundary_inside_a_value_takes_the_whole_placeholder() -> None:
    text = f"a{PHONE}b"
    doc = LoadedDocument(
        "k",
        "s",
        "",
        text,
        [Block("paragraph", text[:5], 0, 5), Block("paragraph", text[5:], 5, len(text))],
        "txt",
    )
    out = mask_document(detector(), doc)
    for b in out.blocks:
        assert out.text[b.start : b.end] == b.text
    assert PHONE not in "".join(b.text for b in out.blocks)


def test_add_with_mask_pii_stores_no_raw_values(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write_docs(docs)
    settings = load_settings()
    kb = KnowledgeBase.create("masked", settings=settings)
    with kb:
        report = kb.add(docs, mask_pii=True)
        assert report.ok and report.documents_added == 2
        assert kb.masks_pii
        hits = kb.search("张女士 手机", mode="keyword", k=5)
        assert hits and any("<PHONE_1>" in h.chunk.text for h in hits)
        assert not any(v in h.chunk.text for h in hits for v in RAW)
    assert _files_holding(settings.home / "kb" / "masked", RAW) == []

    # the knowledge base remembers: a later sync masks a changed file too
    (docs / "客户.md").write_text(f"新号码 13700001111，旧号码 {PHONE}\n", "utf-8")
    with KnowledgeBase("masked", settings) as kb:
        assert kb.sync().documents_updated == 1
    assert _files_holding(settings.home / "kb" / "masked", [*RAW, "13700001111"]) == []


def test_without_mask_pii_the_values_are_stored(tmp_path: Path) -> None:
    """The check above can fail: unmasked, the raw values are in the store's files."""
    docs = tmp_path / "docs"
    _write_docs(docs)
    settings = load_settings()
    with KnowledgeBase.create("plain", settings=settings) as kb:
        kb.add(docs)
    assert _files_holding(settings.home / "kb" / "plain", RAW)


@pytest.mark.slow
def test_kb_add_mask_pii_on_the_command_line(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write_docs(docs)

    def hanlin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hanlin", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "250"},
            timeout=300,
        )

    assert hanlin("kb", "create", "cli-masked").returncode == 0
    r = hanlin("kb", "add", "cli-masked", str(docs), "--mask-pii")
    assert r.returncode == 0, r.stderr
    r = hanlin("kb", "search", "cli-masked", "银行卡", "--json", "--mode", "keyword")
    assert r.returncode == 0, r.stderr
    assert "<BANK_CARD_1>" in r.stdout and CARD not in r.stdout
    home = Path(os.environ["HANLIN_HOME"])
    assert _files_holding(home / "kb" / "cli-masked", RAW) == []
    assert json.loads(r.stdout)

"""Structure-aware chunking: exact spans, heading paths, budgets, splits and overlap."""

from __future__ import annotations

import itertools
import random

import pytest

from hanlin.errors import InvalidInputError
from hanlin.knowledge.base import Block, BlockKind, Chunk, LoadedDocument
from hanlin.knowledge.chunking import chunk_document
from hanlin.text import count_tokens

BlockSpec = tuple[BlockKind, str] | tuple[BlockKind, str, int] | tuple[BlockKind, str, int, int]


def make_doc(*specs: BlockSpec) -> LoadedDocument:
    """Blocks ``(kind, text[, level[, page]])`` joined by blank lines, with exact offsets."""
    text, blocks = "", []
    for spec in specs:
        kind, body = spec[0], spec[1]
        level = spec[2] if len(spec) > 2 else 0  # type: ignore[misc]
        page = spec[3] if len(spec) > 3 else None  # type: ignore[misc]
        if text:
            text += "\n\n"
        start = len(text)
        text += body
        blocks.append(Block(kind, body, start, len(text), level=level, page=page))
    return LoadedDocument("doc", "doc.md", "Doc", text, blocks, "markdown")


def table_header(chunk: Chunk, doc: LoadedDocument) -> str:
    """The repeated header of a table piece ('' when the chunk is an exact span)."""
    span = doc.text[chunk.char_start : chunk.char_end]
    return "" if chunk.text == span else chunk.text[: len(chunk.text) - len(span) - 1]


def check_invariants(doc: LoadedDocument, chunks: list[Chunk], max_tokens: int) -> None:
    assert [c.ord for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        span = doc.text[c.char_start : c.char_end]
        header = table_header(c, doc)
        assert c.text == (f"{header}\n{span}" if header else span)
        covered = [b for b in doc.blocks if b.start < c.char_end and c.char_start < b.end]
        if header:  # only a table piece that does not start at its table repeats the header
            assert covered[0].kind == "table" and covered[0].start < c.char_start
        assert span.strip() and span == span.rstrip()
        if span[0].isspace():
            assert c.kind == "code"  # code keeps its indentation
        assert c.n_tokens == count_tokens(c.text) <= max_tokens
        pages = [b.page for b in covered if b.page is not None]
        assert (c.page, c.page_end) == ((min(pages), max(pages)) if pages else (None, None))
    starts = [c.char_start for c in chunks]
    assert starts == sorted(starts)
    # Nothing is lost: every non-blank character of every block lies in some chunk.
    covered_chars = bytearray(len(doc.text))
    for c in chunks:
        covered_chars[c.char_start : c.char_end] = b"\x01" * (c.char_end - c.char_start)
    for b in doc.blocks:
        for i in range(b.start, b.end):
            assert covered_chars[i] or doc.text[i].isspace(), (i, doc.text[i])


def last_block(doc: LoadedDocument, chunk: Chunk) -> Block:
    return [b for b in doc.blocks if b.start < chunk.char_end][-1]


ZH_SENTENCES = [
    f"第{i}句话说明自然语言处理在{topic}中的应用非常广泛{end}"
    for i, (topic, end) in enumerate(
        [("搜索引擎", "。"), ("机器翻译", "！"), ("问答系统", "？"), ("文本分类", "；")] * 15
    )
]


def test_empty_and_blank_documents_give_no_chunks() -> None:
    assert chunk_document(make_doc()) == []
    assert chunk_document(make_doc(("paragraph", "   "), ("paragraph", "\n\t"))) == []
    doc = make_doc(("paragraph", "  "), ("paragraph", "Real text."), ("paragraph", " \n"))
    [chunk] = chunk_document(doc)
    assert chunk.text == "Real text."
    assert doc.text[chunk.char_start : chunk.char_end] == "Real text."


def test_a_document_without_blocks_is_one_paragraph() -> None:
    doc = LoadedDocument("k", "s", "t", "  Plain text only.  ", [], "txt")
    [chunk] = chunk_document(doc)
    assert chunk.text == "Plain text only." and chunk.kind == "paragraph"


def test_small_paragraphs_are_packed_together() -> None:
    doc = make_doc(*[("paragraph", f"Paragraph number {i} is short.") for i in range(6)])
    [chunk] = chunk_document(doc)
    assert chunk.char_start == 0 and chunk.char_end == len(doc.text)
    assert chunk.n_tokens == count_tokens(doc.text)


def test_heading_paths_and_heading_starts_a_chunk() -> None:
    doc = make_doc(
        ("heading", "Guide", 1),
        ("paragraph", "Intro text."),
        ("heading", "Install", 2),
        ("paragraph", "Run pip."),
        ("heading", "Linux", 3),
        ("paragraph", "Use apt."),
        ("heading", "Usage", 2),
        ("paragraph", "Call it."),
        ("heading", "Appendix", 1),
        ("paragraph", "More."),
    )
    chunks = chunk_document(doc)
    check_invariants(doc, chunks, 320)
    assert [c.heading_path for c in chunks] == [
        ["Guide"],
        ["Guide", "Install"],
        ["Guide", "Install", "Linux"],
        ["Guide", "Usage"],
        ["Appendix"],
    ]
    # Each chunk starts with its heading and ends with the text below it.
    assert [c.text for c in chunks][:2] == ["Guide\n\nIntro text.", "Install\n\nRun pip."]
    assert all(c.kind == "paragraph" for c in chunks)


def test_consecutive_headings_go_with_the_text_below() -> None:
    doc = make_doc(
        ("heading", "Part A", 1),
        ("heading", "Chapter 1", 2),
        ("paragraph", "Body."),
        ("heading", "Trailing", 1),
    )
    chunks = chunk_document(doc)
    assert chunks[0].text == "Part A\n\nChapter 1\n\nBody."
    assert chunks[0].heading_path == ["Part A", "Chapter 1"]
    # A heading with nothing below it at the very end still becomes searchable, alone.
    assert chunks[1].text == "Trailing" and chunks[1].kind == "heading"


def test_heading_is_never_the_last_thing_in_a_chunk() -> None:
    body = " ".join(f"Sentence {i} talks about the topic at some length." for i in range(12))
    specs: list[BlockSpec] = []
    for h in range(4):
        specs += [("heading", f"Section {h}", 1), ("heading", f"Sub {h}", 2), ("paragraph", body)]
    doc = make_doc(*specs)
    for max_tokens in (20, 40, 64, 100):
        chunks = chunk_document(doc, max_tokens=max_tokens, overlap=8)
        check_invariants(doc, chunks, max_tokens)
        for c in chunks:
            assert last_block(doc, c).kind != "heading", (max_tokens, c.text)


def test_long_chinese_paragraph_splits_at_sentence_ends_with_overlap() -> None:
    paragraph = "".join(ZH_SENTENCES)
    doc = make_doc(("heading", "自然语言处理", 1), ("paragraph", paragraph))
    chunks = chunk_document(doc, max_tokens=120, overlap=30)
    check_invariants(doc, chunks, 120)
    assert len(chunks) > 5
    starts = {doc.text.index(s) for s in ZH_SENTENCES}
    ends = {doc.text.index(s) + len(s) for s in ZH_SENTENCES}
    for c in chunks:
        assert c.char_end in ends, c.text[-10:]  # never cut mid-sentence
        assert c.char_start in starts or c.ord == 0
        assert c.heading_path == ["自然语言处理"]
    # Consecutive chunks share whole trailing sentences, at most `overlap` tokens.
    for prev, nxt in itertools.pairwise(chunks):
        shared = doc.text[nxt.char_start : prev.char_end]
        assert nxt.char_start < prev.char_end
        assert 1 <= count_tokens(shared) <= 30


def test_no_overlap_when_disabled_or_across_headings() -> None:
    paragraph = "".join(ZH_SENTENCES)
    doc = make_doc(("paragraph", paragraph), ("heading", "下一节", 1), ("paragraph", paragraph))
    no_overlap = chunk_document(doc, max_tokens=120, overlap=0)
    check_invariants(doc, no_overlap, 120)
    for prev, nxt in itertools.pairwise(no_overlap):
        assert nxt.char_start >= prev.char_end
    chunks = chunk_document(doc, max_tokens=120, overlap=30)
    heading_at = doc.text.index("下一节")
    first_after = next(c for c in chunks if c.char_start >= heading_at)
    assert first_after.char_start == heading_at
    assert first_after.heading_path == ["下一节"]
    before = [c for c in chunks if c.char_start < heading_at]
    assert all(c.char_end < heading_at for c in before)


def test_english_sentences_split_at_period_space() -> None:
    sentences = [f"Claim {i} states that vitamin D lowers the risk of fracture." for i in range(30)]
    doc = make_doc(("paragraph", " ".join(sentences)))
    chunks = chunk_document(doc, max_tokens=60, overlap=0)
    check_invariants(doc, chunks, 60)
    assert len(chunks) > 3
    for c in chunks:
        assert c.text.startswith("Claim") and c.text.endswith("fracture.")


def test_over_long_sentence_is_cut_at_the_token_limit() -> None:
    sentence = "没有标点的超长句子" * 120  # 1080 CJK characters, no sentence end
    doc = make_doc(("paragraph", sentence))
    chunks = chunk_document(doc, max_tokens=100, overlap=20)
    check_invariants(doc, chunks, 100)
    assert all(c.n_tokens >= 80 for c in chunks[:-1])  # cut at the limit, not earlier
    assert "".join(c.text for c in chunks) == sentence  # pieces tile it (no sentence to overlap)


def test_over_long_sentence_prefers_clause_marks() -> None:
    clause = "这个分句包含一些内容，"
    doc = make_doc(("paragraph", clause * 40 + "结束。"))
    chunks = chunk_document(doc, max_tokens=50, overlap=0)
    check_invariants(doc, chunks, 50)
    assert all(c.text.endswith("，") for c in chunks[:-1])


def test_unsplittable_run_is_cut_at_six_chars_per_token() -> None:
    """The one thing with no boundary at all — a run of letters/digits (a base64 blob, a URL
    without separators) — is cut every ``6 * max_tokens`` characters, so the budget still holds."""
    blob = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789" * 60  # 2,700 chars, one "word"
    doc = make_doc(("paragraph", "Before."), ("code", blob), ("paragraph", "After."))
    chunks = chunk_document(doc, max_tokens=64, overlap=8)
    check_invariants(doc, chunks, 64)
    pieces = [c for c in chunks if c.kind == "code"]
    assert all(len(c.text) <= 6 * 64 for c in pieces)
    assert blob in "".join(doc.text[c.char_start : c.char_end] for c in pieces)


def _markdown_table(n_rows: int) -> str:
    rows = [f"| item {i} | {i * 3} | note for row {i} |" for i in range(n_rows)]
    return "\n".join(["| name | count | note |", "|---|---:|---|", *rows])


def test_table_kept_whole_when_it_fits() -> None:
    table = _markdown_table(5)
    doc = make_doc(("paragraph", "Table 1 lists items."), ("table", table))
    [chunk] = chunk_document(doc, max_tokens=200)
    assert chunk.text.endswith(table) and chunk.kind == "table"


def test_split_table_repeats_its_header_row() -> None:
    table = _markdown_table(60)
    doc = make_doc(("heading", "Inventory", 1), ("table", table), ("paragraph", "End note."))
    chunks = chunk_document(doc, max_tokens=80, overlap=10)
    check_invariants(doc, chunks, 80)
    pieces = [c for c in chunks if c.kind == "table"]
    assert len(pieces) > 3
    header = "| name | count | note |\n|---|---:|---|"
    assert pieces[0].text.startswith(f"Inventory\n\n{header}")
    for piece in pieces[1:]:
        assert table_header(piece, doc) == header
        assert piece.text.startswith(header + "\n| item ")
    # Every row appears in exactly one piece, and pieces break at row boundaries.
    spans = "\n".join(doc.text[c.char_start : c.char_end] for c in pieces)
    for i in range(60):
        assert spans.count(f"| item {i} |") == 1
    assert all(doc.text[c.char_end - 1] == "|" for c in pieces[:-1])


def test_code_split_at_line_boundaries() -> None:
    code = "\n".join(f"    value_{i} = compute(value_{i - 1}, {i})  # step {i}" for i in range(80))
    doc = make_doc(("paragraph", "The loop:"), ("code", "def f():\n" + code))
    chunks = chunk_document(doc, max_tokens=90, overlap=20)
    check_invariants(doc, chunks, 90)
    for c in chunks:
        assert doc.text[c.char_end : c.char_end + 1] in ("", "\n")
    assert any(c.text.startswith("    value_") for c in chunks)  # indentation kept


def test_pages_come_from_the_blocks_a_chunk_covers() -> None:
    doc = make_doc(
        ("paragraph", "Page one text.", 0, 1),
        ("paragraph", "More on page one.", 0, 1),
        ("paragraph", "Page two starts here.", 0, 2),
        ("heading", "Later", 1, 3),
        ("paragraph", "Page three text.", 0, 3),
        ("paragraph", "Page four text.", 0, 4),
    )
    chunks = chunk_document(doc)
    check_invariants(doc, chunks, 320)
    assert [(c.page, c.page_end) for c in chunks] == [(1, 2), (3, 4)]


def test_trailing_fragment_is_not_left_tiny() -> None:
    p1 = " ".join(["cat"] * 59) + "."  # 60 tokens
    p2 = " ".join(["dog"] * 35) + "."  # 36 tokens
    p3 = "One two three four five."  # 6 tokens: alone it would be a tiny last chunk
    doc = make_doc(("paragraph", p1), ("paragraph", p2), ("paragraph", p3))
    chunks = chunk_document(doc, max_tokens=100, overlap=0)
    check_invariants(doc, chunks, 100)
    assert [c.text for c in chunks] == [p1, f"{p2}\n\n{p3}"]
    # When everything fits, the fragment is simply merged.
    short = make_doc(("paragraph", p2), ("paragraph", p3))
    assert len(chunk_document(short, max_tokens=100)) == 1


def test_dominant_kind() -> None:
    doc = make_doc(("paragraph", "See the table."), ("table", _markdown_table(6)))
    assert chunk_document(doc)[0].kind == "table"
    doc = make_doc(("paragraph", "Long explanation. " * 20), ("code", "x = 1"))
    assert chunk_document(doc)[0].kind == "paragraph"


def test_invalid_budgets_are_rejected() -> None:
    doc = make_doc(("paragraph", "x"))
    with pytest.raises(InvalidInputError):
        chunk_document(doc, max_tokens=4)
    with pytest.raises(InvalidInputError):
        chunk_document(doc, max_tokens=64, overlap=64)
    with pytest.raises(InvalidInputError):
        chunk_document(doc, max_tokens=64, overlap=-1)


def _random_doc(rng: random.Random) -> LoadedDocument:
    words = ["retrieval", "index", "vector", "model", "query", "a", "x" * 30, "3.14", "e.g."]
    zh = ["检索", "向量", "模型", "查询", "中文", "分词", "。", "，", "！", "？"]
    specs: list[BlockSpec] = []
    page = 1
    for _ in range(rng.randint(1, 25)):
        page += rng.random() < 0.2
        kind = rng.choice(["heading", "paragraph", "paragraph", "list", "table", "code"])
        if kind == "heading":
            specs.append(
                ("heading", rng.choice(["Intro", "方法", "Results"]), rng.randint(1, 3), page)
            )
        elif kind == "table":
            rows = ["| k | v |", "|---|---|"] + [
                f"| {rng.choice(words)} | {rng.choice(zh)} |" for _ in range(rng.randint(1, 40))
            ]
            specs.append(("table", "\n".join(rows), 0, page))
        elif kind == "code":
            lines = [f"x{i} = {rng.choice(words)!r}" for i in range(rng.randint(1, 60))]
            specs.append(("code", "\n".join(lines), 0, page))
        else:
            parts = []
            for _ in range(rng.randint(1, 300)):
                if rng.random() < 0.5:
                    parts.append(rng.choice(zh))
                else:
                    parts.append(" " + rng.choice(words) + rng.choice(["", "", ". ", "\n"]))
            specs.append((kind, "".join(parts), 0, page))  # type: ignore[arg-type]
    return make_doc(*specs)


@pytest.mark.parametrize("seed", range(30))
def test_random_documents_keep_every_invariant(seed: int) -> None:
    rng = random.Random(seed)
    doc = _random_doc(rng)
    for max_tokens, overlap in ((8, 0), (24, 6), (64, 16), (320, 48)):
        chunks = chunk_document(doc, max_tokens=max_tokens, overlap=overlap)
        check_invariants(doc, chunks, max_tokens)
        headings = [b for b in doc.blocks if b.kind == "heading" and b.text.strip()]
        body_after = {
            id(h): any(b.start > h.start and b.kind != "heading" for b in doc.blocks)
            for h in headings
        }
        for c in chunks:
            last = last_block(doc, c)
            if last.kind == "heading" and max_tokens >= 24:
                assert not body_after[id(last)], (seed, max_tokens, c.text)

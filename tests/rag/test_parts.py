"""The RAG engine's parts on their own: citation cleanup, language, rewriting, selection,
packing, sentence splitting and the prompt files."""

from __future__ import annotations

from importlib import resources

import pytest

from hanlin.knowledge.search import SearchResult
from hanlin.knowledge.stores.base import StoredChunk
from hanlin.models.types import Message
from hanlin.rag.citations import CitationFilter, cited_numbers, clean_citations
from hanlin.rag.extractive import split_sentences
from hanlin.rag.rewrite import clean_rewrite, fold_history, is_follow_up
from hanlin.rag.select import dedupe, diversify, pack, span_overlap, truncate
from hanlin.rag.templates import detect_language, render, template
from hanlin.text import count_tokens


def stream_through(pieces: list[str], valid: int) -> tuple[list[str], CitationFilter]:
    f = CitationFilter(valid)
    out = [f.feed(p) for p in pieces] + [f.finish()]
    return [o for o in out if o], f


# -- citations -------------------------------------------------------------------------------


def test_citations_renumbered_in_order_of_first_use_and_invalid_ones_removed() -> None:
    text, order = clean_citations("Paris [3] is big [7]. It is old [1][3]. Rivers [2, 9].", 3)
    assert text == "Paris [1] is big. It is old [2][1]. Rivers [3]."
    assert order == [3, 1, 2]
    assert cited_numbers(text) == [1, 2, 3]  # contiguous 1..n


def test_citation_variants_full_width_lists_and_empty_markers() -> None:
    text, order = clean_citations("巴黎是首都【2】，人口很多[1、2]。无效[0][12]。", 2)
    assert text == "巴黎是首都[1]，人口很多[2, 1]。无效。"
    assert order == [2, 1]
    # bracketed words and links are not citations
    same, none = clean_citations("See [the docs](https://x.y) and [note].", 3)
    assert same == "See [the docs](https://x.y) and [note]." and none == []


def test_streamed_cleanup_equals_whole_text_cleanup_whatever_the_split() -> None:
    raw = "  The capital is Paris [2] , see [7]. Also [1][\n2].\nEnd [3]  \n"
    whole, order = clean_citations(raw, 3)
    for size in (1, 2, 3, 5, 8):
        pieces = [raw[i : i + size] for i in range(0, len(raw), size)]
        out, f = stream_through(pieces, 3)
        assert "".join(out) == whole, size
        assert f.order == order
    assert whole.startswith("The capital") and not whole.endswith((" ", "\n"))
    assert "[7]" not in whole and whole.count("[") == 4


def test_filter_holds_back_only_an_unfinished_marker() -> None:
    f = CitationFilter(5)
    assert f.feed("Paris is the capital [") == "Paris is the capital"
    assert f.feed("4") == ""
    assert f.feed("] and more") == " [1] and more"
    assert f.feed(" [x]") == " [x]"  # not a number: shown at once
    assert f.finish() == ""


# -- language --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("法国的首都是哪里？", "zh"),
        ("法國的首都是哪裡？", "zh-Hant"),
        ("RAG 是什么？", "zh"),
        ("What does 翰林 mean?", "en"),
        ("Where does the Danube rise?", "en"),
        ("1234?", "en"),
    ],
)
def test_language_follows_the_cjk_share(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_prompt_files_ship_in_both_languages_and_traditional_is_converted() -> None:
    folder = resources.files("hanlin.prompts").joinpath("builtin")
    names = {p.name for p in folder.iterdir()}
    for name in ("answer", "rewrite", "refuse", "extractive"):
        assert {f"rag.{name}.zh.txt", f"rag.{name}.en.txt"} <= names
    assert "rag.source.txt" in names
    assert "用中文" in render("answer", "zh", sources="[1] x")
    assert "Answer in English" in render("answer", "en", sources="[1] x")
    assert "資料" in template("refuse", "zh-Hant") and "资料" in template("refuse", "zh")


def test_a_template_in_the_app_directory_overrides_the_bundled_one(tmp_path: object) -> None:
    from pathlib import Path

    home = Path(str(tmp_path))
    (home / "prompts" / "rag").mkdir(parents=True)
    (home / "prompts" / "rag" / "refuse.en.txt").write_text("Nope.\n", "utf-8")
    assert template("refuse", "en", home) == "Nope."
    assert template("refuse", "zh", home).startswith("资料中没有")


# -- rewriting -------------------------------------------------------------------------------

FR = [Message.user("法国的人口有多少？"), Message.assistant("约六千八百万。")]


def test_follow_up_gets_the_previous_questions_key_terms() -> None:
    assert fold_history("它的首都是哪里？", FR) == "它的首都是哪里？ 法国 人口"
    assert fold_history("首都呢？", FR).endswith("法国 人口")
    en = [Message.user("What is the population of France?")]
    assert fold_history("and its capital?", en) == "and its capital? population france"


def test_standalone_questions_and_empty_history_are_left_alone() -> None:
    assert not is_follow_up("日本的首都是哪里？")
    assert fold_history("日本的首都是哪里？", FR) == "日本的首都是哪里？"
    assert fold_history("它的首都是哪里？", []) == "它的首都是哪里？"
    assert fold_history("What is the capital of Japan?", [Message.user("France?")]) == (
        "What is the capital of Japan?"
    )


def test_model_rewrites_are_cleaned_or_rejected() -> None:
    assert clean_rewrite('"法国的首都是哪里？"\n', "它的首都呢") == "法国的首都是哪里？"
    assert clean_rewrite("Standalone question: What is France's capital?", "and it?") == (
        "What is France's capital?"
    )
    assert clean_rewrite("   ", "q") is None
    assert clean_rewrite("x" * 500, "short?") is None


# -- selection and packing -------------------------------------------------------------------


def result(cid: int, doc: str, start: int, end: int, text: str, score: float) -> SearchResult:
    chunk = StoredChunk(
        id=cid,
        doc_key=doc,
        source=doc,
        title=doc,
        text=text,
        ord=0,
        heading_path=[],
        page=None,
        page_end=None,
        char_start=start,
        char_end=end,
        kind="paragraph",
        metadata={},
    )
    return SearchResult(chunk, score, {"dense": 0.5, "keyword": score})


def test_dedupe_drops_overlapping_spans_and_copies_but_keeps_neighbours() -> None:
    a = result(1, "a.md", 0, 100, "Alpha beta gamma delta epsilon zeta eta theta.", 1.0)
    overlap = result(2, "a.md", 40, 140, "Gamma delta epsilon zeta eta theta iota kappa.", 0.9)
    neighbour = result(3, "a.md", 90, 190, "Completely different words about rivers.", 0.8)
    copy = result(4, "b.md", 0, 100, "Alpha beta gamma delta epsilon zeta eta theta!", 0.7)
    other = result(5, "c.md", 0, 50, "Tea grows in Assam.", 0.6)
    assert span_overlap(a, overlap) == 0.6 and span_overlap(a, neighbour) == 0.1
    kept = dedupe([a, overlap, neighbour, copy, other])
    assert [r.chunk.id for r in kept] == [1, 3, 5]


def test_diversity_caps_chunks_per_document_and_prefers_novel_text() -> None:
    same = [
        result(i, "a.md", i * 100, i * 100 + 90, f"Alpha beta gamma {i}", 1.0 - i / 100)
        for i in range(5)
    ]
    other = result(9, "b.md", 0, 50, "Rivers and bridges of Budapest", 0.5)
    picked = diversify([*same, other], 4, per_doc_cap=2, mmr_lambda=1.0)
    assert [r.chunk.id for r in picked] == [0, 1, 9]
    # with a strong novelty weight the other document comes second
    picked = diversify([*same, other], 2, per_doc_cap=5, mmr_lambda=0.3)
    assert [r.chunk.id for r in picked] == [0, 9]


def test_pack_is_first_fit_within_budget_and_cuts_an_oversized_first_block() -> None:
    blocks = ["a " * 30, "b " * 80, "c " * 20]  # 30, 80 and 20 tokens
    chosen, cut = pack(blocks, 60, count_tokens)
    assert chosen == [0, 2] and cut is None
    text = "第一句话在这里。第二句话也在这里。第三句话比较长一些，一直写到预算之外为止。"
    chosen, cut = pack([text], 18, count_tokens)
    assert chosen == [0] and cut == "第一句话在这里。第二句话也在这里。"
    assert count_tokens(truncate(text, 5, count_tokens)) <= 5


def test_cjk_aware_sentence_split() -> None:
    text = "巴黎是首都。人口很多！真的吗？是的；当然。Pi is 3.14 here. Next line\nlast"
    parts = [text[s:e] for s, e in split_sentences(text)]
    assert parts == [
        "巴黎是首都。",
        "人口很多！",
        "真的吗？",
        "是的；",
        "当然。",
        "Pi is 3.14 here.",
        "Next line\nlast",  # a soft line break does not end a sentence
    ]


HARD_WRAPPED = """## Hybrid search

Dense retrieval embeds the query and the chunks into one vector space and ranks chunks by cosine
similarity; it matches paraphrases. Hybrid search fuses both ranked lists, for example with
reciprocal rank fusion or with a weighted sum of normalised scores.
- a list item starts a new block
1. so does a numbered one
"""


def test_hard_wrapped_paragraphs_split_into_whole_sentences_and_headings_are_not_evidence() -> None:
    from hanlin.knowledge.tokenize import Analyzer
    from hanlin.rag.extractive import is_heading_like, pick_sentences, quote

    spans = split_sentences(HARD_WRAPPED)
    parts = [HARD_WRAPPED[s:e] for s, e in spans]
    assert parts[0] == "## Hybrid search" and is_heading_like(HARD_WRAPPED, *spans[0])
    assert parts[2] == (
        "Hybrid search fuses both ranked lists, for example with\n"
        "reciprocal rank fusion or with a weighted sum of normalised scores."
    )
    assert parts[3:] == ["- a list item starts a new block", "1. so does a numbered one"]
    assert not any(is_heading_like(HARD_WRAPPED, s, e) for s, e in spans[1:])
    picks = pick_sentences(["hybrid", "search"], [HARD_WRAPPED], [1.0], Analyzer())
    quoted = [quote(p.sentence.text, "en") for p in picks]
    assert quoted[0] == (
        "“Hybrid search fuses both ranked lists, for example with reciprocal rank fusion or "
        "with a weighted sum of normalised scores.”"
    )
    assert all(q[-2] in ".!?" for q in quoted), quoted  # never ends mid-sentence


def test_chinese_quotes_stay_verbatim_and_balanced_and_wrapped_lines_join_without_spaces() -> None:
    from hanlin.rag.extractive import quote

    assert quote("他说「你好」。", "zh") == "「他说「你好」。」"  # verbatim, balanced
    assert quote("书名是「论语\n学而」篇。", "zh") == "「书名是「论语学而」篇。」"
    assert quote("他说「走吧。", "zh") == "「他说「走吧。」」"  # a cut-open mark is closed
    assert quote("吧」他说。", "zh") == "「「吧」他说。」"
    assert quote("『甲』「乙", "zh") == "「『甲』「乙」」"


def test_labels_follow_the_questions_script() -> None:
    from hanlin.rag.templates import label

    assert label("sources", detect_language("翰林院是什么时候设立的？")) == "来源"
    assert label("sources", detect_language("學而篇講什麼？")) == "來源"
    assert label("closest", detect_language("學而篇講什麼？")) == "最接近的資料"
    assert label("sources", "en") == "sources"

"""Extractive answers: the evidence sentences that best match the question, quoted with citations.

Used when no capable generator is configured (the bundled base model cannot follow
instructions) or on request. Text is cut into blocks (paragraphs, list items, table rows,
headings: a soft line break inside a paragraph does not end a sentence), blocks into sentences
CJK-aware (。！？；!? and a period before a space), and a heading alone is never quoted. Each
sentence is scored by the share of the question's content tokens it contains, each token
weighted by its rarity among the candidate sentences (so "梵語" counts more than "研究"), plus
half the chunk's relevance scaled to 0..1. The best sentence is always quoted; up to
``max_sentences - 1`` more follow: from the same chunk when they score at least half as well,
from another chunk only when nearly as well (each extra chunk cited risks a wrong citation).
The weights were tuned on 600 DRCD questions outside the benchmark sample (docs/rag.md).
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from hanlin.knowledge.tokenize import Analyzer

# a sentence ends after 。！？；!? (and closing quotes/brackets right after), or where its block
# ends; a period ends a sentence when a space or the end follows (not 3.14 or e.g.x). A single
# line break inside a paragraph is a soft wrap, not an end: most .md and .txt files are
# hard-wrapped at 72-100 columns.
_SENT_RE = re.compile(r"[^。！？；!?]*?(?:[。！？；!?]+[」』”’）)]*|\.(?=\s|$)|$)", re.S)
# where a block ends: a blank line, or a line break before a list item, table row, heading or
# quote (lines that start something new even without a blank line before them)
_BLOCK_END = re.compile(
    r"""\n[ \t]*\n\s*                        # a blank line
    | \n(?=[ \t]*(?:[-*+•|>\#]              # a bullet, table row, quote or heading
                 | \d{1,3}[.)、]              # 1.  2)  3、
                 | [（(]?[一二三四五六七八九十]+[、.)）]))  # 一、 （二）
    """,
    re.X,
)
#: a list item or table row: content, even when short and unpunctuated
_ITEM = re.compile(r"[-*+•|]\s|\d{1,3}[.)、]\s?")
_LIST_NUMBER = re.compile(r"(?:\d{1,3}|[A-Za-z]|[ivx]{1,4})\.")
_TERMINAL = "。！？；!?.…」』”’）)"
_MIN_CHARS = 6


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of one evidence chunk: offsets are into the chunk's text."""

    evidence: int  # index into the evidence list
    start: int
    end: int
    text: str


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of ``text``, whitespace trimmed, empty ones dropped.

    Text is first cut into blocks (paragraphs, list items, table rows, headings); a sentence
    never spans two blocks, but does span the soft line breaks inside one."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BLOCK_END.finditer(text):
        spans.extend(_sentences(text, start, m.start()))
        start = m.end()
    spans.extend(_sentences(text, start, len(text)))
    return spans


def _sentences(text: str, pos: int, stop: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    held: int | None = None  # the start of a list number ("1.") that belongs to what follows
    while pos < stop:
        m = _SENT_RE.match(text, pos, stop)
        end = m.end() if m and m.end() > pos else stop
        s, e = pos, end
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            if _LIST_NUMBER.fullmatch(text, s, e) and end < stop:
                held = s if held is None else held
            else:
                spans.append((s if held is None else held, e))
                held = None
        pos = end if end > pos else pos + 1
    return spans


def is_heading_like(text: str, start: int, end: int) -> bool:
    """A short whole line without sentence punctuation — a heading or a label, which says
    what a passage is about, not what is true: never quoted as evidence on its own."""
    piece = text[start:end]
    if "\n" in piece or piece[-1:] in _TERMINAL or _ITEM.match(piece):
        return False
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    whole_line = text[line_start:start].strip() == "" and (
        line_end == -1 or text[end:line_end].strip() == ""
    )
    words = len(piece.split()) if piece.isascii() else len(piece) // 2
    return whole_line and words <= 8


_cache: OrderedDict[tuple[str, str], list[tuple[int, int, frozenset[str]]]] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 4096


def analyzed_sentences(text: str, analyzer: Analyzer) -> list[tuple[int, int, frozenset[str]]]:
    """(start, end, keyword tokens) of each sentence of a chunk text, cached per text (the
    refusal check and the extractive answer read the same chunks)."""
    key = (analyzer.version, text)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    out = [(s, e, frozenset(analyzer.analyze(text[s:e]))) for s, e in split_sentences(text)]
    with _cache_lock:
        _cache[key] = out
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return out


def text_tokens(text: str, analyzer: Analyzer) -> frozenset[str]:
    """All keyword tokens of a text (the union over its sentences)."""
    return frozenset().union(*(t for _, _, t in analyzed_sentences(text, analyzer)))


@dataclass(frozen=True, slots=True)
class Pick:
    """A chosen sentence and its score."""

    sentence: Sentence
    score: float


def pick_sentences(
    question_tokens: Sequence[str],
    texts: Sequence[str],
    relevance: Sequence[float],
    analyzer: Analyzer,
    *,
    max_sentences: int = 2,
    keep_ratio: float = 0.5,
    other_ratio: float = 0.95,
    rank_weight: float = 0.5,
) -> list[Pick]:
    """The best sentences of the evidence texts for the question, best first.

    ``relevance`` is each text's retrieval relevance scaled to 0..1. After the best sentence,
    another from the same chunk is added when it scores at least ``keep_ratio`` of the best,
    one from another chunk (another citation) only at ``other_ratio``: each extra chunk cited
    is a chance to cite a wrong one.
    """
    sentences: list[Sentence] = []
    token_sets: list[frozenset[str]] = []
    for i, text in enumerate(texts):
        for s, e, tokens in analyzed_sentences(text, analyzer):
            if e - s < _MIN_CHARS or is_heading_like(text, s, e):
                continue
            sentences.append(Sentence(i, s, e, text[s:e]))
            token_sets.append(tokens)
    if not sentences:
        return []
    q = list(dict.fromkeys(question_tokens))
    n = len(sentences)
    weight = {t: math.log(1.0 + n / (1.0 + sum(t in ts for ts in token_sets))) for t in q}
    total = sum(weight.values()) or 1.0
    scored: list[Pick] = []
    for sent, ts in zip(sentences, token_sets, strict=True):
        match = sum(w for t, w in weight.items() if t in ts) / total
        scored.append(Pick(sent, match + rank_weight * relevance[sent.evidence]))
    scored.sort(key=lambda p: -p.score)
    best = scored[0].score
    picks = [scored[0]]
    first = scored[0].sentence.evidence
    for p in scored[1:]:
        if len(picks) >= max_sentences:
            break
        ratio = keep_ratio if p.sentence.evidence == first else other_ratio
        if p.score >= ratio * best and p.score > 0:
            picks.append(p)
    return picks


def quote(text: str, lang: str) -> str:
    """A sentence in the quotation marks of the answer's language, its soft line breaks joined
    (with a space between Latin words, with nothing between CJK characters). The sentence's own
    quotation marks stay as they are (「…「…」…」); a mark the sentence split cut open is closed,
    so the marks always balance."""
    if lang.startswith("zh"):
        text = _CJK_WRAP.sub("", text)
        text = " ".join(text.split())
        for left, right in ("「」", "『』"):  # quotes stay verbatim; only cut-open marks close
            opened = text.count(left) - text.count(right)
            if opened > 0:
                text += right * opened
            elif opened < 0:
                text = left * -opened + text
        return f"「{text}」"
    return f"“{' '.join(text.split())}”"


#: a line break (and the indentation around it) between two CJK characters or punctuation
_CJK = "\u3000-\u303f\u3400-\u9fff\uff00-\uffef"
_CJK_WRAP = re.compile(rf"(?<=[{_CJK}])[ \t]*\n[ \t]*(?=[{_CJK}])")

"""Extractive answers: the evidence sentences that best match the question, quoted with citations.

Used when no capable generator is configured (the bundled base model cannot follow
instructions) or on request. Sentences are split CJK-aware (。！？； and their ASCII forms,
line breaks) and scored by the share of the question's content tokens they contain, each token
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

# a sentence ends after 。！？；!?; (and closing quotes/brackets right after), or at a line break;
# a period ends a sentence when a space or the end follows (not 3.14 or e.g.x)
_SENT_RE = re.compile(r"[^。！？；!?;\n]*?(?:[。！？；!?;]+[」』”’）)]*|\.(?=\s|$)|\n|$)")
_MIN_CHARS = 6


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of one evidence chunk: offsets are into the chunk's text."""

    evidence: int  # index into the evidence list
    start: int
    end: int
    text: str


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of ``text``, whitespace trimmed, empty ones dropped."""
    spans: list[tuple[int, int]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _SENT_RE.match(text, pos)
        end = m.end() if m and m.end() > pos else n
        s, e = pos, end
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
        pos = end if end > pos else pos + 1
    return spans


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
            if e - s < _MIN_CHARS:
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
    """A sentence in the quotation marks of the answer's language."""
    text = " ".join(text.split()) if lang == "en" else text.replace("\n", " ")
    return f"「{text}」" if lang.startswith("zh") else f"“{text}”"

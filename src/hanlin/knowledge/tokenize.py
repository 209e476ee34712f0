"""The keyword analyzer: text → tokens for BM25, identical at index and at query time.

Chinese has no spaces, so Han runs are segmented (jieba words and/or overlapping character
bigrams); kana and hangul runs always become bigrams (jieba's dictionary is Chinese only).
Latin words are split on punctuation, optionally stemmed with Snowball English. The defaults
were chosen by measurement on ``shared/eval`` — see ``bench/analyzer_choice.py``.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from hanlin.text import CJK, HAN, WORD_CHAR

__all__ = ["Analyzer", "AnalyzerOptions"]

#: Entries kept in each analyzer's word and Han-run caches before they start afresh.
_CACHE_LIMIT = 200_000

#: Bump when the algorithm changes in a way that changes tokens; stores rebuild keyword indexes.
ALGORITHM_VERSION = 1

CjkMode = Literal["jieba", "bigram", "jieba+bigram"]

# The character classes (Han, kana, hangul; a non-CJK letter or digit) are hanlin.text's.
_W = WORD_CHAR
_RUN_RE = re.compile(rf"([{CJK}]+)|({_W}+(?:['’.\-]{_W}+)*)")
_LATIN_RE = re.compile(rf"{_W}+(?:['’.\-]{_W}+)*")  # _RUN_RE's second group on its own
_HAN_RUN_RE = re.compile(rf"[{HAN}]+")
_ANY_CJK_RE = re.compile(rf"[{CJK}]")
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)+")


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


# Lucene's English stop set without "no"/"not": articles, auxiliaries and prepositions that never
# carry a query's meaning. Negations are kept on purpose (scientific claims hinge on them).
ENGLISH_STOPWORDS = _words(
    "a an and are as at be but by for if in into is it of on or such that the their then there "
    "these they this to was will with"
)
# Chinese function words that jieba emits as single-character tokens: structural particles,
# aspect markers, sentence-final particles and the commonest conjunctions/prepositions.
# Content-bearing characters (e.g. 一, 不, 上, 大) are kept.
CHINESE_STOPWORDS = _words("的 地 得 了 着 过 吗 呢 吧 啊 呀 嘛 之 与 及 和 或 而 也 是 在 被 把")


class AnalyzerOptions(BaseModel):
    """How text becomes keyword tokens. Changing any option changes :attr:`Analyzer.version`.

    The defaults are measured (``bench/analyzer_choice.py``, BM25 nDCG@10): bigrams tie jieba
    and jieba+bigram on DRCD and CMRC2018 (within 0.005) and analyze ~6× faster without a
    dictionary; t2s is what lets a Traditional query find Simplified text (0.85 → 0.97 on
    DRCD against a Simplified corpus); stemming adds 0.03 on SciFact.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Han runs: jieba words, overlapping character bigrams, or both.
    cjk: CjkMode = "jieba+bigram"
    #: convert Traditional → Simplified before segmenting (jieba's dictionary is Simplified).
    t2s: bool = True
    #: Snowball English stemming ("running", "runs" → "run").
    stem: bool = True
    #: drop English stop words and a few Chinese function words (27% fewer postings on SciFact,
    #: ranking unchanged within noise).
    stopwords: bool = True


_lock = threading.RLock()  # re-entrant: the segmenter factory asks for jieba
_shared: dict[str, Any] = {}  # process-wide heavy resources, created once on first use


def _shared_resource(name: str, factory: Callable[[], Any]) -> Any:
    """Create ``name`` once per process (thread-safe), then reuse it."""
    obj = _shared.get(name)
    if obj is None:
        with _lock:
            obj = _shared.get(name)
            if obj is None:
                obj = factory()
                _shared[name] = obj
    return obj


def _make_jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)  # jieba logs its dictionary load at DEBUG to stderr
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def _make_segmenter() -> Any:
    from hanlin.knowledge.segment import DagSegmenter

    return DagSegmenter.default(lambda: _shared_resource("jieba", _make_jieba))


def _make_t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


_stemmers = threading.local()  # PyStemmer objects are not thread-safe: one per thread


def _stemmer() -> Any:
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        _stemmers.english = stemmer
    return stemmer


def _bigrams(run: str) -> list[str]:
    if len(run) < 2:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def _latin_parts(word: str) -> list[str]:
    """Split a word matched with inner ' - . into the tokens to index.

    Decimal numbers and versions ("3.5", "1.2.3") stay whole, a possessive "'s" is dropped,
    and everything else splits on the punctuation ("covid-19" → "covid", "19"; "e.g" → "e", "g").
    """
    if word.isalnum():
        return [word]
    word = word.replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if "." in word and _NUMBER_RE.fullmatch(word):
        return [word]
    return [p for p in re.split(r"['.\-]", word) if p]


class Analyzer:
    """Turns text into keyword tokens. Cheap to construct; the jieba dictionary (about a second)
    loads on first use of a jieba mode, once per process, shared by every instance and thread.
    """

    def __init__(self, options: AnalyzerOptions | None = None) -> None:
        self.options = options or AnalyzerOptions()
        # Tokens of a Latin word / a Han run depend only on it and the options: cache them
        # (documents repeat words; chunk overlaps and titles repeat whole runs).
        self._latin_cache: dict[str, list[str]] = {}
        self._han_cache: dict[str, list[str]] = {}

    @property
    def version(self) -> str:
        """Identifies the token stream: stores record it and rebuild keyword indexes on change."""
        o = self.options
        parts = [
            f"hanlin-analyzer/{ALGORITHM_VERSION}",
            f"cjk={o.cjk}",
            f"t2s={int(o.t2s)}",
            f"stem={int(o.stem)}",
            f"stop={int(o.stopwords)}",
        ]
        if "jieba" in o.cjk:
            import jieba

            parts.append(f"jieba={jieba.__version__}")
        return ";".join(parts)

    def warm_up(self) -> None:
        """Load the jieba dictionary / OpenCC tables now instead of on the first call."""
        if "jieba" in self.options.cjk:
            _shared_resource("segmenter", _make_segmenter)
        if self.options.t2s:
            _shared_resource("t2s", _make_t2s)

    def analyze(self, text: str) -> list[str]:
        """Return the tokens of ``text``, in order. Use the same call for documents and queries."""
        o = self.options
        text = unicodedata.normalize("NFKC", text).lower()
        if _ANY_CJK_RE.search(text) is None:  # no CJK (most English text): words only
            return self._latin_tokens(_LATIN_RE.findall(text))
        if o.t2s:
            text = _shared_resource("t2s", _make_t2s).convert(text)
        tokens: list[str] = []
        words: list[str] = []  # Latin words since the last CJK run
        for m in _RUN_RE.finditer(text):
            run = m.group(1)
            if run is None:
                words.append(m.group(2))
                continue
            if words:
                tokens += self._latin_tokens(words)
                words = []
            tokens += self._segment_cjk(run)
        if words:
            tokens += self._latin_tokens(words)
        return tokens

    def _latin_tokens(self, words: list[str]) -> list[str]:
        """Tokens of Latin/digit words (as matched by ``_LATIN_RE``): split, stop words dropped,
        stemmed — one cache lookup per word once a word has been seen."""
        cache = self._latin_cache
        missing = [w for w in dict.fromkeys(words) if w not in cache]
        if missing:
            if len(cache) + len(missing) > _CACHE_LIMIT:
                cache.clear()
            o = self.options
            parts = [
                [p for p in _latin_parts(w) if not (o.stopwords and p in ENGLISH_STOPWORDS)]
                for w in missing
            ]
            flat = [p for ps in parts for p in ps]
            stemmed = iter(_stemmer().stemWords(flat) if o.stem and flat else flat)
            for w, ps in zip(missing, parts, strict=True):
                cache[w] = [next(stemmed) for _ in ps]
        out: list[str] = []
        for w in words:
            out += cache[w]
        return out

    def _segment_cjk(self, run: str) -> list[str]:
        """Tokens of one run of CJK characters (Han possibly mixed with kana/hangul)."""
        out: list[str] = []
        pos = 0
        # Han sub-runs go through jieba; kana/hangul between them are always bigrams.
        for m in _HAN_RUN_RE.finditer(run):
            if m.start() > pos:
                out.extend(_bigrams(run[pos : m.start()]))
            out.extend(self._han_tokens(m.group()))
            pos = m.end()
        if pos < len(run):
            out.extend(_bigrams(run[pos:]))
        if self.options.stopwords:
            out = [t for t in out if t not in CHINESE_STOPWORDS]
        return out

    def _han_tokens(self, han: str) -> list[str]:
        mode = self.options.cjk
        if mode == "bigram":
            return _bigrams(han)
        cached = self._han_cache.get(han)
        if cached is not None:
            return cached
        words = self._jieba_words(han)
        if mode == "jieba+bigram" and len(han) > 1:
            # Bigrams add what jieba's Simplified dictionary misses (names, Traditional-only
            # words); a bigram that jieba already emitted as a word is not counted twice.
            seen = set(words)
            words = words + [b for b in _bigrams(han) if b not in seen]
        if len(self._han_cache) >= _CACHE_LIMIT:
            self._han_cache.clear()
        self._han_cache[han] = words
        return words

    def _jieba_words(self, han: str) -> list[str]:
        # Precise mode without the HMM guesser of unknown words: measured equal on DRCD, better
        # on CMRC2018 (0.987 vs 0.981) and faster; cut_for_search gained < 0.002 for 15% more
        # tokens (bench/analyzer_choice.py --explore). DagSegmenter gives jieba's exact words
        # (``lcut(han, HMM=False)``) about twice as fast.
        words: list[str] = _shared_resource("segmenter", _make_segmenter).cut(han)
        return words

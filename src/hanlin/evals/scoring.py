"""Answer scoring shared by evaluation runs and fine-tuning: SQuAD's exact match and token F1,
and "contains" (the normalised gold answer occurs in the normalised prediction).

Normalisation follows the SQuAD script — lower case, punctuation and English articles removed,
whitespace collapsed — extended for Chinese: full-width forms folded (NFKC), CJK punctuation
counts as punctuation, and every CJK character is its own token for F1 (as in the CMRC 2018
evaluation), since Chinese has no spaces between words. With several gold answers a
prediction scores its best match (SQuAD's rule).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence

from hanlin.text import is_cjk

__all__ = [
    "answer_tokens",
    "best_of",
    "contains_answer",
    "exact_match",
    "f1_score",
    "normalize_answer",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK_PUNCT = set("，。、；：？！「」『』（）《》〈〉【】〔〕…—～·“”‘’﹏")


def _is_punct(ch: str) -> bool:
    return ch in string.punctuation or ch in _CJK_PUNCT or unicodedata.category(ch).startswith("P")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation, extended to full-width forms and CJK punctuation."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if _is_punct(ch) else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Tokens for F1: whitespace words, with every CJK character a token of its own."""
    out: list[str] = []
    for word in normalize_answer(text).split():
        run = ""
        for ch in word:
            if is_cjk(ch):
                if run:
                    out.append(run)
                    run = ""
                out.append(ch)
            else:
                run += ch
        if run:
            out.append(run)
    return out


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when both normalise to the same text (spaces between CJK characters ignored)."""
    return float(answer_tokens(prediction) == answer_tokens(reference))


def f1_score(prediction: str, reference: str) -> float:
    """Token F1 between the normalised prediction and reference."""
    pred, ref = answer_tokens(prediction), answer_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains_answer(prediction: str, reference: str) -> float:
    """1.0 when the normalised reference occurs in the normalised prediction."""
    ref = "".join(answer_tokens(reference))
    return float(bool(ref) and ref in "".join(answer_tokens(prediction)))


def best_of(
    score: Callable[[str, str], float], prediction: str, references: Sequence[str]
) -> float:
    """The best of ``score(prediction, reference)`` over the gold answers (0.0 without any)."""
    return max((float(score(prediction, ref)) for ref in references), default=0.0)

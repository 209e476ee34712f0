"""jieba's precise mode (no HMM), same dictionary and same words, in one faster pass.

``jieba.Tokenizer.lcut(text, HMM=False)`` builds a dict of word ends for every position, then a
dict of best routes with a generator per position. :class:`DagSegmenter` does the same
computation — every dictionary word that starts at a position, scored ``log(freq / total)``,
best route from the right, ties to the longer word exactly like jieba's ``max`` over
``(score, end)`` — with the log-probabilities computed once and plain lists. Tests check the
output against jieba itself.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["DagSegmenter"]

# The characters jieba segments with its dictionary (``jieba.re_han_default`` without the Latin
# part, which never occurs inside a Han run); any other Han character is a word on its own.
_BLOCK_RE = re.compile("([\u4e00-\u9fd5]+)")
_PREFIX = object()  # a dictionary key that is only a prefix of longer words (frequency 0)


class DagSegmenter:
    """Segments runs of Han characters exactly like ``tokenizer.lcut(run, HMM=False)``."""

    def __init__(self, tokenizer: Any) -> None:
        tokenizer.check_initialized()
        logtotal = math.log(tokenizer.total)
        self._miss = 0.0 - logtotal  # jieba scores an unknown single character as freq 1
        self._logp: dict[str, Any] = {
            w: (math.log(f) - logtotal if f else _PREFIX) for w, f in tokenizer.FREQ.items()
        }

    def cut(self, run: str) -> list[str]:
        """Words of ``run``, a string of Han characters only (no spaces, Latin or punctuation)."""
        out: list[str] = []
        for i, part in enumerate(_BLOCK_RE.split(run)):
            if i % 2:
                self._cut_block(part, out)
            else:
                out.extend(part)  # characters outside jieba's range: one word each
        return out

    def _cut_block(self, s: str, out: list[str]) -> None:
        logp = self._logp
        n = len(s)
        score = [0.0] * (n + 1)
        end = [0] * n
        for k in range(n - 1, -1, -1):
            best = 0.0
            best_end = 0
            j = k + 1
            while j <= n:
                p = logp.get(s[k:j])
                if p is None:
                    break
                if p is not _PREFIX:
                    sc = p + score[j]
                    if best_end == 0 or sc >= best:  # ties go to the longer word, as in jieba
                        best, best_end = sc, j
                j += 1
            if best_end == 0:  # no dictionary word starts here: the character alone
                best, best_end = self._miss + score[k + 1], k + 1
            score[k] = best
            end[k] = best_end
        k = 0
        while k < n:
            out.append(s[k : end[k]])
            k = end[k]

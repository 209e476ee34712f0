"""Chinese person names from jieba's part-of-speech tagger (``nr``) — opt-in.

Nothing offline finds names well enough to mask them by default (docs/guard.md measures this
one); a deployment turns it on with ``guard.recognizers = [..., "jieba_person"]`` or installs a
better recognizer under the ``hanlin.pii_recognizers`` entry-point group.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

from hanlin.guard.base import RECOGNIZERS


@RECOGNIZERS.register("jieba_person")
class JiebaPersonRecognizer:
    """Words jieba tags ``nr`` (person name), two to four characters long."""

    name: ClassVar[str] = "jieba_person"
    entities: ClassVar[tuple[str, ...]] = ("PERSON",)
    default: ClassVar[bool] = False

    _lock = threading.Lock()
    _tagger: ClassVar[Any] = None

    @classmethod
    def _load(cls) -> Any:
        with cls._lock:
            if cls._tagger is None:
                import jieba
                import jieba.posseg

                jieba.setLogLevel(60)
                cls._tagger = jieba.posseg.POSTokenizer(jieba.Tokenizer())
        return cls._tagger

    def find(self, text: str) -> Iterator[tuple[str, int, int]]:
        pos = 0
        for pair in self._load().cut(text):
            word, flag = pair.word, pair.flag
            if flag == "nr" and 2 <= len(word) <= 4:
                yield "PERSON", pos, pos + len(word)
            pos += len(word)

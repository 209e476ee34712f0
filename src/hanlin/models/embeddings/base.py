"""The embedding-model protocol and the registry that finds providers by name.

Providers register under the ``hanlin.embedders`` entry-point group — the built-in ones exactly
like a third-party package would — so ``get_embedder("fast-use")`` needs no if/elif on names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from hanlin.registry import Registry

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class EmbeddingModel(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``name`` + ``version`` identify the vector space: a knowledge base records both and refuses
    to mix vectors from another space. Constructors are cheap; weights load on first use.
    """

    name: str
    version: str
    dim: int
    #: how many texts one call handles well; callers batch to this size.
    batch_size: int

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Embed passages for indexing; returns shape (len(texts), dim)."""
        ...

    def embed_query(self, text: str) -> Vectors:
        """Embed one search query; returns shape (dim,)."""
        ...


EMBEDDERS: Registry[Callable[[], EmbeddingModel]] = Registry(
    "embedding model", "hanlin.embedders", hint="set knowledge.embedding_model in hanlin.toml"
)


def available_embedders() -> dict[str, str]:
    """Registered embedding providers: name → ``module:Class``."""
    return {name: EMBEDDERS.origin(name) for name in EMBEDDERS}


def get_embedder(name: str) -> EmbeddingModel:
    """Instantiate a registered embedding model by name (cheap: no weights load yet).

    Raises :class:`~hanlin.errors.NotFoundError` listing the registered names."""
    return EMBEDDERS.lookup(name)()


def normalize(vectors: npt.NDArray[np.floating]) -> Vectors:
    """L2-normalise rows (zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return (v / norms).astype(np.float32, copy=False)

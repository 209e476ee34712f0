"""Hanlin: a self-hostable LLM application platform in one Python package."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# One BLAS thread per process unless the user chose otherwise. Multi-threaded OpenBLAS spins
# under CPU contention: query embedding took 300 ms with it and 4 ms without on 2 busy cores
# (docs/benchmarks.md). Embedding scales by worker processes instead (models/embeddings/pool.py).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

if TYPE_CHECKING:
    from hanlin.knowledge.kb import KnowledgeBase
    from hanlin.rag.engine import ask


def __getattr__(name: str) -> Any:
    # keep `import hanlin` cheap: the knowledge stack loads only when used
    if name == "KnowledgeBase":
        from hanlin.knowledge.kb import KnowledgeBase

        return KnowledgeBase
    if name == "ask":
        from hanlin.rag.engine import ask

        return ask
    raise AttributeError(name)


__all__ = ["KnowledgeBase", "__version__", "ask"]

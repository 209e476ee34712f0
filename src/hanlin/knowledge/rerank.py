"""The reranker protocol. No reranker ships offline; remote ``/rerank`` APIs and LLM-based
rerankers implement this and plug into :meth:`hanlin.KnowledgeBase.search` via ``reranker=``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, passage) pairs; higher is more relevant."""

    name: str

    def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage, in the given order."""
        ...

"""Answers with citations from knowledge bases (retrieval-augmented generation).

``from hanlin.rag import ask, RagEngine`` — names load on first use, so importing
``hanlin.rag.base`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hanlin.rag.base import Answer
    from hanlin.rag.engine import RagEngine, ask

_EXPORTS = {
    "Answer": "hanlin.rag.base",
    "RagEngine": "hanlin.rag.engine",
    "ask": "hanlin.rag.engine",
}

__all__ = ["Answer", "RagEngine", "ask"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hanlin.rag' has no attribute {name!r}")
    return getattr(import_module(module), name)

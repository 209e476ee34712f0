"""Hanlin: a self-hostable LLM application platform in one Python package."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from hanlin.knowledge.kb import KnowledgeBase


def __getattr__(name: str) -> Any:
    # keep `import hanlin` cheap: the knowledge stack loads only when used
    if name == "KnowledgeBase":
        from hanlin.knowledge.kb import KnowledgeBase

        return KnowledgeBase
    raise AttributeError(name)


__all__ = ["KnowledgeBase", "__version__"]

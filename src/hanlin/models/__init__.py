"""The model gateway: one typed API for chat, embeddings and rerank over every provider.

``from hanlin.models import Gateway, Message, Tool`` — names load on first use, so importing
``hanlin.models.embeddings`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Gateway": "hanlin.models.gateway",
    "ChatOptions": "hanlin.models.types",
    "ChatResponse": "hanlin.models.types",
    "Message": "hanlin.models.types",
    "Tool": "hanlin.models.types",
    "ToolCall": "hanlin.models.types",
    "Usage": "hanlin.models.types",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hanlin.models' has no attribute {name!r}")
    return getattr(import_module(module), name)

"""The bundled embedding models (``hanlin.embedders`` registry) behind the gateway's protocol.

``local-embed/fast-use`` and ``local-embed/e5-small`` embed in-process, offline, with the
same models knowledge bases use, so ``/v1/embeddings`` and a KB agree on the vector space.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from hanlin.errors import NotFoundError
from hanlin.models.base import Endpoint, ModelInfo, Price
from hanlin.models.embeddings.base import EmbeddingModel, available_embedders, get_embedder
from hanlin.models.errors import UnsupportedFeatureError
from hanlin.models.types import ChatOptions, ChatResponse, Message, StreamEvent
from hanlin.text import count_tokens

_DIMS = {"fast-use": 512, "e5-small": 384}


class LocalEmbeddingProvider:
    """Serves the registered local embedding models; chat and rerank are not offered."""

    supports_streaming: ClassVar[bool] = False
    supports_tools: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = True
    supports_rerank: ClassVar[bool] = False

    def __init__(self, endpoint: Endpoint, key: str | None = None, **_: Any) -> None:
        self.endpoint = endpoint
        self._models: dict[str, EmbeddingModel] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "LocalEmbeddingProvider()"

    @staticmethod
    def presets() -> Sequence[Endpoint]:
        models = tuple(
            ModelInfo(
                name,
                512,
                Price(0.0, 0.0),
                "embedding",
                supports_tools=False,
                supports_json_schema=False,
                dim=_DIMS.get(name),
            )
            for name in sorted(available_embedders())
        )
        return (
            Endpoint(
                "local-embed",
                "local_embed",
                models=models,
                dialect="",
                description="Bundled offline embedding models (the ones knowledge bases use)",
            ),
        )

    def _model(self, name: str) -> EmbeddingModel:
        with self._lock:
            if name not in self._models:
                try:
                    self._models[name] = get_embedder(name)
                except NotFoundError as exc:
                    names = ", ".join(f"local-embed/{n}" for n in sorted(available_embedders()))
                    raise NotFoundError(
                        f"no local embedding model '{name}'", hint=f"use one of: {names}"
                    ) from exc
            return self._models[name]

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        embedder = self._model(model)
        vectors = await asyncio.to_thread(embedder.embed_documents, list(texts))
        return [row.tolist() for row in vectors]

    def count_tokens(self, model: str, text: str) -> int:
        return count_tokens(text)

    async def complete(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> ChatResponse:
        raise self._no_chat(model)

    async def stream(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[StreamEvent]:
        raise self._no_chat(model)
        yield  # pragma: no cover

    async def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> list[tuple[int, float]]:
        raise UnsupportedFeatureError(
            "local-embed has no rerank models",
            hint="configure a rerank endpoint (e.g. siliconflow/BAAI/bge-reranker-v2-m3)",
            provider=f"local-embed/{model}",
        )

    def _no_chat(self, model: str) -> UnsupportedFeatureError:
        return UnsupportedFeatureError(
            f"local-embed/{model} is an embedding model and cannot chat",
            hint="chat with local/gemma3-270m or a remote model",
            provider=f"local-embed/{model}",
        )

    async def aclose(self) -> None:
        self._models.clear()

"""The provider protocol, endpoint descriptions (presets) and the registry that finds them.

A *provider class* speaks one wire protocol (OpenAI-compatible, Anthropic Messages, llama.cpp
in-process). An *endpoint* is a named place that speaks it — ``deepseek``, ``qwen``, ``local`` —
with its base URL, key variable, models, context lengths and prices. Model names are
``endpoint/model``. Provider classes register under the ``hanlin.providers`` entry-point group,
the built-in ones exactly like a third-party package would, and each lists the endpoints it
serves through :meth:`ChatProvider.presets`; no code branches on provider names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from hanlin.models.types import ChatOptions, ChatResponse, Message, StreamEvent
from hanlin.registry import Registry

PROVIDER_GROUP = "hanlin.providers"


@dataclass(frozen=True, slots=True)
class Price:
    """Price per 1M tokens, in the currency the provider bills in."""

    input: float
    output: float
    cached_input: float | None = None
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What Hanlin knows about one model of an endpoint."""

    name: str
    context: int = 8192
    price: Price | None = None
    kind: str = "chat"  # chat | embedding | rerank
    supports_tools: bool = True
    supports_images: bool = False
    supports_json_schema: bool = True
    #: output dimension, for embedding models
    dim: int | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A named place that serves models over one provider class's protocol.

    ``dialect`` names the adapter for the endpoint's deviations from the protocol (auth scheme,
    usage fields, tool-call deltas); ``options`` are provider-specific settings (e.g. the GGUF
    path for ``local``).
    """

    name: str
    provider: str
    base_url: str = ""
    key_env: str | None = None
    models: tuple[ModelInfo, ...] = ()
    dialect: str = "openai"
    description: str = ""
    docs_url: str = ""
    #: models not in ``models`` are still allowed (local engines serve whatever is loaded)
    open_model_list: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_key(self) -> bool:
        return self.key_env is not None

    def model(self, name: str) -> ModelInfo | None:
        for info in self.models:
            if info.name == name:
                return info
        return None


@runtime_checkable
class ChatProvider(Protocol):
    """What a provider implements: chat (streamed or not), and optionally embed and rerank.

    One instance serves one endpoint; it is cheap to construct (no network, no model load).
    ``key`` is the revealed API key or None. Implementations raise the typed errors of
    :mod:`hanlin.models.errors`.
    """

    supports_streaming: ClassVar[bool]
    supports_tools: ClassVar[bool]
    supports_embeddings: ClassVar[bool]
    supports_rerank: ClassVar[bool]

    endpoint: Endpoint

    def stream(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[StreamEvent]:
        """Yield stream events for one chat call."""
        ...

    async def complete(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> ChatResponse:
        """One non-streamed chat call."""
        ...

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """Embedding vectors, one per text (providers without embeddings raise)."""
        ...

    async def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> list[tuple[int, float]]:
        """(document index, relevance score) best first (providers without rerank raise)."""
        ...

    async def aclose(self) -> None:
        """Release connections and loaded models."""
        ...


class ProviderFactory(Protocol):
    """A provider class as the registry sees it."""

    def __call__(self, endpoint: Endpoint, key: str | None, **kw: Any) -> ChatProvider: ...

    @staticmethod
    def presets() -> Sequence[Endpoint]: ...


PROVIDERS: Registry[ProviderFactory] = Registry(
    "provider", PROVIDER_GROUP, hint="providers register under the hanlin.providers entry points"
)


def provider_classes() -> dict[str, ProviderFactory]:
    """Registered provider classes by protocol name (``openai_compat``, ``anthropic`` …)."""
    return dict(PROVIDERS)


def builtin_endpoints(classes: dict[str, ProviderFactory] | None = None) -> dict[str, Endpoint]:
    """Every endpoint the registered provider classes ship as presets, by name."""
    endpoints: dict[str, Endpoint] = {}
    for cls in (classes or provider_classes()).values():
        for preset in cls.presets():
            endpoints[preset.name] = preset
    return endpoints

"""Anthropic's Messages API over httpx: our messages, tools and options in, typed events out.

No SDK: one pooled ``httpx.AsyncClient`` per provider instance, requests and responses as plain
dicts (no schema validation on the hot path). JSON output has no native switch in the Messages
API, so ``response_format`` is served by the forced-tool trick and handed back as answer text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, ClassVar

import httpx

from hanlin.models.base import Endpoint, ModelInfo, Price
from hanlin.models.errors import (
    MissingKeyError,
    ModelError,
    UnsupportedFeatureError,
    UpstreamUnavailableError,
)
from hanlin.models.providers.anthropic_messages import (
    API_VERSION,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TIMEOUT,
    LIMITS,
    broken,
    http_error,
    parse_response,
    request_body,
    timed_out,
    translate_stream,
)
from hanlin.models.providers.http_shared import drain, malformed
from hanlin.models.types import ChatOptions, ChatResponse, Message, StreamEvent

# Prices: https://www.anthropic.com/pricing (API tab; also docs.anthropic.com/en/docs/about-claude/
# pricing), USD per 1M tokens, input / output / cache hits; prompts up to 200K tokens.
# Names are the API's model aliases (https://docs.anthropic.com/en/docs/about-claude/models).
_MODELS = (
    ModelInfo("claude-opus-4-1", 200_000, Price(15.0, 75.0, 1.5), supports_images=True),
    ModelInfo("claude-sonnet-4-5", 200_000, Price(3.0, 15.0, 0.3), supports_images=True),
    ModelInfo("claude-sonnet-4-0", 200_000, Price(3.0, 15.0, 0.3), supports_images=True),
    ModelInfo("claude-haiku-4-5", 200_000, Price(1.0, 5.0, 0.1), supports_images=True),
    ModelInfo("claude-3-5-haiku-latest", 200_000, Price(0.8, 4.0, 0.08), supports_images=True),
)


# --- the provider -------------------------------------------------------------------------------


class AnthropicProvider:
    """Claude models over the Messages API (``POST {base_url}/messages``).

    ``default_max_tokens`` fills the API's required ``max_tokens`` when the options leave it
    out (``endpoint.options["max_tokens"]`` overrides it); ``timeout`` (seconds) bounds every
    network wait when ``options.timeout`` is not set. A ``client`` passed in is used as is and
    left open by :meth:`aclose`. Other keyword settings are accepted and ignored, so one set
    of settings can be handed to every provider class.
    """

    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = False
    supports_rerank: ClassVar[bool] = False

    def __init__(
        self,
        endpoint: Endpoint,
        key: str | None,
        *,
        client: httpx.AsyncClient | None = None,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        timeout: float = DEFAULT_TIMEOUT,
        **kw: Any,
    ) -> None:
        self.endpoint = endpoint
        self._client = client
        self._owns_client = client is None
        self._timeout = timeout
        self._max_tokens = int(endpoint.options.get("max_tokens", default_max_tokens))
        self._url = endpoint.base_url.rstrip("/") + "/messages"
        self._missing_key = key is None and endpoint.needs_key
        self._headers = {"anthropic-version": API_VERSION, "content-type": "application/json"}
        if key is not None:
            self._headers["x-api-key"] = key

    def __repr__(self) -> str:  # never the key
        return f"AnthropicProvider(endpoint={self.endpoint.name!r}, url={self._url!r})"

    @staticmethod
    def presets() -> Sequence[Endpoint]:
        return (
            Endpoint(
                name="anthropic",
                provider="anthropic",
                base_url="https://api.anthropic.com/v1",
                key_env="ANTHROPIC_API_KEY",
                models=_MODELS,
                dialect="anthropic",
                description="Anthropic's Claude models over the Messages API",
                docs_url="https://docs.anthropic.com/en/api/messages",
            ),
        )

    def _http(self) -> httpx.AsyncClient:
        if self._missing_key:
            name = self.endpoint.name
            raise MissingKeyError(
                f"no API key for {name}",
                hint=f"run `hanlin keys set {name}` or set {self.endpoint.key_env}",
                provider=name,
            )
        client = self._client
        if client is None:
            client = self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 10.0)),
                limits=LIMITS,
            )
        return client

    def _redact(self, exc: ModelError) -> ModelError:
        # Upstream error text can echo the request; the key must not reach the user or logs.
        key = self._headers.get("x-api-key")
        if key and key in str(exc):
            exc.message = exc.message.replace(key, "***")
            exc.args = tuple(a.replace(key, "***") if isinstance(a, str) else a for a in exc.args)
        return exc

    async def complete(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> ChatResponse:
        """One non-streamed call; ``options.timeout`` bounds the whole call.

        Raises the typed errors of :mod:`hanlin.models.errors`.
        """
        provider = f"{self.endpoint.name}/{model}"
        body, json_mode = request_body(
            model, messages, options, max_tokens=self._max_tokens, stream=False
        )
        client = self._http()
        try:
            async with asyncio.timeout(options.timeout):
                response = await client.post(self._url, json=body, headers=self._headers)
        except (TimeoutError, httpx.TimeoutException):
            raise timed_out(provider, options.timeout or self._timeout, streaming=False) from None
        except httpx.TransportError as exc:
            raise broken(provider, exc) from None
        if response.status_code >= 400:
            raise self._redact(http_error(response, provider))
        try:
            data = json.loads(response.content)
        except ValueError:
            raise self._redact(malformed(provider, response.content)) from None
        try:
            return parse_response(data, model, json_mode)
        except (KeyError, TypeError, AttributeError) as exc:
            raise UpstreamUnavailableError(
                f"{provider} sent a response of an unexpected shape ({exc!r} missing or wrong)",
                provider=provider,
            ) from None

    async def stream(
        self, model: str, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[StreamEvent]:
        """Stream events for one call; ``options.timeout`` bounds the wait for the first token.

        A connection that breaks mid-stream raises :class:`UpstreamUnavailableError` after the
        events already received.
        """
        provider = f"{self.endpoint.name}/{model}"
        body, json_mode = request_body(
            model, messages, options, max_tokens=self._max_tokens, stream=True
        )
        client = self._http()
        request = client.build_request("POST", self._url, json=body, headers=self._headers)
        deadline = None
        if options.timeout is not None:
            deadline = asyncio.get_running_loop().time() + options.timeout
        try:
            async with asyncio.timeout_at(deadline):
                response = await client.send(request, stream=True)
        except (TimeoutError, httpx.TimeoutException):
            raise timed_out(provider, options.timeout or self._timeout, streaming=True) from None
        except httpx.TransportError as exc:
            raise broken(provider, exc) from None
        try:
            if response.status_code >= 400:
                await response.aread()
                raise http_error(response, provider)
            lines = response.aiter_lines()
            events = translate_stream(
                lines, json_mode=json_mode, provider=provider, deadline=deadline
            )
            async with aclosing(events):
                async for event in events:
                    yield event
            await drain(lines)
        except ModelError as exc:
            raise self._redact(exc) from None
        except (TimeoutError, httpx.TimeoutException):
            raise timed_out(provider, options.timeout or self._timeout, streaming=True) from None
        except httpx.TransportError as exc:
            raise broken(provider, exc, mid_stream=True) from None
        finally:
            await response.aclose()

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        raise UnsupportedFeatureError(
            "Anthropic has no embeddings API",
            hint="use an embedding model of another provider (see `hanlin models ls`)",
            provider=self.endpoint.name,
        )

    async def rerank(
        self, model: str, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> list[tuple[int, float]]:
        raise UnsupportedFeatureError(
            "Anthropic has no rerank API",
            hint="use a rerank model of another provider (see `hanlin models ls`)",
            provider=self.endpoint.name,
        )

    async def aclose(self) -> None:
        """Close the HTTP client this provider created (a client passed in stays open)."""
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

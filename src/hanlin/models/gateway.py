"""The gateway: one typed API over every provider — chat, streaming, embeddings, rerank.

RAG, the server and agents call models only through :class:`Gateway`. It resolves names
(routes, aliases, ``endpoint/model``), checks budgets, consults the opt-in cache, routes with
retries and failover, prices the call and records it in the usage ledger. Async methods are the
core; the sync ones run them on a private event-loop thread for scripts and the CLI.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from hanlin.access import caller as access
from hanlin.config import Settings, load_settings
from hanlin.errors import HanlinError, InvalidInputError
from hanlin.guard.detect import Detector
from hanlin.guard.policy import current_kb, is_user_facing
from hanlin.models import guard_model, guarding
from hanlin.models.base import ChatProvider
from hanlin.models.cache import ResponseCache, cache_key
from hanlin.models.catalog import AliasStore, Catalog, ConnectionStore, Deployment, Route
from hanlin.models.errors import ModelError, UnsupportedFeatureError
from hanlin.models.keys import KeyStore, resolve_key
from hanlin.models.portal import Portal, SyncChatStream
from hanlin.models.pricing import CallRecord, call_cost
from hanlin.models.routing import Router
from hanlin.models.types import (
    ChatOptions,
    ChatResponse,
    Finish,
    ImagePart,
    Message,
    StreamAccumulator,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from hanlin.models.usage import open_ledger
from hanlin.text import count_tokens
from hanlin.tracing import genai, spans
from hanlin.tracing.records import register_secrets
from hanlin.tracing.setup import configure as configure_tracing

T = TypeVar("T")
MessagesLike = str | Message | Sequence[Message | dict[str, Any]]


def as_messages(messages: MessagesLike) -> list[Message]:
    """Accept a prompt string, a Message, or a list of Messages / OpenAI-format dicts."""
    from hanlin.models.convert import message_from_openai

    if isinstance(messages, str):
        return [Message.user(messages)]
    if isinstance(messages, Message):
        return [messages]
    return [
        m if isinstance(m, Message) else message_from_openai(m, i) for i, m in enumerate(messages)
    ]


_NO_OPTIONS = ChatOptions()


def as_options(options: ChatOptions | None, overrides: dict[str, Any]) -> ChatOptions:
    """Options from an object and/or keyword arguments; unknown names are an error."""
    if not overrides:
        return options if options is not None else _NO_OPTIONS
    data = options.model_dump(exclude_none=True) if options is not None else {}
    data.update(overrides)
    try:
        return ChatOptions(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        raise InvalidInputError(
            f"invalid option {where}: {first['msg']}",
            hint="options are temperature, top_p, max_tokens, stop, seed, response_format, "
            "tools, tool_choice, timeout, user, extra_body",
        ) from None


@dataclass(slots=True)
class TokenCount:
    """A token count and whether it came from the model's own tokenizer."""

    tokens: int
    exact: bool


class ChatStream:
    """An async iterator of stream events; after it ends, ``response`` holds the whole answer."""

    def __init__(self, events: AsyncIterator[StreamEvent]) -> None:
        self._events = events
        self.response: ChatResponse | None = None
        self.served_by = ""

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()


class Gateway:
    """The model gateway for one settings object (cheap to build; nothing connects until used)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        keys: KeyStore | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        configure_tracing(self.settings)
        self.models = self.settings.models
        self.catalog = Catalog(
            self.models,
            AliasStore(self.settings.home / "aliases.json"),
            ConnectionStore(self.settings.home / "connections.json"),
        )
        self.keys = keys or KeyStore(self.settings.home / "keys.json")
        self.router = Router(self.models)
        self.ledger = open_ledger(self.settings)
        self._cache: ResponseCache | None = None
        self._providers: dict[str, ChatProvider] = {}
        self._retired: list[ChatProvider] = []
        self._secrets: list[str] = []
        self._http_client = http_client
        self._portal: Portal | None = None

    # -- providers ---------------------------------------------------------------------------

    def provider(self, dep: Deployment) -> ChatProvider:
        """The (shared) provider instance for a deployment's endpoint."""
        name = dep.endpoint.name
        provider = self._providers.get(name)
        if provider is None:
            key = resolve_key(dep.endpoint, self.keys)
            factory = self.catalog.factory(dep.endpoint)
            kw: dict[str, Any] = {}
            if self._http_client is not None and dep.endpoint.provider == "openai_compat":
                kw["client"] = self._http_client
            if key is not None:
                self._secrets.append(key.reveal())
                register_secrets([key.reveal()])
            provider = factory(dep.endpoint, key.reveal() if key else None, **kw)
            self._providers[name] = provider
        return provider

    def reload(self, changed: Sequence[str] = ()) -> None:
        """Re-read the endpoints (``connections.json``) after an admin changed them, without a
        restart. Later calls see the new catalog; the providers of endpoints that changed, or
        whose key changed (``changed``), are rebuilt on their next call, and the old ones are
        closed with the gateway so calls already running on them finish."""
        old = self.catalog
        self.catalog = Catalog(self.models, old.aliases, old.connections)
        for name in list(self._providers):
            if name in changed or self.catalog.endpoints.get(name) != old.endpoints.get(name):
                self._retired.append(self._providers.pop(name))

    @property
    def cache(self) -> ResponseCache:
        if self._cache is None:
            self._cache = ResponseCache(
                self.settings.home / "cache" / "responses.db", self.models.cache_ttl_days
            )
        return self._cache

    def resolve(self, model: str | None) -> Route:
        return self.catalog.resolve(model or self.models.default)

    def trace_detector(self, model: str | None, user: str | None = None) -> Detector | None:
        """What masks the content recorded around calls to ``model`` by ``user`` (default: the
        caller) — a RAG answer's question, an agent's tool calls: the detector when the policy
        masks any of its deployments (the :func:`~hanlin.guard.policy.kb_scope` rule applies),
        else None, also for a model that does not resolve."""
        try:
            route = self.resolve(model)
        except HanlinError:
            return None
        key = user or access.current().user or ""
        return guarding.trace_detector(self.settings.guard, route, key, current_kb())

    # -- chat --------------------------------------------------------------------------------

    def _check(self, dep: Deployment, messages: Sequence[Message], options: ChatOptions) -> None:
        info = dep.info
        if info is None:
            return
        if options.tools and not info.supports_tools:
            raise UnsupportedFeatureError(
                f"{dep.label} does not support tool calling",
                hint="pick a model that does, or route tools through an agent with another model",
                provider=dep.label,
            )
        if not info.supports_images and any(
            isinstance(m.content, list) and any(isinstance(p, ImagePart) for p in m.content)
            for m in messages
        ):
            raise UnsupportedFeatureError(
                f"{dep.label} cannot read images",
                hint="use a vision model (see `hanlin models ls`)",
                provider=dep.label,
            )

    def _projected(self, route: Route, msgs: Sequence[Message], opts: ChatOptions) -> float:
        """The least a call can cost in USD (estimated prompt, plus max_tokens if set)."""
        if not self.ledger.enforcing:
            return 0.0
        usage = Usage(sum(count_tokens(m.text) for m in msgs), opts.max_tokens or 0)
        costs = [
            c.usd
            for d in route.deployments
            if (c := call_cost(usage, self.catalog.price(d), self.models.usd_to_cny)) is not None
        ]
        return min(costs, default=0.0)

    def _record(
        self, dep: Deployment, resp: ChatResponse, key: str, started: float, *, hit: bool = False
    ) -> None:
        resp.latency_ms = (time.perf_counter() - started) * 1000
        resp.served_by = resp.served_by or dep.label
        resp.cost = call_cost(resp.usage, self.catalog.price(dep), self.models.usd_to_cny)
        cost = resp.cost
        self.ledger.record(
            CallRecord(
                time.time(),
                dep.label,
                key or "",
                resp.usage.prompt_tokens,
                resp.usage.completion_tokens,
                resp.usage.cached_tokens,
                0.0 if hit or cost is None else cost.usd,
                0.0 if hit or cost is None else cost.cny,
                resp.latency_ms,
                True,
                hit,
            )
        )

    async def achat(
        self,
        messages: MessagesLike,
        model: str | None = None,
        options: ChatOptions | None = None,
        *,
        cache: bool | None = None,
        **overrides: Any,
    ) -> ChatResponse:
        """One chat call, routed, priced and recorded. Raises typed model errors, and
        :class:`~hanlin.errors.AccessDeniedError` when the caller lacks the ``chat`` scope."""
        opts = _as_caller(as_options(options, overrides))
        msgs = as_messages(messages)
        route = self.resolve(model)
        key = opts.user or ""
        self.ledger.check(key, self._projected(route, msgs, opts))
        g = self.settings.guard
        sp, guarded = guarding.call_span(g, route, key, msgs, opts, current_kb())
        try:
            resp = await self._achat(route, msgs, opts, key, cache, sp, guarded, is_user_facing())
        except BaseException as exc:
            spans.finish(sp, exc)
            raise
        spans.finish(sp)
        return resp

    async def _achat(
        self,
        route: Route,
        msgs: list[Message],
        opts: ChatOptions,
        key: str,
        cache: bool | None,
        sp: Any,
        guarded: guarding.CallGuard,
        facing: bool = False,
    ) -> ChatResponse:
        started = time.perf_counter()
        if r := await guard_model.screen_input(self, route, msgs, key, sp, guarded):
            return r
        use_cache = self.models.cache if cache is None else cache
        ck = cache_key(route.name, msgs, opts) if use_cache else ""
        if use_cache:
            hit = self.cache.get(ck)
            if hit is not None:
                self._record(route.deployments[0], hit, key, started, hit=True)
                guarding.served(sp, guarded, route.deployments[0], hit, cached=True)
                return hit

        async def attempt(dep: Deployment) -> ChatResponse:
            self._check(dep, msgs, opts)
            masker, sent = guarding.guard_messages(
                self.settings.guard, dep, route.name, key, guarded.kb, msgs, guarded
            )
            resp = await self.provider(dep).complete(dep.model, sent, opts)
            if masker is not None:
                guarding.restore_response(
                    masker, resp, tool_arguments=self.settings.guard.restore_tool_arguments
                )
            guarding.police_response(self.settings.guard, resp, sp, facing, guarded)
            return resp

        try:
            dep, resp = await self.router.call(route, attempt)
            await guard_model.screen_output(self, route, msgs, resp, key, sp, guarded)
        except ModelError as exc:
            raise exc.redact(self._secrets) from exc.__cause__
        self._record(dep, resp, key, started)
        guarding.served(sp, guarded, dep, resp)
        if use_cache:
            self.cache.put(ck, resp)
        return resp

    def astream(
        self,
        messages: MessagesLike,
        model: str | None = None,
        options: ChatOptions | None = None,
        *,
        cache: bool | None = None,
        **overrides: Any,
    ) -> ChatStream:
        """Stream a chat call. Iterate the events; ``.response`` is complete afterwards.
        The caller's access is checked here, before the first event (see :meth:`achat`)."""
        opts = _as_caller(as_options(options, overrides))
        msgs = as_messages(messages)
        route = self.resolve(model)
        key = opts.user or ""
        self.ledger.check(key, self._projected(route, msgs, opts))
        use_cache = self.models.cache if cache is None else cache
        # the span starts here, in the caller's context: the stream's steps may run elsewhere
        sp, guarded = guarding.call_span(self.settings.guard, route, key, msgs, opts, current_kb())
        sp.set_attribute("hanlin.stream", True)
        stream: ChatStream = ChatStream(
            self._traced_stream(
                sp,
                self._stream(
                    route,
                    msgs,
                    opts,
                    key,
                    use_cache,
                    sp,
                    lambda: stream,
                    guarded,
                    is_user_facing(),
                ),
            )
        )
        return stream

    @staticmethod
    async def _traced_stream(
        sp: Any, events: AsyncIterator[StreamEvent]
    ) -> AsyncIterator[StreamEvent]:
        try:
            async for event in events:
                yield event
        except BaseException as exc:
            spans.finish(sp, None if isinstance(exc, GeneratorExit) else exc)
            raise
        spans.finish(sp)

    async def _stream(
        self,
        route: Route,
        msgs: list[Message],
        opts: ChatOptions,
        key: str,
        use_cache: bool,
        sp: Any,
        handle: Any,
        guarded: guarding.CallGuard,
        facing: bool = False,
    ) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        ck = cache_key(route.name, msgs, opts) if use_cache else ""
        refused = await guard_model.screen_input(self, route, msgs, key, sp, guarded)
        hit = refused or (self.cache.get(ck) if use_cache else None)
        if hit is not None:
            for event in _replay(hit):
                yield event
            if refused is None:
                self._record(route.deployments[0], hit, key, started, hit=True)
                guarding.served(sp, guarded, route.deployments[0], hit, cached=True)
            handle().response, handle().served_by = hit, hit.served_by
            return
        acc = StreamAccumulator()
        served: list[Deployment] = []

        def open_stream(dep: Deployment) -> AsyncIterator[StreamEvent]:
            self._check(dep, msgs, opts)
            masker, sent = guarding.guard_messages(
                self.settings.guard, dep, route.name, key, guarded.kb, msgs, guarded
            )
            events = self.provider(dep).stream(dep.model, sent, opts)
            if masker is not None:
                restore_args = self.settings.guard.restore_tool_arguments
                events = guarding.restore_stream(masker, events, tool_arguments=restore_args)
            return guarding.police_stream(self.settings.guard, events, sp, facing, guarded)

        try:
            async for event in self.router.stream(route, open_stream, served.append):
                acc.add(event)
                yield event
        except ModelError as exc:
            raise exc.redact(self._secrets) from exc.__cause__
        dep = served[-1] if served else route.deployments[0]
        resp = acc.response(dep.model)
        self._record(dep, resp, key, started)
        guarding.served(sp, guarded, dep, resp)
        handle().response, handle().served_by = resp, dep.label
        if use_cache:
            self.cache.put(ck, resp)

    # -- embeddings and rerank ----------------------------------------------------------------

    async def aembed(self, texts: Sequence[str], model: str) -> list[list[float]]:
        """Embedding vectors for texts, one per text, from an embedding model."""
        access.require("chat")
        route = self.resolve(model)

        guarded = guarding.CallGuard()

        async def attempt(dep: Deployment) -> list[list[float]]:
            sent = guarding.guard_texts(self.settings.guard, dep, route.name, texts, guarded)
            return await self.provider(dep).embed(dep.model, sent)

        vectors: list[list[float]] = await self._traced(
            "embeddings", route, len(texts), attempt, guarded
        )
        return vectors

    async def arerank(
        self, query: str, documents: Sequence[str], model: str, top_n: int | None = None
    ) -> list[tuple[int, float]]:
        """(index, score) of the documents, most relevant first."""
        access.require("chat")
        route = self.resolve(model)

        guarded = guarding.CallGuard()

        async def attempt(dep: Deployment) -> list[tuple[int, float]]:
            q, *docs = guarding.guard_texts(
                self.settings.guard, dep, route.name, [query, *documents], guarded
            )
            return await self.provider(dep).rerank(dep.model, q, docs, top_n)

        ranked: list[tuple[int, float]] = await self._traced(
            "rerank", route, len(documents), attempt, guarded
        )
        return ranked

    async def _traced(
        self,
        operation: str,
        route: Route,
        inputs: int,
        attempt: Any,
        guarded: guarding.CallGuard,
    ) -> Any:
        """One routed embeddings or rerank call in its span; errors redacted."""
        with spans.span(f"{operation} {route.name}", operation=operation) as sp:
            sp.set_attribute("hanlin.inputs", inputs)
            try:
                dep, result = await self.router.call(route, attempt)
            except ModelError as exc:
                raise exc.redact(self._secrets) from exc.__cause__
            genai.served(sp, dep)
            if guarded:
                guarding.record(sp, *guarded[-1])
            return result

    def count_tokens(self, text: str, model: str | None = None) -> TokenCount:
        """Exact when the model's tokenizer is at hand (local models), else an estimate.

        The estimate is :func:`hanlin.text.count_tokens`: one token per CJK
        character, one per six Latin letters or digits, one per other visible character.
        """
        dep = self.resolve(model).deployments[0]
        provider = self.provider(dep)
        counter = getattr(provider, "count_tokens", None)
        if counter is not None and getattr(provider, "exact_tokens", True):
            return TokenCount(int(counter(dep.model, text)), True)
        return TokenCount(count_tokens(text), False)

    # -- sync wrappers -----------------------------------------------------------------------

    def _loop(self) -> Portal:
        if self._portal is None:
            self._portal = Portal()
        return self._portal

    def run_sync(self, coro: Awaitable[T]) -> T:
        """Run a coroutine on the gateway's own event-loop thread and wait for it.

        Sync wrappers built on the gateway (RAG, agents) use this, so providers and their HTTP
        clients stay on one event loop however the gateway is called.
        """
        result: T = self._loop().run(coro)
        return result

    def iterate_sync(self, events: AsyncIterator[T]) -> Iterator[T]:
        """Iterate an async iterator on the gateway's loop; closing this closes that."""
        loop = self._loop()
        try:
            while True:
                try:
                    yield loop.run(events.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                loop.run(aclose())

    def chat(self, messages: MessagesLike, model: str | None = None, **kw: Any) -> ChatResponse:
        """Synchronous :meth:`achat`."""
        result: ChatResponse = self.run_sync(self.achat(messages, model, **kw))
        return result

    def stream(self, messages: MessagesLike, model: str | None = None, **kw: Any) -> SyncChatStream:
        """Synchronous :meth:`astream`: iterate events as they arrive; ``.response`` after."""
        return SyncChatStream(self._loop(), self.astream(messages, model, **kw))

    def embed(self, texts: Sequence[str], model: str) -> list[list[float]]:
        result: list[list[float]] = self.run_sync(self.aembed(texts, model))
        return result

    def rerank(
        self, query: str, documents: Sequence[str], model: str, top_n: int | None = None
    ) -> list[tuple[int, float]]:
        result: list[tuple[int, float]] = self.run_sync(
            self.arerank(query, documents, model, top_n)
        )
        return result

    async def aclose(self) -> None:
        for provider in [*self._providers.values(), *self._retired]:
            await provider.aclose()
        self._providers.clear()
        self._retired.clear()
        self.ledger.close()

    def close(self) -> None:
        if self._portal is not None:
            self._portal.run(self.aclose())
            self._portal.stop()
            self._portal = None
        else:
            self.ledger.close()


def _replay(resp: ChatResponse) -> Iterator[StreamEvent]:
    if resp.text:
        yield TextDelta(resp.text)
    for i, call in enumerate(resp.tool_calls):
        yield ToolCallDelta(i, call.id, call.name, call.arguments)
    yield UsageEvent(resp.usage)
    yield Finish(resp.finish_reason)


def _as_caller(options: ChatOptions) -> ChatOptions:
    """Check that the caller may spend a model; record the call as theirs unless ``user`` is
    set explicitly."""
    who = access.current()
    who.require("chat")
    if options.user is None and who.user is not None:
        return options.model_copy(update={"user": who.user})
    return options

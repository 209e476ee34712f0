"""``web_search`` (联网搜索): search the web through a search API and return numbered sources a
model can cite as ``[n]``, optionally reading the top pages for the passages that answer the
query.

Providers (Tavily, Brave, Exa, Bocha 博查, Bing v7, a self-hosted SearXNG) live in
:mod:`hanlin.agents.tools.websearch_providers`. Keys come from the provider's environment
variable or the key store (``hanlin keys set tavily``) and never appear in an error. Result pages
are fetched through the SSRF guard (:func:`hanlin.net.ssrf.safe_fetch`) and parsed by the
knowledge base's loaders, so a page cites the same main content a knowledge base would index.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from hanlin.agents.tools.base import AgentTool, ToolResult, tool
from hanlin.agents.tools.websearch_providers import (
    SEARCH_PROVIDERS,
    SearchHit,
    SearchProvider,
    WebSearchError,
)
from hanlin.agents.tools.websearch_sources import (
    PageOptions,
    WebSource,
    cite_sources,
    format_sources,
    to_rag_evidence,
)
from hanlin.models.keys import KeyStore, Secret, key_status


class WebSearchOptions(BaseModel):
    """How ``web_search`` searches and reads pages. Fixed when the tool is built."""

    model_config = ConfigDict(extra="forbid")

    #: registry name (``tavily``, ``brave``, ``exa``, ``bocha``, ``bing``, ``searxng``); unset:
    #: the first one with a key (or, for SearXNG, a URL) configured, in that order
    provider: str | None = None
    #: base URL per provider, for self-hosting, proxies and tests (``{"tavily": "https://…"}``)
    base_urls: dict[str, str] = Field(default_factory=dict)
    #: results asked for when the caller does not say
    count: int = Field(default=5, ge=1, le=20)
    #: seconds for the search API call
    timeout: float = Field(default=15.0, gt=0)
    #: how result pages are read when ``fetch`` is on
    pages: PageOptions = Field(default_factory=PageOptions)


@dataclass(slots=True)
class SearchResults:
    """What one search returned, normalized."""

    query: str
    provider: str
    hits: list[SearchHit]
    elapsed_ms: float


# --- keys and provider choice -----------------------------------------------------------------


def _secret(cls: type[SearchProvider], keys: KeyStore) -> Secret | None:
    """The provider's key (or SearXNG URL): its environment variable wins, else the key store."""
    return key_status(cls.name, cls.env, keys).secret


def configured_providers(
    options: WebSearchOptions | None = None, keys: KeyStore | None = None
) -> list[str]:
    """Names of the providers that can be used now, in registry order."""
    options = options or WebSearchOptions()
    keys = keys or KeyStore()
    return [
        name
        for name, cls in SEARCH_PROVIDERS.items()
        if _secret(cls, keys) is not None or (cls.secret_is_url and name in options.base_urls)
    ]


def _missing_hint() -> str:
    names = ", ".join(f"{c.env} ({c.label})" for c in SEARCH_PROVIDERS.values())
    return f"set one of {names}, or run `hanlin keys set PROVIDER`"


def resolve_provider(
    name: str | None, options: WebSearchOptions, keys: KeyStore
) -> tuple[SearchProvider, Secret | None]:
    """The provider to use and its key. Raises :class:`WebSearchError` naming the variable or
    command that fixes a missing key."""
    name = name or options.provider
    if name is None:
        ready = configured_providers(options, keys)
        if not ready:
            raise WebSearchError("no web search provider is configured", hint=_missing_hint())
        name = ready[0]
    cls = SEARCH_PROVIDERS.get(name.lower())
    if cls is None:
        raise WebSearchError(
            f"unknown web search provider {name!r}",
            hint=f"use one of: {', '.join(SEARCH_PROVIDERS)}",
        )
    secret = _secret(cls, keys)
    if cls.secret_is_url:
        base = options.base_urls.get(cls.name) or (secret.reveal() if secret else None)
        if not base:
            raise WebSearchError(
                f"no URL configured for {cls.label}",
                hint=f"set {cls.env}=https://your-instance or run `hanlin keys set {cls.name}` "
                "with the instance URL",
                provider=cls.name,
            )
        return cls(base), None
    if secret is None:
        raise WebSearchError(
            f"no API key for {cls.label}",
            hint=f"set {cls.env} or run `hanlin keys set {cls.name}` (keys: {cls.signup})",
            provider=cls.name,
        )
    base = options.base_urls.get(cls.name) or cls.default_base_url or ""
    return cls(base), secret


# --- the search call --------------------------------------------------------------------------


def redact(text: str, secret: Secret | None) -> str:
    """``text`` with the key replaced by ``[redacted]`` (APIs sometimes echo it back)."""
    if secret is not None and len(secret.reveal()) >= 4:
        text = text.replace(secret.reveal(), "[redacted]")
    return text


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _http_error(
    p: SearchProvider, status: int, data: Any, headers: httpx.Headers, secret: Secret | None
) -> WebSearchError:
    """Map an error answer by its status (and the API's structured error code) to a message."""
    text = p.api_error(status, data)
    detail = f": {redact(text, secret)[:300]}" if text else ""
    label, special = p.label, p.status_hint(status)
    retry_after = None
    if p.is_auth_error(status, data) or (status == 403 and special is None):
        message = f"{label} refused the API key (HTTP {status}){detail}"
        hint = f"check the key in {p.env}, or store a new one with `hanlin keys set {p.name}`"
    elif status == 429:
        retry_after = _retry_after(headers.get("retry-after"))
        message = f"{label} rate limit reached (HTTP 429){detail}"
        wait = f"wait {retry_after:g} s" if retry_after is not None else "wait a moment"
        hint = f"{wait} and try again, or lower how often you search"
    elif status >= 500:
        message = f"{label} failed on its side (HTTP {status}){detail}"
        hint = "try again later, or use another provider"
    else:
        message = f"{label} rejected the request (HTTP {status}){detail}"
        hint = "check the query and the provider's base URL"
    return WebSearchError(
        message, hint=special or hint, provider=p.name, status=status, retry_after=retry_after
    )


def search_web(
    query: str,
    *,
    provider: str | None = None,
    count: int | None = None,
    options: WebSearchOptions | None = None,
    keys: KeyStore | None = None,
    client: httpx.Client | None = None,
) -> SearchResults:
    """Search with ``provider`` (default: ``options.provider``, else the first configured one).

    ``client`` is reused when given (a new one costs an SSL context, ~0.1 s of CPU).

    Raises :class:`WebSearchError` for a missing key, an HTTP error (401/403 key refused, 429
    with ``retry_after``, 5xx), a timeout, an unreachable API or an answer that is not JSON.
    """
    options = options or WebSearchOptions()
    query = " ".join(query.split())
    if not query:
        raise WebSearchError("the search query is empty", hint="say what to search for")
    p, secret = resolve_provider(provider, options, keys or KeyStore())
    n = max(1, min(count or options.count, 20))
    call = p.request(query, n, secret.reveal() if secret else None)
    start = time.perf_counter()
    try:
        own = client is None
        http = client or httpx.Client(follow_redirects=False)
        try:
            response = http.request(
                call.method,
                call.url,
                headers={"User-Agent": "hanlin", **call.headers},
                params=call.params or None,
                json=call.json,
                timeout=options.timeout,
            )
        finally:
            if own:
                http.close()
    except httpx.TimeoutException:
        raise WebSearchError(
            f"{p.label} did not answer within {options.timeout:g} s",
            hint="try again, or raise the web search timeout",
            provider=p.name,
        ) from None
    except httpx.HTTPError as exc:
        raise WebSearchError(
            f"cannot reach {p.label} at {p.shown_url}: {redact(str(exc), secret)}",
            hint="check your network and the provider's base URL",
            provider=p.name,
        ) from None
    data = _decode(response)
    status = response.status_code
    if status < 400:
        status = p.body_status(data) or status
    if status >= 400:
        raise _http_error(p, status, data, response.headers, secret)
    if not isinstance(data, dict):
        head = redact(response.text[:80], secret)
        raise WebSearchError(
            f"{p.label} sent an answer that is not a JSON object (HTTP {status}, starts {head!r})",
            hint="the base URL may point at another service; check it",
            provider=p.name,
            status=status,
        )
    hits = [h for h in p.parse(data) if h.url.startswith(("http://", "https://"))][:n]
    return SearchResults(query, p.name, hits, (time.perf_counter() - start) * 1000)


# --- the tool ---------------------------------------------------------------------------------

CITE_NOTE = "Cite a source as [n] right after the sentence it supports; cite only these sources."


def web_search(
    *,
    provider: str | None = None,
    options: WebSearchOptions | None = None,
    fetch: bool = False,
    keys: KeyStore | None = None,
    name: str = "web_search",
) -> AgentTool:
    """A ``network`` tool that searches the web and returns sources numbered ``[1]..[n]``.

    ``provider`` picks the engine (default: the first configured); ``fetch`` is the default of
    the model-visible ``fetch`` argument (read the top pages and quote their passages).
    """
    opts = (options or WebSearchOptions()).model_copy()
    if provider is not None:
        opts.provider = provider
    default_count, default_fetch = opts.count, fetch
    budget = opts.timeout + opts.pages.timeout + 10
    clients: list[httpx.Client] = []  # made on the first call, then reused
    lock = threading.Lock()

    def client() -> httpx.Client:
        with lock:
            if not clients:
                clients.append(httpx.Client(follow_redirects=False))
            return clients[0]

    @tool(name=name, side_effects=("network",), timeout=budget)
    def web_search_(
        query: str, count: int = default_count, fetch: bool = default_fetch
    ) -> ToolResult:
        """Search the web (联网搜索) for current information; returns numbered sources to cite
        as [n].

        Args:
            query: what to search for, as you would type it into a search engine
            count: how many results to return (1-10)
            fetch: also read the top pages and quote their passages most relevant to the query
                (slower; better evidence than the search snippets)
        """
        try:
            found = search_web(
                query, count=max(1, min(count, 10)), options=opts, keys=keys, client=client()
            )
            sources = cite_sources(query, found.hits, fetch=fetch, options=opts.pages)
        except WebSearchError as exc:
            return ToolResult(f"web_search failed: {exc}", True)
        if not sources:
            data: dict[str, Any] = {"query": found.query, "engine": found.provider, "sources": []}
            return ToolResult(f"no web results for {found.query!r}", False, data)
        payload = {
            "query": found.query,
            "engine": found.provider,
            "sources": [s.to_dict() for s in sources],
            "how_to_cite": CITE_NOTE,
        }
        return ToolResult(json.dumps(payload, ensure_ascii=False), False, sources)

    return web_search_


__all__ = [
    "PageOptions",
    "SearchResults",
    "WebSearchError",
    "WebSearchOptions",
    "WebSource",
    "cite_sources",
    "configured_providers",
    "format_sources",
    "redact",
    "resolve_provider",
    "search_web",
    "to_rag_evidence",
    "web_search",
]

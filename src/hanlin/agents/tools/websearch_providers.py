"""Search API providers for ``web_search``: one small class per API, picked from a registry.

A provider knows three things about its API: how to build the request (URL, auth header, query
or JSON body), how to turn the JSON answer into normalized :class:`SearchHit` s, and where the
API puts its own error text. Everything else (HTTP, status mapping, key lookup, redaction) is
shared in :mod:`hanlin.agents.tools.websearch`. A third-party provider registers the same way
the built-in ones do, with :func:`register_search_provider`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hanlin.errors import HanlinError
from hanlin.registry import Registry


@dataclass(slots=True)
class SearchHit:
    """One search result, the same shape whatever the engine.

    ``rank`` counts from 1 in the engine's order; ``published`` is the date the engine gives
    (ISO 8601 when it gives one, as sent), ``site`` the site's name when the engine names it.
    """

    title: str
    url: str
    snippet: str
    engine: str
    rank: int
    published: str | None = None
    site: str | None = None
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "title": self.title,
            "url": self.url,
            "snippet": self.snippet,
            "published": self.published,
            "site": self.site,
            "engine": self.engine,
        }


@dataclass(slots=True)
class HttpCall:
    """The request a provider wants sent (the key already in ``headers``)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None


class WebSearchError(HanlinError):
    """A search failed: no key, the API refused or failed, a timeout, or an unreadable answer.

    ``status`` is the HTTP status when there was one; ``retry_after`` the seconds the API asked
    to wait (429), when it said.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        provider: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after


_TAGS = re.compile(r"<[^>]+>")
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&nbsp;": " "}


def clean_text(text: Any) -> str:
    """Plain text from an engine's snippet: highlight tags (``<strong>``) and entities removed,
    whitespace collapsed."""
    if not isinstance(text, str):
        return ""
    text = _TAGS.sub("", text)
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    return " ".join(text.split())


def _items(data: Any, *path: str) -> list[dict[str, Any]]:
    """``data[path[0]][path[1]]…`` as a list of objects, or [] when any step is missing."""
    for key in path:
        if not isinstance(data, dict):
            return []
        data = data.get(key)
    return [x for x in data if isinstance(x, dict)] if isinstance(data, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _host(parsed_url: Any) -> str | None:
    """The host from SearXNG's ``parsed_url`` (a urlparse tuple as a list)."""
    if isinstance(parsed_url, list) and len(parsed_url) > 1:
        return _str(parsed_url[1])
    return None


class SearchProvider:
    """One search API. Subclasses set the class attributes and implement :meth:`request` and
    :meth:`parse`; they are cheap to construct and hold no state beyond the base URL."""

    #: registry name, also the key store name (``hanlin keys set NAME``)
    name: ClassVar[str]
    #: shown in messages and docs
    label: ClassVar[str]
    #: the environment variable holding the key (for SearXNG: the instance URL)
    env: ClassVar[str]
    #: ``None`` when the base URL must be configured (a self-hosted engine)
    default_base_url: ClassVar[str | None]
    #: what the configured secret is: an API key, or (SearXNG) the base URL itself
    secret_is_url: ClassVar[bool] = False
    #: where to get a key, for the missing-key hint
    signup: ClassVar[str] = ""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    @property
    def shown_url(self) -> str:
        """The base URL without credentials (``https://user:pw@host`` → ``https://host``)."""
        scheme, sep, rest = self.base_url.partition("://")
        host, slash, path = rest.partition("/")
        return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}" if sep else self.base_url

    def request(self, query: str, count: int, key: str | None) -> HttpCall:
        """The HTTP call for ``count`` results; ``key`` is None for keyless engines."""
        raise NotImplementedError

    def parse(self, data: Any) -> list[SearchHit]:
        """Normalized hits from a decoded success answer; missing fields become empty."""
        raise NotImplementedError

    def api_error(self, status: int, data: Any) -> str | None:
        """The API's own error text in ``data`` (a decoded JSON error body), if any."""
        if isinstance(data, dict):
            for key in ("message", "msg", "error", "detail"):
                value = data.get(key)
                if isinstance(value, dict):
                    value = value.get("message") or value.get("error") or value.get("detail")
                if isinstance(value, str) and value.strip():
                    return value.strip()
        return None

    def is_auth_error(self, status: int, data: Any) -> bool:
        """Whether this answer means the key was refused."""
        return status == 401

    def status_hint(self, status: int) -> str | None:
        """Advice for a status this API uses in its own way."""
        return None

    def body_status(self, data: Any) -> int | None:
        """An error status carried inside a 200 answer (APIs that wrap errors), else None."""
        return None

    def _hit(self, rank: int, **fields: Any) -> SearchHit:
        return SearchHit(engine=self.name, rank=rank, **fields)


SEARCH_PROVIDERS: Registry[type[SearchProvider]] = Registry("web search provider")


def register_search_provider(cls: type[SearchProvider]) -> type[SearchProvider]:
    """Add a provider class to the registry under ``cls.name`` (a later one replaces it).
    Registration order is the order used to pick the first configured provider."""
    return SEARCH_PROVIDERS.register(cls.name, cls)


@register_search_provider
class Tavily(SearchProvider):
    """Tavily ``POST /search`` (JSON body, ``Authorization: Bearer``)."""

    name = "tavily"
    label = "Tavily"
    env = "TAVILY_API_KEY"
    default_base_url = "https://api.tavily.com"
    signup = "https://app.tavily.com"

    def request(self, query: str, count: int, key: str | None) -> HttpCall:
        body = {
            "query": query,
            "max_results": count,
            "search_depth": "basic",
            "topic": "general",
            "include_answer": False,
            "include_raw_content": False,
        }
        headers = {"Authorization": f"Bearer {key}"}
        return HttpCall("POST", f"{self.base_url}/search", headers, json=body)

    def parse(self, data: Any) -> list[SearchHit]:
        return [
            self._hit(
                i,
                title=clean_text(r.get("title")),
                url=str(r.get("url") or ""),
                snippet=clean_text(r.get("content")),
                published=_str(r.get("published_date")),
                score=r.get("score") if isinstance(r.get("score"), int | float) else None,
            )
            for i, r in enumerate(_items(data, "results"), 1)
        ]

    def status_hint(self, status: int) -> str | None:
        if status in (432, 433):
            return "your Tavily plan's usage limit is reached: check https://app.tavily.com"
        return None


@register_search_provider
class Brave(SearchProvider):
    """Brave Search ``GET /res/v1/web/search`` (``X-Subscription-Token`` header)."""

    name = "brave"
    label = "Brave Search"
    env = "BRAVE_API_KEY"
    default_base_url = "https://api.search.brave.com"
    signup = "https://api-dashboard.search.brave.com"

    def request(self, query: str, count: int, key: str | None) -> HttpCall:
        headers = {"Accept": "application/json", "X-Subscription-Token": key or ""}
        params = {"q": query, "count": str(min(count, 20))}
        return HttpCall("GET", f"{self.base_url}/res/v1/web/search", headers, params)

    def parse(self, data: Any) -> list[SearchHit]:
        hits = []
        for i, r in enumerate(_items(data, "web", "results"), 1):
            profile = r.get("profile")
            site = _str(profile.get("name")) if isinstance(profile, dict) else None
            hits.append(
                self._hit(
                    i,
                    title=clean_text(r.get("title")),
                    url=str(r.get("url") or ""),
                    snippet=clean_text(r.get("description")),
                    published=_str(r.get("page_age")),
                    site=site,
                )
            )
        return hits

    def api_error(self, status: int, data: Any) -> str | None:
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            return _str(error.get("detail")) or _str(error.get("code"))
        return super().api_error(status, data)

    def is_auth_error(self, status: int, data: Any) -> bool:
        # Brave answers a wrong token with 422 and the code SUBSCRIPTION_TOKEN_INVALID
        error = data.get("error") if isinstance(data, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        return status == 401 or code == "SUBSCRIPTION_TOKEN_INVALID"


@register_search_provider
class Exa(SearchProvider):
    """Exa ``POST /search`` (``x-api-key`` header), asking for highlights as snippets."""

    name = "exa"
    label = "Exa"
    env = "EXA_API_KEY"
    default_base_url = "https://api.exa.ai"
    signup = "https://dashboard.exa.ai"

    def request(self, query: str, count: int, key: str | None) -> HttpCall:
        body = {
            "query": query,
            "numResults": count,
            "type": "auto",
            "contents": {"highlights": {"maxCharacters": 600}},
        }
        return HttpCall("POST", f"{self.base_url}/search", {"x-api-key": key or ""}, json=body)

    def parse(self, data: Any) -> list[SearchHit]:
        hits = []
        for i, r in enumerate(_items(data, "results"), 1):
            highlights = r.get("highlights")
            parts = (
                [h for h in highlights if isinstance(h, str)]
                if isinstance(highlights, list)
                else []
            )
            snippet = " … ".join(clean_text(p) for p in parts)
            snippet = snippet or clean_text(r.get("summary")) or clean_text(r.get("text"))[:500]
            hits.append(
                self._hit(
                    i,
                    title=clean_text(r.get("title")),
                    url=str(r.get("url") or ""),
                    snippet=snippet,
                    published=_str(r.get("publishedDate")),
                    score=r.get("score") if isinstance(r.get("score"), int | float) else None,
                )
            )
        return hits


@register_search_provider
class Bocha(SearchProvider):
    """Bocha 博查 ``POST /v1/web-search`` (Bearer key); answers in a Bing-like shape inside
    ``{"code", "log_id", "msg", "data"}``."""

    name = "bocha"
    label = "Bocha (博查)"
    env = "BOCHA_API_KEY"
    default_base_url = "https://api.bochaai.com"
    signup = "https://open.bochaai.com"

    def request(self, query: str, count: int, key: str | None) -> HttpCall:
        body = {"query": query, "count": count, "freshness": "noLimit", "summary": True}
        headers = {"Authorization": f"Bearer {key}"}
        return HttpCall("POST", f"{self.base_url}/v1/web-search", headers, json=body)

    def parse(self, data: Any) -> list[SearchHit]:
        inner = data.get("data") if isinstance(data, dict) else None
        hits = []
        for i, r in enumerate(_items(inner, "webPages", "value"), 1):
            snippet = clean_text(r.get("summary")) or clean_text(r.get("snippet"))
            hits.append(
                self._hit(
                    i,
                    title=clean_text(r.get("name")),
                    url=str(r.get("url") or ""),
                    snippet=snippet,
                    # Bocha sends the publication date in both fields (dateLastCrawled for Bing
                    # compatibility), as Beijing time marked "Z"
                    published=_str(r.get("datePublished")) or _str(r.get("dateLastCrawled")),
                    site=_str(r.get("siteName")),
                )
            )
        return hits

    def body_status(self, data: Any) -> int | None:
        code = data.get("code") if isinstance(data, dict) else None
        try:
            value = int(code) if code is not None else None
        except (TypeError, ValueError):
            return None
        return value if value is not None and value >= 400 else None

    def status_hint(self, status: int) -> str | None:
        if status == 403:
            return "Bocha refuses calls when the account balance is used up: top up at https://open.bochaai.com"
        return None


@register_search_provider
class Bing(SearchProvider):
    """Bing Web Search v7 ``GET /v7.0/search`` (``Ocp-Apim-Subscription-Key``).

    Microsoft retired the public Bing Search APIs in August 2025; this stays for existing Azure
    deployments and compatible gateways (set the base URL).
    """

    name = "bing"
    label = "Bing Web Search v7"
    env = "BING_SEARCH_KEY"
    default_base_url = "https://api.bing.microsoft.com"
    signup = "the Azure portal (Bing Search resources, retired for new customers in Aug 2025)"

    def request(self, query: str, count: int, key: str | None) -> HttpCall:
        params = {"q": query, "count": str(count), "textDecorations": "false", "textFormat": "Raw"}
        headers = {"Ocp-Apim-Subscription-Key": key or ""}
        return HttpCall("GET", f"{self.base_url}/v7.0/search", headers, params)

    def parse(self, data: Any) -> list[SearchHit]:
        return [
            self._hit(
                i,
                title=clean_text(r.get("name")),
                url=str(r.get("url") or ""),
                snippet=clean_text(r.get("snippet")),
                published=_str(r.get("datePublished")) or _str(r.get("dateLastCrawled")),
            )
            for i, r in enumerate(_items(data, "webPages", "value"), 1)
        ]

    def api_error(self, status: int, data: Any) -> str | None:
        errors = _items(data, "errors")
        if errors:
            return _str(errors[0].get("message"))
        return super().api_error(status, data)


@register_search_provider
class SearXNG(SearchProvider):
    """A self-hosted SearXNG ``GET {base}/search?format=json`` (no key; the URL is the setting)."""

    name = "searxng"
    label = "SearXNG"
    env = "SEARXNG_URL"
    default_base_url = None
    secret_is_url = True
    signup = "your own instance (https://docs.searxng.org)"

    def request(self, query: str, count: int, key: str | None) -> HttpCall:
        params = {"q": query, "format": "json", "pageno": "1", "safesearch": "1"}
        return HttpCall("GET", f"{self.base_url}/search", {"Accept": "application/json"}, params)

    def parse(self, data: Any) -> list[SearchHit]:
        return [
            self._hit(
                i,
                title=clean_text(r.get("title")),
                url=str(r.get("url") or ""),
                snippet=clean_text(r.get("content")),
                published=_str(r.get("publishedDate")),
                site=_host(r.get("parsed_url")),
                score=r.get("score") if isinstance(r.get("score"), int | float) else None,
            )
            for i, r in enumerate(_items(data, "results"), 1)
        ]

    def is_auth_error(self, status: int, data: Any) -> bool:
        return False  # no key; a 401 comes from a proxy in front of the instance

    def status_hint(self, status: int) -> str | None:
        if status == 403:
            return (
                "SearXNG answers 403 when the JSON format is off: add `json` to "
                "`search.formats` in the instance's settings.yml"
            )
        if status == 401:
            return "the instance asks for credentials: set SEARXNG_URL=https://user:password@host"
        return None


__all__ = [
    "SEARCH_PROVIDERS",
    "HttpCall",
    "SearchHit",
    "SearchProvider",
    "WebSearchError",
    "clean_text",
    "register_search_provider",
]

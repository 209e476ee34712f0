"""``web_search`` against a local server replaying each search API's real answers: the request
each provider sends, normalization, error mapping, key redaction, fetch-and-cite through the
SSRF guard, RAG evidence, and an agent that searches and cites [1]."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hanlin.agents.events import ApprovalRequest
from hanlin.agents.loop import Agent, ApprovalPolicy
from hanlin.agents.tools.websearch import (
    PageOptions,
    WebSearchError,
    WebSearchOptions,
    cite_sources,
    format_sources,
    search_web,
    to_rag_evidence,
    web_search,
)
from hanlin.agents.tools.websearch_providers import SEARCH_PROVIDERS
from hanlin.config import load_settings
from hanlin.models.gateway import Gateway
from hanlin.models.keys import KeyStore
from hanlin.rag.citations import clean_citations
from hanlin.testing import recordings as rec
from hanlin.testing import search_recordings as sr
from hanlin.testing.search_server import Canned, FakeSearchServer
from hanlin.testing.upstream import Reply, UpstreamServer

KEYS = {
    "tavily": "tvly-dev-Zq8Xw3Yp5Vn2Lm7Kj4Hg",
    "brave": "BSAk3Jd8Fh2Lq9Wz5Xc7Vb1Nm4",
    "exa": "9c1e7f3a-5b2d-4e8f-a6c0-d2b4e6f8a0c2",
    "bocha": "sk-7d3f9a1c5e8b2d4f6a0c8e1b3d5f7a9c",
    "bing": "4f8a2c6e0b3d5f7a9c1e3b5d7f9a1c3e",
}


@pytest.fixture(scope="module")
def search_server() -> Iterator[FakeSearchServer]:
    with FakeSearchServer() as server:
        yield server


@pytest.fixture()
def server(search_server: FakeSearchServer, monkeypatch: pytest.MonkeyPatch) -> FakeSearchServer:
    search_server.reset()
    for name, cls in SEARCH_PROVIDERS.items():
        if name in KEYS:
            monkeypatch.setenv(cls.env, KEYS[name])
        else:
            monkeypatch.delenv(cls.env, raising=False)
    return search_server


def opts(server: FakeSearchServer, timeout: float = 3.0, **pages: Any) -> WebSearchOptions:
    """Every provider pointed at the local server; ``pages`` are :class:`PageOptions` fields."""
    base = {name: server.url for name in SEARCH_PROVIDERS}
    return WebSearchOptions(base_urls=base, timeout=timeout, pages=PageOptions(**pages))


def api(provider: str) -> str:
    return sr.API_PATHS[provider]


# --- one test per provider: request shape and normalization -----------------------------------

EXPECTED: dict[str, dict[str, Any]] = {
    "tavily": {
        "method": "POST",
        "auth": ("authorization", f"Bearer {KEYS['tavily']}"),
        "sent": {"query": sr.QUERY, "max_results": 3},
        "published": [None, None, None],
    },
    "brave": {
        "method": "GET",
        "auth": ("x-subscription-token", KEYS["brave"]),
        "sent": {"q": sr.QUERY, "count": "3"},
        "published": ["2025-02-27T09:14:20", None, "2023-08-22T00:00:00"],
        "site": "Wikipedia",
    },
    "exa": {
        "method": "POST",
        "auth": ("x-api-key", KEYS["exa"]),
        "sent": {"query": sr.QUERY, "numResults": 3},
        "published": [
            "2020-05-22T00:00:00.000Z",
            "2023-06-06T00:00:00.000Z",
            "2023-11-15T16:00:18.000Z",
        ],
    },
    "bocha": {
        "method": "POST",
        "query": sr.QUERY_ZH,
        "auth": ("authorization", f"Bearer {KEYS['bocha']}"),
        "sent": {"query": sr.QUERY_ZH, "count": 3},
        "published": [
            "2024-07-22T00:00:00+08:00",
            "2024-07-22T17:54:38+08:00",
            "2024-11-07T06:50:00Z",
        ],
        "site": "www.alibabagroup.com",
    },
    "bing": {
        "method": "GET",
        "auth": ("ocp-apim-subscription-key", KEYS["bing"]),
        "sent": {"q": sr.QUERY, "count": "3"},
        "published": [
            "2025-07-30T06:41:00.0000000Z",
            "2023-08-22T00:00:00.0000000",
            "2025-07-29T02:15:00.0000000Z",
        ],
    },
    "searxng": {
        "method": "GET",
        "auth": None,
        "sent": {"q": sr.QUERY, "format": "json"},
        "published": [None, None, "2023-08-22T00:00:00"],
        "site": "en.wikipedia.org",
    },
}


@pytest.mark.parametrize("provider", list(EXPECTED))
def test_each_provider_sends_its_request_and_results_are_normalized(
    server: FakeSearchServer, provider: str
) -> None:
    want = EXPECTED[provider]
    query = want.get("query", sr.QUERY)
    recorded = sr.search_response(provider)
    server.script(api(provider), Canned(body=recorded))
    found = search_web(query, provider=provider, count=3, options=opts(server))

    seen = server.seen[-1]
    assert seen.method == want["method"] and seen.path == api(provider)
    sent = seen.body if want["method"] == "POST" else seen.query
    assert {k: sent[k] for k in want["sent"]} == want["sent"]
    if want["auth"]:
        header, value = want["auth"]
        assert seen.headers[header] == value
    else:  # SearXNG gets no key of any kind
        assert not any(k in seen.headers for k in ("authorization", "x-api-key"))

    assert found.provider == provider and len(found.hits) == 3
    assert [h.rank for h in found.hits] == [1, 2, 3]
    assert all(h.engine == provider for h in found.hits)
    assert [h.published for h in found.hits] == want["published"]
    urls = [h.url for h in found.hits]
    assert all(u.startswith("http") for u in urls) and len(set(urls)) == 3
    for hit in found.hits:
        assert hit.title and hit.snippet
        assert "<strong>" not in hit.snippet and "&amp;" not in hit.snippet
    if "site" in want:
        assert found.hits[0].site == want["site"]


def test_normalization_keeps_each_apis_quirks(server: FakeSearchServer) -> None:
    o = opts(server)
    server.script(api("brave"), Canned(body=sr.search_response("brave")))
    brave = search_web("rag", provider="brave", options=o).hits
    assert brave[0].snippet.startswith("Retrieval-augmented generation (RAG) is a technique")
    assert "knowledge base & data sources" in brave[1].snippet

    server.script(api("bocha"), Canned(body=sr.search_response("bocha")))
    bocha = search_web(sr.QUERY_ZH, provider="bocha", options=o).hits
    assert (
        bocha[0].title == "阿里巴巴发布2024年ESG报告 持续推进减碳与数字化普惠"
    )  # whitespace collapsed
    assert "双降" in bocha[0].snippet  # the summary (asked for) is preferred to the snippet
    assert bocha[2].snippet.startswith("阿里巴巴集团的2024年")  # empty summary: the snippet
    assert bocha[1].site == "央广网"

    server.script(api("exa"), Canned(body=sr.search_response("exa")))
    exa = search_web("rag", provider="exa", options=o).hits
    assert exa[0].snippet.startswith("We explore a general-purpose fine-tuning recipe")
    assert exa[2].snippet.startswith("Retrieval-augmented generation enhances")  # no highlights
    assert [h.score for h in exa] == [0.3967, 0.3791, None]  # auto search may omit scores


# --- choosing a provider and keys ---------------------------------------------------------------


def test_missing_keys_say_which_variable_or_command_to_use(
    server: FakeSearchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for cls in SEARCH_PROVIDERS.values():
        monkeypatch.delenv(cls.env, raising=False)
    with pytest.raises(WebSearchError) as nothing:
        search_web("rag")
    assert "no web search provider is configured" in str(nothing.value)
    assert "TAVILY_API_KEY" in str(nothing.value) and "SEARXNG_URL" in str(nothing.value)
    assert "hanlin keys set" in str(nothing.value)

    with pytest.raises(WebSearchError) as brave:
        search_web("rag", provider="brave", options=opts(server))
    assert brave.value.message == "no API key for Brave Search"
    assert "BRAVE_API_KEY" in str(brave.value) and "hanlin keys set brave" in str(brave.value)

    with pytest.raises(WebSearchError) as searx:
        search_web("rag", provider="searxng")
    assert "SEARXNG_URL" in str(searx.value)

    with pytest.raises(WebSearchError) as unknown:
        search_web("rag", provider="google", options=opts(server))
    assert "unknown web search provider 'google'" in str(unknown.value)
    assert "tavily" in str(unknown.value)
    assert server.seen == []  # nothing was sent


def test_the_first_configured_provider_is_used_and_env_wins_over_the_store(
    server: FakeSearchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for cls in SEARCH_PROVIDERS.values():
        monkeypatch.delenv(cls.env, raising=False)
    o = WebSearchOptions(base_urls={"exa": server.url, "bocha": server.url}, timeout=3)
    KeyStore().set("exa", "stored-exa-key-0001")
    server.script(api("exa"), Canned(body=sr.search_response("exa")))
    assert search_web("rag", options=o).provider == "exa"
    assert server.seen[-1].headers["x-api-key"] == "stored-exa-key-0001"

    monkeypatch.setenv("EXA_API_KEY", "env-exa-key-0002")
    server.script(api("exa"), Canned(body=sr.search_response("exa")))
    search_web("rag", options=o)
    assert server.seen[-1].headers["x-api-key"] == "env-exa-key-0002"

    monkeypatch.setenv("BOCHA_API_KEY", KEYS["bocha"])
    server.script(api("exa"), Canned(body=sr.search_response("exa")))
    assert search_web("rag", options=o).provider == "exa"  # registry order: exa before bocha
    server.script(api("bocha"), Canned(body=sr.search_response("bocha")))
    assert search_web("rag", options=o.model_copy(update={"provider": "bocha"})).provider == "bocha"


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", list(sr.AUTH_ERRORS))
def test_a_refused_key_is_a_clear_error_without_the_key(
    server: FakeSearchServer, provider: str
) -> None:
    status, body = sr.AUTH_ERRORS[provider]
    server.script(api(provider), Canned(status, body))
    with pytest.raises(WebSearchError) as err:
        search_web("rag", provider=provider, options=opts(server))
    text = str(err.value)
    assert "refused the API key" in text and f"HTTP {status}" in text
    assert SEARCH_PROVIDERS[provider].env in text and f"hanlin keys set {provider}" in text
    assert KEYS[provider] not in text and err.value.status == status


def test_a_key_echoed_back_by_the_api_is_redacted(server: FakeSearchServer) -> None:
    echo = {"detail": {"error": f"Unauthorized: invalid API key {KEYS['tavily']}"}}
    server.script(api("tavily"), Canned(401, echo))
    with pytest.raises(WebSearchError) as err:
        search_web("rag", provider="tavily", options=opts(server))
    assert KEYS["tavily"] not in str(err.value) and "[redacted]" in str(err.value)
    assert KEYS["tavily"] not in repr(err.value)

    server.script(api("tavily"), Canned(200, f"bad gateway for {KEYS['tavily']}".encode()))
    with pytest.raises(WebSearchError) as bad:
        search_web("rag", provider="tavily", options=opts(server))
    assert KEYS["tavily"] not in str(bad.value) and "not a JSON object" in str(bad.value)


@pytest.mark.parametrize("provider", list(sr.RATE_LIMIT_ERRORS))
def test_rate_limits_report_retry_after(server: FakeSearchServer, provider: str) -> None:
    body = sr.RATE_LIMIT_ERRORS[provider]
    raw = body if body is not None else b"Too Many Requests"
    server.script(api(provider), Canned(429, raw, headers={"Retry-After": "7"}))
    with pytest.raises(WebSearchError) as err:
        search_web("rag", provider=provider, options=opts(server))
    assert err.value.status == 429 and err.value.retry_after == 7
    assert "rate limit" in str(err.value) and "wait 7 s" in str(err.value)


def test_retry_after_as_an_http_date(server: FakeSearchServer) -> None:
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    server.script(api("brave"), Canned(429, sr.RATE_LIMIT_ERRORS["brave"], {"Retry-After": later}))
    with pytest.raises(WebSearchError) as err:
        search_web("rag", provider="brave", options=opts(server))
    assert err.value.retry_after is not None and 25 <= err.value.retry_after <= 31
    assert "Request rate limit exceeded for plan." in str(err.value)


def test_server_errors_bad_json_and_timeouts(server: FakeSearchServer) -> None:
    server.script(api("bing"), Canned(503, {"error": {"code": "503", "message": "Busy"}}))
    with pytest.raises(WebSearchError) as down:
        search_web("rag", provider="bing", options=opts(server))
    assert "failed on its side (HTTP 503): Busy" in str(down.value)

    server.script(api("exa"), Canned(200, b"{'results': [", content_type="application/json"))
    with pytest.raises(WebSearchError) as bad:
        search_web("rag", provider="exa", options=opts(server))
    assert "not a JSON object" in str(bad.value) and "base URL" in str(bad.value)

    server.script(api("tavily"), Canned(body=sr.search_response("tavily"), delay=1.5))
    start = time.monotonic()
    with pytest.raises(WebSearchError) as slow:
        search_web("rag", provider="tavily", options=opts(server, timeout=0.3))
    assert "did not answer within 0.3 s" in str(slow.value)
    assert time.monotonic() - start < 1.4


def test_statuses_an_api_uses_in_its_own_way(server: FakeSearchServer) -> None:
    server.script(api("bocha"), Canned(403, sr.BOCHA_NO_BALANCE))
    with pytest.raises(WebSearchError) as broke:
        search_web(sr.QUERY_ZH, provider="bocha", options=opts(server))
    assert "You do not have enough money" in str(broke.value) and "top up" in str(broke.value)

    # an error carried in a 200 answer's "code" field
    server.script(api("bocha"), Canned(200, {"code": "429", "message": "limit", "log_id": "x"}))
    with pytest.raises(WebSearchError) as wrapped:
        search_web(sr.QUERY_ZH, provider="bocha", options=opts(server))
    assert wrapped.value.status == 429

    html = b"<html><body><h1>Forbidden</h1></body></html>"
    server.script(api("searxng"), Canned(403, html, content_type="text/html"))
    with pytest.raises(WebSearchError) as searx:
        search_web("rag", provider="searxng", options=opts(server))
    assert "search.formats" in str(searx.value) and "settings.yml" in str(searx.value)

    server.script(
        api("tavily"),
        Canned(432, {"detail": {"error": "This request exceeds your plan's set usage limit."}}),
    )
    with pytest.raises(WebSearchError) as plan:
        search_web("rag", provider="tavily", options=opts(server))
    assert "usage limit" in str(plan.value) and "HTTP 432" in str(plan.value)


# --- fetch and cite -------------------------------------------------------------------------------

RAG_PAGE = """<!doctype html><html><head><title>RAG explained</title></head><body>
<nav><a href="/">Home</a> <a href="/pricing">Pricing</a> <a href="/login">Log in</a></nav>
<article><h1>Retrieval-augmented generation</h1>
<p>Large language models are trained once and then frozen; their knowledge stops at the
training cut-off date and they cannot see private company documents.</p>
<p>Our team also runs a cooking blog on weekends, with recipes for dumplings, noodles and
soups that have nothing to do with machine learning at all.</p>
<p>Retrieval-augmented generation (RAG) fixes this: before the model answers, a retriever
searches a knowledge base for passages relevant to the question, and the model generates its
answer grounded in those retrieved passages, citing them.</p>
<p>Search engines have a long history: early web directories were curated by hand, then
crawlers and inverted indexes made it possible to find pages by keyword, and later link
analysis ranked the results by how many other pages pointed to them.</p>
<p>The weather in the office was sunny all week, and the coffee machine was repaired on
Thursday after a long wait for spare parts.</p>
</article>
<footer>Copyright 2025 Example Corp. All rights reserved. Privacy. Terms.</footer>
</body></html>"""

ESG_PAGE = """<html><head><meta charset="gbk"><title>阿里巴巴ESG报告</title></head><body>
<article><h1>阿里巴巴发布2024年ESG报告</h1>
<p>公司食堂本周推出了新的午餐菜单，包括面条和饺子。</p>
<p>阿里巴巴集团发布2024财年环境、社会和治理（ESG）报告，报告显示自身运营减少碳排放量达232.0万吨，
阿里云数据中心清洁能源占比达56.0%。</p>
</article></body></html>""".encode("gbk")


def _pages(server: FakeSearchServer) -> list[str]:
    server.script(
        "/pages/rag", Canned(body=RAG_PAGE.encode(), content_type="text/html; charset=utf-8")
    )
    server.script("/pages/esg", Canned(body=ESG_PAGE, content_type="text/html"))
    server.script("/pages/gone", Canned(404, b"not here", content_type="text/plain"))
    return [f"{server.url}/pages/rag", f"{server.url}/pages/esg", f"{server.url}/pages/gone"]


def test_fetch_reads_pages_and_quotes_the_relevant_passages(server: FakeSearchServer) -> None:
    urls = _pages(server)
    server.script(api("tavily"), Canned(body=sr.search_response("tavily", urls)))
    o = opts(server, allow_private=True, passages=1, passage_tokens=64)
    query = "how does retrieval-augmented generation ground answers in a knowledge base 碳排放"
    found = search_web(query, provider="tavily", options=o)
    sources = cite_sources(query, found.hits, fetch=True, options=o.pages)

    assert [s.n for s in sources] == [1, 2, 3]
    rag, esg, gone = sources
    assert rag.fetched and "retriever searches a knowledge base" in " ".join(rag.text.split())
    assert "cooking" not in rag.text and "Pricing" not in rag.text and "Copyright" not in rag.text
    assert rag.url == urls[0] and rag.title == "Retrieval-augmented generation - Wikipedia"
    assert rag.char_end > rag.char_start
    assert esg.fetched and "232.0万吨" in esg.text and "食堂" not in esg.text  # GBK page decoded
    assert not gone.fetched and "404" in (gone.note or "")
    assert gone.text == gone.snippet  # the engine's snippet stands in for the unread page


def test_fetching_goes_through_the_ssrf_guard_and_its_limits(server: FakeSearchServer) -> None:
    urls = _pages(server)
    server.script(api("brave"), Canned(body=sr.search_response("brave", urls)))
    found = search_web("rag", provider="brave", options=opts(server))
    guarded = cite_sources("rag", found.hits, fetch=True, options=opts(server).pages)
    assert all(not s.fetched and "loopback" in (s.note or "") for s in guarded)
    assert not any(s.path.startswith("/pages/") for s in server.seen)  # nothing was fetched

    server.reset()
    _pages(server)
    tiny = opts(server, allow_private=True, max_bytes=1024)
    capped = cite_sources("rag", found.hits, fetch=True, options=tiny.pages)
    assert not capped[0].fetched and "larger than" in (capped[0].note or "")


def test_web_results_become_rag_evidence_a_rag_answer_can_cite(server: FakeSearchServer) -> None:
    urls = _pages(server)
    server.script(api("exa"), Canned(body=sr.search_response("exa", urls)))
    o = opts(server, allow_private=True)
    found = search_web("retrieval-augmented generation", provider="exa", options=o)
    sources = cite_sources(
        "retrieval-augmented generation", found.hits, fetch=True, options=o.pages
    )
    evidence = to_rag_evidence(sources)
    assert [e.citation.n for e in evidence] == [1, 2, 3]
    first = evidence[0].citation
    assert first.source == urls[0] and first.doc == urls[0] and first.snippet == evidence[0].text
    assert first.title == "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks"
    assert evidence[0].chunk_id < 0 and evidence[0].scores == {"web": evidence[0].score}
    block = format_sources(sources)
    assert block.startswith(f"[1] {first.title} ({urls[0]})")
    text, order = clean_citations(
        "RAG grounds answers in retrieved passages [1][7].", len(evidence)
    )
    assert order == [1] and "[7]" not in text


def test_the_tool_is_a_network_tool_returning_numbered_sources(server: FakeSearchServer) -> None:
    urls = _pages(server)
    server.script(api("bocha"), Canned(body=sr.search_response("bocha", urls[1:2])))
    tool = web_search(provider="bocha", options=opts(server, allow_private=True))
    assert tool.name == "web_search" and tool.side_effects == {"network"} and tool.needs_approval
    assert set(tool.parameters["properties"]) == {"query", "count", "fetch"}
    result = asyncio.run(tool.run({"query": "阿里巴巴 碳排放", "fetch": True}))
    assert not result.is_error
    payload = json.loads(result.content)
    assert payload["engine"] == "bocha" and "[n]" in payload["how_to_cite"]
    assert payload["sources"][0]["n"] == 1 and "232.0万吨" in payload["sources"][0]["text"]

    server.script(api("bocha"), Canned(401, sr.AUTH_ERRORS["bocha"][1]))
    failed = asyncio.run(tool.run({"query": "阿里巴巴"}))
    assert failed.is_error and "refused the API key" in failed.content
    assert KEYS["bocha"] not in failed.content


# --- an agent that searches and cites ------------------------------------------------------------

CHAT = "/v1/chat/completions"


def _tool_call_stream(name: str, arguments: str) -> Reply:
    head = {"id": "chatcmpl-ws", "object": "chat.completion.chunk", "created": rec.CREATED}
    head["model"] = "gpt-4o-mini"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return "data: " + json.dumps(
            {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        )

    call = {"index": 0, "id": "call_ws", "type": "function"}
    return Reply(
        sse=[
            chunk({"role": "assistant", "content": None}),
            chunk({"tool_calls": [{**call, "function": {"name": name, "arguments": arguments}}]}),
            chunk({}, "tool_calls"),
            "data: [DONE]",
        ]
    )


def test_an_agent_searches_the_web_and_cites_the_source(server: FakeSearchServer) -> None:
    server.script(api("tavily"), Canned(body=sr.search_response("tavily")))
    answer = "RAG retrieves documents before answering [1]."
    asked: list[ApprovalRequest] = []

    def approve(request: ApprovalRequest) -> bool:
        asked.append(request)
        return True

    with UpstreamServer() as upstream:
        upstream.app.script(
            CHAT,
            _tool_call_stream("web_search", '{"query": "what is RAG"}'),
            rec.openai_text_stream("openai", [answer[:10], answer[10:]]),
        )
        cfg: dict[str, Any] = {"endpoints": {"fake": {"base_url": upstream.url}}, "retries": 0}
        gateway = Gateway(load_settings(models=cfg))
        try:
            agent = Agent(
                gateway,
                "fake/m",
                [web_search(provider="tavily", options=opts(server))],
                approval=ApprovalPolicy(approve=approve),
            )
            result = asyncio.run(agent.arun("What is retrieval-augmented generation?"))
        finally:
            gateway.close()
        bodies = [body for path, _, body in upstream.app.requests if path == CHAT]

    assert result.stop_reason == "answer" and result.text == answer and "[1]" in result.text
    assert len(asked) == 1 and asked[0].tool == "web_search"  # network: asked before running
    tool_message = bodies[1]["messages"][-1]
    assert tool_message["role"] == "tool"
    block = tool_message["content"]  # an untrusted block around the tool's JSON
    assert block.startswith('<untrusted source="tool:web_search">\n')
    shown = json.loads(
        block.removeprefix('<untrusted source="tool:web_search">\n')[: -len("\n</untrusted>")]
    )
    assert shown["sources"][0]["n"] == 1
    assert (
        shown["sources"][0]["url"] == "https://en.wikipedia.org/wiki/Retrieval-augmented_generation"
    )
    assert server.seen[-1].body["query"] == "what is RAG"


def test_searxng_credentials_in_its_url_are_never_shown(server: FakeSearchServer) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = WebSearchOptions(base_urls={"searxng": f"http://me:hunter2secret@127.0.0.1:{port}"})
    with pytest.raises(WebSearchError) as down:
        search_web("rag", provider="searxng", options=closed)
    assert f"cannot reach SearXNG at http://127.0.0.1:{port}" in str(down.value)
    assert "hunter2secret" not in str(down.value)

    server.script(api("searxng"), Canned(401, b"Unauthorized", content_type="text/plain"))
    with pytest.raises(WebSearchError) as locked:
        search_web("rag", provider="searxng", options=opts(server))
    assert "HTTP 401" in str(locked.value) and "user:password@" in str(locked.value)
    assert "API key" not in str(locked.value)

"""Real OpenAI clients against a real server: the official ``openai`` SDK (sync, async,
streaming) and LangChain's ``ChatOpenAI``, for a gateway model and for ``kb:<name>``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from hanlin.testing import recordings as rec
from hanlin.testing.upstream import Reply, UpstreamServer
from tests.server.conftest import MODEL, LiveServer

CHAT = "/v1/chat/completions"
QUESTION = "Where is oolong tea grown?"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    }
]


def sdk(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/v1", api_key="not-needed", max_retries=0)


def async_sdk(live: LiveServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=live.url + "/v1", api_key="not-needed", max_retries=0)


# -- gateway models ------------------------------------------------------------------------------


def test_sync_completion_through_the_gateway(live: LiveServer, upstream: UpstreamServer) -> None:
    done = sdk(live).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], temperature=0.2, user="alice"
    )
    assert done.choices[0].message.content == rec.TEXT
    assert done.choices[0].finish_reason == "stop"
    assert (
        done.model == MODEL and done.object == "chat.completion" and done.id.startswith("chatcmpl-")
    )
    assert done.usage is not None and done.usage.total_tokens == 29
    path, _, body = upstream.app.requests[-1]
    assert path == CHAT and body["model"] == "gpt-test" and body["temperature"] == 0.2
    assert body["user"] == "alice"  # no key on loopback: the client's user passes through


def test_sync_stream_matches_openai_framing(live: LiveServer, upstream: UpstreamServer) -> None:
    stream = sdk(live).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and {c.object for c in chunks} == {
        "chat.completion.chunk"
    }
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == rec.TEXT
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 19 and chunks[-1].usage.completion_tokens == 10


def test_raw_sse_lines_end_with_done(live: LiveServer, upstream: UpstreamServer) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", live.url + "/v1/chat/completions", json=body, timeout=30) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = resp.read().decode()
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert "usage" not in json.loads(events[1][6:])  # only with stream_options.include_usage


def test_async_completion_and_stream(live: LiveServer, upstream: UpstreamServer) -> None:
    async def main() -> tuple[str, str]:
        client = async_sdk(live)
        done = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        await client.close()
        return done.choices[0].message.content or "", "".join(parts)

    whole, streamed = asyncio.run(main())
    assert whole == streamed == rec.TEXT


def test_streamed_tool_calls_reach_the_client(live: LiveServer, upstream: UpstreamServer) -> None:
    upstream.app.script(CHAT, rec.openai_tool_stream("openai"))
    stream = sdk(live).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "weather?"}], tools=TOOLS, stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(delta.index, {"id": "", "name": "", "args": ""})
            slot["id"] = delta.id or slot["id"]
            if delta.function and delta.function.name:
                slot["name"] = delta.function.name
            slot["args"] += (delta.function.arguments or "") if delta.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["args"])["location"] == "杭州"
    assert calls[0]["id"].startswith("call_") and finish == "tool_calls"
    sent = upstream.app.requests[-1][2]
    assert sent["tools"][0]["function"]["name"] == "get_weather"


def test_non_streamed_tool_call(live: LiveServer, upstream: UpstreamServer) -> None:
    upstream.app.script(CHAT, rec.openai_tool_call("openai"))
    done = sdk(live).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    call: Any = (done.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_weather" and done.choices[0].finish_reason == "tool_calls"
    assert upstream.app.requests[-1][2]["tool_choice"]["function"]["name"] == "get_weather"


# -- errors -----------------------------------------------------------------------------------


def test_rate_limit_keeps_429_and_retry_after(live: LiveServer, upstream: UpstreamServer) -> None:
    upstream.app.script(
        CHAT, rec.openai_error(429, "rate_limit_exceeded", "slow down", **{"retry-after": "120"})
    )
    with pytest.raises(openai.RateLimitError) as info:
        sdk(live).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers["retry-after"] == "120"
    assert info.value.body["hint"]  # type: ignore[index]


def test_context_overflow_is_400_with_its_code(live: LiveServer, upstream: UpstreamServer) -> None:
    upstream.app.script(CHAT, rec.openai_error(400, "context_length_exceeded", "too long"))
    with pytest.raises(openai.BadRequestError) as info:
        sdk(live).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "context_length_exceeded"
    assert "shorten" in info.value.body["hint"]  # type: ignore[index]


def test_upstream_outage_and_unknown_model(live: LiveServer, upstream: UpstreamServer) -> None:
    upstream.app.script(CHAT, Reply(status=503, json={"error": {"message": "down"}}))
    with pytest.raises(openai.InternalServerError) as down:
        sdk(live).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert down.value.status_code == 503
    with pytest.raises(openai.NotFoundError) as missing:
        sdk(live).chat.completions.create(
            model="nosuch/model", messages=[{"role": "user", "content": "x"}]
        )
    assert "hanlin models ls" in missing.value.body["hint"]  # type: ignore[index]


def test_stream_failing_before_first_token_gets_a_status(
    live: LiveServer, upstream: UpstreamServer
) -> None:
    upstream.app.script(CHAT, Reply(status=500, json={"error": {"message": "boom"}}))
    with pytest.raises(openai.APIStatusError) as info:
        list(
            sdk(live).chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    assert info.value.status_code == 502


def test_stream_broken_mid_way_ends_with_an_error_event(
    live: LiveServer, upstream: UpstreamServer
) -> None:
    reply = rec.openai_text_stream("openai")
    reply.reset_after = 3
    upstream.app.script(CHAT, reply)
    stream = sdk(live).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="connection"):
        list(stream)


def test_model_list_has_gateway_models_and_knowledge_bases(live: LiveServer) -> None:
    ids = [m.id for m in sdk(live).models.list()]
    assert "kb:docs" in ids and "local-embed/fast-use" in ids and "local/gemma3-270m" in ids
    assert "deepseek/deepseek-chat" not in ids  # no key here: listed only with ?all=true


def test_embeddings_float_and_base64(live: LiveServer) -> None:
    client = sdk(live)
    default = client.embeddings.create(model="local-embed/fast-use", input=["你好", "hello"])
    floats = client.embeddings.create(
        model="local-embed/fast-use", input="hello", encoding_format="float"
    )
    assert len(default.data) == 2 and len(default.data[0].embedding) == 512
    assert default.data[1].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert default.usage.prompt_tokens > 0


# -- knowledge-base models -------------------------------------------------------------------


def _cites(obj: Any) -> list[dict[str, Any]]:
    citations: list[dict[str, Any]] = (obj.model_extra or {})["citations"]
    return citations


def test_kb_model_sync_answer_has_citations_and_footnotes(live: LiveServer) -> None:
    done = sdk(live).chat.completions.create(
        model="kb:docs", messages=[{"role": "user", "content": QUESTION}]
    )
    text = done.choices[0].message.content or ""
    citations = _cites(done)
    assert "Fujian" in text and citations and citations[0]["source"].endswith("tea.md")
    assert f"\n\n[{citations[0]['n']}]: Oolong tea — " in text  # footnote for plain clients
    extra = (done.model_extra or {})["hanlin"]
    assert extra["mode"] == "extractive" and extra["evidence"]


def test_kb_model_stream_carries_citations_on_the_last_chunk(live: LiveServer) -> None:
    chunks = list(
        sdk(live).chat.completions.create(
            model="kb:docs",
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    with_choice = [c for c in chunks if c.choices]
    finishing = [c for c in with_choice if c.choices[0].finish_reason]
    assert len(finishing) == 1 and finishing[0] is with_choice[-1]
    assert _cites(finishing[0])[0]["title"] == "Oolong tea"
    assert (finishing[0].model_extra or {})["hanlin"]["mode"] == "extractive"
    text = "".join(c.choices[0].delta.content or "" for c in with_choice)
    assert "Fujian" in text and "\n\n[1]: Oolong tea" in text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_kb_model_async_with_history_and_options(live: LiveServer) -> None:
    async def main() -> Any:
        client = async_sdk(live)
        done = await client.chat.completions.create(
            model="kb:docs",
            messages=[
                {"role": "user", "content": "Tell me about oolong tea."},
                {"role": "assistant", "content": "It is partially oxidised."},
                {"role": "user", "content": "How long should it be brewed?"},
            ],
            extra_body={"hanlin": {"mode": "extractive", "k": 3}},
        )
        await client.close()
        return done

    done = asyncio.run(main())
    assert "three minutes" in (done.choices[0].message.content or "")


def test_kb_model_unknown_kb_is_404(live: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk(live).chat.completions.create(
            model="kb:nosuch", messages=[{"role": "user", "content": "x"}]
        )


def test_kb_model_with_a_generator_calls_the_gateway(
    live: LiveServer, upstream: UpstreamServer
) -> None:
    upstream.app.script(CHAT, rec.openai_text_stream("openai", ["Oolong grows in Fujian", " [1]."]))
    done = sdk(live).chat.completions.create(
        model=f"hanlin:kb:docs@{MODEL}",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"hanlin": {"mode": "generative"}},
    )
    assert (done.model_extra or {})["hanlin"]["mode"] == "generative"
    assert "Fujian" in (done.choices[0].message.content or "")
    assert any(path == CHAT for path, _, _ in upstream.app.requests)


# -- LangChain -------------------------------------------------------------------------------


def test_langchain_invoke_and_stream(live: LiveServer, upstream: UpstreamServer) -> None:
    key = SecretStr("not-needed")
    llm = ChatOpenAI(base_url=live.url + "/v1", api_key=key, model=MODEL, max_retries=0)
    assert llm.invoke("hi").content == rec.TEXT
    assert "".join(str(part.content) for part in llm.stream("hi")) == rec.TEXT
    kb = ChatOpenAI(base_url=live.url + "/v1", api_key=key, model="kb:docs")
    assert "Fujian" in str(kb.invoke(QUESTION).content)

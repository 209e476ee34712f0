"""The OpenAI-compatible API never silently ignores a field: each one is honoured or refused
with a 400 whose ``param`` names it, per model kind (gateway model, ``kb:``, ``agent:``), seen
through the official ``openai`` SDK against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from hanlin.testing.upstream import UpstreamServer
from tests.server.conftest import MODEL, LiveServer
from tests.server.test_openai_clients import QUESTION, TOOLS, sdk

ASK: Any = [{"role": "user", "content": QUESTION}]
LOCAL = "local/gemma3-270m"


def refused(call: Any, param: str) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as info:
        call()
    assert info.value.status_code == 400 and info.value.param == param
    body: dict[str, Any] = info.value.body  # type: ignore[assignment]
    assert param in body["message"] and body["hint"]  # says what to do instead
    return info.value


# -- kb: models ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("tools", TOOLS),
        ("tool_choice", "required"),
        ("response_format", {"type": "json_object"}),
        ("logprobs", True),
        ("logit_bias", {"1": 5}),
        ("presence_penalty", 0.5),
        ("modalities", ["text", "audio"]),
        ("reasoning_effort", "low"),
    ],
)
def test_kb_model_refuses_what_it_cannot_honour(live: LiveServer, field: str, value: Any) -> None:
    client = sdk(live)
    err = refused(
        lambda: client.chat.completions.create(
            model="kb:docs", messages=ASK, extra_body={field: value}
        ),
        field,
    )
    if field not in ("n", "modalities"):
        assert "kb:docs takes" in err.body["hint"]  # type: ignore[index]


def test_kb_model_honours_max_tokens_and_stop(live: LiveServer) -> None:
    client = sdk(live)
    whole = client.chat.completions.create(model="kb:docs", messages=ASK)
    cut = client.chat.completions.create(model="kb:docs", messages=ASK, max_tokens=3)
    assert cut.choices[0].finish_reason == "length"
    assert len(cut.choices[0].message.content or "") < len(whole.choices[0].message.content or "")
    stopped = client.chat.completions.create(model="kb:docs", messages=ASK, stop=["Fujian"])
    text = stopped.choices[0].message.content or ""
    assert "Fujian" in (whole.choices[0].message.content or "") and "Fujian" not in text


def test_kb_model_accepts_the_fields_langchain_sends(live: LiveServer) -> None:
    done = sdk(live).chat.completions.create(
        model="kb:docs",
        messages=ASK,
        temperature=0.0,
        n=1,
        parallel_tool_calls=False,
        response_format={"type": "text"},
        tool_choice="none",
        logprobs=False,
    )
    assert "Fujian" in (done.choices[0].message.content or "")


def test_kb_answer_usage_counts_tokens(live: LiveServer) -> None:
    done = sdk(live).chat.completions.create(model="kb:docs", messages=ASK)
    assert done.usage is not None
    assert done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    assert (done.model_extra or {})["hanlin"]["usage_estimated"] is True  # no model ran
    stream = sdk(live).chat.completions.create(
        model="kb:docs", messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    last = list(stream)[-1]
    assert last.usage is not None and last.usage.completion_tokens > 0


# -- agent: and gateway models ---------------------------------------------------------------


def test_agent_model_refuses_sampling_fields(live: LiveServer) -> None:
    client = sdk(live)
    refused(
        lambda: client.chat.completions.create(
            model="agent:assistant", messages=ASK, temperature=0.3
        ),
        "temperature",
    )


def test_gateway_model_refuses_what_no_provider_can_do(
    live: LiveServer, upstream: UpstreamServer
) -> None:
    client = sdk(live)
    hi: Any = [{"role": "user", "content": "hi"}]
    refused(lambda: client.chat.completions.create(model=MODEL, messages=hi, n=3), "n")
    refused(lambda: client.chat.completions.create(model=MODEL, messages=hi, store=True), "store")
    refused(
        lambda: client.chat.completions.create(model=MODEL, messages=hi, modalities=["audio"]),
        "modalities",
    )
    refused(
        lambda: client.chat.completions.create(
            model=MODEL, messages=hi, extra_body={"hanlin": {"k": 3}}
        ),
        "hanlin",
    )


def test_gateway_passes_parallel_tool_calls_and_logprobs(
    live: LiveServer, upstream: UpstreamServer
) -> None:
    sdk(live).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,
        parallel_tool_calls=False,
        logprobs=True,
        top_logprobs=2,
    )
    sent = upstream.app.requests[-1][2]
    assert sent["parallel_tool_calls"] is False
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2


def test_validation_errors_are_400_with_param(live: LiveServer) -> None:
    resp = httpx.post(
        live.url + "/v1/chat/completions", json={"model": "kb:docs", "messages": []}, timeout=30
    )
    err = resp.json()["error"]
    assert resp.status_code == 400 and err["param"] == "messages" and err["hint"]
    assert err["type"] == "invalid_request_error"


# -- model names -----------------------------------------------------------------------------


def test_get_model_returns_the_model_object(live: LiveServer) -> None:
    client = sdk(live)
    found = client.models.retrieve("kb:docs")
    assert found.id == "kb:docs" and found.object == "model"
    embed = client.models.retrieve("local-embed/fast-use")
    assert embed.owned_by == "local-embed"


def test_unknown_model_is_model_not_found_with_closest(live: LiveServer) -> None:
    client = sdk(live)
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("local-embed/fast-us")
    assert info.value.code == "model_not_found" and info.value.param == "model"
    assert "local-embed/fast-use" in info.value.body["hint"]  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as chat:
        client.chat.completions.create(model="gpt-4o-mni", messages=ASK)
    assert chat.value.code == "model_not_found"
    assert "openai/gpt-4o-mini" in chat.value.body["hint"]  # type: ignore[index]


def test_a_bare_model_name_resolves(live: LiveServer) -> None:
    client = sdk(live)
    vectors = client.embeddings.create(model="fast-use", input="hello")
    assert len(vectors.data[0].embedding) == 512
    # the bare name reaches the openai endpoint, which has no key here: the error says so
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert "hanlin keys set openai" in info.value.body["hint"]  # type: ignore[index]


def test_model_list_has_only_runnable_models(live: LiveServer) -> None:
    ids = {m.id for m in sdk(live).models.list()}
    assert {"kb:docs", "local-embed/fast-use", LOCAL} <= ids
    assert "deepseek/deepseek-chat" not in ids  # no key: it cannot run
    every = httpx.get(live.url + "/v1/models", params={"all": "true"}, timeout=30).json()
    unavailable = {m["id"] for m in every["data"] if m["hanlin"].get("available") is False}
    assert "deepseek/deepseek-chat" in unavailable and not unavailable & ids


# -- embeddings ------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", ["", ["hello", ""], ["  "]])
def test_empty_strings_to_embeddings_are_refused(live: LiveServer, payload: Any) -> None:
    client = sdk(live)
    refused(lambda: client.embeddings.create(model="local-embed/fast-use", input=payload), "input")


def test_unknown_embedding_field_is_refused(live: LiveServer) -> None:
    client = sdk(live)
    refused(
        lambda: client.embeddings.create(
            model="local-embed/fast-use", input="hi", extra_body={"truncate": "END"}
        ),
        "truncate",
    )


# -- the local model (llama.cpp) -------------------------------------------------------------


@pytest.mark.slow
def test_local_model_returns_logprobs_and_honours_logit_bias(live: LiveServer) -> None:
    pytest.importorskip("llama_cpp")
    client = sdk(live)
    question: Any = [{"role": "user", "content": "What is the capital of France?"}]
    done = client.chat.completions.create(
        model=LOCAL, messages=question, max_tokens=4, temperature=0, logprobs=True, top_logprobs=2
    )
    content = (done.choices[0].logprobs and done.choices[0].logprobs.content) or []
    assert content and all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in content)
    first = content[0]
    assert first.token == first.top_logprobs[0].token  # greedy: the likeliest token
    stream = client.chat.completions.create(
        model=LOCAL, messages=question, max_tokens=4, temperature=0, logprobs=True, stream=True
    )
    streamed = [
        t.token
        for c in stream
        if c.choices and c.choices[0].logprobs
        for t in c.choices[0].logprobs.content or []
    ]
    assert streamed == [t.token for t in content]
    banned = client.chat.completions.create(
        model=LOCAL,
        messages=question,
        max_tokens=4,
        temperature=0,
        logprobs=True,
        logit_bias={str(token): -100 for token in _token_ids(first.token)},
    )
    other = banned.choices[0].logprobs
    assert other is not None and other.content and other.content[0].token != first.token


def _token_ids(token: str) -> list[int]:
    from hanlin.models.base import builtin_endpoints, provider_classes
    from hanlin.models.providers.llamacpp import LlamaCppProvider

    endpoint = builtin_endpoints(provider_classes())["local"]
    llm = LlamaCppProvider(endpoint)._model("gemma3-270m").llm
    return list(llm.tokenize(token.encode(), add_bos=False, special=False))


@pytest.mark.slow
def test_local_model_accepts_parallel_tool_calls_and_names_refused_fields(
    live: LiveServer,
) -> None:
    pytest.importorskip("llama_cpp")
    client = sdk(live)
    done = client.chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=120,  # room for the whole call: a cut-off call is no call
        temperature=0,
        seed=7,
    )
    assert len(done.choices[0].message.tool_calls or []) == 1, done
    err = refused(
        lambda: client.chat.completions.create(
            model=LOCAL, messages=ASK, max_tokens=2, extra_body={"reasoning_effort": "low"}
        ),
        "reasoning_effort",
    )
    assert "extra_body" not in str(err.body) and "logprobs" in err.body["hint"]  # type: ignore[index]
    refused(
        lambda: client.chat.completions.create(
            model=LOCAL, messages=ASK, max_tokens=2, top_logprobs=3
        ),
        "top_logprobs",
    )

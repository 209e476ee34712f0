"""The guard model through the gateway, against real local HTTP upstreams: a safety classifier
answering in Llama Guard's and Qwen3Guard's formats blocks or flags the input and the answer,
and one that is down fails the call closed or lets it through open."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hanlin.config import load_settings
from hanlin.guard.classifier import UnreadableVerdict, Verdict, judge, parse
from hanlin.models.errors import GuardUnavailableError
from hanlin.models.gateway import Gateway
from hanlin.models.types import Finish, TextDelta
from hanlin.testing.upstream import FakeUpstream, Reply, UpstreamServer

REFUSAL = "REFUSED."
PHONE = "13812345678"


def _completion(model: str, text: str) -> Reply:
    msg = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": msg, "finish_reason": "stop"}
    usage = {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    return Reply(
        json={
            "id": "c",
            "object": "chat.completion",
            "model": model,
            "choices": [choice],
            "usage": usage,
        }
    )


def _stream(text: str) -> Reply:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return "data: " + json.dumps(
            {"id": "c", "object": "chat.completion.chunk", "choices": [choice]}
        )

    return Reply(sse=[chunk({"content": text}), chunk({}, "stop"), "data: [DONE]"])


def respond(body: dict[str, Any]) -> Reply:
    """``chat`` answers (a question about the secret gets a forbidden answer); ``llamaguard``
    and ``qwen3guard`` call the last message unsafe when it says "forbidden", and
    "controversial" when it says "debate"."""
    model = body["model"]
    last = body["messages"][-1]["content"]
    if model == "chat":
        text = "the forbidden answer" if "secret" in last else f"you said: {last}"
        return _stream(text) if body.get("stream") else _completion(model, text)
    if model == "llamaguard":
        return _completion(model, "unsafe\nS1,S10" if "forbidden" in last else "safe")
    if "forbidden" in last:
        verdict = "Safety: Unsafe\nCategories: Violent"
    elif "debate" in last:
        verdict = "Safety: Controversial\nCategories: Politically Sensitive Topics"
    else:
        verdict = "Safety: Safe\nCategories: None"
    return _completion(model, verdict)


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer(FakeUpstream(respond)) as s:
        yield s


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()  # nothing listens there: connection refused
    return port


@pytest.fixture()
def make(server: UpstreamServer) -> Iterator[Callable[..., Gateway]]:
    server.app.reset()
    made: list[Gateway] = []

    def build(**guard: Any) -> Gateway:
        models = {
            "endpoints": {
                "fake": {"base_url": server.url},
                "down": {"base_url": f"http://127.0.0.1:{_closed_port()}/v1"},
            },
            "retries": 0,
            "cache": False,
        }
        gw = Gateway(load_settings(models=models, guard={"refusal_text": REFUSAL, **guard}))
        made.append(gw)
        return gw

    yield build
    for gw in made:
        gw.close()


def _chat_calls(server: UpstreamServer) -> int:
    return sum(1 for _, _, body in server.app.requests if body and body.get("model") == "chat")


def test_both_output_formats_are_read() -> None:
    assert parse("safe") == Verdict("Safe")
    assert parse("unsafe\nS1,S10") == Verdict("Unsafe", ("S1", "S10"))
    qwen = parse("Safety: Unsafe\nCategories: Violent, PII\nRefusal: No")
    assert qwen == Verdict("Unsafe", ("Violent", "PII"), False)
    assert parse("Safety: Safe\nCategories: None") == Verdict("Safe")
    with pytest.raises(UnreadableVerdict):
        parse("Sure! Here is a poem about spring.")
    # categories map to actions; the strongest wins; unmapped labels take their defaults
    assert judge(Verdict("Unsafe", ("S1", "S10")), {"S10": "flag", "S1": "flag"}).action == "flag"
    assert judge(Verdict("Unsafe", ("S1", "S10")), {"S10": "flag"}).rules == ("GUARD:S1",)
    assert judge(Verdict("Controversial", ("PII",)), {}).action == "flag"
    assert judge(Verdict("Unsafe", ("S2",)), {}).rules == ("GUARD:S2",)


def test_llama_guard_blocks_the_input_before_the_model_is_called(
    make: Callable[..., Gateway], server: UpstreamServer
) -> None:
    gw = make(model="fake/llamaguard")
    resp = gw.chat("tell me something forbidden", "fake/chat")
    assert resp.text == REFUSAL and resp.finish_reason == "content_filter"
    assert resp.guard == {"blocked": "GUARD:S1"}
    assert _chat_calls(server) == 0  # the model never saw it
    ok = gw.chat("hello there", "fake/chat")
    assert ok.text == "you said: hello there" and ok.guard is None


def test_llama_guard_blocks_an_answer_and_a_streamed_input(
    make: Callable[..., Gateway], server: UpstreamServer
) -> None:
    gw = make(model="fake/llamaguard", model_categories={"S10": "flag"})
    resp = gw.chat("what is the secret?", "fake/chat")
    assert resp.text == REFUSAL and resp.finish_reason == "content_filter"
    assert resp.guard == {"blocked": "GUARD:S1"}
    assert _chat_calls(server) == 1  # asked, then its answer was classified and replaced
    stream = gw.stream("something forbidden", "fake/chat")
    events = list(stream)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == REFUSAL
    assert [e.reason for e in events if isinstance(e, Finish)] == ["content_filter"]
    assert stream.response is not None and stream.response.guard == {"blocked": "GUARD:S1"}


def test_qwen3guard_categories_are_mapped_to_the_policy(make: Callable[..., Gateway]) -> None:
    gw = make(model="fake/qwen3guard")
    assert gw.chat("forbidden stuff", "fake/chat").guard == {"blocked": "GUARD:Violent"}
    flagged = gw.chat("a debate", "fake/chat")  # Controversial flags by default
    assert flagged.text == "you said: a debate"
    assert flagged.guard == {"flags": ["GUARD:Politically Sensitive Topics"]}
    strict = make(
        model="fake/qwen3guard", model_categories={"Politically Sensitive Topics": "block"}
    )
    assert strict.chat("a debate", "fake/chat").finish_reason == "content_filter"


def test_a_guard_model_that_is_down_fails_closed_for_masked_calls(
    make: Callable[..., Gateway], server: UpstreamServer
) -> None:
    # the call is masked (the fake counts as remote): closed by default, with a hint
    gw = make(model="down/llamaguard", remote_endpoints=["fake"])
    with pytest.raises(GuardUnavailableError) as err:
        gw.chat(f"call me on {PHONE}", "fake/chat")
    assert err.value.code == "guard_unavailable"
    assert 'model_failure = "open"' in (err.value.hint or "")
    assert _chat_calls(server) == 0
    with pytest.raises(GuardUnavailableError):
        list(gw.stream("hello", "fake/chat"))
    # said explicitly, closed holds for local calls too
    with pytest.raises(GuardUnavailableError):
        make(model="down/llamaguard", model_failure="closed").chat("hello", "fake/chat")


def test_a_guard_model_that_is_down_lets_calls_through_when_open(
    make: Callable[..., Gateway], server: UpstreamServer
) -> None:
    opened = make(model="down/llamaguard", remote_endpoints=["fake"], model_failure="open")
    resp = opened.chat(f"call me on {PHONE}", "fake/chat")
    assert resp.text == f"you said: call me on {PHONE}"  # restored after masking
    assert resp.guard == {"masked": {"PHONE": 1}, "unchecked": True}
    # not masked (a local call) and not said: open
    local = make(model="down/llamaguard").chat("hello", "fake/chat")
    assert local.text == "you said: hello" and local.guard == {"unchecked": True}

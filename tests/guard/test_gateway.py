"""The PII guard in the gateway, against a real local HTTP upstream standing in for a remote
provider: what the upstream receives, and what the caller gets back."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hanlin.config import load_settings
from hanlin.guard.checksums import id_check_char
from hanlin.models.gateway import Gateway
from hanlin.models.types import Message, TextDelta, Tool, ToolCall, ToolCallDelta
from hanlin.testing.upstream import FakeUpstream, Reply, UpstreamServer

CHAT = "/v1/chat/completions"
PHONE = "13812345678"
ID17 = "11010519491231002"
ID_CARD = ID17 + id_check_char(ID17)
BAD_ID = ID17 + ("1" if ID_CARD[-1] != "1" else "2")  # wrong check digit: not personal data
PROMPT = f"我的手机是{PHONE}，身份证号{ID_CARD}，请复述。另一个号{BAD_ID}。"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    body = {
        "id": "chatcmpl-echo",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "echo",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return "data: " + json.dumps(body, ensure_ascii=False)


def echo(body: dict[str, Any]) -> Reply:
    """Answers with the last user message it received — placeholders included — in
    two-character stream pieces; a request with tools gets a call carrying that text."""
    said = body["messages"][-1]["content"]
    if isinstance(said, list):
        said = "".join(p.get("text", "") for p in said)
    answer = "you said: " + said
    if body.get("tools"):
        args = json.dumps({"text": said}, ensure_ascii=False)
        if not body.get("stream"):
            call = {"id": "c1", "type": "function", "function": {"name": "note", "arguments": args}}
            msg = {"role": "assistant", "content": None, "tool_calls": [call]}
            return Reply(json=_completion(msg, "tool_calls"))
        head = {"index": 0, "id": "c1", "type": "function"}
        deltas = [{**head, "function": {"name": "note", "arguments": ""}}]
        deltas += [
            {"index": 0, "function": {"arguments": args[i : i + 3]}} for i in range(0, len(args), 3)
        ]
        events = [_chunk({"tool_calls": [d]}) for d in deltas]
        return Reply(sse=[*events, _chunk({}, "tool_calls"), "data: [DONE]"])
    if not body.get("stream"):
        return Reply(json=_completion({"role": "assistant", "content": answer}, "stop"))
    pieces = [answer[i : i + 2] for i in range(0, len(answer), 2)]
    events = [_chunk({"content": p}) for p in pieces]
    return Reply(sse=[*events, _chunk({}, "stop"), "data: [DONE]"])


def _completion(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-echo",
        "object": "chat.completion",
        "created": 1,
        "model": "echo",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    }


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer(FakeUpstream(echo)) as s:
        yield s


@pytest.fixture()
def make(server: UpstreamServer) -> Iterator[Callable[..., Gateway]]:
    server.app.reset()
    made: list[Gateway] = []

    def build(**guard: Any) -> Gateway:
        models = {"endpoints": {"fake": {"base_url": server.url}}, "retries": 0}
        gw = Gateway(load_settings(models=models, guard=guard))
        made.append(gw)
        return gw

    yield build
    for gw in made:
        gw.close()


def _sent(server: UpstreamServer) -> str:
    """Everything the upstream received, as text."""
    return json.dumps(
        [body for path, _, body in server.app.requests if path == CHAT], ensure_ascii=False
    )


def test_a_remote_provider_never_sees_the_values_and_the_answer_has_them_back(
    make: Callable[..., Gateway], server: UpstreamServer
) -> None:
    gw = make(remote_endpoints=["fake"])  # the fake listens on loopback: call it remote
    resp = gw.chat(PROMPT, "fake/echo")
    sent = _sent(server)
    assert PHONE not in sent and ID_CARD not in sent
    assert "<PHONE_1>" in sent and "<ID_CARD_1>" in sent
    assert BAD_ID in sent  # a wrong check digit is not an ID number: left as it is
    assert resp.text == "you said: " + PROMPT


def test_a_streamed_answer_is_restored_across_split_placeholders(
    make: Callable[..., Gateway], server: UpstreamServer
) -> None:
    gw = make(remote_endpoints=["fake"])
    stream = gw.stream(PROMPT, "fake/echo")
    pieces = [e.text for e in stream if isinstance(e, TextDelta)]
    assert PHONE not in _sent(server)
    assert "".join(pieces) == "you said: " + PROMPT
    assert not any("<" in p for p in pieces)  # no half placeholder ever reached the caller
    assert stream.response is not None and stream.response.text == "you said: " + PROMPT


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_call_arguments_get_the_real_values(
    make: Callable[..., Gateway], server: UpstreamServer, streamed: bool
) -> None:
    gw = make(remote_endpoints=["fake"])
    tools = [
        Tool(name="note", parameters={"type": "object", "properties": {"text": {"type": "string"}}})
    ]
    if streamed:
        stream = gw.stream(PROMPT, "fake/echo", tools=tools)
        events = list(stream)
        assert any(isinstance(e, ToolCallDelta) for e in events)
        assert stream.response is not None
        calls = stream.response.tool_calls
    else:
        calls = gw.chat(PROMPT, "fake/echo", tools=tools).tool_calls
    assert PHONE not in _sent(server)
    assert json.loads(calls[0].arguments) == {"text": PROMPT}


def test_tool_arguments_keep_placeholders_when_the_policy_says_so(
    make: Callable[..., Gateway], server: UpstreamServer
) -> None:
    gw = make(remote_endpoints=["fake"], restore_tool_arguments=False)
    tools = [Tool(name="note")]
    call = gw.chat(PROMPT, "fake/echo", tools=tools).tool_calls[0]
    assert PHONE not in call.arguments and "<PHONE_1>" in call.arguments


def test_history_is_masked_with_the_same_placeholder_for_the_same_value(
    make: Callable[..., Gateway], server: UpstreamServer
) -> None:
    gw = make(remote_endpoints=["fake"])
    args = json.dumps({"phone": PHONE})
    history = [
        Message.user(f"call {PHONE}"),
        Message.assistant(None, [ToolCall("c0", "dial", args)]),
        Message.tool("c0", f"dialled {PHONE}"),
        Message.user(f"and text {PHONE} too"),
    ]
    resp = gw.chat(history, "fake/echo")
    sent = _sent(server)
    assert PHONE not in sent
    assert sent.count("<PHONE_1>") == 4 and "<PHONE_2>" not in sent
    assert resp.text == f"you said: and text {PHONE} too"


def test_a_local_endpoint_is_not_masked_by_default(
    make: Callable[..., Gateway], server: UpstreamServer
) -> None:
    gw = make()  # loopback endpoint, default policy "remote": local, so not masked
    resp = gw.chat(PROMPT, "fake/echo")
    assert PHONE in _sent(server) and ID_CARD in _sent(server)
    assert resp.text == "you said: " + PROMPT


@pytest.mark.parametrize(
    ("guard", "masked"),
    [
        ({"mask_pii": "always"}, True),
        ({"mask_pii": "never", "remote_endpoints": ["fake"]}, False),
        ({"remote_endpoints": ["fake"], "routes": {"fake": {"mask_pii": "never"}}}, False),
        ({"routes": {"fake/echo": {"mask_pii": "always"}}}, True),
        ({"remote_endpoints": ["fake"], "entities": ["ID_CARD"]}, "id only"),
    ],
)
def test_policy_overrides(
    make: Callable[..., Gateway], server: UpstreamServer, guard: dict[str, Any], masked: object
) -> None:
    gw = make(**guard)
    gw.chat(PROMPT, "fake/echo")
    sent = _sent(server)
    if masked == "id only":
        assert PHONE in sent and ID_CARD not in sent
    else:
        assert (PHONE not in sent) is masked


def test_the_span_records_counts_per_type_and_never_the_values(
    make: Callable[..., Gateway], server: UpstreamServer
) -> None:
    from hanlin.tracing import TraceQuery, setup

    gw = make(remote_endpoints=["fake"])
    gw.chat(f"{PHONE} {PHONE} {ID_CARD}", "fake/echo")
    assert setup.flush(10)
    store = setup.current_store()
    assert store is not None
    (trace,) = store.list_traces(TraceQuery())
    (call,) = store.get_trace(trace.trace_id)
    assert call.attributes["hanlin.guard.masked"] == 3
    assert call.attributes["hanlin.guard.masked.PHONE"] == 2
    assert call.attributes["hanlin.guard.masked.ID_CARD"] == 1
    assert call.attributes["hanlin.guard.mask_pii"] == "remote"
    guard_attrs = {k: v for k, v in call.attributes.items() if k.startswith("hanlin.guard")}
    assert PHONE not in json.dumps(guard_attrs)


def test_embeddings_to_a_remote_endpoint_are_masked_without_numbers(
    make: Callable[..., Gateway], server: UpstreamServer
) -> None:
    from hanlin.testing import recordings as rec

    gw = make(remote_endpoints=["fake"])
    server.app.script("/v1/embeddings", rec.openai_embeddings(2))
    gw.embed([f"电话 {PHONE}", "无"], "fake/emb")
    (body,) = [b for p, _, b in server.app.requests if p == "/v1/embeddings"]
    assert body["input"][0] == "电话 <PHONE>"
    assert not re.search(PHONE, json.dumps(body))


def test_a_knowledge_base_rule_masks_its_answers_model_calls(
    server: UpstreamServer, tmp_path: Any
) -> None:
    from hanlin.knowledge.kb import KnowledgeBase
    from hanlin.rag.engine import RagEngine

    server.app.reset()
    guard = {"mask_pii": "never", "kbs": {"hr": {"mask_pii": "always"}}}
    models = {"endpoints": {"fake": {"base_url": server.url}}, "retries": 0}
    settings = load_settings(models=models, guard=guard)
    doc = tmp_path / "staff.md"
    doc.write_text(f"# 员工\n\n张伟的手机是 {PHONE}，工号 1001。\n", "utf-8")
    gw = Gateway(settings)
    try:
        for name in ("hr", "open"):
            with KnowledgeBase.create(name, settings=settings) as kb:
                kb.add(doc)
                RagEngine(kb, gw).ask("张伟的手机是多少？", model="fake/echo", mode="generative")
    finally:
        gw.close()
    bodies = [json.dumps(b, ensure_ascii=False) for p, _, b in server.app.requests if p == CHAT]
    assert len(bodies) == 2
    assert PHONE not in bodies[0] and "<PHONE_1>" in bodies[0]  # hr: masked
    assert PHONE in bodies[1]  # another knowledge base: the global "never"

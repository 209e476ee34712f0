"""The leaks a trace could hold outside the gateway's own spans, performed: a RAG question, a
knowledge-base search and an agent's tool call carrying a phone number and an ID card number,
each under a policy that masks — then every span read back from the trace store, and the store's
raw bytes, hold placeholders and never the values."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin.agents.loop import Agent
from hanlin.agents.tools.base import tool
from hanlin.config import RagSettings, load_settings
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.models.gateway import Gateway
from hanlin.rag.engine import RagEngine
from hanlin.testing.upstream import FakeUpstream, Reply, UpstreamServer
from hanlin.tracing import TraceQuery, setup
from hanlin.tracing.base import SpanRecord
from tests.conftest import on_postgres
from tests.guard.test_gateway import ID_CARD, PHONE, echo

QUESTION = f"我的手机是{PHONE}，身份证号{ID_CARD}。Where does the Danube rise?"
DOC = "# Danube\n\nThe Danube rises in the Black Forest in Germany and flows to the Black Sea.\n"


def _agent_echo(body: dict[str, Any]) -> Reply:
    """``echo``, but a turn after a tool result answers in text instead of calling again."""
    if body["messages"][-1]["role"] == "tool":
        body = {k: v for k, v in body.items() if k != "tools"}
    return echo(body)


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer(FakeUpstream(_agent_echo)) as s:
        yield s


def _gateway(home: Path, upstream: UpstreamServer, **guard: Any) -> Gateway:
    models = {"endpoints": {"fake": {"base_url": upstream.url}}, "retries": 0}
    # the fake listens on loopback: call it remote, so the default policy masks it
    guard = {"remote_endpoints": ["fake"], **guard}
    return Gateway(load_settings(home=home, models=models, guard=guard))


@pytest.fixture()
def kb(hanlin_home: Path) -> Iterator[KnowledgeBase]:
    docs = hanlin_home / "docs"
    docs.mkdir()
    (docs / "danube.md").write_text(DOC, "utf-8")
    with KnowledgeBase.create("rivers", settings=load_settings(home=hanlin_home)) as k:
        assert k.add(docs).ok
        yield k


def _spans(name_prefix: str) -> list[SpanRecord]:
    assert setup.flush(10)
    store = setup.current_store()
    assert store is not None
    traces = [t for t in store.list_traces(TraceQuery()) if t.name.startswith(name_prefix)]
    assert traces, f"no trace starting with {name_prefix!r}"
    return [s for t in traces for s in store.get_trace(t.trace_id)]


def _recorded(spans: list[SpanRecord]) -> str:
    return json.dumps([dataclasses.asdict(s) for s in spans], ensure_ascii=False, default=str)


def _assert_no_values(home: Path, spans: list[SpanRecord]) -> None:
    text = _recorded(spans)
    assert PHONE not in text and ID_CARD not in text
    setup.shutdown()  # everything written; the store's files closed
    raw = b"".join(p.read_bytes() for p in home.glob("traces.sqlite*"))
    assert on_postgres() or raw
    assert PHONE.encode() not in raw and ID_CARD.encode() not in raw


def test_a_rag_answer_on_a_masked_route_traces_question_query_and_answer_masked(
    kb: KnowledgeBase, upstream: UpstreamServer, hanlin_home: Path
) -> None:
    gw = _gateway(hanlin_home, upstream)
    try:
        engine = RagEngine(
            kb, gateway=gw, settings=RagSettings(generator="fake/m", refusal_threshold=0.0)
        )
        answer = engine.ask(QUESTION, mode="generative")
    finally:
        gw.close()
    assert PHONE in answer.text  # the echo's placeholders came back as the values
    spans = _spans("answer rivers")
    root = next(s for s in spans if s.name == "answer rivers")
    assert "<PHONE_1>" in root.attributes["hanlin.question"]
    assert "<ID_CARD_1>" in root.attributes["hanlin.question"]
    assert "<PHONE_1>" in root.attributes["gen_ai.output.messages"]
    search = next(s for s in spans if s.name == "search rivers")
    assert "<PHONE_1>" in search.attributes["hanlin.query"]  # one numbering for the answer
    _assert_no_values(hanlin_home, spans)


def test_a_search_is_traced_masked_where_the_policy_says_always(hanlin_home: Path) -> None:
    docs = hanlin_home / "docs"
    docs.mkdir()
    (docs / "danube.md").write_text(DOC, "utf-8")
    guard = {"kbs": {"hr": {"mask_pii": "always"}}}
    with KnowledgeBase.create("hr", settings=load_settings(home=hanlin_home, guard=guard)) as hr:
        assert hr.add(docs).ok
        hr.search(f"who has {ID_CARD} or {PHONE}?")
    (search,) = [s for s in _spans("search hr") if s.name == "search hr"]
    assert "who has <ID_CARD_1> or <PHONE_1>?" in search.attributes["hanlin.query"]
    _assert_no_values(hanlin_home, [search])


def test_a_search_with_no_masking_rule_is_traced_as_typed(hanlin_home: Path) -> None:
    """The documented rule: a search sends nothing out, so ``remote`` leaves it as typed."""
    docs = hanlin_home / "docs"
    docs.mkdir()
    (docs / "danube.md").write_text(DOC, "utf-8")
    with KnowledgeBase.create("open", settings=load_settings(home=hanlin_home)) as kb:
        assert kb.add(docs).ok
        kb.search(f"call {PHONE}")
    (search,) = [s for s in _spans("search open") if s.name == "search open"]
    assert PHONE in search.attributes["hanlin.query"]


@tool
def note(text: str) -> str:
    """Files a note.

    Args:
        text: what to note
    """
    raise ValueError(f"the archive refused the note: {text}")


def test_an_agent_on_a_masked_route_traces_tool_arguments_results_and_errors_masked(
    upstream: UpstreamServer, hanlin_home: Path
) -> None:
    gw = _gateway(hanlin_home, upstream)
    try:
        result = Agent(gw, "fake/m", [note]).run(QUESTION)
    finally:
        gw.close()
    (called,) = result.tool_results
    assert PHONE in called.content and called.is_error  # the tool got the real values
    spans = _spans("invoke_agent")
    tool_span = next(s for s in spans if s.name == "execute_tool note")
    assert "<PHONE_1>" in tool_span.attributes["gen_ai.tool.call.arguments"]
    assert "<ID_CARD_1>" in tool_span.attributes["gen_ai.tool.call.result"]
    assert tool_span.status == "error" and "<PHONE_1>" in (tool_span.error or "")
    _assert_no_values(hanlin_home, spans)

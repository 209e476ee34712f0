"""Conversation memory (summaries past a token budget) and long-term memory (facts in a
knowledge base per user), against the fake upstream and the default offline embedder."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from hanlin.agents.events import AgentEvent, AgentResult, MemoryEvent, ToolResultEvent
from hanlin.agents.loop import Agent
from hanlin.agents.memory import (
    RECALL_PREFIX,
    SUMMARY_PREFIX,
    AgentChat,
    ConversationMemory,
    LongTermMemory,
    memory_kb_name,
)
from hanlin.agents.spec import AgentSpec, open_agent
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.models.embeddings.base import EmbeddingModel, get_embedder
from hanlin.models.gateway import Gateway
from hanlin.models.types import Message
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import UpstreamServer
from tests.agents.test_loop import answer, calls_stream
from tests.agents.test_planner import (
    MODEL,
    PATH,
    bodies,
    prompt_text,
)

TURNS = [
    ("I am planning a trip to Kyoto in April with my sister.", "Lovely — cherry blossom season."),
    ("We prefer trains over buses, and we hate early mornings.", "Noted: trains, late starts."),
    ("Our budget is about 3000 dollars for ten days in total.", "That works for mid-range."),
    ("Which temples should we see on the first day there?", "Kiyomizu-dera and Kodai-ji."),
    ("And where should we eat near Gion that evening?", "Try kaiseki on Hanamikoji."),
]


def chat(memory: ConversationMemory, turns: list[tuple[str, str]]) -> None:
    for user, reply in turns:
        memory.add(Message.user(user), Message.assistant(reply))


def test_older_turns_are_summarized_past_the_budget_and_recent_turns_kept_verbatim(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    memory = ConversationMemory(
        gateway, MODEL, max_tokens=120, keep_recent=2, summary_tokens=40, system="Be brief."
    )
    chat(memory, TURNS)
    before = memory.tokens()
    assert before > 120
    recent = memory.turns[-4:]
    summary = "Kyoto trip in April with sister; trains; late starts; budget $3000 for 10 days."
    upstream.app.script(PATH, rec.openai_text("openai", summary))

    assert memory.compact() is True
    assert memory.tokens() <= 120 < before
    messages = memory.messages
    assert messages[0] == Message.system("Be brief.")
    assert messages[1].role == "system" and messages[1].text == f"{SUMMARY_PREFIX}\n{summary}"
    assert messages[2:] == recent  # the two latest turns, word for word
    sent = prompt_text(bodies(upstream)[0])
    assert TURNS[0][0] in sent and TURNS[2][1] in sent  # the old turns were summarized
    assert TURNS[4][0] not in sent  # the recent ones were not
    assert bodies(upstream)[0]["max_tokens"] == 40
    # under the budget nothing is sent
    assert memory.compact() is False and len(bodies(upstream)) == 1


def test_a_second_summary_folds_in_the_first(gateway: Gateway, upstream: UpstreamServer) -> None:
    memory = ConversationMemory(gateway, MODEL, max_tokens=60, keep_recent=1, summary_tokens=30)
    chat(memory, TURNS[:3])
    upstream.app.script(PATH, rec.openai_text("openai", "Kyoto trip, trains."))
    assert memory.compact()
    chat(memory, TURNS[3:])
    upstream.app.script(PATH, rec.openai_text("openai", "Kyoto trip, trains, temples."))
    assert memory.compact()
    second = prompt_text(bodies(upstream)[1])
    assert "Earlier summary:\nKyoto trip, trains." in second and TURNS[3][0] in second
    assert memory.summary == "Kyoto trip, trains, temples." and memory.summaries == 2
    assert memory.turns == [Message.user(TURNS[4][0]), Message.assistant(TURNS[4][1])]


def test_keeps_fewer_recent_turns_when_they_alone_exceed_the_budget(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    memory = ConversationMemory(gateway, MODEL, max_tokens=200, keep_recent=4, summary_tokens=40)
    long = "word " * 120  # ~120 tokens per turn
    chat(memory, [(f"{i}: {long}", f"ok {i}") for i in range(3)])
    upstream.app.script(PATH, rec.openai_text("openai", "Three long messages."))
    assert memory.compact()
    assert [m.text[:2] for m in memory.turns] == ["2:", "ok"]  # only the latest turn is left


def test_a_chat_summarizes_as_it_goes_and_the_agent_sees_the_summary(
    gateway: Gateway, upstream: UpstreamServer
) -> None:
    agent = Agent(gateway, MODEL, [], system="You are a travel agent.")
    memory = ConversationMemory(gateway, MODEL, max_tokens=80, keep_recent=1, summary_tokens=30)
    talk = AgentChat(agent, memory)
    upstream.app.script(
        PATH,
        answer(TURNS[0][1]),
        answer(TURNS[1][1]),
        rec.openai_text("openai", "Kyoto in April; trains."),  # the summary
        answer(TURNS[2][1]),
    )

    async def go() -> list[AgentResult]:
        return [await talk.asend(user) for user, _ in TURNS[:3]]

    turns = asyncio.run(go())
    assert [t.text for t in turns] == [TURNS[0][1], TURNS[1][1], TURNS[2][1]]
    summarized = [e for t in turns for e in t.events if isinstance(e, MemoryEvent)]
    assert len(summarized) == 1 and summarized[0] is turns[2].events[0]
    assert summarized[0].summary == "Kyoto in April; trains."
    assert summarized[0].tokens_after < summarized[0].tokens_before
    last = bodies(upstream)[-1]["messages"]
    assert last[0] == {"role": "system", "content": "You are a travel agent."}
    assert last[1]["role"] == "system" and "Kyoto in April; trains." in last[1]["content"]
    assert last[-1] == {"role": "user", "content": TURNS[2][0]}
    assert TURNS[0][0] not in json.dumps(last) and memory.summaries == 1


# --- long-term memory -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedders() -> Callable[[str], EmbeddingModel]:
    """One loaded embedding model for the module (loading takes seconds)."""
    loaded: dict[str, EmbeddingModel] = {}

    def get(name: str) -> EmbeddingModel:
        if name not in loaded:
            loaded[name] = get_embedder(name)
        return loaded[name]

    return get


@pytest.mark.slow
def test_facts_are_recalled_across_sessions_of_one_user_only(
    embedders: Callable[[str], EmbeddingModel],
) -> None:
    first = LongTermMemory("alice", "monday", embedders=embedders)
    first.remember("Alice's dog is a corgi called Biscuit.")
    first.remember("Alice is allergic to peanuts.")
    first.remember("Alice is allergic to peanuts.")  # the same fact again is not duplicated
    later = LongTermMemory("alice", "friday", embedders=embedders)
    found = later.recall("what is the name of her dog?", k=1)
    assert [f.text for f in found] == ["Alice's dog is a corgi called Biscuit."]
    assert found[0].session == "monday" and found[0].user == "alice" and found[0].time > 0
    assert len(later.facts()) == 2
    assert LongTermMemory("bob", embedders=embedders).recall("dog") == []
    assert memory_kb_name("alice") in KnowledgeBase.names()
    assert later.recall("peanuts", session="friday") == []  # a session filter narrows it
    assert later.forget(found[0].key) and len(later.facts()) == 1


def test_memory_kb_names_are_safe_and_distinct() -> None:
    assert memory_kb_name("alice") == "memory-alice"
    odd = memory_kb_name("a/b c")
    assert odd.startswith("memory-a_b_c-") and odd != memory_kb_name("a_b c")
    assert len(memory_kb_name("x" * 200)) <= 64


@pytest.mark.slow
def test_remember_then_recall_in_a_new_session_through_agents(
    gateway: Gateway,
    upstream: UpstreamServer,
    embedders: Callable[[str], EmbeddingModel],
) -> None:
    spec = AgentSpec.validated({"name": "buddy", "model": MODEL, "tools": ["remember", "recall"]})
    fact = "The user's favourite tea is Longjing."
    upstream.app.script(
        PATH,
        calls_stream(("remember", json.dumps({"fact": fact}))),
        answer("I'll remember that."),
        answer("Longjing, as you told me."),
        calls_stream(("recall", '{"query": "favourite tea"}')),
        answer("I don't know yet."),
    )

    async def session(user: str, name: str, text: str) -> list[AgentEvent]:
        async with open_agent(spec, gateway, user=user, session=name, embedders=embedders) as agent:
            return [e async for e in agent.astream(text)]

    def results(events: list[AgentEvent]) -> list[str]:
        return [e.content for e in events if isinstance(e, ToolResultEvent)]

    # session 1: the model saves the fact; remember runs without asking (own memory)
    first = asyncio.run(session("carol", "s1", "My favourite tea is Longjing."))
    assert results(first) == [f"remembered: {fact}"]
    assert not any(isinstance(e, MemoryEvent) for e in first)  # nothing to recall yet
    # session 2, same user: the fact is recalled into the first turn as a system note
    second = asyncio.run(session("carol", "s2", "Which tea should I order?"))
    assert isinstance(second[0], MemoryEvent) and second[0].action == "recalled"
    assert fact in second[0].summary
    opening = bodies(upstream)[2]["messages"]
    notes = [m["content"] for m in opening if m["role"] == "system"]
    assert any(n.startswith(RECALL_PREFIX) and fact in n for n in notes)
    # another user: nothing injected, and recall finds nothing
    third = asyncio.run(session("dave", "s1", "Which tea should I order?"))
    assert results(third) == ["nothing remembered about 'favourite tea'"]
    assert RECALL_PREFIX not in prompt_text(bodies(upstream)[3])

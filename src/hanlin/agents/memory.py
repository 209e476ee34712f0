"""Agent memory: a conversation kept under a token budget by summarizing its older turns, and
long-term facts per user stored in a knowledge base and recalled by search.

:class:`ConversationMemory` keeps the system prompt and the most recent turns verbatim and folds
everything older into a summary (a system note) written by the model. :class:`LongTermMemory`
stores facts in the knowledge base ``memory-<user>`` (metadata: user, session, time), found again
by hybrid search with the default offline embedder; agents reach it through the ``remember`` /
``recall`` tools, and a first turn can get the relevant facts as a system note.
:class:`AgentChat` runs a multi-turn chat with an agent on top of both.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hanlin.access import caller as access
from hanlin.agents.events import AgentEvent, AgentResult, FinalEvent, MemoryEvent
from hanlin.agents.tools.base import AgentTool, ToolResult, tool
from hanlin.config import Settings, load_settings
from hanlin.errors import HanlinError, InvalidInputError
from hanlin.models.gateway import Gateway, as_messages
from hanlin.models.types import Message
from hanlin.prompts.builtin import bundled_text

if TYPE_CHECKING:
    from hanlin.agents.loop import Agent
    from hanlin.agents.planner import PlannerAgent
    from hanlin.knowledge.kb import KnowledgeBase
    from hanlin.models.embeddings.base import EmbeddingModel
    from hanlin.prompts.library import Resolved

#: how the summary note starts; a system message starting with it is the summary
SUMMARY_PREFIX = "Summary of the earlier conversation:"
RECALL_PREFIX = "Facts remembered from earlier conversations with this user (may be relevant):"

#: the bundled summary prompt (the registry's ``agent.memory.summarize``, version 1)
SUMMARIZE_PROMPT = bundled_text("agent.memory.summarize")


# --- conversation memory ----------------------------------------------------------------------


class ConversationMemory:
    """A transcript kept under ``max_tokens`` by summarizing older turns with the model.

    A turn starts at a user message and runs to the next one. When the transcript is over
    budget, :meth:`acompact` keeps the leading system prompt and the last ``keep_recent`` turns
    verbatim (fewer if those alone exceed the budget, never fewer than the latest turn) and
    replaces the older turns, and any earlier summary, with one model-written summary placed as
    a system note after the system prompt. Tokens are counted with the model's tokenizer when
    the gateway has it, else estimated (:meth:`Gateway.count_tokens`).
    """

    def __init__(
        self,
        gateway: Gateway,
        model: str | None = None,
        *,
        max_tokens: int = 4000,
        keep_recent: int = 4,
        summary_tokens: int = 400,
        system: str | None = None,
        summarize_prompt: Resolved | None = None,
    ) -> None:
        if max_tokens < 1 or keep_recent < 1 or summary_tokens < 1:
            raise InvalidInputError(
                "conversation memory needs max_tokens, keep_recent and summary_tokens ≥ 1",
                hint="e.g. ConversationMemory(gw, max_tokens=4000, keep_recent=4)",
            )
        self.gateway = gateway
        self.model = model
        self.max_tokens = max_tokens
        self.keep_recent = keep_recent
        self.summary_tokens = summary_tokens
        #: the summary request (``agent.memory.summarize``; None: the bundled one)
        self.summarize_prompt = summarize_prompt
        self.system: list[Message] = [Message.system(system)] if system else []
        self.summary: str | None = None
        self.turns: list[Message] = []
        self.summaries = 0  # how many times older turns were summarized

    @property
    def messages(self) -> list[Message]:
        """The transcript to send: system prompt, summary note, then the turns (a new list)."""
        note = [Message.system(f"{SUMMARY_PREFIX}\n{self.summary}")] if self.summary else []
        return [*self.system, *note, *self.turns]

    def add(self, *messages: Message | dict[str, Any] | str) -> None:
        """Append messages (a string is a user message); leading system messages are the
        system prompt, a summary note (see :data:`SUMMARY_PREFIX`) replaces the summary."""
        for m in as_messages([Message.user(x) if isinstance(x, str) else x for x in messages]):
            if m.role == "system" and m.text.startswith(SUMMARY_PREFIX):
                self.summary = m.text[len(SUMMARY_PREFIX) :].strip() or None
            elif m.role == "system" and not self.turns:
                self.system.append(m)
            else:
                self.turns.append(m)

    def tokens(self, messages: Sequence[Message] | None = None) -> int:
        """Tokens in ``messages`` (default: the transcript), with a small per-message overhead."""
        return sum(self._count(m) for m in (self.messages if messages is None else messages))

    def _count(self, m: Message) -> int:
        text = m.text
        for call in m.tool_calls or []:
            text += f" {call.name} {call.arguments}"
        try:
            n = self.gateway.count_tokens(text, self.model).tokens
        except HanlinError:
            from hanlin.text import count_tokens

            n = count_tokens(text)
        return n + 4

    def _turn_starts(self) -> list[int]:
        starts = [i for i, m in enumerate(self.turns) if m.role == "user"]
        return starts if starts and starts[0] == 0 else [0, *starts]

    async def acompact(self) -> bool:
        """Summarize older turns if the transcript is over budget; True if it did.

        Raises the gateway's model errors (the transcript is left as it was)."""
        if self.tokens() <= self.max_tokens:
            return False
        starts = self._turn_starts()
        keep = min(self.keep_recent, len(starts))
        fixed = self.tokens(self.system) + self.summary_tokens + 16
        # keep fewer recent turns while they alone do not fit next to the summary
        while keep > 1 and fixed + self.tokens(self.turns[starts[-keep] :]) > self.max_tokens:
            keep -= 1
        split = starts[-keep]
        if split == 0:
            return False  # only the latest turn is left; nothing older to fold in
        older = self.turns[:split]
        previous = f"Earlier summary:\n{self.summary}\n\n" if self.summary else ""
        values = {
            "words": max(20, self.summary_tokens * 3 // 4),
            "previous": previous,
            "conversation": render_transcript(older),
        }
        if self.summarize_prompt is not None:
            prompt = self.summarize_prompt.fill(**values)
        else:
            prompt = SUMMARIZE_PROMPT.format(**values)
        with access.configured_model("agents"):
            resp = await self.gateway.achat(
                [Message.user(prompt)], self.model, max_tokens=self.summary_tokens
            )
        self.summary = resp.text.strip() or self.summary
        self.turns = self.turns[split:]
        self.summaries += 1
        return True

    def compact(self) -> bool:
        """Synchronous :meth:`acompact`."""
        done: bool = self.gateway.run_sync(self.acompact())
        return done


def render_transcript(messages: Sequence[Message], clip: int = 2000) -> str:
    """Messages as ``role: text`` lines for a summarizing prompt (tool traffic shortened)."""
    lines = []
    for m in messages:
        text = m.text if len(m.text) <= clip else m.text[:clip] + "…"
        if m.role == "tool":
            lines.append(f"tool {m.name or ''} result: {text}")
            continue
        calls = "; ".join(f"called {c.name}({c.arguments[:200]})" for c in m.tool_calls or [])
        lines.append(f"{m.role}: {text}" + (f" [{calls}]" if calls else ""))
    return "\n".join(lines)


# --- long-term memory -------------------------------------------------------------------------


@dataclass(slots=True)
class Fact:
    """A remembered fact: its text, who and when, and the search score when recalled."""

    key: str
    text: str
    user: str
    session: str | None
    time: float
    score: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        when = datetime.fromtimestamp(self.time, UTC).isoformat(timespec="seconds")
        return {"fact": self.text, "session": self.session, "time": when}


def memory_kb_name(user: str, prefix: str = "memory-") -> str:
    """The knowledge base holding ``user``'s memories: ``memory-<user>``, made name-safe (a
    short hash keeps users apart whose names differ only in characters that were replaced)."""
    if not user.strip():
        raise InvalidInputError("a memory needs a user name", hint="pass user='alice'")
    safe = re.sub(r"[^\w.\-]", "_", user.strip())
    if safe != user or len(prefix + safe) > 64:
        digest = hashlib.sha256(user.encode()).hexdigest()[:8]
        safe = f"{safe[: 64 - len(prefix) - 9]}-{digest}"
    return prefix + safe


class LongTermMemory:
    """Facts about one user kept in the knowledge base ``memory-<user>`` across sessions.

    ``remember`` stores a fact (the same text again only refreshes its time and session);
    ``recall`` finds facts by hybrid search. Everything runs offline with the configured
    embedder. Calls are synchronous (SQLite and a local embedder); the tools run them in a
    worker thread.
    """

    def __init__(
        self,
        user: str = "local",
        session: str | None = None,
        *,
        settings: Settings | None = None,
        prefix: str = "memory-",
        embedders: Callable[[str], EmbeddingModel] | None = None,
    ) -> None:
        self.user = user
        self.session = session
        self.settings = settings or load_settings()
        self.kb_name = memory_kb_name(user, prefix)
        self._shared = embedders
        self._loaded: dict[str, EmbeddingModel] = {}

    def _embedder(self, name: str) -> EmbeddingModel:
        """One loaded embedding model per name for this memory's life (loading takes seconds)."""
        if self._shared is not None:
            return self._shared(name)
        if name not in self._loaded:
            from hanlin.models.embeddings.base import get_embedder

            self._loaded[name] = get_embedder(name)
        return self._loaded[name]

    def _open(self, create: bool) -> KnowledgeBase | None:
        from hanlin.knowledge.kb import KnowledgeBase

        if self.kb_name not in KnowledgeBase.names(self.settings):
            if not create:
                return None
            KnowledgeBase.create(self.kb_name, settings=self.settings, exist_ok=True).close()
        return KnowledgeBase(self.kb_name, self.settings, embedders=self._embedder)

    def remember(self, fact: str) -> Fact:
        """Store a fact and return it; raises InvalidInputError for an empty fact."""
        from hanlin.knowledge.base import Chunk
        from hanlin.knowledge.ingest import content_hash
        from hanlin.knowledge.stores.base import ChunkWrite, DocumentWrite
        from hanlin.text import count_tokens

        text = " ".join(fact.split())
        if not text:
            raise InvalidInputError("nothing to remember: the fact is empty", hint="say the fact")
        now = time.time()
        key = "memory:" + content_hash(text)[:16]
        kb = self._open(create=True)
        assert kb is not None
        with kb:
            vector = kb.embedder.embed_documents([text])[0]
            chunk = Chunk(text, 0, 0, len(text), count_tokens(text))
            tokens = " ".join(kb.analyzer.analyze(text))
            hashed = content_hash(kb.embedder.name + "\x00" + text)
            doc = DocumentWrite(
                key=key,
                file_path=None,
                source=f"memory://{self.user}/{self.session or '-'}",
                title="memory",
                format="txt",
                content_hash=content_hash(text),
                metadata={"user": self.user, "session": self.session, "time": now},
                n_chars=len(text),
                chunks=[ChunkWrite(chunk, tokens, hashed, vector)],
            )
            with kb.store.locked():
                kb.store.write([doc])
                kb.store.flush()
        return Fact(key, text, self.user, self.session, now)

    def recall(self, query: str, k: int = 5, *, session: str | None = None) -> list[Fact]:
        """The ``k`` facts best matching ``query`` (only from ``session`` if given), best first;
        an empty list when this user has no memories yet."""
        kb = self._open(create=False)
        if kb is None or not query.strip():
            return []
        filters: dict[str, Any] = {"user": self.user}
        if session is not None:
            filters["session"] = session
        with kb:
            results = kb.search(query, k=max(1, k), filters=filters)
        return [_fact(r.chunk.doc_key, r.chunk.text, r.chunk.metadata, r.score) for r in results]

    def facts(self) -> list[Fact]:
        """Every fact remembered for this user, newest first."""
        kb = self._open(create=False)
        if kb is None:
            return []
        with kb:
            docs = kb.documents()
            ids = list(kb.store.iter_chunk_ids())
            chunks = {c.doc_key: c.text for c in kb.store.get_chunks(ids)}
        facts = [_fact(d.key, chunks.get(d.key, ""), d.metadata, 0.0) for d in docs]
        return sorted(facts, key=lambda f: -f.time)

    def forget(self, key: str) -> bool:
        """Delete one fact by key; True if it existed."""
        kb = self._open(create=False)
        if kb is None:
            return False
        with kb:
            return kb.delete_document(key)

    def note(self, query: str, k: int = 3) -> Message | None:
        """A system note with the facts relevant to ``query``, or None if there are none."""
        facts = self.recall(query, k)
        if not facts:
            return None
        lines = [f"- {f.text} ({f.as_dict()['time'][:10]})" for f in facts]
        return Message.system(RECALL_PREFIX + "\n" + "\n".join(lines))

    def inject(self, messages: list[Message], k: int = 3) -> Message | None:
        """On a first turn (one user message), insert the recalled facts as a system note just
        before it, in place, and return the note; later turns are left as they are (None)."""
        users = [i for i, m in enumerate(messages) if m.role == "user"]
        if len(users) != 1 or k < 1:
            return None
        note = self.note(messages[users[0]].text, k)
        if note is not None:
            messages.insert(users[0], note)
        return note

    def tools(self) -> list[AgentTool]:
        """``remember(fact)`` (side effect ``writes``) and ``recall(query, k)`` for an agent."""
        memory = self

        @tool(name="remember", side_effects=("writes",), timeout=60.0)
        def remember(fact: str) -> ToolResult:
            """Save a fact about the user or the task to long-term memory, to recall in later
            conversations (preferences, names, decisions). One short self-contained sentence.

            Args:
                fact: the fact, e.g. "The user's name is Li Wei and they prefer metric units"
            """
            saved = memory.remember(fact)
            return ToolResult(f"remembered: {saved.text}", False, saved.as_dict())

        @tool(name="recall", timeout=60.0)
        def recall(query: str, k: int = 5) -> ToolResult:
            """Search long-term memory for facts saved in earlier conversations.

            Args:
                query: what to look for, e.g. "user's preferred units"
                k: how many facts to return (1-20)
            """
            facts = memory.recall(query, max(1, min(int(k), 20)))
            if not facts:
                return ToolResult(f"nothing remembered about {query!r}", False, [])
            data = [f.as_dict() for f in facts]
            return ToolResult(json.dumps(data, ensure_ascii=False), False, data)

        return [remember, recall]


def _fact(key: str, text: str, meta: dict[str, Any], score: float) -> Fact:
    session = meta.get("session")
    return Fact(
        key,
        text,
        str(meta.get("user", "")),
        None if session is None else str(session),
        float(meta.get("time") or 0.0),
        float(score),
    )


# --- multi-turn chat --------------------------------------------------------------------------


class AgentChat:
    """A multi-turn chat with an :class:`Agent` or :class:`PlannerAgent`.

    Each turn sends the memory's transcript plus the new user message (after compacting it
    under the budget) and keeps the user message and the final answer; the turn's tool traffic
    is not kept, which keeps later turns small (the answer carries what was found).
    """

    def __init__(self, agent: Agent | PlannerAgent, memory: ConversationMemory) -> None:
        self.agent = agent
        self.memory = memory
        if agent.system and not memory.system:
            # the summary note must not stand first, or the agent would drop its own prompt
            memory.system.append(Message.system(agent.system))

    async def astream(self, text: str) -> AsyncIterator[AgentEvent]:
        """One turn: yields the agent's events; the last one is a :class:`FinalEvent`."""
        self.memory.add(Message.user(text))
        before = self.memory.tokens()
        # a failed summary leaves the transcript long, which the model may still take
        try:
            compacted = await self.memory.acompact()
        except HanlinError:
            compacted = False
        if compacted:
            after = self.memory.tokens()
            yield MemoryEvent("summarized", self.memory.summary or "", before, after)
        async for event in self.agent.astream(self.memory.messages):
            if isinstance(event, FinalEvent) and event.text:
                self.memory.add(Message.assistant(event.text))
            yield event

    async def asend(self, text: str) -> AgentResult:
        """One turn to the end."""
        events = [e async for e in self.astream(text)]
        return AgentResult.of(events, self.memory.messages)


__all__ = [
    "RECALL_PREFIX",
    "SUMMARY_PREFIX",
    "AgentChat",
    "ConversationMemory",
    "Fact",
    "LongTermMemory",
    "memory_kb_name",
    "render_transcript",
]

"""Grounded generation: pack the evidence into the model's token budget, prompt with numbered
sources (the ``rag.answer.*`` prompt), stream the answer and keep only valid, renumbered
citations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hanlin.access import caller as access
from hanlin.config import RagSettings
from hanlin.errors import InvalidInputError
from hanlin.guard.policy import kb_scope, user_facing
from hanlin.models.gateway import Gateway
from hanlin.models.types import Message, TextDelta, Usage
from hanlin.rag.base import Answer, AnswerDelta, AnswerDone, Evidence, RagEvent, RetrievalEvent
from hanlin.rag.citations import CitationFilter
from hanlin.rag.retrieval import Retrieved, evidence, where
from hanlin.rag.screen import screen_retrieved
from hanlin.rag.select import pack, truncate
from hanlin.rag.templates import Language, Templates
from hanlin.text import count_tokens as estimate_tokens
from hanlin.tracing import spans

#: context length assumed for models the catalog has no entry for
DEFAULT_CONTEXT = 8192
#: tokens kept free for the chat template's own markup (role labels, separators)
TEMPLATE_MARGIN = 64


@dataclass(slots=True)
class Generation:
    """Who answers, and with which settings."""

    gateway: Gateway
    model: str
    settings: RagSettings
    #: the answer's templates (None: the bundled ones)
    templates: Templates | None = None
    user: str | None = None
    #: more options for the model call (top_p, seed, stop), from the caller
    options: dict[str, Any] = field(default_factory=dict)
    #: the answer's trace span, parent of the pack and generate steps
    span: Any = None
    #: the knowledge base answered from (its ``guard.kbs`` rule applies to the model call)
    kb: str | None = None


@dataclass(slots=True)
class Packed:
    """The evidence that fits, the system prompt holding it, and the budget it had."""

    items: list[Evidence]
    system: str
    budget: int
    history: list[Message]


def recent_history(turns: Sequence[Message], max_tokens: int) -> list[Message]:
    """The latest user/assistant turns (text only) that fit ``max_tokens`` (estimated)."""
    kept: list[Message] = []
    used = 0
    for m in reversed(turns):
        if m.role not in ("user", "assistant") or not m.text.strip():
            continue
        n = estimate_tokens(m.text)
        if used + n > max_tokens:
            break
        kept.append(Message(m.role, m.text))
        used += n
    return kept[::-1]


def plan_context(
    gen: Generation, question: str, turns: Sequence[Message], found: Retrieved, lang: Language
) -> Packed:
    """Pack evidence into ``min(rag.max_context_tokens, context - answer - prompt)`` tokens,
    counted with the model's tokenizer when the gateway has it (blocking: run in a thread)."""
    s = gen.settings
    t = gen.templates or Templates(lang, {}, None)

    def count(text: str) -> int:
        return gen.gateway.count_tokens(text, gen.model).tokens

    route = gen.gateway.resolve(gen.model)
    info = route.deployments[0].info
    context = info.context if info is not None else DEFAULT_CONTEXT
    history = recent_history(turns, s.history_tokens)
    overhead = count(t.render("answer", sources=""))
    overhead += count(question) + sum(count(m.text) for m in history) + TEMPLATE_MARGIN
    budget = min(s.max_context_tokens, context - s.answer_tokens - overhead)
    results = found.results
    width = len(results)  # number the blocks with the widest number while measuring
    blocks = [t.source_block(width, where(r), r.chunk.text) for r in results]
    chosen, cut = pack(blocks, budget, count)
    items: list[Evidence] = []
    if cut is not None:
        header = count(t.source_block(width, where(results[0]), ""))
        text = truncate(results[0].chunk.text, budget - header, count)
        if not text.strip():
            raise InvalidInputError(
                f"{gen.model} has no room for sources: {budget} tokens left for them",
                hint="raise rag.max_context_tokens or lower rag.answer_tokens",
            )
        items.append(evidence(results[0], 1, text))
    else:
        items = [evidence(results[i], n) for n, i in enumerate(chosen, 1)]
    sources = "\n\n".join(
        t.source_block(e.citation.n, where(results[i]), e.text)
        for e, i in zip(items, chosen, strict=True)
    )
    return Packed(items, t.render("answer", sources=sources), budget, history)


async def generate(
    gen: Generation,
    question: str,
    standalone: str,
    turns: Sequence[Message],
    found: Retrieved,
    lang: Language,
) -> AsyncGenerator[RagEvent, None]:
    """Stream a generated answer: RetrievalEvent, AnswerDelta pieces, AnswerDone."""
    s = gen.settings
    t0 = time.perf_counter()
    with spans.current(gen.span), spans.span("pack", operation="pack") as sp:
        # retrieved text is untrusted: screened for injection before the model reads it
        found, screening = screen_retrieved(found, gen.gateway.settings.guard, gen.kb, gen.user)
        screening.record(sp)
        packed = await asyncio.to_thread(plan_context, gen, question, turns, found, lang)
        sp.set_attribute("hanlin.rag.evidence", len(packed.items))
    timings = {"pack": (time.perf_counter() - t0) * 1000}
    notes: list[str] = screening.notes
    if len(packed.items) < len(found.results):
        notes.append(
            f"{len(packed.items)} of {len(found.results)} evidence chunks fit the context budget "
            f"of {packed.budget} tokens"
        )
    yield RetrievalEvent(packed.items, [e.citation for e in packed.items], standalone)
    messages = [Message.system(packed.system), *packed.history, Message.user(question)]
    flt = CitationFilter(len(packed.items))
    pieces: list[str] = []
    t1 = time.perf_counter()
    step = spans.start("generate", operation="generate", parent=gen.span)
    # the checks run (and the model call's span starts) when the stream is made
    with spans.current(step), access.configured_model("kb:read"), kb_scope(gen.kb), user_facing():
        stream = gen.gateway.astream(
            messages,
            gen.model,
            max_tokens=s.answer_tokens,
            temperature=s.temperature,
            user=gen.user,
            **gen.options,
        )
    try:
        async for event in stream:
            if isinstance(event, TextDelta):
                out = flt.feed(event.text)
                if out:
                    if not pieces:
                        timings["first_token"] = (time.perf_counter() - t1) * 1000
                    pieces.append(out)
                    yield AnswerDelta(out)
    except BaseException as exc:
        spans.finish(step, None if isinstance(exc, GeneratorExit) else exc)
        raise
    finally:
        await stream.aclose()
    spans.finish(step)
    rest = flt.finish()
    if rest:
        pieces.append(rest)
        yield AnswerDelta(rest)
    timings["generate"] = (time.perf_counter() - t1) * 1000
    cited = [replace(packed.items[old - 1].citation, n=new) for new, old in enumerate(flt.order, 1)]
    if flt.dropped:
        bad = ", ".join(f"[{n}]" for n in dict.fromkeys(flt.dropped))
        notes.append(f"removed citations of sources that were not given to the model: {bad}")
    if not cited:
        notes.append("the model cited no sources")
    resp = stream.response
    yield AnswerDone(
        Answer(
            text="".join(pieces),
            mode="generative",
            citations=cited,
            evidence=packed.items,
            question=question,
            standalone_question=standalone,
            model=(stream.served_by or gen.model),
            usage=resp.usage if resp is not None else Usage(),
            timings_ms=timings,
            notes=notes,
            finish_reason="length"
            if resp is not None and resp.finish_reason == "length"
            else "stop",
            guard={**((resp.guard or {}) if resp is not None else {}), **screening.notice()}
            or None,
        )
    )

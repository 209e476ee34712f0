"""The RAG engine: question (+ conversation) → standalone question → evidence → answer with
numbered citations, or a refusal that lists the closest sources.

``astream`` is the core (an async generator of :data:`hanlin.rag.base.RagEvent`); ``aask``
collects it, and ``ask`` / ``stream`` run those on the gateway's private event-loop thread,
so a script can mix them with the gateway's own sync calls. See docs/rag.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import time
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any

from hanlin.access import caller as access
from hanlin.config import RagSettings
from hanlin.errors import HanlinError, InvalidInputError
from hanlin.knowledge.filters import Filter
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.models.gateway import Gateway, as_messages
from hanlin.models.types import Message, Usage
from hanlin.rag.base import (
    Answer,
    AnswerDelta,
    AnswerDone,
    Citation,
    Evidence,
    RagEvent,
    RequestedMode,
    RetrievalEvent,
)
from hanlin.rag.extractive import pick_sentences, quote
from hanlin.rag.generate import Generation, generate
from hanlin.rag.refusal import content_tokens
from hanlin.rag.retrieval import Reranker, Retrieved, evidence, retrieve
from hanlin.rag.rewrite import clean_rewrite, fold_history, history_text
from hanlin.rag.templates import Language, detect_language, render

HistoryLike = Sequence[Message | dict[str, Any]]
#: sources listed with a refusal
REFUSAL_SOURCES = 3


class RagStepError(HanlinError):
    """A step of the RAG pipeline failed; ``step`` names it and ``cause`` is the original error
    (a typed model error, for instance), whose hint and exit code this error keeps."""

    def __init__(self, step: str, cause: BaseException) -> None:
        message = getattr(cause, "message", None) or str(cause) or type(cause).__name__
        hint = getattr(cause, "hint", None)
        super().__init__(f"RAG step '{step}' failed: {message}", hint=hint)
        self.step = step
        self.cause = cause
        self.exit_code = getattr(cause, "exit_code", 1)


class RagEngine:
    """Answers questions from one knowledge base (cheap to build; models load on first use).

    ``gateway`` is shared when given (the server passes its own); otherwise one is created on
    first need and closed by :meth:`close`. ``settings`` defaults to the knowledge base's
    ``rag`` settings.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        gateway: Gateway | None = None,
        settings: RagSettings | None = None,
        *,
        user: str | None = None,
    ) -> None:
        self.kb = kb
        self.settings = settings or kb.settings.rag
        #: the caller, recorded with every model call (per-key budgets in the usage ledger)
        self.user = user
        self._gateway = gateway
        self._owns_gateway = False

    # -- models ------------------------------------------------------------------------------

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            self._gateway = Gateway(self.kb.settings)
            self._owns_gateway = True
        return self._gateway

    def generator(self, model: str | None = None) -> str:
        """The model name that answers: the argument, ``rag.generator`` or ``models.default``."""
        return model or self.settings.generator or self.kb.settings.models.default

    def is_capable(self, model: str) -> bool:
        """Whether a model follows instructions: not when its name, or the ``endpoint/model``
        of the first deployment it routes to, matches a ``rag.base_models`` pattern."""
        patterns = self.settings.base_models
        if any(fnmatch.fnmatchcase(model, p) for p in patterns):
            return False
        if not patterns:
            return True
        labels = [d.label for d in self.gateway.resolve(model).deployments[:1]]
        return not any(fnmatch.fnmatchcase(lb, p) for lb in labels for p in patterns)

    def _reranker(self) -> Reranker | None:
        name = self.settings.reranker
        if name is None:
            return None

        async def rerank(query: str, texts: Sequence[str]) -> list[tuple[int, float]]:
            return await self.gateway.arerank(query, texts, name)

        return rerank

    # -- the pipeline ------------------------------------------------------------------------

    async def astream(
        self,
        question: str,
        *,
        model: str | None = None,
        history: HistoryLike | None = None,
        mode: RequestedMode = "auto",
        k: int | None = None,
        filters: dict[str, Any] | Filter | None = None,
    ) -> AsyncGenerator[RagEvent, None]:
        """Answer as events: one :class:`RetrievalEvent`, then :class:`AnswerDelta` pieces, then
        :class:`AnswerDone`. The joined deltas equal ``AnswerDone.answer.text`` exactly:
        citation markers are cleaned up while streaming.

        Raises :class:`RagStepError` (step ``retrieve`` or ``generate``) when a step fails — a
        failed rewrite falls back to the rule-based one instead — and
        :class:`~hanlin.errors.InvalidInputError` for bad arguments.
        """
        started = time.perf_counter()
        question = question.strip()
        if not question:
            raise InvalidInputError("the question is empty", hint="ask something")
        if mode not in ("auto", "generative", "extractive"):
            raise InvalidInputError(
                f"unknown answer mode {mode!r}", hint="use auto, generative or extractive"
            )
        if k is not None and k < 1:
            raise InvalidInputError("k must be at least 1", hint="pass k=6")
        turns = as_messages(list(history)) if history else []
        access.require("kb:read", kb=self.kb.name)
        if model is not None or turns:
            # choosing the model, or sending free-form history, is using chat
            access.require("chat")
        lang = detect_language(question)
        notes: list[str] = []
        usage = Usage()
        timings: dict[str, float] = {}

        gen_model = self.generator(model)
        answer_mode = mode
        if mode == "auto":
            answer_mode = "generative" if self.is_capable(gen_model) else "extractive"

        t0 = time.perf_counter()
        standalone = question
        if turns:
            standalone, rewrite_usage = await self._rewrite(question, turns, gen_model, notes)
            usage = usage + rewrite_usage
            timings["rewrite"] = (time.perf_counter() - t0) * 1000

        try:
            found = await retrieve(
                self.kb, standalone, self.settings, k=k, filters=filters, rerank=self._reranker()
            )
        except HanlinError as exc:
            raise RagStepError("retrieve", exc) from exc
        timings.update(found.timings_ms)

        if not found.sufficient:
            s = found.strength
            notes.append(
                f"refused: evidence strength {s.score:.3f} is below the threshold "
                f"{found.calibration.threshold:.3f} (question-term coverage {s.coverage:.2f}, "
                f"best dense cosine {s.dense:.3f}; calibration: {found.calibration.source})"
            )
            closest = [evidence(r, i) for i, r in enumerate(found.results[:REFUSAL_SOURCES], 1)]
            yield RetrievalEvent(closest, [e.citation for e in closest], standalone)
            text = render("refuse", lang, self.kb.settings.home)
            yield AnswerDelta(text)
            timings["total"] = (time.perf_counter() - started) * 1000
            yield AnswerDone(
                Answer(
                    text=text,
                    mode="refused",
                    citations=[],
                    evidence=closest,
                    question=question,
                    standalone_question=standalone,
                    usage=usage,
                    timings_ms=timings,
                    notes=notes,
                )
            )
            return

        if answer_mode == "extractive":
            if mode == "auto":
                notes.append(
                    f"extractive answer: {gen_model} is a base model that cannot follow "
                    "instructions (rag.base_models), so the answer quotes the best evidence "
                    "sentences; configure a chat model (rag.generator or models.default) for "
                    "written answers"
                )
            else:
                notes.append("extractive answer, as requested: the best evidence sentences")
            items = [evidence(r, i) for i, r in enumerate(found.results, 1)]
            yield RetrievalEvent(items, [e.citation for e in items], standalone)
            t1 = time.perf_counter()
            text, cited = await asyncio.to_thread(self._extract, standalone, found, items, lang)
            timings["extract"] = (time.perf_counter() - t1) * 1000
            yield AnswerDelta(text)
            timings["total"] = (time.perf_counter() - started) * 1000
            yield AnswerDone(
                Answer(
                    text=text,
                    mode="extractive",
                    citations=cited,
                    evidence=items,
                    question=question,
                    standalone_question=standalone,
                    usage=usage,
                    timings_ms=timings,
                    notes=notes,
                )
            )
            return

        gen = Generation(
            self.gateway, gen_model, self.settings, self.kb.settings.home, user=self.user
        )
        events = generate(gen, question, standalone, turns, found, lang)
        try:
            async for event in events:
                if isinstance(event, AnswerDone):
                    ans = event.answer
                    ans.usage = usage + ans.usage
                    ans.notes = notes + ans.notes
                    ans.timings_ms = {**timings, **ans.timings_ms}
                    ans.timings_ms["total"] = (time.perf_counter() - started) * 1000
                yield event
        except HanlinError as exc:
            raise RagStepError("generate", exc) from exc
        finally:
            await events.aclose()  # a consumer that stops early stops the model stream now

    async def _rewrite(
        self, question: str, turns: list[Message], gen_model: str, notes: list[str]
    ) -> tuple[str, Usage]:
        """The standalone question: by a capable model, else by folding in earlier key terms."""
        rewriter = self.settings.rewrite_model or gen_model
        if self.is_capable(rewriter):
            lang = detect_language(question)
            prompt = render(
                "rewrite",
                lang,
                self.kb.settings.home,
                history=history_text(turns),
                question=question,
            )
            try:
                with access.configured_model("kb:read"):
                    resp = await self.gateway.achat(
                        prompt, rewriter, max_tokens=128, temperature=0.0, user=self.user
                    )
            except HanlinError as exc:
                notes.append(f"the rewrite model failed ({exc.message}); rewrote without it")
            else:
                out = clean_rewrite(resp.text, question)
                if out is not None:
                    return out, resp.usage
                notes.append("the rewrite model's answer was unusable; rewrote without it")
        folded = fold_history(question, turns)
        if folded != question:
            notes.append(
                "follow-up question made standalone without a model: key terms of the previous "
                "question were added"
            )
        return folded, Usage()

    def _extract(
        self, question: str, found: Retrieved, items: list[Evidence], lang: Language
    ) -> tuple[str, list[Citation]]:
        analyzer = self.kb.analyzer
        scores = [r.score for r in found.results]
        hi, lo = max(scores), min(scores)
        rel = [(s - lo) / (hi - lo) if hi > lo else 1.0 for s in scores]
        picks = pick_sentences(
            content_tokens(question, analyzer),
            [e.text for e in items],
            rel,
            analyzer,
            max_sentences=self.settings.extractive_sentences,
        )
        # (evidence index, quoted text); no sentence long enough: the best chunk, whole
        quotes = [(p.sentence.evidence, p.sentence.text) for p in picks] or [(0, items[0].text)]
        numbers: dict[int, int] = {}
        lines: list[str] = []
        for idx, sentence in quotes:
            n = numbers.setdefault(idx, len(numbers) + 1)
            mark = f"[{n}]" if lang.startswith("zh") else f" [{n}]"
            lines.append(quote(sentence.strip(), lang) + mark)
        cited = [dataclasses.replace(items[idx].citation, n=n) for idx, n in numbers.items()]
        text = render("extractive", lang, self.kb.settings.home, quotes="\n".join(lines))
        return text, cited

    async def aask(
        self,
        question: str,
        *,
        model: str | None = None,
        history: HistoryLike | None = None,
        mode: RequestedMode = "auto",
        k: int | None = None,
        filters: dict[str, Any] | Filter | None = None,
    ) -> Answer:
        """The whole answer (see :meth:`astream` for errors)."""
        answer: Answer | None = None
        async for event in self.astream(
            question, model=model, history=history, mode=mode, k=k, filters=filters
        ):
            if isinstance(event, AnswerDone):
                answer = event.answer
        assert answer is not None
        return answer

    # -- sync wrappers -----------------------------------------------------------------------

    def stream(
        self,
        question: str,
        *,
        model: str | None = None,
        history: HistoryLike | None = None,
        mode: RequestedMode = "auto",
        k: int | None = None,
        filters: dict[str, Any] | Filter | None = None,
    ) -> Generator[RagEvent, None, None]:
        """Synchronous :meth:`astream` (``close()`` it to stop early; the model stops too)."""
        events = self.astream(
            question, model=model, history=history, mode=mode, k=k, filters=filters
        )
        yield from self.gateway.iterate_sync(events)

    def ask(
        self,
        question: str,
        *,
        model: str | None = None,
        history: HistoryLike | None = None,
        mode: RequestedMode = "auto",
        k: int | None = None,
        filters: dict[str, Any] | Filter | None = None,
    ) -> Answer:
        """Synchronous :meth:`aask`."""
        return self.gateway.run_sync(
            self.aask(question, model=model, history=history, mode=mode, k=k, filters=filters)
        )

    def close(self) -> None:
        """Close the gateway if this engine created it."""
        if self._owns_gateway and self._gateway is not None:
            self._gateway.close()
            self._gateway = None
            self._owns_gateway = False

    def __enter__(self) -> RagEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

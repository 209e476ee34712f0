"""The RAG engine: question (+ conversation) → standalone question → evidence → answer with
numbered citations, or a refusal that lists the closest sources.

``astream`` is the core (an async generator of :data:`hanlin.rag.base.RagEvent`); ``aask``
collects it, and ``ask`` / ``stream`` run those on the gateway's private event-loop thread,
so a script can mix them with the gateway's own sync calls. See docs/rag.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any

from hanlin.access import caller as access
from hanlin.config import RagSettings
from hanlin.errors import HanlinError, InvalidInputError, StepError
from hanlin.guard.policy import content_detector, kb_scope
from hanlin.knowledge.filters import Filter
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.models.base_models import is_base_model
from hanlin.models.gateway import Gateway, as_messages
from hanlin.models.types import Message, Usage
from hanlin.prompts import prompt_library
from hanlin.prompts.base import check_label
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
from hanlin.rag.select import truncate
from hanlin.rag.templates import Language, Templates, detect_language
from hanlin.text import count_tokens
from hanlin.tracing import spans
from hanlin.tracing.records import OUTPUT_MESSAGES, REQUEST_MODEL
from hanlin.tracing.setup import capturing

HistoryLike = Sequence[Message | dict[str, Any]]
#: sources listed with a refusal
REFUSAL_SOURCES = 3


@dataclasses.dataclass(slots=True)
class _Run:
    """One question on its way through the pipeline, and what each step adds to its answer."""

    question: str
    standalone: str
    turns: list[Message]
    lang: Language
    mode: RequestedMode  # as requested
    answer_mode: RequestedMode  # as chosen: generative or extractive
    gen_model: str
    started: float  # perf_counter at the start
    notes: list[str] = dataclasses.field(default_factory=list)
    usage: Usage = dataclasses.field(default_factory=Usage)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    #: the caller's generation options (temperature, top_p, seed, max_tokens, stop)
    generation: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the answer's trace span (``answer {kb}``), parent of every step's
    span: Any = None
    #: the prompt label the templates are read at
    label: str = "production"
    #: the templates, read from the prompt registry once, when the answer starts
    templates: Templates | None = None

    def done(self, answer: Answer) -> AnswerDone:
        """The last event: the run's usage, notes and timings (and the total) in ``answer``."""
        answer.usage = self.usage + answer.usage
        answer.notes = self.notes + answer.notes
        answer.timings_ms = {**self.timings, **answer.timings_ms}
        answer.timings_ms["total"] = (time.perf_counter() - self.started) * 1000
        return AnswerDone(answer)


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
        """Whether a model follows instructions: not a base model by this engine's
        ``base_models`` patterns (see :func:`hanlin.models.base_models.is_base_model`)."""
        return not is_base_model(
            self.kb.settings,
            model,
            resolve=lambda name: self.gateway.resolve(name),
            patterns=self.settings.base_models,
        )

    def _reranker(self) -> Reranker | None:
        name = self.settings.reranker
        if name is None:
            return None

        async def rerank(query: str, texts: Sequence[str]) -> list[tuple[int, float]]:
            with kb_scope(self.kb.name):
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
        generation: dict[str, Any] | None = None,
        prompt_label: str | None = None,
    ) -> AsyncGenerator[RagEvent, None]:
        """Answer as events: one :class:`RetrievalEvent`, then :class:`AnswerDelta` pieces, then
        :class:`AnswerDone`. The joined deltas equal ``AnswerDone.answer.text`` exactly:
        citation markers are cleaned up while streaming.

        ``generation`` sets the answer's options: ``temperature``, ``top_p``, ``seed``,
        ``max_tokens`` and ``stop`` go to the generator; an extractive or refusal answer (no
        model) is cut at the first ``stop`` string and at ``max_tokens`` (estimated tokens).

        ``prompt_label`` picks the version of the prompts (``rag.answer.en`` …) the answer uses;
        by default ``prompts.kb_labels[kb]``, else ``prompts.label`` (``production``).

        Raises :class:`~hanlin.errors.StepError` (pipeline ``RAG``, step ``retrieve`` or
        ``generate``) when a step fails — a failed rewrite falls back to the rule-based one
        instead — and :class:`~hanlin.errors.InvalidInputError` for bad arguments.
        """
        run = self._begin(question, model, history, mode, k)
        run.generation = dict(generation or {})
        run.label = self._label(prompt_label)
        # started here, made current only around steps that do not yield: the generator's
        # steps may run on different tasks (the sync API drives it from another thread)
        run.span = spans.start(
            f"answer {self.kb.name}",
            operation="rag",
            kb=self.kb.name,
            attrs={"hanlin.rag.mode": run.answer_mode, REQUEST_MODEL: run.gen_model},
        )
        if capturing():
            self._mask_trace(run)
        spans.record(run.span, "hanlin.question", run.question)
        events = self._answer(run, k, filters)
        try:
            async for event in events:
                if isinstance(event, AnswerDone):
                    spans.record(run.span, OUTPUT_MESSAGES, event.answer.text)
                    run.span.set_attribute("hanlin.rag.answer_mode", event.answer.mode)
                    run.span.set_attribute("hanlin.rag.citations", len(event.answer.citations))
                yield event
        except BaseException as exc:
            spans.finish(run.span, None if isinstance(exc, GeneratorExit) else exc)
            raise
        finally:
            await events.aclose()
        spans.finish(run.span)

    def _mask_trace(self, run: _Run) -> None:
        """The answer's trace records the question, queries and answer masked when the policy
        masks the answering or rewriting model's route, or (no model resolves) when the mode for
        the knowledge base and caller is ``always``."""
        with kb_scope(self.kb.name):
            models = {run.gen_model, self.settings.rewrite_model or run.gen_model}
            found = [self.gateway.trace_detector(m, self.user) for m in sorted(models)]
            if not any(found):
                key = self.user or access.current().user
                found = [content_detector(self.kb.settings.guard, key=key)]
        for detector in found:
            spans.mask_content(run.span, detector)

    async def _answer(
        self, run: _Run, k: int | None, filters: dict[str, Any] | Filter | None
    ) -> AsyncGenerator[RagEvent, None]:
        library = prompt_library(self.kb.settings)
        home = self.kb.settings.home
        run.templates = Templates.read_cached(library, run.lang, run.label, home)
        if run.templates is None:  # the cache is stale: read the registry off the event loop
            run.templates = await asyncio.to_thread(
                Templates.read, library, run.lang, run.label, home
            )
        run.notes.extend(run.templates.notes)
        run.span.set_attribute("hanlin.rag.prompts", run.templates.refs)
        if run.turns:
            t0 = time.perf_counter()
            with spans.current(run.span), spans.span("rewrite", operation="rewrite"):
                run.standalone, rewrite_usage = await self._rewrite(
                    run.question, run.turns, run.gen_model, run.notes, run.templates
                )
            run.usage = run.usage + rewrite_usage
            run.timings["rewrite"] = (time.perf_counter() - t0) * 1000
        try:
            with spans.current(run.span):
                found = await retrieve(
                    self.kb,
                    run.standalone,
                    self.settings,
                    k=k,
                    filters=filters,
                    rerank=self._reranker(),
                )
        except HanlinError as exc:
            raise StepError("RAG", "retrieve", exc) from exc
        run.timings.update(found.timings_ms)
        run.span.set_attribute("hanlin.rag.sufficient", bool(found.sufficient))
        if not found.sufficient:
            answering = self._refuse(run, found)
        elif run.answer_mode == "extractive":
            answering = self._extractive(run, found)
        else:
            answering = self._generative(run, found)
        try:
            async for event in answering:
                yield event
        finally:
            await answering.aclose()  # a consumer that stops early stops the model stream now

    def _label(self, requested: str | None) -> str:
        """The prompt label of this answer: the request's, the knowledge base's, the default."""
        prompts = self.kb.settings.prompts
        return check_label(requested or prompts.kb_labels.get(self.kb.name) or prompts.label)

    def _begin(
        self,
        question: str,
        model: str | None,
        history: HistoryLike | None,
        mode: RequestedMode,
        k: int | None,
    ) -> _Run:
        """The arguments checked (and the caller's right to use them), the answer mode chosen."""
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
        gen_model = self.generator(model)
        answer_mode = mode
        if mode == "auto":
            answer_mode = "generative" if self.is_capable(gen_model) else "extractive"
        return _Run(question, question, turns, lang, mode, answer_mode, gen_model, started)

    async def _refuse(self, run: _Run, found: Retrieved) -> AsyncGenerator[RagEvent, None]:
        """Too little evidence: say so, with the closest sources."""
        s = found.strength
        run.notes.append(
            f"refused: evidence strength {s.score:.3f} is below the threshold "
            f"{found.calibration.threshold:.3f} (question-term coverage {s.coverage:.2f}, "
            f"best dense cosine {s.dense:.3f}; calibration: {found.calibration.source})"
        )
        closest = [evidence(r, i) for i, r in enumerate(found.results[:REFUSAL_SOURCES], 1)]
        with spans.span("refuse", operation="refuse", parent=run.span) as sp:
            sp.set_attribute("hanlin.rag.evidence_strength", float(s.score))
        yield RetrievalEvent(closest, [e.citation for e in closest], run.standalone)
        assert run.templates is not None
        text = run.templates.render("refuse")
        answer = _fitted(Answer(text, "refused", [], closest, run.question, run.standalone), run)
        yield AnswerDelta(answer.text)
        yield run.done(answer)

    async def _extractive(self, run: _Run, found: Retrieved) -> AsyncGenerator[RagEvent, None]:
        """Quote the best evidence sentences, each with its citation."""
        if run.mode == "auto":
            run.notes.append(
                f"extractive answer: {run.gen_model} is a base model that cannot follow "
                "instructions (rag.base_models), so the answer quotes the best evidence "
                "sentences; configure a chat model (rag.generator or models.default) for "
                "written answers"
            )
        else:
            run.notes.append("extractive answer, as requested: the best evidence sentences")
        items = [evidence(r, i) for i, r in enumerate(found.results, 1)]
        yield RetrievalEvent(items, [e.citation for e in items], run.standalone)
        t1 = time.perf_counter()
        assert run.templates is not None
        text, cited = await asyncio.to_thread(
            self._extract, run.standalone, found, items, run.lang, run.templates
        )
        run.timings["extract"] = (time.perf_counter() - t1) * 1000
        answer = _fitted(
            Answer(text, "extractive", cited, items, run.question, run.standalone), run
        )
        yield AnswerDelta(answer.text)
        yield run.done(answer)

    async def _generative(self, run: _Run, found: Retrieved) -> AsyncGenerator[RagEvent, None]:
        """A model writes the answer from the evidence (see :mod:`hanlin.rag.generate`)."""
        options = dict(run.generation)
        settings = self.settings
        assert run.templates is not None
        # the answer prompt's own config (a version may carry one) unless the caller set them
        config = run.templates.config("answer")
        updates = {"answer_tokens": options.pop("max_tokens", None)}
        updates["temperature"] = options.pop("temperature", None)
        if config is not None:
            updates["answer_tokens"] = updates["answer_tokens"] or config.max_tokens
            if updates["temperature"] is None:
                updates["temperature"] = config.temperature
        if any(v is not None for v in updates.values()):
            settings = settings.model_copy(
                update={k: v for k, v in updates.items() if v is not None}
            )
        gen = Generation(
            self.gateway,
            run.gen_model,
            settings,
            run.templates,
            user=self.user,
            options=options,
            span=run.span,
            kb=self.kb.name,
        )
        events = generate(gen, run.question, run.standalone, run.turns, found, run.lang)
        try:
            async for event in events:
                yield run.done(event.answer) if isinstance(event, AnswerDone) else event
        except HanlinError as exc:
            raise StepError("RAG", "generate", exc) from exc
        finally:
            await events.aclose()

    async def _rewrite(
        self,
        question: str,
        turns: list[Message],
        gen_model: str,
        notes: list[str],
        templates: Templates,
    ) -> tuple[str, Usage]:
        """The standalone question: by a capable model, else by folding in earlier key terms."""
        rewriter = self.settings.rewrite_model or gen_model
        if self.is_capable(rewriter):
            prompt = templates.render("rewrite", history=history_text(turns), question=question)
            try:
                with access.configured_model("kb:read"), kb_scope(self.kb.name):
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
        self,
        question: str,
        found: Retrieved,
        items: list[Evidence],
        lang: Language,
        templates: Templates,
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
        text = templates.render("extractive", quotes="\n".join(lines))
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
        generation: dict[str, Any] | None = None,
        prompt_label: str | None = None,
    ) -> Answer:
        """The whole answer (see :meth:`astream` for errors, ``generation`` and
        ``prompt_label``)."""
        answer: Answer | None = None
        async for event in self.astream(
            question,
            model=model,
            history=history,
            mode=mode,
            k=k,
            filters=filters,
            generation=generation,
            prompt_label=prompt_label,
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
        prompt_label: str | None = None,
    ) -> Generator[RagEvent, None, None]:
        """Synchronous :meth:`astream` (``close()`` it to stop early; the model stops too)."""
        events = self.astream(
            question,
            model=model,
            history=history,
            mode=mode,
            k=k,
            filters=filters,
            prompt_label=prompt_label,
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
        prompt_label: str | None = None,
    ) -> Answer:
        """Synchronous :meth:`aask`."""
        return self.gateway.run_sync(
            self.aask(
                question,
                model=model,
                history=history,
                mode=mode,
                k=k,
                filters=filters,
                prompt_label=prompt_label,
            )
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


def _fitted(answer: Answer, run: _Run) -> Answer:
    """A model-free answer cut to the caller's ``stop`` and ``max_tokens``, its citations kept
    to the markers left, and its usage estimated (the question as prompt, the text as
    completion: no model ran)."""
    text = answer.text
    for stop in run.generation.get("stop") or ():
        if stop and stop in text:
            text = text[: text.index(stop)]
    limit = run.generation.get("max_tokens")
    if limit is not None and count_tokens(text) > limit:
        text = truncate(text, limit, count_tokens)
        answer.finish_reason = "length"
    if text != answer.text:
        answer.text = text
        answer.citations = [c for c in answer.citations if f"[{c.n}]" in text]
    answer.usage = Usage(count_tokens(run.question), count_tokens(text))
    answer.usage_estimated = True
    return answer


def ask(
    kb: KnowledgeBase,
    question: str,
    model: str | None = None,
    history: HistoryLike | None = None,
    mode: RequestedMode = "auto",
    *,
    k: int | None = None,
    filters: dict[str, Any] | Filter | None = None,
) -> Answer:
    """Answer a question from ``kb`` with numbered citations, on an engine of its own.

    ``history`` is the conversation so far (``Message`` objects or OpenAI-format dicts);
    ``mode`` is ``auto``, ``generative`` or ``extractive``. For many questions, or streaming,
    keep a :class:`RagEngine` (it keeps its gateway open between questions). Errors as
    :meth:`RagEngine.astream`.
    """
    with RagEngine(kb) as engine:
        return engine.ask(question, model=model, history=history, mode=mode, k=k, filters=filters)

"""A dataset from traces: the questions people asked, with the answers they rated.

Each selected trace (by :class:`~hanlin.tracing.base.TraceQuery` filters: time, model,
knowledge base, text, rating) becomes one example: the question is the RAG answer's
``hanlin.question`` or the last user message the first model call was given; the answer is
the trace's last output. A thumbs-up answer becomes the gold answer (a thumbs-up refusal marks
the question ``should_refuse``); a thumbs-down answer is kept only as ``meta.rejected_answer``,
so the question is asked again without gold. Only traces that answered something count (a RAG
answer, a model call, an agent run; not a bare search); those recorded without content (content
capture off) have no question and are reported as skipped.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hanlin.evals.base import Example
from hanlin.evals.datasets import LoadedDataset, Problem
from hanlin.tracing.base import SpanRecord, TraceQuery, TraceStore
from hanlin.tracing.records import INPUT_MESSAGES, OUTPUT_MESSAGES

#: traces read per page while collecting
_PAGE = 200
#: root operations that answer a question (RAG, a model call, an agent run); searches,
#: embeddings and reranks are not questions answered
_ANSWERS = {"rag", "chat", "text_completion", "invoke_agent"}


def dataset_from_traces(
    store: TraceStore, query: TraceQuery, *, limit: int = 500, name: str = "traces"
) -> LoadedDataset:
    """Up to ``limit`` examples from the traces matching ``query``, newest first; traces
    without a question (no content recorded) or repeating one already taken are reported."""
    out = LoadedDataset([], [], "traces", "traces", name)
    seen: set[str] = set()
    skipped = 0
    page = dataclasses.replace(query, limit=_PAGE)
    while len(out.examples) < limit:
        summaries = store.list_traces(page)
        for summary in summaries:
            if len(out.examples) >= limit:
                break
            where = f"trace {summary.trace_id}"
            spans = store.get_trace(summary.trace_id)
            root = _root(spans)
            if root is None or root.operation not in _ANSWERS:
                skipped += 1
                continue
            question = _question(spans)
            if not question:
                out.problems.append(Problem(where, "no question recorded (content capture off?)"))
                continue
            if question in seen:
                out.problems.append(Problem(where, "the same question as a newer trace"))
                continue
            seen.add(question)
            out.examples.append(_example(summary.trace_id, question, spans, summary.rating))
        if len(summaries) < _PAGE:
            break
        last = summaries[-1]
        page.before = (last.start_ns, last.trace_id)
    if skipped:
        out.notes.append(f"{skipped} traces answered no question (searches, embeddings): left out")
    return out


def _example(trace_id: str, question: str, spans: list[SpanRecord], rating: int | None) -> Example:
    root = _root(spans)
    answer = _answer(spans)
    refused = root is not None and root.attributes.get("hanlin.rag.answer_mode") == "refused"
    meta: dict[str, Any] = {"trace_id": trace_id}
    if root is not None and root.kb:
        meta["kb"] = root.kb
    if rating is not None:
        meta["rating"] = rating
    good = rating == 1 and answer is not None
    if rating == -1 and answer:
        meta["rejected_answer"] = answer
    return Example(
        id=trace_id,
        question=question,
        answers=[answer] if good and answer and not refused else [],
        should_refuse=bool(good and refused),
        meta=meta,
    )


def _root(spans: list[SpanRecord]) -> SpanRecord | None:
    return next((s for s in spans if s.parent_id is None), spans[0] if spans else None)


def _question(spans: list[SpanRecord]) -> str | None:
    root = _root(spans)
    if root is not None and isinstance(root.attributes.get("hanlin.question"), str):
        return str(root.attributes["hanlin.question"]).strip() or None
    for span in spans:  # ordered by start: the first model call holds the conversation
        messages = _messages(span.attributes.get(INPUT_MESSAGES))
        users = [m for m in messages if m.get("role") == "user" and m.get("content")]
        if users:
            return str(users[-1]["content"]).strip() or None
    return None


def _answer(spans: list[SpanRecord]) -> str | None:
    root = _root(spans)
    ordered = ([root] if root is not None else []) + sorted(
        (s for s in spans if s is not root), key=lambda s: s.end_ns, reverse=True
    )
    for span in ordered:
        value = span.attributes.get(OUTPUT_MESSAGES)
        if value is None:
            continue
        messages = _messages(value)
        if messages:
            text = messages[-1].get("content")
            if isinstance(text, str) and text.strip():
                return text.strip()
        elif isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _messages(value: Any) -> list[dict[str, Any]]:
    """A recorded message list (JSON text); [] for anything else (a plain answer string)."""
    if not isinstance(value, str) or not value.startswith("["):
        return []
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return []
    return [m for m in parsed if isinstance(m, dict)] if isinstance(parsed, list) else []

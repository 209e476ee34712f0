"""The RAG engine's vocabulary: citations, retrieved evidence, answers and stream events.

The server, the CLI and the UI consume these; :mod:`hanlin.rag.engine` produces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from hanlin.models.types import Usage

AnswerMode = Literal["generative", "extractive", "refused"]
RequestedMode = Literal["auto", "generative", "extractive"]


@dataclass(slots=True)
class Citation:
    """Where ``[n]`` in an answer points: one chunk, precisely enough to open the place."""

    n: int
    chunk_id: int
    doc: str
    source: str  # file path or URL
    title: str
    heading_path: list[str]
    page: int | None
    page_end: int | None
    char_start: int
    char_end: int
    snippet: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "chunk_id": self.chunk_id,
            "doc": self.doc,
            "source": self.source,
            "title": self.title,
            "heading_path": self.heading_path,
            "page": self.page,
            "page_end": self.page_end,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "snippet": self.snippet,
            "score": round(self.score, 6),
        }


@dataclass(slots=True)
class Evidence:
    """A retrieved chunk with the scores that got it there (fused and per retriever)."""

    chunk_id: int
    text: str
    score: float
    scores: dict[str, float]
    citation: Citation

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "text": self.text,
            "score": round(self.score, 6),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "citation": self.citation.to_dict(),
        }


@dataclass(slots=True)
class Answer:
    """A finished answer.

    ``mode`` says how it was made: ``generative`` (a model wrote it from the evidence),
    ``extractive`` (evidence sentences quoted with citations), ``refused`` (no evidence above
    the threshold: ``text`` says so and ``evidence`` holds the closest sources). ``notes``
    explains choices a user should know about (e.g. why extractive mode was used).
    ``usage`` counts the model calls; where no model wrote the answer (extractive, refused) it
    is estimated with :func:`hanlin.text.count_tokens` (question as prompt, answer as completion)
    and ``usage_estimated`` is set. ``finish_reason`` is ``length`` when ``max_tokens`` cut it.
    """

    text: str
    mode: AnswerMode
    citations: list[Citation]
    evidence: list[Evidence]
    question: str
    standalone_question: str
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    usage_estimated: bool = False
    finish_reason: Literal["stop", "length"] = "stop"
    #: what the guard did: the generation call's notice (masked, blocked, links removed) and
    #: ``injection`` (mode, rules) when sources held injected instructions; None: nothing
    guard: dict[str, Any] | None = None

    @property
    def refused(self) -> bool:
        return self.mode == "refused"

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "mode": self.mode,
            "citations": [c.to_dict() for c in self.citations],
            "evidence": [e.to_dict() for e in self.evidence],
            "question": self.question,
            "standalone_question": self.standalone_question,
            "model": self.model,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "cached_tokens": self.usage.cached_tokens,
                "estimated": self.usage_estimated,
            },
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "notes": self.notes,
        }


@dataclass(slots=True)
class RetrievalEvent:
    """First event of a streamed answer: the evidence and the citations it may use."""

    evidence: list[Evidence]
    citations: list[Citation]
    standalone_question: str
    type: Literal["retrieval"] = "retrieval"


@dataclass(slots=True)
class AnswerDelta:
    """More answer text."""

    text: str
    type: Literal["delta"] = "delta"


@dataclass(slots=True)
class AnswerDone:
    """Last event: the whole answer (citations renumbered to those actually used)."""

    answer: Answer
    type: Literal["done"] = "done"


RagEvent = RetrievalEvent | AnswerDelta | AnswerDone

"""What an evaluation runs each question against, through the library's own entry points:

- ``kb:NAME`` — the knowledge base's RAG answer (:class:`~hanlin.rag.engine.RagEngine`), plus
  its ``search`` ranking for the retrieval metrics; refusals and citations as RAG reports them;
- ``agent:NAME`` — an agent from :func:`~hanlin.agents.spec.open_agent` (calls with side
  effects are denied unless the agent auto-approves them), its tool calls recorded;
- anything else — a model name through the gateway, given the example's context if it has one.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from hanlin.agents.events import ToolCallEvent
from hanlin.evals.base import Example
from hanlin.evals.metrics import GROUPS
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.models.gateway import Gateway
from hanlin.models.pricing import call_cost
from hanlin.models.types import Usage
from hanlin.rag.engine import RagEngine

#: the instruction a plain model answers under; recorded with each run
ANSWER_PROMPT = (
    "answer-v1",
    "Answer the question accurately and briefly. If the context is given, answer from it.",
)
#: retrieved results scored per question (nDCG@10 needs 10)
RETRIEVE_K = 10


@dataclass(slots=True)
class Output:
    """What a target did with one question."""

    text: str = ""
    #: True/False as the target reports it; None for targets that do not report refusals
    refused: bool | None = None
    #: the ranked retrieval results (``doc``, ``source``, ``text``), for retrieval metrics
    hits: list[dict[str, Any]] | None = None
    #: citation number → the cited passage's text, for citation metrics
    passages: dict[int, str] | None = None
    #: tool calls made (``name``, ``arguments``), for tool-call metrics
    tool_calls: list[dict[str, Any]] | None = None
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    usage: Usage = field(default_factory=Usage)
    notes: list[str] = field(default_factory=list)
    #: set when the target failed on this question (its answer scores count as 0)
    error: str | None = None


class Target(Protocol):
    """A system under evaluation: ``name`` as given (``kb:docs``), ``metrics`` it can produce."""

    name: str
    metrics: list[str]

    def run(self, example: Example) -> Output: ...

    def close(self) -> None: ...


def open_target(spec: str, gateway: Gateway, *, model: str | None = None) -> Target:
    """The target ``spec`` names; ``model`` picks a knowledge base's generator. Raises
    :class:`~hanlin.errors.NotFoundError` for an unknown knowledge base, agent or model."""
    if spec.startswith("kb:"):
        return KbTarget(spec[3:], gateway, model=model)
    if spec.startswith("agent:"):
        return AgentTarget(spec[6:], gateway)
    gateway.resolve(spec)  # an unknown model fails now, not on every example
    return ModelTarget(spec, gateway)


def _cost(gateway: Gateway, model: str | None, usage: Usage) -> float:
    """The cost of ``usage`` at the price of the deployment ``model`` routes to first."""
    if not model:
        return 0.0
    try:
        dep = gateway.resolve(model).deployments[0]
    except Exception:  # a model that routes nowhere now: cost unknown, not an error
        return 0.0
    cost = call_cost(usage, gateway.catalog.price(dep), gateway.models.usd_to_cny)
    return cost.usd if cost is not None else 0.0


class KbTarget:
    """RAG answers from one knowledge base."""

    def __init__(self, kb: str, gateway: Gateway, *, model: str | None = None) -> None:
        self.name = f"kb:{kb}"
        self.kb = KnowledgeBase(kb, gateway.settings)
        self.engine = RagEngine(self.kb, gateway)
        self.gateway = gateway
        self.model = model
        self.metrics = [
            *GROUPS["retrieval"],
            *GROUPS["answer"],
            *GROUPS["citation"],
            *GROUPS["judge"],
            *GROUPS["refusal"],
            "latency_ms",
            "cost_usd",
        ]

    def run(self, example: Example) -> Output:
        results = self.kb.search(example.question, k=RETRIEVE_K)
        hits = [
            {"doc": r.chunk.doc_key, "source": r.chunk.source, "text": r.chunk.text}
            for r in results
        ]
        started = time.perf_counter()
        answer = self.engine.ask(example.question, model=self.model)
        latency = (time.perf_counter() - started) * 1000
        texts = {e.chunk_id: e.text for e in answer.evidence}
        return Output(
            text=answer.text,
            refused=answer.refused,
            hits=hits,
            passages={c.n: texts.get(c.chunk_id, c.snippet) for c in answer.citations},
            latency_ms=latency,
            cost_usd=_cost(self.gateway, answer.model, answer.usage)
            if not answer.usage_estimated
            else 0.0,
            usage=answer.usage,
            notes=[f"mode {answer.mode}"],
        )

    def close(self) -> None:
        self.engine.close()
        self.kb.close()


class ModelTarget:
    """A model through the gateway, answering under :data:`ANSWER_PROMPT`."""

    def __init__(self, model: str, gateway: Gateway) -> None:
        self.name = model
        self.gateway = gateway
        self.metrics = [*GROUPS["answer"], *GROUPS["judge"], "latency_ms", "cost_usd"]

    def run(self, example: Example) -> Output:
        question = example.question
        if example.context:
            question = f"Context:\n{example.context}\n\nQuestion: {question}"
        messages = [
            {"role": "system", "content": ANSWER_PROMPT[1]},
            {"role": "user", "content": question},
        ]
        started = time.perf_counter()
        resp = self.gateway.chat(messages, self.name)
        return Output(
            text=resp.text,
            latency_ms=(time.perf_counter() - started) * 1000,
            cost_usd=resp.cost.usd if resp.cost else 0.0,
            usage=resp.usage,
        )

    def close(self) -> None:
        pass


class AgentTarget:
    """An agent definition (a name in ``HANLIN_HOME/agents``, a YAML path, or a built-in),
    built once and given each question as a fresh task."""

    def __init__(self, name: str, gateway: Gateway) -> None:
        from hanlin.agents.spec import load_agent_spec, open_agent

        self.name = f"agent:{name}"
        self.gateway = gateway
        self.metrics = [
            *GROUPS["answer"],
            *GROUPS["tools"],
            *GROUPS["judge"],
            "latency_ms",
            "cost_usd",
        ]
        spec = load_agent_spec(name, gateway.settings)
        self._context: AbstractAsyncContextManager[Any] = open_agent(spec, gateway)
        self.agent = gateway.run_sync(self._context.__aenter__())

    def run(self, example: Example) -> Output:
        started = time.perf_counter()
        result = self.gateway.run_sync(self.agent.arun(example.question))
        calls = [
            {"name": e.name, "arguments": e.arguments}
            for e in result.events
            if isinstance(e, ToolCallEvent)
        ]
        failed = result.stop_reason == "error"
        return Output(
            text=result.text,
            tool_calls=calls,
            latency_ms=(time.perf_counter() - started) * 1000,
            cost_usd=result.cost_usd,
            usage=result.usage,
            notes=[f"stop {result.stop_reason}"],
            error=(result.error or "the agent run failed") if failed else None,
        )

    def close(self) -> None:
        self.gateway.run_sync(self._context.__aexit__(None, None, None))

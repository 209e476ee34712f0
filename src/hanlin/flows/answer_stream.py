"""A run's answer as a chat reply streams it: the tokens of the ``llm`` node an answer reads,
as the model writes them (Dify's answer-node streaming).

An answer template — an ``answer`` node's ``answer``, or an ``end`` node's ``answer`` output
(or its only output) — that is literal text (none is fine) followed by ``{{X.text}}``, where
``X`` is a top-level ``llm`` node that streams (``stream: true``, no ``output_schema``),
streams that text then ``X``'s tokens. Tokens flow at once when the answer is sure to run
whenever ``X`` runs (a path of plain edges from ``X`` to it); otherwise (an ``if_else`` or a
classifier between them) they are held until the answer node starts, and dropped if it never
does. Text of other nodes — an llm node that only feeds a later one, an agent's notes — is not
the reply and is not streamed. Whatever the template adds after the reference comes when the
run ends (:meth:`AnswerStream.rest`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hanlin.flows.definition import Workflow
from hanlin.flows.events import FlowEvent, NodeStartedEvent, NodeTextEvent

_FIRST = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\.text\s*\}\}")


@dataclass
class _Plan:
    target: str  # the answer or end node
    prefix: str  # literal text before the reference
    committed: bool  # the target runs whenever the llm node does
    held: list[str] = field(default_factory=list)
    open: bool = False  # the target has started (or is committed and text began)


class AnswerStream:
    """Feed it a run's events; it says which text to send now, and what is left at the end."""

    def __init__(self, workflow: Workflow) -> None:
        self.sent = ""
        self._plans: dict[str, _Plan] = {}  # llm node → how its tokens reach the reply
        graph = workflow.graph
        for target in graph.order:
            template = _answer_template(graph.nodes[target].type, graph.configs[target])
            found = _FIRST.search(template or "")
            if template is None or found is None:
                continue
            prefix, source = template[: found.start()], found.group(1)
            if "{%" in prefix or "{#" in prefix or "{{" in prefix:
                continue
            config = graph.configs.get(source)
            if graph.nodes.get(source) is None or graph.nodes[source].type != "llm":
                continue
            if not getattr(config, "stream", False) or getattr(config, "output_schema", None):
                continue
            if source in self._plans:  # two answers read it: the run's end decides
                self._plans[source].target = ""
                continue
            self._plans[source] = _Plan(target, prefix, _committed(graph, source, target))

    def feed(self, event: FlowEvent) -> str:
        """The reply text this event adds ("" for none)."""
        if isinstance(event, NodeTextEvent):
            plan = self._plans.get(event.node)
            if plan is None or not plan.target:
                return ""
            if plan.committed or plan.open:
                return self._send(plan, event.text)
            plan.held.append(event.text)
            return ""
        if isinstance(event, NodeStartedEvent):
            plan = self._plans.get(event.node)
            if plan is not None and event.attempt > 1 and not plan.open:
                plan.held.clear()  # a retried model call writes its text again
            for plan in self._plans.values():
                if plan.target and plan.target == event.node and not plan.open:
                    return self._send(plan, "".join(plan.held))
        return ""

    def _send(self, plan: _Plan, text: str) -> str:
        if not plan.open:
            plan.open = True
            text = plan.prefix + text
        plan.held.clear()
        self.sent += text
        return text

    def rest(self, reply: str) -> str:
        """What to send once the run ended with ``reply``: the part not streamed yet. When
        the streamed text is not the reply's beginning (a model call retried after it had
        streamed), the whole reply follows on a new paragraph: a stream cannot take text back."""
        if reply.startswith(self.sent):
            return reply[len(self.sent) :]
        return "\n\n" + reply


def _answer_template(kind: str, config: Any) -> str | None:
    if kind == "answer":
        return str(config.answer)
    if kind == "end":
        outputs = config.outputs
        value = outputs.get("answer") if "answer" in outputs else None
        if value is None and len(outputs) == 1:
            value = next(iter(outputs.values()))
        return value if isinstance(value, str) else None
    return None


def _committed(graph: Any, source: str, target: str) -> bool:
    """Whether ``target`` surely runs once ``source`` has: a path of plain edges (no branch)
    leads there, through nodes that cannot leave by an error branch."""
    todo, seen = [source], {source}
    while todo:
        node = todo.pop()
        if graph.nodes[node].on_error == "branch":
            continue
        for edge in graph.edges:
            if edge.source != node or edge.handle is not None or edge.target in seen:
                continue
            if edge.target == target:
                return True
            seen.add(edge.target)
            todo.append(edge.target)
    return False


__all__ = ["AnswerStream"]

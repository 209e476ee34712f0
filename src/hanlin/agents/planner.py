"""Planner mode (Plan-and-Execute): the model breaks a goal into subtasks (JSON-schema output),
an inner tool-calling :class:`Agent` runs each one, a failure triggers a bounded re-plan, and a
last model call writes the report from the subtask results.

One set of limits covers the whole run (planning, every subtask and the report); the plan and
its progress stream as :class:`PlanEvent` / :class:`SubtaskEvent` with the inner agent's events
in between. A plan the model gets wrong is sent back with the reason a bounded number of times,
then replaced by a single subtask (the goal itself), so a weak model still gets an answer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from hanlin.access import caller as access
from hanlin.agents.events import (
    AgentEvent,
    AgentResult,
    FinalEvent,
    MemoryEvent,
    NoticeEvent,
    PlanEvent,
    StepEvent,
    StopReason,
    SubtaskEvent,
    TextEvent,
)
from hanlin.agents.loop import Agent, AgentLimits, ApprovalPolicy, events_within
from hanlin.agents.plan import (
    FAILED_MARK,
    PLAN_PROMPT,
    PLAN_SCHEMA,
    REPLAN_PROMPT,
    REPORT_PROMPT,
    SUBTASK_PROMPT,
    PlanError,
    Subtask,
    clip,
    describe,
    fallback_report,
    next_ready,
    parse_plan,
    skip_dependents,
)
from hanlin.agents.tools.base import AgentTool
from hanlin.errors import HanlinError
from hanlin.models.gateway import Gateway, MessagesLike, as_messages
from hanlin.models.types import (
    ChatOptions,
    Message,
    ResponseFormat,
    StreamAccumulator,
    TextDelta,
    Usage,
)
from hanlin.tracing import spans
from hanlin.tracing.records import REQUEST_MODEL

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from hanlin.prompts.library import Resolved


class _Budget:
    """What is left of the run's limits; the planner's own calls and every subtask draw on it."""

    def __init__(self, limits: AgentLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds
        self.steps = 0
        self.usage = Usage()
        self.cost = 0.0
        #: a limit an inner agent hit that was the run's own (tokens, cost, time)
        self.spent: StopReason | None = None
        #: the run's ``invoke_agent`` span: the planner's model calls and subtasks nest under it
        self.span: Span | None = None

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def exhausted(self) -> StopReason | None:
        lim = self.limits
        if self.spent is not None:
            return self.spent
        if self.steps >= lim.max_steps:
            return "max_steps"
        if self.left() <= 0:
            return "max_seconds"
        if lim.max_tokens is not None and self.usage.total_tokens >= lim.max_tokens:
            return "max_tokens"
        if lim.max_cost_usd is not None and self.cost >= lim.max_cost_usd:
            return "max_cost"
        return None

    def inner(self, per_subtask: int | None) -> AgentLimits:
        lim = self.limits
        steps = lim.max_steps - self.steps
        return AgentLimits(
            max_steps=max(1, min(steps, per_subtask) if per_subtask else steps),
            max_seconds=max(self.left(), 0.001),
            max_tokens=None if lim.max_tokens is None else lim.max_tokens - self.usage.total_tokens,
            max_cost_usd=None if lim.max_cost_usd is None else lim.max_cost_usd - self.cost,
            tool_timeout=lim.tool_timeout,
        )


class _Stop(Exception):
    def __init__(self, reason: StopReason, error: str | None = None) -> None:
        super().__init__(reason)
        self.reason: StopReason = reason
        self.error = error


class PlannerAgent:
    """Plan, execute each subtask with tools, re-plan on failure, report. Same surface as
    :class:`Agent`: ``astream`` yields events ending with a :class:`FinalEvent`; ``arun`` /
    ``run`` return an :class:`AgentResult`.

    ``max_subtasks`` caps a plan's size, ``max_replans`` the revisions after failures,
    ``max_plan_repairs`` how often an unusable plan goes back to the model before the goal
    becomes a single subtask, and ``subtask_max_steps`` the model steps of one subtask (all of
    them share ``limits``). ``notice`` is announced first, once, as on :class:`Agent`.
    """

    def __init__(
        self,
        gateway: Gateway,
        model: str | None,
        tools: Sequence[AgentTool] = (),
        *,
        system: str | None = None,
        limits: AgentLimits | None = None,
        approval: ApprovalPolicy | None = None,
        max_repairs: int = 2,
        options: ChatOptions | None = None,
        max_subtasks: int = 6,
        max_replans: int = 2,
        max_plan_repairs: int = 2,
        subtask_max_steps: int | None = 6,
        prompts: Mapping[str, Resolved] | None = None,
    ) -> None:
        self.gateway = gateway
        self.model = model
        self.tools = {t.name: t for t in tools}
        self.system = system
        self.limits = limits or AgentLimits(max_steps=30, max_seconds=600.0)
        self.approval = approval or ApprovalPolicy()
        self.max_repairs = max_repairs
        self.options = options
        self.max_subtasks = max_subtasks
        self.max_replans = max_replans
        self.max_plan_repairs = max_plan_repairs
        self.subtask_max_steps = subtask_max_steps
        #: ``plan`` / ``replan`` / ``subtask`` / ``report`` from the registry (missing: bundled)
        self.prompts = dict(prompts or {})
        self.notice: NoticeEvent | None = None

    # -- public API ---------------------------------------------------------------------------

    def messages_for(self, task_or_messages: MessagesLike) -> list[Message]:
        """The opening messages: the last user message is the goal, the others context."""
        return as_messages(task_or_messages)

    def _prompt(self, key: str, **values: Any) -> str:
        """The planner prompt ``key`` filled in: the registry's version, else the bundled."""
        found = self.prompts.get(key)
        return found.fill(**values) if found is not None else _bundled_prompt(key).format(**values)

    async def astream(self, task_or_messages: MessagesLike) -> AsyncIterator[AgentEvent]:
        """Run the goal, yielding every event; the last one is a :class:`FinalEvent`.

        With a list of messages, the last user message is the goal and the others are context.
        """
        async for event in self._run(self.messages_for(task_or_messages)):
            yield event

    async def arun(self, task_or_messages: MessagesLike) -> AgentResult:
        """Run to the end; ``messages`` holds the goal and the report."""
        messages = self.messages_for(task_or_messages)
        events = [e async for e in self._run(messages)]
        final = events[-1]
        text = final.text if isinstance(final, FinalEvent) else ""
        return AgentResult.of(events, [*messages, Message.assistant(text)])

    def run(self, task_or_messages: MessagesLike) -> AgentResult:
        """Synchronous :meth:`arun`, on the gateway's event-loop thread."""
        result: AgentResult = self.gateway.run_sync(self.arun(task_or_messages))
        return result

    # -- the run ------------------------------------------------------------------------------

    async def _run(self, messages: list[Message]) -> AsyncIterator[AgentEvent]:
        if self.notice is not None:
            notice, self.notice = self.notice, None
            yield notice
        budget = _Budget(self.limits)
        # never made current across a yield: the steps may run on different tasks
        budget.span = spans.start(
            f"invoke_agent {self.model or 'default'}",
            operation="invoke_agent",
            attrs={REQUEST_MODEL: self.model, "hanlin.agent.mode": "planner"},
        )
        failed: Exception | None = None
        try:
            async with aclosing(self._plan_and_execute(budget, messages)) as events:
                async for event in events:
                    if isinstance(event, FinalEvent):
                        budget.span.set_attribute("hanlin.agent.stop_reason", event.stop_reason)
                        budget.span.set_attribute("hanlin.agent.steps", budget.steps)
                        if event.stop_reason == "error":
                            failed = RuntimeError(event.error or "the run failed")
                    yield event
        except BaseException as exc:
            spans.finish(budget.span, None if isinstance(exc, GeneratorExit) else exc)
            raise
        spans.finish(budget.span, failed)

    async def _plan_and_execute(
        self, budget: _Budget, messages: list[Message]
    ) -> AsyncGenerator[AgentEvent, None]:
        goal, context = _split_goal(messages)
        subtasks: list[Subtask] = []

        def final(reason: StopReason, text: str, error: str | None = None) -> FinalEvent:
            return FinalEvent(text, budget.steps, budget.usage, budget.cost, reason, error)

        try:
            subtasks, note = await self._plan(budget, goal, context, None, [])
            yield StepEvent(budget.steps, budget.usage, budget.cost)
            yield PlanEvent([s.as_dict() for s in subtasks], 0, note)
            replans = 0
            while (nxt := next_ready(subtasks)) is not None:
                if (reason := budget.exhausted()) is not None:
                    raise _Stop(reason)
                async for event in self._execute(budget, goal, context, subtasks, nxt):
                    yield event
                if nxt.status != "failed":
                    continue
                if replans >= self.max_replans or budget.exhausted():
                    skip_dependents(subtasks)
                    continue
                replans += 1
                done = [s for s in subtasks if s.status == "done"]
                try:
                    fresh, note = await self._plan(budget, goal, context, nxt, done)
                except PlanError as exc:  # no usable revision: go on with the old plan
                    skip_dependents(subtasks)
                    note = f"re-planning failed ({exc}); continuing with the old plan"
                    fresh = None
                yield StepEvent(budget.steps, budget.usage, budget.cost)
                if fresh is not None:
                    kept = [s for s in subtasks if s.status in ("done", "failed", "skipped")]
                    subtasks = kept + fresh
                    note = f"subtask {nxt.id} failed: {nxt.error}" + (f"; {note}" if note else "")
                yield PlanEvent([s.as_dict() for s in subtasks], replans, note)
            if (reason := budget.exhausted()) is not None:
                raise _Stop(reason)
            text = ""
            async for piece in self._report(budget, goal, context, subtasks):
                text += piece
                yield TextEvent(piece, budget.steps)
            yield StepEvent(budget.steps, budget.usage, budget.cost)
            yield final("answer", text)
        except _Stop as stop:
            error = stop.error
            if error is None and stop.reason != "error":
                error = f"the planner stopped at its {stop.reason} limit after {budget.steps} steps"
            yield final(stop.reason, fallback_report(goal, subtasks), error)

    async def _model(
        self,
        budget: _Budget,
        messages: list[Message],
        what: str,
        fmt: ResponseFormat | None = None,
    ) -> AsyncIterator[str]:
        """One model call under the budget, streaming its text; limits and errors → _Stop."""
        if (reason := budget.exhausted()) is not None:
            raise _Stop(reason)
        budget.steps += 1
        overrides: dict[str, Any] = {"response_format": fmt} if fmt else {}
        acc = StreamAccumulator()
        cap, streamed = self.limits.max_tokens, 0
        try:
            with spans.current(budget.span), access.configured_model("agents"):
                stream = self.gateway.astream(messages, self.model, self.options, **overrides)
            try:
                async for event in events_within(stream, budget.left):
                    acc.add(event)
                    if isinstance(event, TextDelta) and event.text:
                        streamed += len(event.text)
                        yield event.text
                    # usage arrives at the end: ~4 characters a token stops a runaway answer
                    if cap is not None and budget.usage.total_tokens + streamed // 4 > cap:
                        raise _Stop("max_tokens", f"the token limit was reached during {what}")
            finally:
                await stream.aclose()
        except _Stop:
            raise
        except TimeoutError:
            raise _Stop("max_seconds") from None
        except Exception as exc:  # the orchestration boundary: wrap once, naming the step
            why = exc.message if isinstance(exc, HanlinError) else f"{type(exc).__name__}: {exc}"
            model = self.model or "the default model"
            step = budget.steps
            raise _Stop("error", f"planner step {step} ({what}, {model}): {why}") from exc
        resp = stream.response
        budget.usage = budget.usage + (resp.usage if resp else acc.usage)
        if resp is not None and resp.cost is not None:
            budget.cost += resp.cost.usd

    async def _plan(
        self,
        budget: _Budget,
        goal: str,
        context: list[Message],
        failed: Subtask | None,
        done: list[Subtask],
    ) -> tuple[list[Subtask], str | None]:
        """A (re-)plan; a bad plan is sent back ``max_plan_repairs`` times, then replaced by a
        single subtask (a first plan) or reported as :class:`PlanError` (a re-plan)."""
        tools = ", ".join(f"{t.name} ({t.description[:80]})" for t in self.tools.values())
        system = self._prompt("plan", tools=tools or "none", max_subtasks=self.max_subtasks)
        if self.system:
            system += f"\n\nThe assistant's instructions: {self.system}"
        messages = [Message.system(system), *context, Message.user(f"Goal: {goal}")]
        if failed is not None:
            results = "\n".join(f"- {s.id} {s.title}: {clip(s.result or '', 400)}" for s in done)
            messages.append(Message.user(f"Done so far:\n{results or '(nothing)'}"))
            messages.append(
                Message.user(
                    self._prompt(
                        "replan",
                        id=failed.id,
                        title=failed.title,
                        error=failed.error,
                        done=", ".join(s.id for s in done) or "none",
                        max_subtasks=self.max_subtasks,
                    )
                )
            )
        fmt: ResponseFormat | None = ResponseFormat(
            type="json_schema", json_schema=PLAN_SCHEMA, name="plan"
        )
        problem = ""
        for _attempt in range(self.max_plan_repairs + 1):
            try:
                text = "".join([p async for p in self._model(budget, messages, "planning", fmt)])
            except _Stop as stop:
                if stop.reason != "error" or fmt is None:
                    raise
                fmt = None  # a provider that refuses JSON schemas still gets the prompt's shape
                problem = stop.error or "the model call failed"
                continue
            try:
                return parse_plan(
                    text, done=[s.id for s in done], max_subtasks=self.max_subtasks
                ), None
            except PlanError as exc:
                problem = str(exc)
                messages += [
                    Message.assistant(text),
                    Message.user(f"That plan is not usable: {problem}. Reply with corrected JSON."),
                ]
        if failed is not None:
            raise PlanError(problem)
        note = f"the model gave no usable plan ({problem}); doing the goal as one subtask"
        return [Subtask("1", goal)], note

    async def _execute(
        self,
        budget: _Budget,
        goal: str,
        context: list[Message],
        subtasks: list[Subtask],
        sub: Subtask,
    ) -> AsyncIterator[AgentEvent]:
        """Run one subtask with an inner agent, passing its events through (steps renumbered
        across the run, its StepEvents carrying the run's totals)."""
        sub.status = "running"
        yield SubtaskEvent(sub.id, sub.title, "running")
        deps = [s for s in subtasks if s.id in sub.depends_on]
        ctx = "".join(f"Result of subtask {d.id} ({d.title}): {d.result}\n" for d in deps)
        prompt = self._prompt(
            "subtask",
            goal=goal,
            context=ctx,
            id=sub.id,
            title=sub.title,
            description=sub.description,
        )
        inner = Agent(
            self.gateway,
            self.model,
            list(self.tools.values()),
            system=self.system,
            limits=budget.inner(self.subtask_max_steps),
            approval=self.approval,
            max_repairs=self.max_repairs,
            options=self.options,
        )
        sub_span = spans.start(
            f"subtask {sub.id}",
            operation="plan_subtask",
            attrs={"hanlin.subtask.id": sub.id, "hanlin.subtask.title": sub.title},
            parent=budget.span,
        )
        inner.parent_span = sub_span
        try:
            async with aclosing(self._subtask(budget, sub, inner, context, prompt)) as events:
                async for event in events:
                    yield event
        except BaseException as exc:
            spans.finish(sub_span, None if isinstance(exc, GeneratorExit) else exc)
            raise
        spans.record(sub_span, "hanlin.subtask.result", sub.result)
        failure = RuntimeError(sub.error or "failed") if sub.status == "failed" else None
        spans.finish(sub_span, failure)

    async def _subtask(
        self,
        budget: _Budget,
        sub: Subtask,
        inner: Agent,
        context: list[Message],
        prompt: str,
    ) -> AsyncGenerator[AgentEvent, None]:
        offset, base_usage, base_cost = budget.steps, budget.usage, budget.cost
        final: FinalEvent | None = None
        opening = [*context, Message.user(prompt)]
        if self.system:
            opening.insert(0, Message.system(self.system))
        async for event in inner.astream(opening):
            if isinstance(event, FinalEvent):
                final = event
                break
            if isinstance(event, StepEvent):
                budget.steps = offset + event.step
                budget.usage = base_usage + event.usage
                budget.cost = base_cost + event.cost_usd
                event = StepEvent(budget.steps, budget.usage, budget.cost)
            elif not isinstance(event, PlanEvent | SubtaskEvent | MemoryEvent | NoticeEvent):
                event.step += offset
            yield event
        assert final is not None
        budget.steps = offset + final.steps
        budget.usage = base_usage + final.usage
        budget.cost = base_cost + final.cost_usd
        if final.stop_reason in ("max_tokens", "max_cost", "max_seconds"):
            budget.spent = final.stop_reason  # the inner limits were what the run had left
        text = final.text.strip()
        if final.stop_reason == "answer" and text and not text.upper().startswith(FAILED_MARK):
            sub.status, sub.result = "done", text
            yield SubtaskEvent(sub.id, sub.title, "done", result=text)
            return
        if final.stop_reason != "answer":
            error = final.error or f"stopped at a limit ({final.stop_reason})"
        else:
            error = text[len(FAILED_MARK) :].strip() if text else "no answer"
        sub.status, sub.result, sub.error = "failed", text or None, error or "failed"
        yield SubtaskEvent(sub.id, sub.title, "failed", result=text or None, error=sub.error)

    async def _report(
        self, budget: _Budget, goal: str, context: list[Message], subtasks: list[Subtask]
    ) -> AsyncIterator[str]:
        results = "\n\n".join(describe(s) for s in subtasks)
        messages = [*context, Message.user(self._prompt("report", goal=goal, results=results))]
        if self.system:
            messages.insert(0, Message.system(self.system))
        async for piece in self._model(budget, messages, "report"):
            yield piece


def _bundled_prompt(key: str) -> str:
    return {
        "plan": PLAN_PROMPT,
        "replan": REPLAN_PROMPT,
        "subtask": SUBTASK_PROMPT,
        "report": REPORT_PROMPT,
    }[key]


def _split_goal(messages: list[Message]) -> tuple[str, list[Message]]:
    """The goal (the last user message) and the messages before it, as context."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            return messages[i].text, messages[:i] + messages[i + 1 :]
    return (messages[-1].text if messages else ""), messages[:-1]


__all__ = ["PlannerAgent"]

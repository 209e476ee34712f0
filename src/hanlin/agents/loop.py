"""The tool-calling loop: stream the model with the tools' specs, run the calls it asks for (in
parallel), feed the results back, and stop at an answer or a limit.

The loop never hangs and never crashes on a tool: malformed arguments are repaired or sent back
for a bounded number of retries, raising or hanging tools become error results, and every step
and tool batch runs under the run's wall-time deadline. A failing model call ends the run with
``stop_reason="error"``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from opentelemetry.trace import Span
from pydantic import ValidationError

from hanlin.access import caller as access
from hanlin.agents.events import (
    AgentEvent,
    AgentResult,
    ApprovalRequest,
    FinalEvent,
    NoticeEvent,
    StepEvent,
    StopReason,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from hanlin.agents.repair import repair_json
from hanlin.agents.tools.base import AgentTool, ToolResult, bounded
from hanlin.agents.untrusted import untrusted_result
from hanlin.errors import StepError
from hanlin.guard.policy import user_facing
from hanlin.models.gateway import Gateway, MessagesLike, as_messages
from hanlin.models.types import (
    ChatOptions,
    Message,
    StreamAccumulator,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)
from hanlin.tracing import spans
from hanlin.tracing.records import REQUEST_MODEL, TOOL_ARGUMENTS, TOOL_NAME, TOOL_RESULT
from hanlin.tracing.setup import capturing

ApproveCallback = Callable[[ApprovalRequest], Awaitable[bool] | bool]
AnswerFrom = Literal["model", "tool"]

T = TypeVar("T")


@dataclass(slots=True)
class AgentLimits:
    """When a run stops: model steps, wall seconds, total tokens, USD spent; and a cap in
    seconds on any one tool call (on top of the tool's own timeout)."""

    max_steps: int = 8
    max_seconds: float = 120.0
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    tool_timeout: float | None = None


@dataclass(slots=True)
class ApprovalPolicy:
    """Which calls need a decision, and who decides.

    Tools with side effects (``writes``, ``network``, ``exec``) need approval unless named in
    ``auto_approve``; tools in ``always_ask`` need it even when read-only. With no ``approve``
    callback every call that needs approval is denied.
    """

    approve: ApproveCallback | None = None
    auto_approve: set[str] = field(default_factory=set)
    always_ask: set[str] = field(default_factory=set)

    def needs_approval(self, tool: AgentTool) -> bool:
        if tool.name in self.always_ask:
            return True
        if tool.name in self.auto_approve:
            return False
        return tool.needs_approval

    async def decide(self, request: ApprovalRequest) -> bool:
        """Ask the callback (sync or async); no callback means no."""
        if self.approve is None:
            return False
        answer = self.approve(request)
        if inspect.isawaitable(answer):
            answer = await answer
        return bool(answer)


@dataclass(slots=True)
class _Call:
    """One requested call on its way through parsing, validation and approval."""

    call: ToolCall
    tool: AgentTool | None = None
    arguments: dict[str, Any] | None = None
    result: ToolResult | None = None
    seconds: float = 0.0
    #: the result as the model reads it: screened for injection, in an untrusted block
    sent: str | None = None


@dataclass(slots=True)
class _Run:
    """One run's counters, shared by its steps; ``final`` makes the last event."""

    limits: AgentLimits
    deadline: float  # time.monotonic()
    specs: list[Tool] | None
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    text: str = ""
    step: int = 0
    repairs: dict[str, int] = field(default_factory=dict)
    #: the calls the model asked for in the current step
    calls: list[ToolCall] = field(default_factory=list)
    finished: bool = False
    #: the run's trace span (``invoke_agent``), parent of its model and tool calls
    span: Any = None

    def final(self, reason: StopReason, error: str | None = None) -> FinalEvent:
        self.finished = True
        return FinalEvent(self.text, self.step, self.usage, self.cost, reason, error)

    def stopped(self, reason: StopReason, waiting: str = "") -> FinalEvent:
        """A limit ended the run: the final event says which, and where it was."""
        limits = self.limits
        why = {
            "max_steps": f"the step limit (max_steps={limits.max_steps})",
            "max_seconds": f"the wall-time limit (max_seconds={limits.max_seconds:g})",
            "max_tokens": f"the token limit (max_tokens={limits.max_tokens}; "
            f"{self.usage.total_tokens} used)",
            "max_cost": f"the cost limit (max_cost_usd={limits.max_cost_usd}; "
            f"${self.cost:.4f} spent)",
        }[reason]
        return self.final(reason, f"the agent stopped at {why} after {self.step} step(s){waiting}")

    def limit_reached(self) -> StopReason | None:
        """The limit a finished step has reached, if any."""
        limits = self.limits
        if self.step >= limits.max_steps:
            return "max_steps"
        if limits.max_tokens is not None and self.usage.total_tokens >= limits.max_tokens:
            return "max_tokens"
        if limits.max_cost_usd is not None and self.cost >= limits.max_cost_usd:
            return "max_cost"
        return None


class Agent:
    """A model, its tools and limits. ``astream`` yields events; ``arun``/``run`` return the result.

    ``first_tool_choice`` forces the first step's ``tool_choice`` (e.g. ``"required"`` or a tool
    name); later steps let the model choose. ``answer_from="tool"`` makes the results of the
    first tool calls the answer, with no model step after them: with a forced first call, a
    base model that cannot write an answer only fills in the tool's arguments.
    ``max_repairs`` bounds how often one tool's invalid arguments are sent back to the model
    before the loop gives up on them. ``notice``, when set, is the first event of the next run
    (and of that run only): :func:`~hanlin.agents.spec.open_agent` sets it for base models.
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
        first_tool_choice: ToolChoice | None = None,
        answer_from: AnswerFrom = "model",
    ) -> None:
        self.gateway = gateway
        self.model = model
        self.tools = {t.name: t for t in tools}
        self.system = system
        self.limits = limits or AgentLimits()
        self.approval = approval or ApprovalPolicy()
        self.max_repairs = max_repairs
        self.options = options
        self.first_tool_choice = first_tool_choice
        self.answer_from = answer_from
        #: the span this run's ``invoke_agent`` span nests under (a planner's subtask span);
        #: None: whatever span is current when the run starts
        self.parent_span: Span | None = None
        self.notice: NoticeEvent | None = None

    # -- public API ---------------------------------------------------------------------------

    def messages_for(self, task_or_messages: MessagesLike) -> list[Message]:
        """The opening transcript: the system prompt (unless one is given) and the task."""
        messages = as_messages(task_or_messages)
        if self.system and not (messages and messages[0].role == "system"):
            messages.insert(0, Message.system(self.system))
        return messages

    async def astream(self, task_or_messages: MessagesLike) -> AsyncIterator[AgentEvent]:
        """Run the task, yielding every event; the last one is a :class:`FinalEvent`."""
        async for event in self._loop(self.messages_for(task_or_messages)):
            yield event

    async def arun(self, task_or_messages: MessagesLike) -> AgentResult:
        """Run the task to the end and return the answer, transcript and events."""
        messages = self.messages_for(task_or_messages)
        events = [e async for e in self._loop(messages)]
        return AgentResult.of(events, messages)

    def run(self, task_or_messages: MessagesLike) -> AgentResult:
        """Synchronous :meth:`arun`, on the gateway's event-loop thread."""
        result: AgentResult = self.gateway.run_sync(self.arun(task_or_messages))
        return result

    # -- the loop -----------------------------------------------------------------------------

    async def _loop(self, messages: list[Message]) -> AsyncIterator[AgentEvent]:
        if self.notice is not None:
            notice, self.notice = self.notice, None
            yield notice
        specs = [t.spec() for t in self.tools.values()] or None
        run = _Run(self.limits, time.monotonic() + self.limits.max_seconds, specs)
        # never made current across a yield: the steps may run on different tasks
        run.span = spans.start(
            f"invoke_agent {self.model or 'default'}",
            operation="invoke_agent",
            attrs={REQUEST_MODEL: self.model, "hanlin.agent.tools": len(self.tools)},
            parent=self.parent_span,
        )
        if capturing():  # tool arguments and results recorded as masked as the model's calls
            user = getattr(self.options, "user", None)
            spans.mask_content(run.span, self.gateway.trace_detector(self.model, user))
        failed: Exception | None = None
        try:
            async with aclosing(self._steps(run, messages)) as steps:
                async for event in steps:
                    if isinstance(event, FinalEvent):
                        run.span.set_attribute("hanlin.agent.stop_reason", event.stop_reason)
                        run.span.set_attribute("hanlin.agent.steps", run.step)
                        if event.stop_reason == "error":
                            failed = RuntimeError(event.error or "the run failed")
                    yield event
        except BaseException as exc:
            spans.finish(run.span, None if isinstance(exc, GeneratorExit) else exc)
            raise
        spans.finish(run.span, failed)

    async def _steps(self, run: _Run, messages: list[Message]) -> AsyncGenerator[AgentEvent, None]:
        while True:
            run.step += 1
            async with aclosing(self._model_step(run, messages)) as events:
                async for event in events:
                    yield event
            if run.finished:
                return
            if not run.calls:
                yield run.final("answer")
                return
            results: list[ToolResultEvent] = []
            async with aclosing(self._tool_step(run, messages)) as events:
                async for event in events:
                    if isinstance(event, ToolResultEvent):
                        results.append(event)
                    yield event
            if run.finished:
                return
            if self.answer_from == "tool":
                async for event in _tool_answer(run, messages, results):
                    yield event
                return
            reason = run.limit_reached()
            if reason is not None:
                yield run.stopped(reason)
                return

    async def _model_step(
        self, run: _Run, messages: list[Message]
    ) -> AsyncGenerator[AgentEvent, None]:
        """One model call: its text as it streams, then the step's usage (and the calls it asks
        for, in ``run.calls``). A limit or a failed call ends the run with a final event."""
        limits = run.limits
        overrides: dict[str, Any] = {"tools": run.specs} if run.specs else {}
        choice = self.first_tool_choice if run.step == 1 else None
        if run.specs and choice is not None:
            overrides["tool_choice"] = choice
        acc = StreamAccumulator()
        streamed = 0
        try:
            # the agent's own model; the call's span starts here, under the run's
            with spans.current(run.span), access.configured_model("agents"), user_facing():
                stream = self.gateway.astream(messages, self.model, self.options, **overrides)
            try:
                async for event in events_within(stream, lambda: run.deadline - time.monotonic()):
                    acc.add(event)
                    if isinstance(event, TextDelta) and event.text:
                        yield TextEvent(event.text, run.step)
                    streamed += _chars(event)
                    # usage comes at the end of a stream: ~4 characters a token (a lower
                    # bound) stops a runaway answer before it ends
                    if limits.max_tokens is not None and (
                        run.usage.total_tokens + streamed // 4 > limits.max_tokens
                    ):
                        run.text = acc.text
                        yield run.stopped("max_tokens", " (while the model was still writing)")
                        return
            finally:
                await stream.aclose()
        except TimeoutError:
            run.text = acc.text
            yield run.stopped("max_seconds", " (while waiting for the model)")
            return
        except Exception as exc:  # the orchestration boundary: wrap once, with the step
            yield run.final("error", str(self._step_error(run.step, exc)))
            return
        resp = stream.response
        run.usage = run.usage + (resp.usage if resp else acc.usage)
        if resp is not None and resp.cost is not None:
            run.cost += resp.cost.usd
        run.text = acc.text
        run.calls = acc.tool_calls
        messages.append(Message.assistant(run.text or None, run.calls or None))
        yield StepEvent(run.step, run.usage, run.cost)

    async def _tool_step(
        self, run: _Run, messages: list[Message]
    ) -> AsyncGenerator[AgentEvent, None]:
        """The step's calls: parsed, approved where needed, run in parallel, results fed back.
        Running out of wall time ends the run with a final event."""
        pending = [_Call(c) for c in run.calls]
        for p in pending:
            yield ToolCallEvent(p.call.id, p.call.name, p.call.arguments, run.step)
            self._prepare(p, run.repairs)
        try:
            for p in pending:
                if p.result is None and p.tool and self.approval.needs_approval(p.tool):
                    request = ApprovalRequest(
                        p.call.id, p.tool.name, p.arguments or {}, p.tool.side_effects, run.step
                    )
                    yield request
                    left = run.deadline - time.monotonic()
                    approved = await bounded(self._decide(request), max(left, 0.001))
                    if not approved:
                        p.result = ToolResult(
                            f"not approved: {p.tool.name} has side effects "
                            f"({', '.join(sorted(p.tool.side_effects))}) and requires "
                            "approval, which was not given; do not retry it",
                            True,
                        )
            left = run.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            with spans.current(run.span):
                await bounded(asyncio.gather(*(self._execute(p) for p in pending)), left)
        except TimeoutError:
            busy = sorted({p.call.name for p in pending if p.result is None})
            yield run.stopped(
                "max_seconds", f" (while waiting for {', '.join(busy) or 'approval'})"
            )
            return
        for p in pending:
            result = p.result or ToolResult("the call produced no result", True)
            messages.append(Message.tool(p.call.id, p.sent or result.content, p.call.name))
            yield ToolResultEvent(
                p.call.id, p.call.name, result.content, result.is_error, p.seconds, run.step
            )

    # -- steps of a call ----------------------------------------------------------------------

    def _step_error(self, step: int, exc: Exception) -> StepError:
        model = self.model or "the default model"
        return StepError("agent", step, exc, detail=f"model call to {model}")

    def _prepare(self, p: _Call, repairs: dict[str, int]) -> None:
        """Find the tool and parse and validate the arguments; failures become results."""
        name = p.call.name
        p.tool = self.tools.get(name)
        if p.tool is None:
            names = ", ".join(sorted(self.tools)) or "(none)"
            p.result = ToolResult(f"unknown tool '{name}'; the available tools are: {names}", True)
            return
        try:
            raw = p.call.arguments.strip()
            try:
                parsed = json.loads(raw) if raw else {}
            except ValueError:
                parsed = repair_json(raw)
            if not isinstance(parsed, dict):
                raise ValueError(f"arguments must be a JSON object, not {type(parsed).__name__}")
            p.tool.validate(parsed)
        except RecursionError:  # json.loads on "[[[[…" nested thousands deep
            p.result = ToolResult(f"invalid arguments for {name}: nested too deeply to parse", True)
            return
        except (ValueError, ValidationError) as exc:
            tries = repairs.get(name, 0) + 1
            repairs[name] = tries
            reason = _reason(exc)
            if tries > self.max_repairs:
                p.result = ToolResult(
                    f"invalid arguments for {name}: {reason}; gave up after {self.max_repairs} "
                    "retries — answer without this tool or with different arguments",
                    True,
                )
            else:
                p.result = ToolResult(
                    f"invalid arguments for {name}: {reason}; send the call again with "
                    f"arguments matching the schema {json.dumps(p.tool.parameters)}",
                    True,
                )
            return
        repairs.pop(name, None)
        p.arguments = parsed

    async def _decide(self, request: ApprovalRequest) -> bool:
        try:
            approved = await self.approval.decide(request)
        except Exception:  # a broken callback denies rather than crashing the run
            approved = False
        if not request.decision.done():
            request.decision.set_result(approved)
        return approved

    async def _execute(self, p: _Call) -> None:
        if p.result is not None or p.tool is None:
            return
        cap = self.limits.tool_timeout
        started = time.monotonic()
        attrs = {TOOL_NAME: p.tool.name, "gen_ai.tool.call.id": p.call.id}
        with spans.span(f"execute_tool {p.tool.name}", operation="execute_tool", attrs=attrs) as sp:
            spans.record(sp, TOOL_ARGUMENTS, p.arguments or {})
            try:
                if cap is None:
                    p.result = await p.tool.run(p.arguments or {})
                else:
                    p.result = await bounded(p.tool.run(p.arguments or {}), cap)
            except TimeoutError:
                p.result = ToolResult(f"{p.tool.name} timed out after {cap:g} s", True)
            except Exception as exc:  # AgentTool.run does not raise; a custom subclass might
                p.result = ToolResult(f"{p.tool.name} failed: {type(exc).__name__}: {exc}", True)
            spans.record(sp, TOOL_RESULT, p.result.content)
            if p.result.is_error:
                spans.fail(sp, RuntimeError(p.result.content[:500]))
            else:
                p.sent = untrusted_result(self.gateway.settings.guard, p.tool.name, p.result, sp)
        p.seconds = time.monotonic() - started


async def _tool_answer(
    run: _Run, messages: list[Message], results: list[ToolResultEvent]
) -> AsyncIterator[AgentEvent]:
    """End the run with the tool results as the answer (``answer_from="tool"``); when every
    call failed, the run ends in an error that quotes them."""
    if all(r.is_error for r in results):
        failed = "; ".join(f"{r.name}: {r.content}" for r in results)
        yield run.final("error", f"no answer: the tool call failed ({failed})")
        return
    run.text = "\n\n".join(r.content for r in results if not r.is_error)
    messages.append(Message.assistant(run.text))
    yield TextEvent(run.text, run.step)
    yield run.final("answer")


def _chars(event: object) -> int:
    """Characters of text or tool arguments a stream event carries."""
    if isinstance(event, TextDelta):
        return len(event.text)
    if isinstance(event, ToolCallDelta):
        return len(event.arguments)
    return 0


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)


async def events_within(stream: AsyncIterator[T], left: Callable[[], float]) -> AsyncIterator[T]:
    """The events of ``stream``, each awaited no longer than ``left()`` seconds (the time
    remaining of a run's budget); raises TimeoutError once none remains. The event is awaited
    in the caller's task (not a task of its own, as ``wait_for`` would), so a cancellation —
    the client left — reaches the stream itself and leaves it closable."""
    while True:
        remaining = left()
        if remaining <= 0:
            raise TimeoutError
        try:
            async with asyncio.timeout(remaining):
                event = await stream.__anext__()
        except StopAsyncIteration:
            return
        yield event

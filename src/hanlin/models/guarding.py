"""The PII guard in the gateway: a call's messages masked for the deployment that serves it, and
its answer — text, tool calls, streamed or not — restored before it leaves the gateway.

The policy is decided per deployment (:func:`hanlin.guard.policy.decide`), so a route that
fails over from a local model to a remote one masks exactly the attempts that leave. What was
masked is recorded on the call's span as counts per type (``hanlin.guard.masked.PHONE``), never
the values.

The output policy (:mod:`hanlin.guard.output`: term banks, links) runs on the restored answer;
every rule that fired is recorded on the span as ``hanlin.guard.output.rules`` and a
``hanlin.guard.<action>`` event naming the rule — never the text.

A call's :class:`CallGuard` gathers what the guard did to it: the answer carries it as
``ChatResponse.guard`` (the notice the server and the web UI show), and when any deployment of
the route would be masked, the prompt and answer the span records (``tracing.capture_content``)
are masked too, with the same placeholders the model saw.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hanlin.access import caller as access
from hanlin.config import GuardSettings
from hanlin.guard.detect import Detector
from hanlin.guard.masking import Masker, StreamRestorer
from hanlin.guard.output import OutputHit, output_policy
from hanlin.guard.policy import Decision, Target, current_kb, decide
from hanlin.models.catalog import Deployment, Route
from hanlin.models.types import (
    ChatResponse,
    Finish,
    Message,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
)
from hanlin.tracing import genai, spans
from hanlin.tracing.setup import capturing

MASKED = "hanlin.guard.masked"
#: one attempt's decision and its masker (None: not masked), kept to record on the span
Guarded = tuple[Decision, Masker | None]


@dataclass(slots=True)
class CallGuard:
    """What the guard did to one gateway call: each attempt's decision and masker, the output
    policy's hits, the guard model's verdicts — and the masker of the span's content."""

    kb: str | None = None
    attempts: list[Guarded] = field(default_factory=list)
    hits: list[OutputHit] = field(default_factory=list)
    #: the rule that replaced the answer by the refusal text (``TERM:x``, ``GUARD:S1``)
    blocked: str = ""
    #: guard-model rules that flagged the input or the answer
    flags: list[str] = field(default_factory=list)
    #: the guard model could not answer and the call went on (``model_failure = "open"``)
    unchecked: bool = False
    #: masks what the span records (None: the route is never masked, or no content captured)
    trace: Masker | None = None

    def append(self, attempt: Guarded) -> None:
        self.attempts.append(attempt)

    def __bool__(self) -> bool:
        return bool(self.attempts)

    def __getitem__(self, index: int) -> Guarded:
        return self.attempts[index]

    def notice(self) -> dict[str, Any] | None:
        """What a person should be told, as a small dict (no values, no text); None if
        nothing happened: ``masked`` counts per type, ``blocked`` the rule,
        ``links_removed``, ``terms_masked``, ``flags`` and ``unchecked``."""
        out: dict[str, Any] = {}
        masker = self.attempts[-1][1] if self.attempts else None
        if masker is not None and masker.counts:
            out["masked"] = dict(sorted(masker.counts.items()))
        if self.blocked:
            out["blocked"] = self.blocked
        links = sum(1 for h in self.hits if h.action == "neutralize")
        if links:
            out["links_removed"] = links
        terms = Counter(h.rule for h in self.hits if h.action == "mask")
        if terms:
            out["terms_masked"] = dict(terms)
        flags = sorted({h.rule for h in self.hits if h.action == "flag"} | set(self.flags))
        if flags:
            out["flags"] = flags
        if self.unchecked:
            out["unchecked"] = True
        return out or None


def call_span(
    settings: GuardSettings,
    route: Route,
    key: str,
    msgs: Sequence[Message],
    opts: Any,
    kb: str | None,
) -> tuple[Any, CallGuard]:
    """The chat call's span and its :class:`CallGuard`. The prompt the span records is masked
    when the policy masks any deployment of the route (which one answers is not known yet), so
    a trace never holds a value that a masked call kept from the model."""
    guarded = CallGuard(kb)
    shown: Sequence[Message] = msgs
    if capturing():
        found = trace_detector(settings, route, key, kb)
        if found is not None:
            shared = spans.current_masker()  # a masked RAG answer or agent run above
            same = shared is not None and shared.detector is found
            guarded.trace = shared if same and shared is not None else Masker(found)
            shown = mask_messages(guarded.trace, msgs)
    return genai.call_span("chat", route.name, shown, opts), guarded


def trace_detector(
    settings: GuardSettings, route: Route, key: str, kb: str | None
) -> Detector | None:
    """The detector of the first deployment of ``route`` the policy masks for this caller
    (what masks the content traces record around calls to it); None: none is masked."""
    for dep in route.deployments:
        found = decision(settings, dep, route.name, key, kb).detector
        if found is not None:
            return found
    return None


def masks_route(settings: GuardSettings, route: Route, key: str, kb: str | None) -> bool:
    """Whether the policy masks any deployment of ``route`` for this caller."""
    return trace_detector(settings, route, key, kb) is not None


def served(
    sp: Any, guarded: CallGuard, dep: Deployment, resp: ChatResponse, *, cached: bool = False
) -> None:
    """What answered, on the span (the answer masked like the prompt), the policy's record,
    and the notice on the answer (``resp.guard``)."""
    trace = guarded.trace
    genai.served(sp, dep, resp, cached=cached, mask=trace.mask if trace is not None else None)
    if guarded:
        record(sp, *guarded[-1])
    resp.guard = guarded.notice()


def decision(
    settings: GuardSettings, dep: Deployment, route: str, key: str | None, kb: str | None
) -> Decision:
    """The policy for a call to ``dep`` through route ``route`` by API key ``key``."""
    ep = dep.endpoint
    target = Target(ep.name, ep.provider, ep.base_url, dep.model, route)
    return decide(settings, target, key=key or None, kb=kb)


def guard_messages(
    settings: GuardSettings,
    dep: Deployment,
    route: str,
    key: str,
    kb: str | None,
    msgs: list[Message],
    guarded: CallGuard,
) -> tuple[Masker | None, list[Message]]:
    """The PII policy for one chat attempt: its masker (None: not masked) and what to send."""
    decided = decision(settings, dep, route, key, kb)
    masker = Masker(decided.detector) if decided.detector is not None else None
    guarded.append((decided, masker))
    return masker, msgs if masker is None else mask_messages(masker, msgs)


def guard_texts(
    settings: GuardSettings,
    dep: Deployment,
    route: str,
    texts: Sequence[str],
    guarded: CallGuard,
) -> Sequence[str]:
    """Embeddings and rerank inputs, masked with bare ``<PHONE>`` placeholders (nothing to
    restore; numbering would only link texts) when the policy masks this deployment and
    ``guard.mask_embeddings`` is on."""
    if not settings.mask_embeddings:
        return texts
    decided = decision(settings, dep, route, access.current().user, current_kb())
    masker = Masker(decided.detector, numbered=False) if decided.detector is not None else None
    guarded.append((decided, masker))
    return texts if masker is None else [masker.mask(t) for t in texts]


def _texts(msgs: Sequence[Message]) -> list[str]:
    out: list[str] = []
    for m in msgs:
        if isinstance(m.content, str):
            out.append(m.content)
        elif m.content:
            out.extend(p.text for p in m.content if isinstance(p, TextPart))
        out.extend(c.arguments for c in m.tool_calls or ())
    return out


def mask_messages(masker: Masker, msgs: Sequence[Message]) -> list[Message]:
    """Copies of ``msgs`` with their text, text parts and earlier tool-call arguments masked
    (images and files are passed as they are)."""
    masker.reserve(_texts(msgs))
    out: list[Message] = []
    for m in msgs:
        content: Any = m.content
        if isinstance(content, str):
            content = masker.mask(content)
        elif content:
            content = [
                dataclasses.replace(p, text=masker.mask(p.text)) if isinstance(p, TextPart) else p
                for p in content
            ]
        calls = m.tool_calls
        if calls:
            calls = [_mask_arguments(masker, c) for c in calls]
        out.append(dataclasses.replace(m, content=content, tool_calls=calls))
    return out


def _mask_arguments(masker: Masker, call: ToolCall) -> ToolCall:
    """Masks the string values inside a call's JSON arguments (the JSON stays valid)."""
    try:
        args = json.loads(call.arguments)
    except ValueError:
        return dataclasses.replace(call, arguments=masker.mask(call.arguments))

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return masker.mask(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return dataclasses.replace(call, arguments=json.dumps(walk(args), ensure_ascii=False))


def restore_response(masker: Masker, resp: ChatResponse, *, tool_arguments: bool) -> None:
    """Puts the values back into an answer, in place."""
    resp.text = masker.restore(resp.text)
    if tool_arguments:
        resp.tool_calls = [
            dataclasses.replace(c, arguments=masker.restore(c.arguments, json_string=True))
            for c in resp.tool_calls
        ]


async def restore_stream(
    masker: Masker, events: AsyncIterator[StreamEvent], *, tool_arguments: bool
) -> AsyncIterator[StreamEvent]:
    """``events`` with placeholders restored; a placeholder split across deltas is held back
    until it is whole. What is held is released before ``Finish`` and at the end."""
    text = masker.stream_restorer()
    calls: dict[int, StreamRestorer] = {}

    def flushed() -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if rest := text.flush():
            out.append(TextDelta(rest))
        for index, restorer in sorted(calls.items()):
            if rest := restorer.flush():
                out.append(ToolCallDelta(index, arguments=rest))
        return out

    try:
        async for event in events:
            if isinstance(event, TextDelta):
                shown = text.feed(event.text)
                if shown:
                    yield dataclasses.replace(event, text=shown)
            elif isinstance(event, ToolCallDelta) and tool_arguments:
                restorer = calls.setdefault(event.index, masker.stream_restorer(json_string=True))
                args = restorer.feed(event.arguments)
                if args or event.id or event.name:
                    yield dataclasses.replace(event, arguments=args)
            else:
                if isinstance(event, Finish):
                    for held in flushed():
                        yield held
                yield event
        for held in flushed():
            yield held
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def record(sp: Any, decided: Decision | None, masker: Masker | None) -> None:
    """The policy's choice and the counts per type on the call's span (no values)."""
    if decided is None:
        return
    sp.set_attribute("hanlin.guard.mask_pii", decided.mode)
    sp.set_attribute("hanlin.guard.local", decided.local)
    if masker is None:
        return
    sp.set_attribute(MASKED, sum(masker.counts.values()))
    for kind, n in sorted(masker.counts.items()):
        sp.set_attribute(f"{MASKED}.{kind}", n)


def police_response(
    settings: GuardSettings, resp: ChatResponse, sp: Any, facing: bool, guarded: CallGuard
) -> None:
    """The output policy on a whole answer, in place: a ``block`` term replaces the answer (and
    its tool calls) by the refusal text, with finish reason ``content_filter``."""
    policy = output_policy(settings)
    if not policy.active(facing) or not resp.text:
        return
    checked = policy.check(resp.text, links=facing)
    resp.text = checked.text
    if checked.blocked:
        resp.tool_calls = []
        resp.finish_reason = "content_filter"
    guarded.hits = list(checked.hits)
    guarded.blocked = _blocking(checked.hits) if checked.blocked else ""
    record_output(sp, checked.hits, checked.blocked)


def _blocking(hits: Sequence[OutputHit]) -> str:
    return next((h.rule for h in hits if h.action == "block"), "")


def police_stream(
    settings: GuardSettings,
    events: AsyncIterator[StreamEvent],
    sp: Any,
    facing: bool,
    guarded: CallGuard,
) -> AsyncIterator[StreamEvent]:
    """``events`` under the output policy (``events`` itself when it changes nothing)."""
    policy = output_policy(settings)
    if not policy.active(facing):
        return events
    return _policed(policy.stream(links=facing), events, sp, guarded)


async def _policed(
    out: Any, events: AsyncIterator[StreamEvent], sp: Any, guarded: CallGuard
) -> AsyncIterator[StreamEvent]:
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                shown = out.feed(event.text)
                # a delta's logprobs pass with it even while its text is held back
                if shown or event.logprobs:
                    yield dataclasses.replace(event, text=shown)
                if out.blocked:
                    yield Finish("content_filter")
                    return
            elif isinstance(event, ToolCallDelta) and out.blocked:
                continue
            else:
                if isinstance(event, Finish):
                    rest = out.flush()
                    if rest:
                        yield TextDelta(rest)
                    if out.blocked:
                        yield Finish("content_filter")
                        return
                yield event
        rest = out.flush()
        if rest:
            yield TextDelta(rest)
        if out.blocked:
            yield Finish("content_filter")
    finally:
        guarded.hits = list(out.hits)
        guarded.blocked = _blocking(out.hits) if out.blocked else ""
        record_output(sp, out.hits, out.blocked)
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def record_output(sp: Any, hits: list[OutputHit], blocked: bool) -> None:
    """The output policy's hits on the call's span: rule ids and actions, no text."""
    if not hits:
        return
    sp.set_attribute("hanlin.guard.output.rules", sorted({h.rule for h in hits}))
    sp.set_attribute("hanlin.guard.blocked", blocked)
    for h in hits:
        sp.add_event(f"hanlin.guard.{h.action}", {"hanlin.guard.rule": h.rule})

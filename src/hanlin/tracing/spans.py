"""How Hanlin's code opens spans. Two shapes:

- :func:`span`, a context manager that makes the span current for the code inside (children
  nest under it) — for code that does not ``yield`` inside it;
- :func:`start` / :func:`finish`, for a span that lives across the steps of an async generator
  (a streamed answer), which may run on different tasks: it is never made current; its children
  are given it as ``parent`` explicitly.

Errors are recorded as a status plus an ``exception`` event with the type and the masked
message (never the traceback, which can hold arguments). The caller's API key id comes from
:mod:`hanlin.access` when one is set.

Personal data: :func:`mask_content` marks a span whose content (and error message) is recorded
with placeholders (``<PHONE_1>``) — a RAG answer or agent run whose model route the guard policy
masks, a search the policy masks. Its descendants inherit the mark, over tasks and threads, so a
question, query, tool argument or result below it is recorded masked too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from hanlin.access import caller as access
from hanlin.tracing import records as r
from hanlin.tracing.setup import capturing, tracer

if TYPE_CHECKING:
    from hanlin.guard.detect import Detector
    from hanlin.guard.masking import Masker

AttrValue = str | int | float | bool

#: span → the maskers its content goes through (inherited by its children)
_maskers: WeakKeyDictionary[Span, tuple[Masker, ...]] = WeakKeyDictionary()


def _attributes(operation: str | None, kb: str | None, attrs: Mapping[str, Any] | None) -> dict:
    out: dict[str, AttrValue] = {}
    if operation:
        out[r.OPERATION] = operation
    if kb:
        out[r.KB] = kb
    who = access.current().user
    if who:
        out[r.KEY_ID] = who
    for k, v in (attrs or {}).items():
        if v is not None:
            out[k] = v
    return out


def start(
    name: str,
    *,
    operation: str | None = None,
    kb: str | None = None,
    attrs: Mapping[str, Any] | None = None,
    parent: Span | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Span:
    """A started span, child of ``parent`` (else of the current span); end it with
    :func:`finish`."""
    ctx = trace.set_span_in_context(parent) if parent is not None else None
    s = tracer().start_span(
        name, context=ctx, kind=kind, attributes=_attributes(operation, kb, attrs)
    )
    above = parent if parent is not None else trace.get_current_span()
    inherited = _maskers.get(above) if above.is_recording() else None
    if inherited and s.is_recording():
        _maskers[s] = inherited
    return s


def mask_content(span: Span, detector: Detector | None) -> None:
    """Record ``span``'s content and error message, and its descendants', with the personal data
    ``detector`` finds replaced by placeholders (one numbering for the whole subtree: the same
    value is the same placeholder in the question, the query and the tool call). A span already
    masked through its parent keeps that masking and adds this one."""
    if detector is None or not span.is_recording():
        return
    from hanlin.guard.masking import Masker

    _maskers[span] = (*_maskers.get(span, ()), Masker(detector))


def current_masker() -> Masker | None:
    """The first masker of the current span (see :func:`mask_content`): a gateway call below
    it that masks its own content with the same detector shares its numbering."""
    found = _maskers.get(trace.get_current_span())
    return found[0] if found else None


def _pii(span: Span, value: Any) -> Any:
    """``value`` (text, or JSON-like lists and dicts of it) with personal data masked, when
    ``span`` is marked by :func:`mask_content`; strings are masked before they are JSON-encoded
    (an escape such as ``\\n`` would glue a letter to the number)."""
    maskers = _maskers.get(span)
    if not maskers:
        return value

    def text(t: str) -> str:
        for m in maskers:
            m.reserve([t])
            t = m.mask(t)
        return t

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return text(v)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        if v is None or isinstance(v, bool | int | float):
            return v
        return text(str(v))

    return walk(value)


def finish(span: Span, error: BaseException | None = None) -> None:
    if error is not None:
        fail(span, error)
    elif span.is_recording() and _unset(span):  # (never over an error marked by fail)
        span.set_status(Status(StatusCode.OK))
    span.end()


def _unset(span: Span) -> bool:
    status = getattr(span, "status", None)  # the SDK's spans have it; the no-op one not
    return status is not None and status.status_code is StatusCode.UNSET


def fail(span: Span, error: BaseException) -> None:
    if not span.is_recording():
        return
    message = str(getattr(error, "message", None) or error) or type(error).__name__
    message = r.mask(_pii(span, message))
    span.set_status(Status(StatusCode.ERROR, message))
    span.add_event(
        "exception", {"exception.type": type(error).__name__, "exception.message": message}
    )


@contextmanager
def span(
    name: str,
    *,
    operation: str | None = None,
    kb: str | None = None,
    attrs: Mapping[str, Any] | None = None,
    parent: Span | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[Span]:
    """A span made current for the block; an exception escaping the block marks it failed."""
    s = start(name, operation=operation, kb=kb, attrs=attrs, parent=parent, kind=kind)
    token = otel_context.attach(trace.set_span_in_context(s))
    try:
        yield s
    except BaseException as exc:
        otel_context.detach(token)
        finish(s, exc)
        raise
    otel_context.detach(token)
    finish(s)


@contextmanager
def current(parent: Span | None) -> Iterator[None]:
    """Make ``parent`` current for a block that does not yield (children nest under it)."""
    if parent is None:
        yield
        return
    token = otel_context.attach(trace.set_span_in_context(parent))
    try:
        yield
    finally:
        otel_context.detach(token)


def record(span: Span, key: str, value: Any) -> None:
    """Content (messages, queries, tool arguments): secrets masked, personal data too where
    :func:`mask_content` says so; only when capturing."""
    if value is not None and span.is_recording() and capturing():
        span.set_attribute(key, r.content(_pii(span, value)))


def usage(span: Span, resp: Any, cost: Any) -> None:
    """Tokens and cost of a finished model call (a ChatResponse)."""
    if not span.is_recording():
        return
    u = resp.usage
    span.set_attribute(r.INPUT_TOKENS, int(u.prompt_tokens))
    span.set_attribute(r.OUTPUT_TOKENS, int(u.completion_tokens))
    if u.cached_tokens:
        span.set_attribute(r.CACHED_TOKENS, int(u.cached_tokens))
    if cost is not None:
        span.set_attribute(r.COST_USD, float(cost.usd))
        span.set_attribute(r.COST_CNY, float(cost.cny))
    span.set_attribute(r.FINISH_REASONS, [str(resp.finish_reason)])
    if resp.model:
        span.set_attribute(r.RESPONSE_MODEL, str(resp.model))

"""Spans of gateway calls, named and attributed by the OpenTelemetry GenAI conventions
(``chat {model}``, ``embeddings {model}``; request options, usage, cost, the deployment that
answered)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.trace import Span, SpanKind

from hanlin.tracing import records as r
from hanlin.tracing import spans


def call_span(operation: str, model: str, msgs: Sequence[Any] = (), opts: Any = None) -> Span:
    """A started CLIENT span for one gateway call to the route ``model``."""
    attrs: dict[str, Any] = {r.REQUEST_MODEL: model}
    if opts is not None:
        for name in ("temperature", "top_p", "max_tokens", "seed"):
            value = getattr(opts, name, None)
            if value is not None:
                attrs[f"gen_ai.request.{name}"] = value
    sp = spans.start(f"{operation} {model}", operation=operation, attrs=attrs, kind=SpanKind.CLIENT)
    if msgs:
        spans.record(sp, r.INPUT_MESSAGES, [{"role": m.role, "content": m.text} for m in msgs])
    return sp


def served(
    sp: Span,
    dep: Any,
    resp: Any = None,
    *,
    cached: bool = False,
    mask: Callable[[str], str] | None = None,
) -> None:
    """What answered: the deployment, its provider, usage and cost, the output message (its
    text and tool-call arguments through ``mask`` when given: personal data masked)."""
    if not sp.is_recording():
        return
    sp.set_attribute(r.PROVIDER, str(dep.endpoint.provider))
    sp.set_attribute("hanlin.deployment", dep.label)
    if cached:
        sp.set_attribute("hanlin.cache_hit", True)
    if resp is not None:
        spans.usage(sp, resp, None if cached else resp.cost)
        shown = mask or str
        out: dict[str, Any] = {"role": "assistant", "content": shown(resp.text)}
        if resp.tool_calls:
            out["tool_calls"] = [
                {"name": c.name, "arguments": shown(c.arguments)} for c in resp.tool_calls
            ]
        spans.record(sp, r.OUTPUT_MESSAGES, [out])

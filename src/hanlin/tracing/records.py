"""From an OpenTelemetry span to a stored :class:`SpanRecord`, and the masking of secrets in
everything a span records.

Attribute names follow the OpenTelemetry GenAI semantic conventions at
:data:`hanlin.tracing.base.GENAI_SEMCONV_VERSION`; what they have no name for is ``hanlin.*``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from hanlin.guard.secrets import KEY_SHAPES
from hanlin.tracing.base import SpanRecord

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TOOL_NAME = "gen_ai.tool.name"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
CACHED_TOKENS = "hanlin.usage.cached_tokens"
COST_USD = "hanlin.cost.usd"
COST_CNY = "hanlin.cost.cny"
KB = "hanlin.kb"
KEY_ID = "hanlin.api_key.id"

_known: set[str] = set()
_known_lock = threading.Lock()
MASK = "[secret]"


def register_secrets(values: Iterable[str]) -> None:
    """Configured secrets (provider API keys) that must never appear in a trace."""
    with _known_lock:
        _known.update(v for v in values if v and len(v) >= 8)


def mask(text: str) -> str:
    """``text`` with every known secret and every key-shaped token
    (:data:`hanlin.guard.secrets.KEY_SHAPES`) replaced."""
    for secret in _known:
        if secret in text:
            text = text.replace(secret, MASK)
    return KEY_SHAPES.sub(MASK, text)


def content(value: Any) -> str:
    """A message list, tool arguments or result as masked JSON text for an attribute."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return mask(text)


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def to_record(span: ReadableSpan) -> SpanRecord:
    attrs: dict[str, Any] = dict(span.attributes or {})
    ctx = span.context
    assert ctx is not None
    code = span.status.status_code
    status = "error" if code is StatusCode.ERROR else "ok" if code is StatusCode.OK else "unset"
    error = span.status.description if status == "error" else None
    for event in span.events:
        if event.name == "exception" and event.attributes:
            error = error or str(event.attributes.get("exception.message", ""))
    return SpanRecord(
        trace_id=_hex(ctx.trace_id, 32),
        span_id=_hex(ctx.span_id, 16),
        parent_id=_hex(span.parent.span_id, 16) if span.parent is not None else None,
        name=span.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or span.start_time or 0,
        status=status,  # type: ignore[arg-type]
        error=mask(error) if error else None,
        operation=_str(attrs.get(OPERATION)),
        model=_str(attrs.get(REQUEST_MODEL) or attrs.get(RESPONSE_MODEL)),  # the name called
        provider=_str(attrs.get(PROVIDER)),
        kb=_str(attrs.get(KB)),
        key_id=_str(attrs.get(KEY_ID)),
        input_tokens=int(attrs.get(INPUT_TOKENS, 0) or 0),
        output_tokens=int(attrs.get(OUTPUT_TOKENS, 0) or 0),
        cached_tokens=int(attrs.get(CACHED_TOKENS, 0) or 0),
        cost_usd=float(attrs.get(COST_USD, 0.0) or 0.0),
        cost_cny=float(attrs.get(COST_CNY, 0.0) or 0.0),
        attributes={k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()},
    )


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)

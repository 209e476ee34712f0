"""Built-in tools that need no sandbox: a safe calculator, the current time, ``http_get`` through
the SSRF guard and search / ask over a knowledge base.

Each public function here is a factory returning an :class:`AgentTool`, so options (limits, a
knowledge base's name) are fixed when the agent is assembled, not chosen by the model. The
file tools live in :mod:`hanlin.agents.tools.files`, code execution in
:mod:`hanlin.agents.tools.sandbox`.
"""

from __future__ import annotations

import ast
import json
import math
import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hanlin.access import caller as access
from hanlin.agents.tools.base import AgentTool, ToolResult, tool
from hanlin.errors import HanlinError
from hanlin.rag.base import RequestedMode

# --- calculator -------------------------------------------------------------------------------

MAX_EXPRESSION_CHARS = 1000
#: the largest integer (in bits) the calculator builds; 10_000 bits is about 3,000 digits
MAX_INT_BITS = 10_000

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "exp": math.exp,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


class CalculatorError(ValueError):
    """The expression is not allowed or cannot be computed."""


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError(f"the result is too large (over {MAX_INT_BITS} bits)")
    return value


def _power(base: Any, exponent: Any) -> Any:
    """``base ** exponent``, refused before computing when the result would be huge."""
    # float powers overflow to an OverflowError at once; only exact integers can grow unbounded
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and exponent * math.log2(abs(base)) > MAX_INT_BITS
    ):
        raise CalculatorError(f"the result is too large (over {MAX_INT_BITS} bits)")
    return base**exponent


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError(f"only numbers are allowed, not {node.value!r}")
        return _check_size(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _check_size(_power(left, right))
        return _check_size(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}; constants: {', '.join(_CONSTANTS)}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise CalculatorError(f"only these functions are allowed: {', '.join(_FUNCTIONS)}")
        if node.keywords:
            raise CalculatorError("keyword arguments are not allowed")
        args = [_evaluate(a) for a in node.args]
        return _check_size(_FUNCTIONS[node.func.id](*args))
    raise CalculatorError(f"not allowed in an expression: {type(node).__name__}")


def evaluate(expression: str) -> int | float:
    """Evaluate an arithmetic expression without ``eval``; raises :class:`CalculatorError`."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not a valid expression: {exc.msg}") from None
    try:
        value = _evaluate(tree)
    except CalculatorError:
        raise
    except (ArithmeticError, ValueError, TypeError) as exc:
        raise CalculatorError(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(value, int | float):
        raise CalculatorError(f"the result is not a number: {value!r}")
    return value


def calculator() -> AgentTool:
    """A tool that evaluates arithmetic safely (no ``eval``; bounded sizes)."""

    @tool(name="calculator", timeout=5.0)
    def calculator_(expression: str) -> ToolResult:
        """Evaluate an arithmetic expression exactly.

        Supports numbers, + - * / // % **, parentheses, sqrt, log, log10, log2, sin, cos, tan,
        exp, abs, round, min, max and the constants pi and e.

        Args:
            expression: the expression, e.g. "sqrt(2) * (3 + 4) ** 2"
        """
        try:
            value = evaluate(expression)
        except CalculatorError as exc:
            return ToolResult(f"cannot evaluate {expression!r}: {exc}", True)
        return ToolResult(repr(value), False, value)

    return calculator_


# --- current time -----------------------------------------------------------------------------


def current_time() -> AgentTool:
    """A tool that tells the current time in an IANA time zone."""

    @tool(name="current_time", timeout=5.0)
    def current_time_(timezone: str = "UTC") -> ToolResult:
        """The current date and time.

        Args:
            timezone: an IANA time zone name, e.g. "Asia/Shanghai" or "Europe/Paris"
        """
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return ToolResult(
                f"unknown time zone {timezone!r}: use an IANA name such as "
                "'UTC', 'Asia/Shanghai' or 'America/New_York'",
                True,
            )
        now = datetime.now(zone)
        data = {"timezone": timezone, "iso": now.isoformat(), "weekday": now.strftime("%A")}
        return ToolResult(json.dumps(data), False, data)

    return current_time_


# --- http_get ---------------------------------------------------------------------------------

_TEXT_TYPES = ("text/", "json", "xml", "javascript", "yaml", "csv")


def http_get(
    *,
    allow_private: bool = False,
    max_bytes: int = 2 << 20,
    timeout: float = 20.0,
    max_chars: int = 20_000,
) -> AgentTool:
    """A tool that GETs a URL through the SSRF guard (:func:`hanlin.net.ssrf.safe_fetch`).

    ``max_bytes`` caps the download, ``timeout`` the whole fetch (redirects included) and
    ``max_chars`` the text the model sees. Private, loopback and link-local addresses are
    refused unless ``allow_private``.
    """
    from hanlin.net.ssrf import safe_fetch

    @tool(name="http_get", side_effects=("network",), timeout=timeout + 5)
    def http_get_(url: str) -> ToolResult:
        """Fetch a web page or file over HTTP(S) and return its status, content type and text.

        Args:
            url: an http:// or https:// URL
        """
        try:
            fetched = safe_fetch(
                url, allow_private=allow_private, max_bytes=max_bytes, timeout=timeout
            )
        except HanlinError as exc:
            return ToolResult(f"http_get refused or failed: {exc}", True)
        ctype = fetched.content_type or ""
        data: dict[str, Any] = {
            "url": fetched.url,
            "status": fetched.status,
            "content_type": ctype or None,
        }
        if ctype and not any(t in ctype.lower() for t in _TEXT_TYPES):
            data["text"] = f"[binary content, {len(fetched.content)} bytes, not shown]"
        else:
            charset = "utf-8"
            if "charset=" in ctype:
                charset = ctype.split("charset=", 1)[1].split(";")[0].strip().strip('"')
            try:
                text = fetched.content.decode(charset, errors="replace")
            except LookupError:
                text = fetched.content.decode("utf-8", errors="replace")
            if len(text) > max_chars:
                text = (
                    text[:max_chars]
                    + f"\n[truncated: showing {max_chars} of {len(text)} characters]"
                )
            data["text"] = text
        return ToolResult(json.dumps(data, ensure_ascii=False), False, data)

    return http_get_


# --- knowledge bases --------------------------------------------------------------------------

SNIPPET_CHARS = 600


def _snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kb_search(kb_name: str, *, name: str = "kb_search", default_k: int = 5) -> AgentTool:
    """A tool that searches the knowledge base ``kb_name`` (hybrid search)."""
    from hanlin.knowledge.kb import KnowledgeBase

    @tool(name=name, timeout=60.0)
    def kb_search_(query: str, k: int = default_k) -> ToolResult:
        """Search a knowledge base and return the best matching passages with their sources.

        Args:
            query: what to look for, in natural language or keywords
            k: how many passages to return (1-20)
        """
        k = max(1, min(int(k), 20))
        with KnowledgeBase(kb_name) as kb:  # checks the caller may read it
            results = kb.search(query, k=k)
            kb.public_names().apply(results)  # no server paths in what the model sees
        hits = [
            {
                "source": r.chunk.source,
                "title": r.chunk.title,
                "page": r.chunk.page,
                "heading": " > ".join(r.chunk.heading_path) or None,
                "score": round(r.score, 4),
                "text": _snippet(r.chunk.text),
            }
            for r in results
        ]
        if not hits:
            return ToolResult(f"no results in knowledge base '{kb_name}' for {query!r}", False, [])
        return ToolResult(json.dumps(hits, ensure_ascii=False), False, hits)

    kb_search_.description += f" (knowledge base: {kb_name})"
    return kb_search_


def kb_ask(
    kb_name: str,
    *,
    name: str = "kb_ask",
    model: str | None = None,
    mode: RequestedMode = "auto",
) -> AgentTool:
    """A tool that answers a question from the knowledge base ``kb_name`` with citations."""
    from hanlin.knowledge.kb import KnowledgeBase
    from hanlin.rag.engine import ask

    @tool(name=name, timeout=300.0)
    def kb_ask_(question: str) -> ToolResult:
        """Answer a question from a knowledge base; the answer cites its sources as [n].

        Args:
            question: the question to answer
        """
        # the model named in the tool's definition is the operator's choice, not the caller's
        who = access.current()
        with (
            access.acting_as(who.granting("chat") if model else who),
            KnowledgeBase(kb_name) as kb,
        ):
            answer = ask(kb, question, model=model, mode=mode)
        data = {
            "answer": answer.text,
            "mode": answer.mode,
            "citations": [
                {
                    "n": c.n,
                    "source": c.source,
                    "title": c.title,
                    "page": c.page,
                    "snippet": _snippet(c.snippet, 300),
                }
                for c in answer.citations
            ],
        }
        return ToolResult(json.dumps(data, ensure_ascii=False), False, data)

    kb_ask_.description += f" (knowledge base: {kb_name})"
    return kb_ask_


__all__ = [
    "CalculatorError",
    "calculator",
    "current_time",
    "evaluate",
    "http_get",
    "kb_ask",
    "kb_search",
]

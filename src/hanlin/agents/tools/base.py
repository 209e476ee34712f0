"""A tool is a typed Python function: its docstring and type hints become the JSON schema the
model sees, pydantic validates the arguments the model sends, and its declared side effects decide
whether a call needs approval.

A tool never raises into the agent loop: bad arguments, exceptions and timeouts all become an
error :class:`ToolResult` that the model reads and can react to.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from hanlin.models.types import Tool

SideEffect = Literal["read_only", "writes", "network", "exec"]
#: side effects that need approval before the call runs (unless a policy says otherwise)
NEEDS_APPROVAL: frozenset[str] = frozenset({"writes", "network", "exec"})
T = TypeVar("T")


class ToolAborted(Exception):
    """A sync tool raised ``SystemExit`` (``sys.exit`` in a wrapped script) or another
    ``BaseException``: the call failed; the process and the agent go on."""


async def bounded(aw: Awaitable[T], timeout: float | None) -> T:
    """``await aw`` for at most ``timeout`` seconds, then cancel it and raise TimeoutError at once.

    Unlike :func:`asyncio.wait_for`, it does not wait for the cancelled work to finish: a tool
    that swallows ``CancelledError`` is abandoned instead of hanging the caller.
    """
    if timeout is None:
        return await aw
    task = asyncio.ensure_future(aw)
    try:
        done, _ = await asyncio.wait({task}, timeout=max(timeout, 0))
    except asyncio.CancelledError:
        task.cancel()
        task.add_done_callback(_forget)  # a gather's CancelledError is not logged as lost
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_forget)
        raise TimeoutError
    return task.result()


def _forget(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it


async def in_thread(fn: Callable[..., T], kwargs: dict[str, Any], name: str) -> T:
    """Run a sync tool in a daemon thread of its own.

    Python cannot stop a thread: a call that hangs past its timeout keeps its thread until it
    returns. A thread of its own (not the loop's default executor, a handful of workers) means
    hung calls cannot starve later tools, and the loop's shutdown and the interpreter's exit
    do not wait for them.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    def work() -> None:
        value: Any = None
        error: BaseException | None = None
        try:
            value = context.run(fn, **kwargs)
        except Exception as exc:
            error = exc
        except BaseException as exc:  # sys.exit() in a tool must not reach the event loop
            error = ToolAborted(f"the tool raised {type(exc).__name__}({exc})")
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name=f"tool:{name}", daemon=True).start()
    return await future


@dataclass(slots=True)
class ToolResult:
    """What a call returned, as text for the model; ``is_error`` marks failures it should see."""

    content: str
    is_error: bool = False
    data: Any = None


@dataclass(slots=True)
class AgentTool:
    """A callable tool with its schema and side effects. Build one with :func:`tool`."""

    name: str
    description: str
    fn: Callable[..., Any]
    args_model: type[BaseModel]
    side_effects: frozenset[str] = frozenset({"read_only"})
    timeout: float | None = 30.0
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_approval(self) -> bool:
        return bool(self.side_effects & NEEDS_APPROVAL)

    def spec(self) -> Tool:
        """The definition the model sees."""
        return Tool(name=self.name, description=self.description, parameters=self.parameters)

    def validate(self, arguments: dict[str, Any] | str) -> BaseModel:
        """Parsed, validated arguments (raises ValueError / ValidationError with the reason)."""
        if isinstance(arguments, str):
            arguments = json.loads(arguments) if arguments.strip() else {}
        if not isinstance(arguments, dict):
            raise ValueError("arguments must be a JSON object")
        return self.args_model.model_validate(arguments)

    async def run(self, arguments: dict[str, Any] | str) -> ToolResult:
        """Validate and call; every failure becomes an error result, never an exception."""
        try:
            args = self.validate(arguments)
        except (ValueError, ValidationError) as exc:
            return ToolResult(f"invalid arguments for {self.name}: {_reason(exc)}", True)
        kwargs = {k: getattr(args, k) for k in self.args_model.model_fields}
        try:
            if inspect.iscoroutinefunction(self.fn):
                call: Awaitable[Any] = self.fn(**kwargs)
            else:
                call = in_thread(self.fn, kwargs, self.name)
            value = await bounded(call, self.timeout or None)
        except TimeoutError:
            return ToolResult(f"{self.name} timed out after {self.timeout:g} s", True)
        except Exception as exc:
            return ToolResult(f"{self.name} failed: {type(exc).__name__}: {exc}", True)
        if isinstance(value, ToolResult):
            return value
        text = (
            value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        )
        return ToolResult(text, False, value)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)


def _describe(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The summary and per-parameter descriptions from a Google- or reST-style docstring."""
    doc = inspect.getdoc(fn) or ""
    summary: list[str] = []
    params: dict[str, str] = {}
    section = "summary"
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.lower() in ("args:", "arguments:", "parameters:"):
            section = "args"
            continue
        if stripped.lower() in ("returns:", "raises:", "example:", "examples:"):
            section = "other"
            continue
        if section == "summary":
            summary.append(stripped)
        elif section == "args" and ":" in stripped:
            name, _, text = stripped.partition(":")
            params[name.split("(")[0].strip()] = text.strip()
        elif stripped.startswith(":param ") and ":" in stripped[7:]:
            name, _, text = stripped[7:].partition(":")
            params[name.strip()] = text.strip()
    return " ".join(s for s in summary if s).strip(), params


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    side_effects: tuple[SideEffect, ...] = ("read_only",),
    timeout: float | None = 30.0,
) -> Any:
    """Turn a typed function into an :class:`AgentTool` (use as ``@tool`` or ``@tool(...)``)."""

    def build(f: Callable[..., Any]) -> AgentTool:
        hints = get_type_hints(f, include_extras=True)  # keeps Annotated[int, Field(ge=1)]
        summary, docs = _describe(f)
        fields: dict[str, Any] = {}
        for pname, param in inspect.signature(f).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = hints.get(pname, Any)
            default = ... if param.default is param.empty else param.default
            # no description=None: it would erase one given in the annotation's Field
            info = Field(default, description=docs[pname]) if pname in docs else Field(default)
            fields[pname] = (annotation, info)
        model = create_model(f"{f.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
        return AgentTool(
            name=name or f.__name__,
            description=summary,
            fn=f,
            args_model=model,
            side_effects=frozenset(side_effects),
            timeout=timeout,
            parameters=_tidy(model.model_json_schema()),
        )

    return build(fn) if fn is not None else build


#: the keywords of a JSON schema whose values are schemas (``properties``: a map of them)
_SUBSCHEMAS = ("items", "prefixItems", "anyOf", "allOf", "oneOf", "not", "additionalProperties")


def _tidy(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as models and MCP clients read it best: nested models (``list[Upload]``)
    inlined instead of ``$ref``s, which some providers reject, and pydantic's titles left out.
    A recursive model keeps its ``$defs``."""
    defs: dict[str, Any] = schema.pop("$defs", {})
    recursive = False

    def walk(node: Any, inside: tuple[str, ...]) -> Any:
        nonlocal recursive
        if isinstance(node, list):
            return [walk(n, inside) for n in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in inside or name not in defs:
                recursive = True
                return node
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return walk(defs[name] | rest, (*inside, name))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {p: walk(sub, inside) for p, sub in value.items()}
            else:
                out[key] = walk(value, inside) if key in _SUBSCHEMAS else value
        return out

    tidy: dict[str, Any] = walk(schema, ())
    if recursive:
        tidy["$defs"] = defs
    return tidy

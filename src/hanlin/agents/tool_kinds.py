"""Checking agent definitions: the tools a definition can name (each with its options model
and builder), MCP server entries, and readable error messages.

A registry (name → :class:`ToolKind`), so a new built-in tool is one entry here, and a
definition's options are checked against the tool's own model (``extra="forbid"``) when the
definition is loaded — not when the model first calls the tool.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hanlin.agents.tools.base import AgentTool
from hanlin.config import Settings
from hanlin.errors import ConfigError, did_you_mean
from hanlin.registry import Registry

if TYPE_CHECKING:
    from hanlin.agents.memory import LongTermMemory

_FORBID = ConfigDict(extra="forbid")


class AgentSpecError(ConfigError):
    """An agent definition is invalid, or cannot be built (a missing tool module, MCP)."""


class ToolSpec(BaseModel):
    """A tool in a definition: its registry name and validated options."""

    model_config = _FORBID

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    def to_data(self) -> str | dict[str, Any]:
        """The YAML form: the bare name, or ``{name, **options}``."""
        return {"name": self.name, **self.options} if self.options else self.name


@dataclass(slots=True)
class BuildContext:
    """What building tools needs beyond their options."""

    agent: str
    settings: Settings
    workspace: str | None
    long_term: LongTermMemory | None


class NoOptions(BaseModel):
    model_config = _FORBID


class HttpGetOptions(BaseModel):
    model_config = _FORBID

    allow_private: bool = False
    max_bytes: int = Field(default=2 << 20, ge=1)
    timeout: float = Field(default=20.0, gt=0)
    max_chars: int = Field(default=20_000, ge=100)


class KbSearchOptions(BaseModel):
    model_config = _FORBID

    kb: str
    k: int = Field(default=5, ge=1, le=20)
    tool_name: str = Field(default="kb_search", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")


class KbAskOptions(BaseModel):
    model_config = _FORBID

    kb: str
    model: str | None = None
    mode: Literal["auto", "generative", "extractive"] = "auto"
    tool_name: str = Field(default="kb_ask", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")


class FileOptions(BaseModel):
    model_config = _FORBID

    #: the folder the tools are confined to (default: the agent's ``workspace``, else
    #: ``HANLIN_HOME/workspaces/<agent>``); relative paths are relative to the current directory
    workspace: str | None = None
    max_bytes: int = Field(default=1 << 20, ge=1)


class PythonOptions(BaseModel):
    """The sandbox limits of :class:`hanlin.agents.tools.sandbox.SandboxLimits`."""

    model_config = _FORBID

    wall_seconds: float = Field(default=10.0, gt=0, le=600)
    cpu_seconds: int = Field(default=10, ge=1, le=600)
    memory_mb: int = Field(default=512, ge=32)
    file_mb: int = Field(default=16, ge=1)
    max_processes: int = Field(default=0, ge=0)
    max_output_chars: int = Field(default=10_000, ge=100)
    #: ``auto``: bubblewrap, else unshare namespaces, else only the audit hook (see
    #: :mod:`hanlin.agents.tools.sandbox`); naming one makes its absence an error
    isolation: Literal["auto", "bwrap", "unshare", "hook"] = "auto"


class WebSearchToolOptions(BaseModel):
    """``provider``, ``fetch``, ``tool_name``; other keys are ``WebSearchOptions`` fields."""

    model_config = ConfigDict(extra="allow")

    provider: str | None = None
    fetch: bool = False
    tool_name: str = Field(default="web_search", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")


Builder = Callable[[BaseModel, str, BuildContext], list[AgentTool]]


@dataclass(frozen=True, slots=True)
class ToolKind:
    options: type[BaseModel]
    builder: Builder
    summary: str

    def build(self, spec: ToolSpec, ctx: BuildContext) -> list[AgentTool]:
        return self.builder(self.options.model_validate(spec.options), spec.name, ctx)


def _error(message: str, hint: str) -> AgentSpecError:
    return AgentSpecError(message, hint=hint)


def _calculator(o: BaseModel, name: str, ctx: BuildContext) -> list[AgentTool]:
    from hanlin.agents.tools import calculator

    return [calculator()]


def _current_time(o: BaseModel, name: str, ctx: BuildContext) -> list[AgentTool]:
    from hanlin.agents.tools import current_time

    return [current_time()]


def _http_get(o: BaseModel, name: str, ctx: BuildContext) -> list[AgentTool]:
    from hanlin.agents.tools import http_get

    assert isinstance(o, HttpGetOptions)
    return [http_get(**o.model_dump())]


def _check_kb(kb: str, ctx: BuildContext) -> None:
    from hanlin.knowledge.kb import KnowledgeBase

    if kb not in KnowledgeBase.names(ctx.settings):
        raise _error(
            f"agent '{ctx.agent}' searches knowledge base '{kb}', which does not exist",
            hint=f"create it with `hanlin kb create {kb}` and add documents, or fix `kb:`",
        )


def _kb_search(o: BaseModel, name: str, ctx: BuildContext) -> list[AgentTool]:
    from hanlin.agents.tools import kb_search

    assert isinstance(o, KbSearchOptions)
    _check_kb(o.kb, ctx)
    return [kb_search(o.kb, name=o.tool_name, default_k=o.k)]


def _kb_ask(o: BaseModel, name: str, ctx: BuildContext) -> list[AgentTool]:
    from hanlin.agents.tools import kb_ask

    assert isinstance(o, KbAskOptions)
    _check_kb(o.kb, ctx)
    return [kb_ask(o.kb, name=o.tool_name, model=o.model, mode=o.mode)]


def _files(o: BaseModel, name: str, ctx: BuildContext) -> list[AgentTool]:
    from hanlin.agents.tools import workspace_tools

    assert isinstance(o, FileOptions)
    folder = o.workspace or ctx.workspace
    root = Path(folder).expanduser() if folder else ctx.settings.home / "workspaces" / ctx.agent
    tools = workspace_tools(root, max_bytes=o.max_bytes)
    return tools if name == "files" else [t for t in tools if t.name == name]


def _python(o: BaseModel, name: str, ctx: BuildContext) -> list[AgentTool]:
    from hanlin.agents.tools import SandboxLimits, python_exec

    return [python_exec(SandboxLimits(**o.model_dump()))]


def _web_search(o: BaseModel, name: str, ctx: BuildContext) -> list[AgentTool]:
    assert isinstance(o, WebSearchToolOptions)
    try:
        from hanlin.agents.tools.websearch import WebSearchOptions, web_search
    except ImportError as exc:
        raise _error(
            f"agent '{ctx.agent}' uses web_search, which is not available in this "
            f"installation ({exc})",
            hint="update Hanlin to a version with hanlin.agents.tools.websearch, or remove "
            "web_search from the agent's tools",
        ) from None
    try:
        options = WebSearchOptions.model_validate(o.model_extra or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _error(
            f"agent '{ctx.agent}': web_search option {'.'.join(map(str, first['loc']))}: "
            f"{first['msg']}",
            hint=f"web_search options: provider, fetch, tool_name, "
            f"{', '.join(WebSearchOptions.model_fields)}",
        ) from None
    return [web_search(provider=o.provider, options=options, fetch=o.fetch, name=o.tool_name)]


def _memory(o: BaseModel, name: str, ctx: BuildContext) -> list[AgentTool]:
    if ctx.long_term is None:  # open_agent always makes one when these tools are named
        raise _error(f"{name} needs long-term memory", hint="build the agent with open_agent")
    return [t for t in ctx.long_term.tools() if t.name == name]


_FILES_SUMMARY = "confined to the workspace folder (options: workspace, max_bytes)"
#: tool kinds by name; a package adds one through the ``hanlin.agent_tools`` entry-point group
TOOLS: Registry[ToolKind] = Registry("agent tool", "hanlin.agent_tools")
for _name, _kind in {
    "calculator": ToolKind(NoOptions, _calculator, "safe arithmetic"),
    "current_time": ToolKind(NoOptions, _current_time, "the date and time in a time zone"),
    "http_get": ToolKind(HttpGetOptions, _http_get, "fetch a URL through the SSRF guard"),
    "kb_search": ToolKind(KbSearchOptions, _kb_search, "search a knowledge base (option kb)"),
    "kb_ask": ToolKind(KbAskOptions, _kb_ask, "answer from a knowledge base (option kb)"),
    "read_file": ToolKind(FileOptions, _files, "read a file " + _FILES_SUMMARY),
    "write_file": ToolKind(FileOptions, _files, "write a file " + _FILES_SUMMARY),
    "list_dir": ToolKind(FileOptions, _files, "list a folder " + _FILES_SUMMARY),
    "files": ToolKind(FileOptions, _files, "read_file + write_file + list_dir"),
    "python": ToolKind(PythonOptions, _python, "run Python in the sandbox (limits as options)"),
    "web_search": ToolKind(WebSearchToolOptions, _web_search, "search the web (option provider)"),
    "remember": ToolKind(NoOptions, _memory, "save a fact to the user's long-term memory"),
    "recall": ToolKind(NoOptions, _memory, "search the user's long-term memory"),
}.items():
    TOOLS.register(_name, _kind)


def check_tool(value: Any, index: int) -> ToolSpec:
    """A :class:`ToolSpec` from a definition entry (``name``, ``{name, **options}`` or
    ``{name: {options}}``); raises ValueError saying what is wrong and what is allowed."""
    where = f"tools[{index}]"
    if isinstance(value, ToolSpec):
        value = {"name": value.name, **value.options}
    if isinstance(value, str):
        name, options = value, {}
    elif isinstance(value, dict) and "name" in value:
        name, options = value["name"], {k: v for k, v in value.items() if k != "name"}
    elif isinstance(value, dict) and len(value) == 1:
        name, options = next(iter(value.items()))
        options = options or {}
    else:
        raise ValueError(
            f"{where} must be a tool name or a mapping with `name` and options, not {value!r}"
        )
    if not isinstance(name, str) or name not in TOOLS:
        near = did_you_mean(str(name), TOOLS)
        hint = f" ({near.strip()})" if near else ""
        raise ValueError(
            f"unknown tool {name!r} in {where}{hint}; available tools: {', '.join(TOOLS)} "
            "(MCP servers' tools come from mcp_servers)"
        )
    if not isinstance(options, dict):
        raise ValueError(f"{where} ({name}): options must be a mapping, not {options!r}")
    model = TOOLS[name].options
    try:
        model.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        valid = ", ".join(model.model_fields) or "none"
        if first["type"] == "extra_forbidden":
            close = did_you_mean(key, model.model_fields).strip()
            hint = f" ({close})" if close else ""
            raise ValueError(
                f"unknown option '{key}' for tool {name} in {where}{hint}; its options: {valid}"
            ) from None
        raise ValueError(
            f"tool {name} in {where}: option {key}: {first['msg']}; its options: {valid}"
        ) from None
    if name == "web_search":
        _check_web_search(options, where)
    return ToolSpec(name=name, options=options)


def _check_web_search(options: dict[str, Any], where: str) -> None:
    """web_search's search options, checked now when its module is here (else at build)."""
    try:
        from hanlin.agents.tools.websearch import WebSearchOptions
    except ImportError:
        return
    extra = {k: v for k, v in options.items() if k not in WebSearchToolOptions.model_fields}
    try:
        WebSearchOptions.model_validate(extra)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        valid = ", ".join([*WebSearchToolOptions.model_fields, *WebSearchOptions.model_fields])
        what = "unknown option" if first["type"] == "extra_forbidden" else f"{first['msg']}:"
        raise ValueError(
            f"tool web_search in {where}: {what} '{key}'; its options: {valid}"
        ) from None


# --- MCP entries and error messages -----------------------------------------------------------


def check_mcp_entry(name: str, entry: dict[str, Any]) -> None:
    try:
        from hanlin.agents.mcp.config import McpServerConfig
    except ImportError:  # no MCP client here: check the shape; building will say what is missing
        if bool(entry.get("command")) == bool(entry.get("url")):
            raise ValueError(f"MCP server {name}: give either `command` or `url`") from None
        return
    try:
        McpServerConfig.model_validate(entry)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        valid = ", ".join(McpServerConfig.model_fields)
        raise ValueError(
            f"MCP server {name}: {where + ': ' if where else ''}{_msg(first['msg'])} "
            f"(keys: {valid})"
        ) from None


def _msg(text: str) -> str:
    return text.removeprefix("Value error, ")


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model that the path ``loc`` (from ``root``) points into."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _inner_model(field.annotation)
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, dict, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def spec_error(exc: ValidationError, source: str, root: type[BaseModel]) -> AgentSpecError:
    """A readable error from a validation failure: where, what, and the valid keys."""
    lines = []
    for err in exc.errors()[:5]:
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "the definition"
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            parent = _model_at(root, loc[:-1])
            valid = list(parent.model_fields) if parent else []
            near = difflib.get_close_matches(key, valid, n=1)
            place = ".".join(str(p) for p in loc[:-1]) or "the agent definition"
            line = f"unknown key '{key}' in {place}"
            line += f" (did you mean '{near[0]}'?)" if near else ""
            line += f"; valid keys: {', '.join(valid)}" if valid else ""
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
            line = f"{where}: {_msg(err['msg'])}{shown}"
        lines.append(line)
    more = len(exc.errors()) - len(lines)
    if more > 0:
        lines.append(f"… and {more} more")
    return AgentSpecError(
        f"invalid agent definition{' ' + source if source else ''}: " + "; ".join(lines),
        hint="fix the definition; see examples/agents/ and docs/agents.md for the keys",
    )


__all__ = [
    "TOOLS",
    "AgentSpecError",
    "BuildContext",
    "ToolKind",
    "ToolSpec",
    "check_mcp_entry",
    "check_tool",
    "spec_error",
]

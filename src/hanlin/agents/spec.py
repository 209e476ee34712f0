"""Agents defined in YAML or Python: :class:`AgentSpec` says which model, prompt, tools, MCP
servers, limits, approvals, mode and memory an agent has; :func:`open_agent` builds it.

The CLI (``hanlin agent run/chat``), the server routes and ``model: "agent:<name>"`` all go
through these functions::

    spec = load_agent_spec("researcher")          # a path, a name in HANLIN_HOME/agents, or
                                                  # the built-in "assistant"
    async with open_agent(spec, gateway, user="alice") as agent:
        result = await agent.arun("…")            # Agent or PlannerAgent

A definition is checked when loaded: an unknown key, an unknown tool or a bad limit is an
:class:`AgentSpecError` naming the place and the valid choices.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hanlin.agents.events import AgentEvent, AgentResult, MemoryEvent, NoticeEvent
from hanlin.agents.loop import Agent, AgentLimits, AnswerFrom, ApprovalPolicy, ApproveCallback
from hanlin.agents.memory import ConversationMemory, LongTermMemory
from hanlin.agents.planner import PlannerAgent
from hanlin.agents.prompts import read_agent_prompts, summarize_prompt
from hanlin.agents.tool_kinds import (
    TOOLS,
    AgentSpecError,
    BuildContext,
    ToolSpec,
    check_mcp_entry,
    check_tool,
    spec_error,
)
from hanlin.config import Settings, load_settings
from hanlin.errors import ConfigError, NotFoundError
from hanlin.models.base_models import base_model_notice
from hanlin.models.errors import MissingKeyError
from hanlin.models.gateway import Gateway, MessagesLike
from hanlin.models.keys import resolve_key
from hanlin.models.types import Message
from hanlin.prompts.base import LABEL_RE, NAME_RE

if TYPE_CHECKING:
    from hanlin.models.embeddings.base import EmbeddingModel

_FORBID = ConfigDict(extra="forbid")


class LimitsSpec(BaseModel):
    """When a run stops (over the whole run, planning included)."""

    model_config = _FORBID

    max_steps: int | None = Field(default=None, ge=1, le=1000)
    max_seconds: float | None = Field(default=None, gt=0, le=86400)
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    tool_timeout: float | None = Field(default=None, gt=0)

    def build(self, mode: str) -> AgentLimits:
        """Unset fields take the mode's default (tools: 8 steps / 120 s; planner: 30 / 600 s)."""
        steps, seconds = (30, 600.0) if mode == "planner" else (8, 120.0)
        return AgentLimits(
            max_steps=self.max_steps or steps,
            max_seconds=self.max_seconds or seconds,
            max_tokens=self.max_tokens,
            max_cost_usd=self.max_cost_usd,
            tool_timeout=self.tool_timeout,
        )


class ApprovalSpec(BaseModel):
    """Tools that run without asking (``auto_approve``) or always ask (``always_ask``)."""

    model_config = _FORBID

    auto_approve: list[str] = Field(default_factory=list)
    always_ask: list[str] = Field(default_factory=list)


class PlannerSpec(BaseModel):
    """Planner mode settings (see :class:`hanlin.agents.planner.PlannerAgent`)."""

    model_config = _FORBID

    max_subtasks: int = Field(default=6, ge=1, le=20)
    max_replans: int = Field(default=2, ge=0, le=10)
    max_plan_repairs: int = Field(default=2, ge=0, le=5)
    subtask_max_steps: int = Field(default=6, ge=1, le=100)


class ConversationSpec(BaseModel):
    """Conversation memory for chats: summarize older turns past ``max_tokens``."""

    model_config = _FORBID

    max_tokens: int = Field(default=4000, ge=200)
    keep_recent: int = Field(default=4, ge=1, le=100)
    summary_tokens: int = Field(default=400, ge=50)


class LongTermSpec(BaseModel):
    """Long-term memory in the knowledge base ``memory-<user>``."""

    model_config = _FORBID

    #: give the agent the ``remember`` / ``recall`` tools (also on when they are in ``tools``)
    enabled: bool = False
    #: facts recalled into the first turn as a system note (0: none)
    recall_k: int = Field(default=3, ge=0, le=20)


class MemorySpec(BaseModel):
    model_config = _FORBID

    conversation: ConversationSpec | None = Field(default_factory=ConversationSpec)
    long_term: LongTermSpec = Field(default_factory=LongTermSpec)


class AgentSpec(BaseModel):
    """One agent: YAML keys and Python keyword arguments are the same.

    ``tools`` entries are a name (``calculator``) or a mapping with ``name`` and the tool's
    options (``{name: kb_search, kb: docs}``); ``mcp_servers`` maps a server name to
    ``{command, args, env}`` or ``{url, headers}``, or lists names configured under
    ``[mcpServers]`` in ``hanlin.toml``.

    ``first_tool_choice`` (``required`` or a tool name) makes the first model step call a tool,
    and ``answer_from: tool`` makes that call's result the answer: together they let a base
    model, which cannot choose tools or write an answer, run an agent (it only fills in the
    arguments). Both are for ``mode: tools``.

    ``prompt`` names a prompt of the registry as the system prompt (read at ``prompt_label``,
    else ``prompts.label``, when the agent is opened: see :mod:`hanlin.agents.prompts`);
    ``system`` is the text itself, or — with ``prompt`` — the fallback when the registry
    cannot be read.
    """

    model_config = _FORBID

    name: str = Field(pattern=r"^[\w][\w.\-]{0,63}$")
    description: str = ""
    model: str | None = None
    system: str | None = None
    mode: Literal["tools", "planner"] = "tools"
    tools: list[ToolSpec] = Field(default_factory=list)
    mcp_servers: dict[str, dict[str, Any] | str] = Field(default_factory=dict)
    workspace: str | None = None
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    approval: ApprovalSpec = Field(default_factory=ApprovalSpec)
    planner: PlannerSpec = Field(default_factory=PlannerSpec)
    memory: MemorySpec = Field(default_factory=MemorySpec)
    first_tool_choice: str | None = Field(default=None, min_length=1)
    answer_from: AnswerFrom = "model"
    prompt: str | None = Field(default=None, pattern=NAME_RE.pattern)
    prompt_label: str | None = Field(default=None, pattern=LABEL_RE.pattern)

    @field_validator("tools", mode="before")
    @classmethod
    def _tool_entries(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [check_tool(v, i) for i, v in enumerate(value)]

    @field_validator("mcp_servers", mode="before")
    @classmethod
    def _mcp_entries(cls, value: Any) -> Any:
        if isinstance(value, list):  # [name, …]: servers from hanlin.toml
            value = {str(v): str(v) for v in value}
        if isinstance(value, dict):
            for name, entry in value.items():
                if isinstance(entry, dict):
                    check_mcp_entry(str(name), entry)
        return value

    @model_validator(mode="after")
    def _forced_calls_need_tools_mode(self) -> AgentSpec:
        if self.mode == "planner" and (self.first_tool_choice or self.answer_from != "model"):
            raise ValueError("first_tool_choice and answer_from apply to mode: tools, not planner")
        return self

    @property
    def forces_tools(self) -> bool:
        """Whether the model only fills in arguments: a forced first call whose result is the
        answer (what a base model can do)."""
        return self.answer_from == "tool" and self.first_tool_choice not in (None, "auto", "none")

    @property
    def uses_long_term(self) -> bool:
        names = {t.name for t in self.tools}
        return self.memory.long_term.enabled or bool(names & {"remember", "recall"})

    def conversation_memory(self, gateway: Gateway) -> ConversationMemory | None:
        """A fresh :class:`ConversationMemory` per the ``memory.conversation`` settings, its
        summary request read from the registry (blocking)."""
        c = self.memory.conversation
        if c is None:
            return None
        return ConversationMemory(
            gateway,
            self.model,
            max_tokens=c.max_tokens,
            keep_recent=c.keep_recent,
            summary_tokens=c.summary_tokens,
            summarize_prompt=summarize_prompt(gateway.settings, self.prompt_label),
        )

    @classmethod
    def from_yaml(
        cls, text: str, source: str = "<yaml>", default_name: str | None = None
    ) -> AgentSpec:
        """Parse and validate a YAML definition; errors name ``source``."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AgentSpecError(
                f"{source} is not valid YAML: {exc}", hint="fix the YAML syntax at that line"
            ) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise AgentSpecError(
                f"{source}: an agent definition is a mapping of keys, not {type(data).__name__}",
                hint="start with `name: my-agent`; see examples/agents/",
            )
        if default_name and "name" not in data:
            data["name"] = default_name
        return cls.validated(data, source)

    @classmethod
    def validated(cls, data: dict[str, Any], source: str = "") -> AgentSpec:
        """Validate a mapping; a :class:`ValidationError` becomes an :class:`AgentSpecError`."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise spec_error(exc, source, cls) from None

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_defaults=True)
        data["tools"] = [t.to_data() for t in self.tools]
        if not data["tools"]:
            del data["tools"]
        text: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        return text


# --- finding definitions ----------------------------------------------------------------------

BUILTIN: dict[str, dict[str, Any]] = {
    "assistant": {
        "name": "assistant",
        "description": "A general assistant with a calculator, the time, web pages, files in "
        "its workspace, Python, and long-term memory",
        # the text is the registry's agent.assistant (bundled: prompts/builtin/agent.assistant.txt)
        "prompt": "agent.assistant",
        "tools": [
            "calculator",
            "current_time",
            "http_get",
            "files",
            "python",
            "remember",
            "recall",
        ],
    }
}


@dataclass(slots=True)
class AgentSpecInfo:
    """An agent definition found by :func:`list_agent_specs`: what ``agent ls`` shows.

    ``tools`` are the tool names (MCP servers as ``mcp:<name>``); ``path`` is None for a
    built-in; ``error`` holds why the file does not load (the other fields are then empty).
    """

    name: str
    description: str = ""
    mode: str = "tools"
    model: str | None = None
    tools: list[str] = field(default_factory=list)
    path: Path | None = None
    error: str | None = None

    @classmethod
    def of(cls, spec: AgentSpec, path: Path | None) -> AgentSpecInfo:
        tools = [t.name for t in spec.tools] + [f"mcp:{n}" for n in spec.mcp_servers]
        return cls(spec.name, spec.description, spec.mode, spec.model, tools, path)


def agents_dir(settings: Settings | None = None) -> Path:
    """Where named definitions live: ``HANLIN_HOME/agents``."""
    return (settings or load_settings()).home / "agents"


def load_agent_spec(ref: str | Path, settings: Settings | None = None) -> AgentSpec:
    """A definition from a YAML path, a name in ``HANLIN_HOME/agents/<name>.yaml``, or a
    built-in (``assistant``). Raises :class:`NotFoundError` or :class:`AgentSpecError`."""
    text = str(ref)
    looks_like_path = isinstance(ref, Path) or text.endswith((".yaml", ".yml")) or os.sep in text
    if looks_like_path:
        path = Path(text).expanduser()
        if not path.is_file():
            raise NotFoundError(
                f"no agent definition file {text}", hint="check the path, or give an agent name"
            )
        return AgentSpec.from_yaml(path.read_text(encoding="utf-8"), str(path), path.stem)
    folder = agents_dir(settings)
    for suffix in (".yaml", ".yml"):
        path = folder / f"{text}{suffix}"
        if path.is_file():
            return AgentSpec.from_yaml(path.read_text(encoding="utf-8"), str(path), path.stem)
    if text in BUILTIN:
        return AgentSpec.validated(dict(BUILTIN[text]), f"built-in '{text}'")
    known = sorted({i.name for i in list_agent_specs(settings)})
    raise NotFoundError(
        f"no agent named '{text}'",
        hint=f"known agents: {', '.join(known)}; or put {text}.yaml in {folder}",
    )


def list_agent_specs(settings: Settings | None = None) -> list[AgentSpecInfo]:
    """Built-in and user definitions (a user file overrides a built-in of the same name);
    a file that does not load is listed with its error, not skipped silently."""
    found = {n: AgentSpecInfo.of(AgentSpec.validated(d), None) for n, d in BUILTIN.items()}
    folder = agents_dir(settings)
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
    for path in files:
        try:
            spec = AgentSpec.from_yaml(path.read_text(encoding="utf-8"), str(path), path.stem)
            found[spec.name] = AgentSpecInfo.of(spec, path)
        except (ConfigError, OSError, UnicodeDecodeError) as exc:
            found[path.stem] = AgentSpecInfo(path.stem, path=path, error=str(exc))
    return sorted(found.values(), key=lambda i: i.name)


# --- building ---------------------------------------------------------------------------------


async def _recall(
    agent: Agent | PlannerAgent, task: MessagesLike
) -> tuple[list[Message], MemoryEvent | None]:
    """The opening messages with the relevant long-term facts put in (searched in a worker
    thread: the first search loads the embedding model)."""
    long_term: LongTermMemory = getattr(agent, "long_term")  # noqa: B009
    messages = agent.messages_for(task)
    note = await asyncio.to_thread(long_term.inject, messages, getattr(agent, "recall_k", 3))
    return messages, None if note is None else MemoryEvent("recalled", note.text)


class _MemoryAgent(Agent):
    """An :class:`Agent` whose first turn gets the user's relevant long-term facts, announced
    by a :class:`MemoryEvent` before its other events."""

    long_term: LongTermMemory
    recall_k: int = 3

    async def astream(self, task_or_messages: MessagesLike) -> AsyncIterator[AgentEvent]:
        notice, self.notice = self.notice, None  # first: recalling may load a model
        if notice is not None:
            yield notice
        messages, event = await _recall(self, task_or_messages)
        if event is not None:
            yield event
        async for e in super().astream(messages):
            yield e

    async def arun(self, task_or_messages: MessagesLike) -> AgentResult:
        messages, event = await _recall(self, task_or_messages)
        result = await super().arun(messages)
        if event is not None:
            result.events.insert(0, event)
        return result


class _MemoryPlannerAgent(PlannerAgent):
    long_term: LongTermMemory
    recall_k: int = 3

    async def astream(self, task_or_messages: MessagesLike) -> AsyncIterator[AgentEvent]:
        notice, self.notice = self.notice, None  # first: recalling may load a model
        if notice is not None:
            yield notice
        messages, event = await _recall(self, task_or_messages)
        if event is not None:
            yield event
        async for e in super().astream(messages):
            yield e

    async def arun(self, task_or_messages: MessagesLike) -> AgentResult:
        messages, event = await _recall(self, task_or_messages)
        result = await super().arun(messages)
        if event is not None:
            result.events.insert(0, event)
        return result


async def _mcp_tools(spec: AgentSpec, settings: Settings, stack: AsyncExitStack) -> list[Any]:
    names = ", ".join(spec.mcp_servers)
    try:
        from hanlin.agents.mcp import McpToolset, configured_servers
    except ImportError as exc:
        raise AgentSpecError(
            f"agent '{spec.name}' uses MCP servers ({names}), but the MCP client is not "
            f"available in this installation ({exc})",
            hint="pip install 'hanlin[mcp]' (the `mcp` package), or remove mcp_servers",
        ) from None
    configs: dict[str, Any] = {}
    configured: dict[str, Any] | None = None
    for name, entry in spec.mcp_servers.items():
        if isinstance(entry, dict):
            configs[name] = entry
            continue
        if configured is None:
            configured = dict(configured_servers(settings))
        if entry not in configured:
            raise AgentSpecError(
                f"agent '{spec.name}' names MCP server '{entry}', which is not in the "
                "[mcpServers] of hanlin.toml",
                hint=f"configured: {', '.join(configured) or 'none'}; or give "
                f"{{command, args}} / {{url}} for it in the agent definition",
            )
        configs[name] = configured[entry]
    toolset = await stack.enter_async_context(McpToolset(configs, strict=True))
    return list(toolset.tools)


@asynccontextmanager
async def open_agent(
    spec: AgentSpec | str | Path,
    gateway: Gateway,
    *,
    approval_callback: ApproveCallback | None = None,
    user: str | None = None,
    session: str | None = None,
    embedders: Callable[[str], EmbeddingModel] | None = None,
) -> AsyncIterator[Agent | PlannerAgent]:
    """Build the agent a spec describes: an :class:`Agent` (mode ``tools``) or a
    :class:`PlannerAgent` (mode ``planner``), with MCP servers connected until exit.

    ``approval_callback`` decides calls with side effects (none: they are denied unless in
    ``approval.auto_approve``); ``user`` / ``session`` scope long-term memory (default user
    ``local``); ``embedders`` shares loaded embedding models (a server passes its own; by
    default long-term memory loads the model on first use). Raises :class:`AgentSpecError`
    when a tool or MCP server cannot be set up.
    """
    if not isinstance(spec, AgentSpec):
        spec = load_agent_spec(spec, gateway.settings)
    settings = gateway.settings
    _check_model(spec, gateway)  # before anything is created: workspaces, memory, MCP servers
    long_term = (
        LongTermMemory(user or "local", session, settings=settings, embedders=embedders)
        if spec.uses_long_term
        else None
    )
    prompts = await asyncio.to_thread(
        read_agent_prompts,
        spec.name,
        settings,
        prompt=spec.prompt,
        system=spec.system,
        label=spec.prompt_label,
        planner=spec.mode == "planner",
    )
    ctx = BuildContext(spec.name, settings, spec.workspace, long_term)
    tools = []
    for entry in spec.tools:
        tools += TOOLS[entry.name].build(entry, ctx)
    if long_term is not None and not {"remember", "recall"} & {t.name for t in spec.tools}:
        tools += long_term.tools()
    async with AsyncExitStack() as stack:
        if spec.mcp_servers:
            tools += await _mcp_tools(spec, settings, stack)
        names = [t.name for t in tools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise AgentSpecError(
                f"agent '{spec.name}' has two tools named {', '.join(dupes)}",
                hint="give one of them another name with the tool option `tool_name`",
            )
        choice = spec.first_tool_choice
        if choice not in (None, "auto", "none", "required") and choice not in names:
            raise AgentSpecError(
                f"agent '{spec.name}': first_tool_choice '{choice}' is not one of its tools",
                hint=f"use auto, none, required or a tool name: {', '.join(sorted(names))}",
            )
        auto = set(spec.approval.auto_approve)
        if long_term is not None and "remember" not in spec.approval.always_ask:
            auto.add("remember")  # saving to the user's own memory is not worth a prompt
        approval = ApprovalPolicy(approval_callback, auto, set(spec.approval.always_ask))
        limits = spec.limits.build(spec.mode)
        agent: Agent | PlannerAgent
        recall = long_term is not None and spec.memory.long_term.recall_k > 0
        if spec.mode == "planner":
            p = spec.planner
            cls_p = _MemoryPlannerAgent if recall else PlannerAgent
            agent = cls_p(
                gateway,
                spec.model,
                tools,
                system=prompts.system,
                limits=limits,
                approval=approval,
                prompts=prompts.planner,
                max_subtasks=p.max_subtasks,
                max_replans=p.max_replans,
                max_plan_repairs=p.max_plan_repairs,
                subtask_max_steps=p.subtask_max_steps,
            )
        else:
            cls_a = _MemoryAgent if recall else Agent
            agent = cls_a(
                gateway,
                spec.model,
                tools,
                system=prompts.system,
                limits=limits,
                approval=approval,
                first_tool_choice=spec.first_tool_choice,
                answer_from=spec.answer_from,
            )
        if recall and isinstance(agent, _MemoryAgent | _MemoryPlannerAgent):
            assert long_term is not None
            agent.long_term, agent.recall_k = long_term, spec.memory.long_term.recall_k
        agent.notice = _base_model_notice(spec, gateway)
        yield agent


def _check_model(spec: AgentSpec, gateway: Gateway) -> None:
    """Raise now when the agent's model cannot be called: a name that resolves to nothing, or
    no API key for any deployment it routes to (the hint says which key to set)."""
    route = gateway.resolve(spec.model)
    missing: list[MissingKeyError] = []
    for dep in route.deployments:
        try:
            resolve_key(dep.endpoint, gateway.keys)
        except MissingKeyError as exc:
            missing.append(exc)
        else:
            return
    first = missing[0]
    raise MissingKeyError(
        f"agent '{spec.name}' uses {route.name}: {first.message}",
        hint=first.hint,
        provider=first.provider,
    )


def _base_model_notice(spec: AgentSpec, gateway: Gateway) -> NoticeEvent | None:
    """The notice for an agent on a base model, unless the model only fills in the arguments
    of a forced call (``first_tool_choice`` + ``answer_from: tool``)."""
    if spec.forces_tools:
        return None
    text = base_model_notice(gateway.settings, spec.model, resolve=gateway.resolve)
    if text is None:
        return None
    model = spec.model or gateway.settings.models.default
    text += (
        "; offline, an agent works when its first tool call is forced and the tool's result is "
        "the answer (first_tool_choice + answer_from: tool, see examples/agents/clock.yaml)"
    )
    return NoticeEvent("base_model", text, model)


__all__ = [
    "TOOLS",
    "AgentSpec",
    "AgentSpecError",
    "AgentSpecInfo",
    "ApprovalSpec",
    "LimitsSpec",
    "MemorySpec",
    "PlannerSpec",
    "ToolSpec",
    "agents_dir",
    "list_agent_specs",
    "load_agent_spec",
    "open_agent",
]

"""``agent``: a Hanlin agent (a definition by name or path, as ``hanlin agent run`` takes, or
written inline) does a task as one node. Its tool calls stream as ``node_progress`` events and
its text as ``node_text``; its result is recorded before the run moves on, so a resumed run
does not run it again. Teams of agents are in :mod:`hanlin.flows.nodes.teams`."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel

from hanlin.errors import HanlinError, InvalidInputError
from hanlin.flows.events import NodeProgressEvent, NodeTextEvent
from hanlin.flows.nodes.base import FORBID, NodeContext, NodeOutput, NodeType, register

#: characters of a tool's result kept in the node's ``tool_calls`` output
_RESULT_CHARS = 500
#: what the agent nodes in a team's body read the team's values under (see teams.py); it is
#: there at run time, not a node the checker knows
TEAM_SCOPE = "__team"


class AgentConfig(BaseModel):
    model_config = FORBID

    #: an agent's name (``HANLIN_HOME/agents/NAME.yaml`` or a built-in), a YAML file, or a
    #: definition written here (the keys of an agent YAML: system, tools, mcp_servers, …)
    agent: str | dict[str, Any]
    #: what the agent is asked to do (a template)
    task: str
    #: use this model instead of the definition's
    model: str | None = None


def agent_spec(value: str | dict[str, Any], settings: Any, default_name: str) -> Any:
    """The :class:`~hanlin.agents.spec.AgentSpec` a node names or defines; raises
    :class:`HanlinError` (not found, or invalid with the key at fault)."""
    from hanlin.agents.spec import AgentSpec, load_agent_spec

    if isinstance(value, dict):
        data = {"name": default_name, **value}
        return AgentSpec.validated(data, f"the agent of node '{default_name}'")
    return load_agent_spec(value, settings)


def agent_problems(value: str | dict[str, Any], settings: Any, node: str) -> list[tuple[str, str]]:
    """Static problems of an agent reference: an inline definition is checked always, a
    name only when ``settings`` are given (resources are checked)."""
    if isinstance(value, str) and settings is None:
        return []
    try:
        agent_spec(value, settings, node)
    except HanlinError as exc:
        return [(exc.message, exc.hint or "see docs/agents.md")]
    return []


def _arguments(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return text


async def run_agent(
    ctx: NodeContext, spec: Any, task: str, *, model: str | None = None
) -> dict[str, Any]:
    """Run ``spec`` on ``task`` with the workflow's gateway, streaming its text and tool calls
    as node events; the node outputs (``answer``, ``tool_calls``, ``steps``, ``stop_reason``,
    ``usage``). A run that ends without an answer (an error, a limit) raises."""
    from hanlin.access.caller import acting_as, current
    from hanlin.agents.events import FinalEvent, TextEvent, ToolCallEvent, ToolResultEvent
    from hanlin.agents.spec import open_agent

    if model:
        spec = spec.model_copy(update={"model": model})
    calls: dict[str, dict[str, Any]] = {}
    final: FinalEvent | None = None
    who = current()
    who.require("workflows")
    # the agent is the workflow author's choice, as an llm node's model is: a caller allowed to
    # run workflows runs it (its tools still act as the caller: knowledge bases stay theirs)
    with acting_as(who.granting("agents", "chat")):
        async with open_agent(spec, ctx.services.gateway, user=who.user) as agent:
            async for event in agent.astream(task):
                if isinstance(event, TextEvent) and event.text:
                    await ctx.emit(NodeTextEvent(ctx.path, event.text))
                elif isinstance(event, ToolCallEvent):
                    args = _arguments(event.arguments)
                    calls[event.id] = {"name": event.name, "arguments": args}
                    data = {"id": event.id, "name": event.name, "arguments": args}
                    await ctx.emit(NodeProgressEvent(ctx.path, "tool_call", data))
                elif isinstance(event, ToolResultEvent):
                    call = calls.setdefault(event.id, {"name": event.name, "arguments": {}})
                    call.update(ok=not event.is_error, result=event.content[:_RESULT_CHARS])
                    data = {
                        "id": event.id,
                        "name": event.name,
                        "ok": not event.is_error,
                        "result": event.content[:_RESULT_CHARS],
                        "seconds": round(event.seconds, 3),
                    }
                    await ctx.emit(NodeProgressEvent(ctx.path, "tool_result", data))
                elif isinstance(event, FinalEvent):
                    final = event
    if final is None:
        raise InvalidInputError(f"agent '{spec.name}' ended without an answer")
    if final.stop_reason != "answer":
        raise InvalidInputError(
            f"agent '{spec.name}' stopped ({final.stop_reason}): {final.error or 'no answer'}",
            hint="raise the agent's limits (limits: {max_steps, max_seconds}), or check its "
            "tools and model",
        )
    return {
        "answer": final.text,
        "tool_calls": list(calls.values()),
        "steps": final.steps,
        "stop_reason": final.stop_reason,
        "usage": {
            "prompt_tokens": final.usage.prompt_tokens,
            "completion_tokens": final.usage.completion_tokens,
        },
    }


AGENT_OUTPUTS = {
    "answer": "string",
    "tool_calls": "array[object]",
    "steps": "integer",
    "stop_reason": "string",
    "usage": "object",
}


@register
class Agent(NodeType):
    name = "agent"
    summary = "a Hanlin agent (by name, file or inline) does a task; answer + tool calls"
    Config = AgentConfig
    expects: ClassVar[dict[str, str]] = {"task": "string"}
    # its tools may act on the world: the result is recorded, and replayed on resume
    side_effects = True

    def outputs(self, config: AgentConfig) -> dict[str, str]:
        return dict(AGENT_OUTPUTS)

    def check(self, config: AgentConfig, settings: Any) -> list[tuple[str, str]]:
        return agent_problems(config.agent, settings, "workflow-agent")

    def references(self, config: AgentConfig) -> list[tuple[str, str, str | None]]:
        return [r for r in super().references(config) if r[1] != TEAM_SCOPE]

    async def run(self, ctx: NodeContext, config: AgentConfig) -> NodeOutput:
        definition = ctx.resolve(config.agent)
        spec = agent_spec(definition, ctx.settings, ctx.node.id)
        task = ctx.resolve(config.task)
        if not isinstance(task, str):
            task = json.dumps(task, ensure_ascii=False, default=str)
        if not task.strip():
            raise InvalidInputError("the agent's task is empty", hint="check the `task` template")
        return NodeOutput(await run_agent(ctx, spec, task, model=config.model))

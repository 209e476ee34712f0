"""``team``: several agents working on one task, as one node — the multi-agent patterns on top of
the engine.

- ``mode: sequential`` — a role team with a written SOP (MetaGPT's pattern): the roles run in
  the order listed, each with its own instructions and tools, each reading the SOP, the task
  and the artefacts the roles before it handed on; the last artefact is the answer.
- ``mode: supervisor`` — a router: a supervisor model picks the next role (or ``finish``)
  after every turn and hands it an instruction, until it finishes or ``max_turns``.

Each role is an ``agent`` node inside the team's body (``team.writer`` in the history, or
``team[2].writer`` for the supervisor's third turn): its events stream, its result is recorded
and a resumed run replays it, and the supervisor's choices are recorded the same way. Routing
between agents across a workflow's graph (agent-to-agent handoff) needs no team: an ``agent``
node's answer goes to a ``question_classifier`` whose edges lead to the next agent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, field_validator, model_validator

from hanlin.flows.base import NODE_ID, GraphSpec, NodeSpec, RetryPolicy
from hanlin.flows.events import NodeProgressEvent
from hanlin.flows.nodes.agents import TEAM_SCOPE
from hanlin.flows.nodes.base import FORBID, NodeContext, NodeOutput, NodeType, register
from hanlin.flows.nodes.llm import ask_json

FINISH = "finish"
#: characters of each artefact the supervisor reads back
_SEEN_CHARS = 4000


class RoleSpec(BaseModel):
    """One role: an agent (by name, file or inline), or ``instructions`` + ``tools`` for an
    agent defined here."""

    model_config = FORBID

    #: the role's name (its node in the team's body: letters, digits and ``_``)
    id: str = Field(pattern=NODE_ID.pattern)
    #: what the role does (the role and the supervisor read it)
    description: str = ""
    agent: str | dict[str, Any] | None = None
    #: the system prompt of an agent defined here
    instructions: str | None = None
    #: the tools of an agent defined here (as in an agent YAML)
    tools: list[Any] = Field(default_factory=list)
    #: the role's model (default: the team's ``model``, then the agent's)
    model: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    retry: RetryPolicy | None = None

    @model_validator(mode="after")
    def _one_agent(self) -> RoleSpec:
        if self.agent is not None and (self.instructions or self.tools):
            raise ValueError(
                f"role '{self.id}': give `agent`, or `instructions` and `tools`, not both"
            )
        if self.id == FINISH:
            raise ValueError("a role may not be called 'finish' (the supervisor's stop)")
        return self


class TeamConfig(BaseModel):
    model_config = FORBID

    #: ``sequential`` (the SOP order) or ``supervisor`` (a model picks each next role)
    mode: Literal["sequential", "supervisor"] = "sequential"
    #: the team's task (a template)
    task: str
    #: the written procedure every role (and the supervisor) reads (a template)
    sop: str | None = None
    roles: list[RoleSpec] = Field(min_length=1)
    #: the roles' default model, and the supervisor's
    model: str | None = None
    #: extra guidance for the supervisor (supervisor mode)
    supervisor: str | None = None
    #: turns the supervisor may give (supervisor mode); then the team stops with the last work
    max_turns: int = Field(default=6, ge=1, le=50)
    _bodies: dict[str, GraphSpec] = PrivateAttr(default_factory=dict)

    @field_validator("roles")
    @classmethod
    def _unique(cls, value: list[RoleSpec]) -> list[RoleSpec]:
        ids = [r.id for r in value]
        if len(set(ids)) != len(ids):
            raise ValueError("role ids must be unique")
        return value

    def model_post_init(self, context: Any) -> None:
        # the bodies are built once per config, so the checked graph and the engine share them
        if self.mode == "sequential":
            nodes = [self._node(r, i) for i, r in enumerate(self.roles)]
            self._bodies = {"": GraphSpec(nodes=nodes)}
        else:
            self._bodies = {r.id: GraphSpec(nodes=[self._node(r, None)]) for r in self.roles}

    def _node(self, role: RoleSpec, position: int | None) -> NodeSpec:
        agent: str | dict[str, Any] = role.agent or {
            "name": role.id,
            "system": role.instructions or f"You are the {role.id} of a team.",
            "tools": role.tools,
        }
        data: dict[str, Any] = {
            "id": role.id,
            "type": "agent",
            "agent": agent,
            "task": _role_task(self, role, position),
        }
        if role.model or self.model:
            data["model"] = role.model or self.model
        if role.timeout_s is not None:
            data["timeout_s"] = role.timeout_s
        if role.retry is not None:
            data["retry"] = role.retry.model_dump()
        return NodeSpec.from_data(data)


def _role_task(config: TeamConfig, role: RoleSpec, position: int | None) -> str:
    """The task template of a role's agent node: it reads the team's values (``T.task``…)
    and, in a sequential team, the artefacts of the roles before it."""
    t = TEAM_SCOPE
    order = ", ".join(r.id for r in config.roles)
    lines = []
    if config.sop:
        lines += [f"Standard operating procedure:\n{{{{ {t}.sop }}}}", ""]
    lines += [f"Task: {{{{ {t}.task }}}}", ""]
    lines += [f"You are the {role.id} in a team of: {order}."]
    if role.description:
        lines += [f"Your part: {{{{ {t}.roles.{role.id} }}}}"]
    if position is None:
        lines += [
            "",
            f"The supervisor hands you this: {{{{ {t}.instruction }}}}",
            "",
            f"Work so far:\n{{{{ {t}.work }}}}",
        ]
    else:
        for before in config.roles[:position]:
            lines += ["", f"## Handed to you by the {before.id}:", f"{{{{ {before.id}.answer }}}}"]
    lines += ["", "Do your part and answer with your own artefact (the work you hand on)."]
    return "\n".join(lines)


_ROUTE_SYSTEM = (
    "You are the supervisor of a team of agents. Pick the role that should act next and "
    "write the instruction you hand to it, or pick 'finish' when the work so far completes "
    'the task. Answer with JSON: {"next": "<role or finish>", "instruction": "<text>"}.'
)


@register
class Team(NodeType):
    name = "team"
    summary = "agents in roles: a sequential SOP team, or a supervisor that routes each turn"
    Config = TeamConfig
    side_effects = False  # each role's agent node records its own result

    def outputs(self, config: TeamConfig) -> dict[str, str]:
        return {
            "answer": "string",
            "artefacts": "object",
            "transcript": "array[object]",
            "turns": "integer",
        }

    def bodies(self, config: TeamConfig) -> list[GraphSpec]:
        return list(config._bodies.values())

    def body_scope(self, config: TeamConfig) -> dict[str, str]:
        return {}

    def references(self, config: TeamConfig) -> list[tuple[str, str, str | None]]:
        # the roles are checked as the body's agent nodes; the team reads task, sop, supervisor
        found = super().references(config)
        return [r for r in found if r[0].split(".")[0].split("[")[0] != "roles"]

    async def run(self, ctx: NodeContext, config: TeamConfig) -> NodeOutput:
        values = {
            "task": ctx.render(config.task),
            "sop": ctx.render(config.sop) if config.sop else "",
            "roles": {r.id: r.description for r in config.roles},
            "instruction": "",
            "work": "",
        }
        if config.mode == "sequential":
            return await self._sequential(ctx, config, values)
        return await self._supervised(ctx, config, values)

    async def _sequential(
        self, ctx: NodeContext, config: TeamConfig, values: dict[str, Any]
    ) -> NodeOutput:
        scope = {**ctx.scope, TEAM_SCOPE: values}
        inner = await ctx.run_body(config._bodies[""], scope, ctx.path, {})
        transcript = [
            {"role": r.id, "answer": inner[r.id]["answer"], "tool_calls": inner[r.id]["tool_calls"]}
            for r in config.roles
        ]
        artefacts = {t["role"]: t["answer"] for t in transcript}
        return NodeOutput(
            {
                "answer": transcript[-1]["answer"],
                "artefacts": artefacts,
                "transcript": transcript,
                "turns": len(transcript),
            }
        )

    async def _supervised(
        self, ctx: NodeContext, config: TeamConfig, values: dict[str, Any]
    ) -> NodeOutput:
        ids = [r.id for r in config.roles]
        roles = "\n".join(f"- {r.id}: {r.description or '(no description)'}" for r in config.roles)
        transcript: list[dict[str, Any]] = []
        for turn in range(config.max_turns):
            key = f"route:{ctx.path}[{turn}]"
            found = ctx.recorded(key)
            if found is not None:
                choice = found["value"]
            else:
                prompt = _route_prompt(ctx, config, values, roles, transcript)
                schema = {
                    "type": "object",
                    "properties": {
                        "next": {"type": "string", "enum": [*ids, FINISH]},
                        "instruction": {"type": "string"},
                    },
                    "required": ["next", "instruction"],
                    "additionalProperties": False,
                }
                choice, _ = await ask_json(
                    ctx, config.model, _ROUTE_SYSTEM, prompt, schema, name="next_role"
                )
                ctx.record(key, choice)
            await ctx.emit(NodeProgressEvent(ctx.path, "handoff", {"turn": turn, **choice}))
            if choice["next"] == FINISH:
                break
            values = {**values, "instruction": choice["instruction"], "work": _work(transcript)}
            scope = {**ctx.scope, TEAM_SCOPE: values}
            body = config._bodies[choice["next"]]
            inner = await ctx.run_body(body, scope, f"{ctx.path}[{turn}]", {})
            out = inner[choice["next"]]
            transcript.append(
                {
                    "role": choice["next"],
                    "instruction": choice["instruction"],
                    "answer": out["answer"],
                    "tool_calls": out["tool_calls"],
                }
            )
        artefacts: dict[str, str] = {}
        for t in transcript:
            artefacts[t["role"]] = t["answer"]
        return NodeOutput(
            {
                "answer": transcript[-1]["answer"] if transcript else "",
                "artefacts": artefacts,
                "transcript": transcript,
                "turns": len(transcript),
            }
        )


def _work(transcript: list[dict[str, Any]]) -> str:
    if not transcript:
        return "(nothing yet)"
    return "\n\n".join(
        f"## {t['role']} (turn {i + 1}):\n{t['answer'][:_SEEN_CHARS]}"
        for i, t in enumerate(transcript)
    )


def _route_prompt(
    ctx: NodeContext,
    config: TeamConfig,
    values: dict[str, Any],
    roles: str,
    transcript: list[dict[str, Any]],
) -> str:
    parts = []
    if values["sop"]:
        parts.append(f"Standard operating procedure:\n{values['sop']}")
    parts.append(f"Task: {values['task']}")
    parts.append(f"Roles:\n{roles}")
    if config.supervisor:
        parts.append(f"Guidance: {ctx.render(config.supervisor)}")
    parts.append(f"Work so far:\n{_work(transcript)}")
    parts.append(f"Turn {len(transcript) + 1} of at most {config.max_turns}.")
    return "\n\n".join(parts)


__all__ = ["RoleSpec", "Team", "TeamConfig"]

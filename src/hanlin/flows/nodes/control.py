"""The nodes that shape a run: ``iteration`` (a body per list item, in parallel up to a limit),
``loop`` (a body until an exit condition, at most ``max_iterations``), ``human_input`` (pause
for a form) and ``sub_workflow``. Each finished item, round and answer is recorded, so a
resumed run does not do them again."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

import hanlin.flows.refs as refs
from hanlin.errors import InvalidInputError
from hanlin.flows.base import GraphSpec, PendingInput
from hanlin.flows.nodes.base import (
    FORBID,
    NodeContext,
    NodeOutput,
    NodeType,
    PauseRun,
    declared,
    register,
)

#: how deep sub-workflows may nest (a workflow calling itself stops here)
MAX_DEPTH = 8


class IterationConfig(BaseModel):
    model_config = FORBID

    items: Any
    body: GraphSpec
    #: what each item's body gives, read in the body's scope (``{{fetch.body}}``)
    output: Any
    parallelism: int = Field(default=1, ge=1, le=64)


@register
class Iteration(NodeType):
    name = "iteration"
    summary = "run a body per list item ({{id.item}}, {{id.index}}), up to `parallelism` at once"
    Config = IterationConfig
    expects: ClassVar[dict[str, str]] = {"items": "array"}

    def outputs(self, config: IterationConfig) -> dict[str, str]:
        return {"output": "array"}

    def bodies(self, config: IterationConfig) -> list[GraphSpec]:
        return [config.body]

    def body_scope(self, config: IterationConfig) -> dict[str, str]:
        return {"item": "any", "index": "integer"}

    async def run(self, ctx: NodeContext, config: IterationConfig) -> NodeOutput:
        items = ctx.resolve(config.items)
        if not isinstance(items, list):
            raise InvalidInputError(
                f"iteration items must be a list, got {type(items).__name__}",
                hint="point `items` at an array output, e.g. {{retrieve.results}}",
            )
        results: list[Any] = [None] * len(items)
        limit = asyncio.Semaphore(config.parallelism)

        async def one(i: int, item: Any) -> None:
            key = f"item:{ctx.path}[{i}]"
            found = ctx.recorded(key)
            if found is not None:
                results[i] = found["value"]
                return
            async with limit:
                scope = {**ctx.scope, ctx.node.id: {"item": item, "index": i}}
                inner = await ctx.run_body(config.body, scope, f"{ctx.path}[{i}]", {})
                results[i] = refs.resolve(config.output, inner)
                ctx.record(key, results[i])

        async with asyncio.TaskGroup() as group:
            for i, item in enumerate(items):
                group.create_task(one(i, item))
        return NodeOutput({"output": results})


class LoopConfig(BaseModel):
    model_config = FORBID

    #: the loop's variables and their first values ({{id.name}} inside and after the loop)
    variables: dict[str, Any] = Field(default_factory=dict)
    body: GraphSpec
    #: after each round: new values of the variables, read in the body's scope
    update: dict[str, Any] = Field(default_factory=dict)
    #: the exit condition, checked after each round's update
    until: str | dict[str, Any]
    max_iterations: int = Field(default=10, ge=1, le=10_000)
    #: at ``max_iterations`` without the condition: ``fail`` the node, or ``stop`` there
    on_max: Literal["fail", "stop"] = "fail"

    @field_validator("until")
    @classmethod
    def _until(cls, value: Any) -> Any:
        refs.check_condition(value)
        return value


@register
class Loop(NodeType):
    name = "loop"
    summary = "repeat a body until `until` holds (at most `max_iterations`)"
    Config = LoopConfig

    def outputs(self, config: LoopConfig) -> dict[str, str]:
        return {**declared(config.variables), "iterations": "integer"}

    def bodies(self, config: LoopConfig) -> list[GraphSpec]:
        return [config.body]

    def body_scope(self, config: LoopConfig) -> dict[str, str]:
        return {**declared(config.variables), "index": "integer"}

    def references(self, config: LoopConfig) -> list[tuple[str, str, str | None]]:
        found = [r for r in super().references(config) if r[0] != "until"]
        return found + [("until", n, f) for n, f in refs.condition_references(config.until)]

    async def run(self, ctx: NodeContext, config: LoopConfig) -> NodeOutput:
        unknown = sorted(set(config.update) - set(config.variables))
        if unknown:
            raise InvalidInputError(
                f"loop update names {unknown[0]!r}, which is not one of its variables",
                hint="declare it under `variables` with a first value",
            )
        variables = ctx.resolve(config.variables)
        me = ctx.node.id
        for i in range(config.max_iterations):
            key = f"round:{ctx.path}[{i}]"
            found = ctx.recorded(key)
            if found is not None:
                variables = found["value"]
            else:
                scope = {**ctx.scope, me: {**variables, "index": i}}
                inner = await ctx.run_body(config.body, scope, f"{ctx.path}[{i}]", {})
                variables = {**variables, **refs.resolve(config.update, inner)}
                ctx.record(key, variables)
            if refs.evaluate(config.until, {**ctx.scope, me: {**variables, "index": i}}):
                return NodeOutput({**variables, "iterations": i + 1})
        if config.on_max == "stop":
            return NodeOutput({**variables, "iterations": config.max_iterations})
        raise InvalidInputError(
            f"loop '{me}' reached max_iterations ({config.max_iterations}) without its exit "
            "condition holding",
            hint="check `until` and `update` (does the variable change?), raise "
            "max_iterations, or set on_max: stop",
        )


class HumanInputConfig(BaseModel):
    model_config = FORBID

    prompt: str
    #: ``approve`` → {approved, comment}; ``edit`` → {text}; ``choose`` → {choice};
    #: ``form`` → what ``schema`` (a JSON schema) says
    kind: Literal["approve", "edit", "choose", "form"] = "approve"
    options: list[Any] | None = None
    value: Any = None
    form_schema: dict[str, Any] | None = None


def form_schema(config: HumanInputConfig, options: list[Any] | None) -> dict[str, Any]:
    """The JSON schema an answer must satisfy."""
    if config.kind == "form":
        return config.form_schema or {"type": "object"}
    props: Any = {
        "approve": {"approved": {"type": "boolean"}, "comment": {"type": "string"}},
        "edit": {"text": {"type": "string"}},
        "choose": {"choice": {"enum": options or []}},
    }[config.kind]
    required = {"approve": ["approved"], "edit": ["text"], "choose": ["choice"]}[config.kind]
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


@register
class HumanInput(NodeType):
    name = "human_input"
    summary = "pause for a person's answer (approve / edit / choose / a form)"
    Config = HumanInputConfig

    def outputs(self, config: HumanInputConfig) -> dict[str, str] | None:
        if config.kind == "form":
            props = (config.form_schema or {}).get("properties") or {}
            return {k: "any" for k in props} or None
        return {
            "approve": {"approved": "boolean", "comment": "string"},
            "edit": {"text": "string"},
            "choose": {"choice": "any"},
        }[config.kind]

    def check(self, config: HumanInputConfig, settings: Any) -> list[tuple[str, str]]:
        if config.kind == "choose" and not config.options:
            return [("a `choose` form needs `options`", "list the choices under `options`")]
        if config.kind == "form" and not config.form_schema:
            return [("a `form` needs `form_schema`", "give a JSON schema of the answer")]
        return []

    async def run(self, ctx: NodeContext, config: HumanInputConfig) -> NodeOutput:
        found = ctx.recorded(f"input:{ctx.path}")
        if found is not None:
            return NodeOutput(dict(found["value"]))
        options = ctx.resolve(config.options)
        raise PauseRun(
            PendingInput(
                node=ctx.path,
                prompt=ctx.render(config.prompt),
                kind=config.kind,
                schema=form_schema(config, options),
                value=ctx.resolve(config.value),
                options=options,
            )
        )


class SubWorkflowConfig(BaseModel):
    model_config = FORBID

    #: a workflow name (HANLIN_HOME/workflows/NAME.yaml) or a YAML file
    workflow: str
    inputs: dict[str, Any] = Field(default_factory=dict)


@register
class SubWorkflow(NodeType):
    name = "sub_workflow"
    summary = "run another workflow as one node; its end outputs are this node's"
    Config = SubWorkflowConfig

    def outputs(self, config: SubWorkflowConfig) -> None:
        return None  # the other workflow's, known when it is loaded

    async def run(self, ctx: NodeContext, config: SubWorkflowConfig) -> NodeOutput:
        if ctx.path.count("/") >= MAX_DEPTH or ctx.services.find_workflow is None:
            raise InvalidInputError(
                f"sub-workflows nest deeper than {MAX_DEPTH} at {ctx.path}",
                hint="a workflow that calls itself needs an if_else that stops it",
            )
        graph = ctx.services.find_workflow(config.workflow)
        inputs = ctx.resolve(config.inputs)
        inner = await ctx.run_body(graph, {}, f"{ctx.path}/", inputs)
        outputs: dict[str, Any] = {}
        for node in graph.nodes:
            if node.type in ("end", "answer") and node.id in inner:
                outputs.update(inner[node.id])
        return NodeOutput(outputs)

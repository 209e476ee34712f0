"""The nodes that only move values: start, end, answer, template, if/else, variable assigner and
variable aggregator."""

from __future__ import annotations

import contextlib
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

import hanlin.flows.refs as refs
from hanlin.errors import InvalidInputError
from hanlin.flows.base import NODE_ID
from hanlin.flows.nodes.base import (
    FORBID,
    NodeContext,
    NodeOutput,
    NodeType,
    compatible,
    declared,
    register,
    type_of,
)


class InputSpec(BaseModel):
    """One input of a workflow (a field of the start node)."""

    model_config = FORBID

    type: Literal["string", "number", "integer", "boolean", "object", "array", "any"] = "string"
    required: bool = True
    default: Any = None
    description: str = ""


class StartConfig(BaseModel):
    model_config = FORBID

    inputs: dict[str, InputSpec] = Field(default_factory=dict)

    @field_validator("inputs", mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        # `question: string` is short for `question: {type: string}`
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
        return value


def check_inputs(config: StartConfig, given: dict[str, Any]) -> dict[str, Any]:
    """The run's inputs checked against the start node: every required one present, each of
    its declared type, none unknown; defaults filled in."""
    unknown = sorted(set(given) - set(config.inputs))
    if unknown:
        raise InvalidInputError(
            f"unknown workflow input {unknown[0]!r}",
            hint=f"the workflow's inputs are: {', '.join(config.inputs) or 'none'}",
        )
    values: dict[str, Any] = {}
    for name, spec in config.inputs.items():
        if name not in given or given[name] is None:
            if spec.required and spec.default is None:
                raise InvalidInputError(
                    f"missing workflow input {name!r}",
                    hint=f"pass it: --input {name}=… (or in the JSON inputs)",
                )
            values[name] = spec.default
            continue
        value = given[name]
        if spec.type == "number" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if spec.type in ("number", "integer") and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = int(value) if spec.type == "integer" else float(value)
        if not compatible(type_of(value), spec.type):
            raise InvalidInputError(
                f"workflow input {name!r} must be {spec.type}, got {type_of(value)}",
                hint=f"pass a {spec.type} for {name}",
            )
        values[name] = value
    return values


@register
class Start(NodeType):
    name = "start"
    replayable = True
    summary = "the run's inputs, declared with their types"
    Config = StartConfig

    def outputs(self, config: StartConfig) -> dict[str, str]:
        return {name: spec.type for name, spec in config.inputs.items()}

    async def run(self, ctx: NodeContext, config: StartConfig) -> NodeOutput:
        return NodeOutput(dict(ctx.extra.get("inputs", {})))


class EndConfig(BaseModel):
    model_config = FORBID

    outputs: dict[str, Any] = Field(default_factory=dict)


@register
class End(NodeType):
    name = "end"
    replayable = True
    summary = "the run's outputs, by reference"
    Config = EndConfig

    def outputs(self, config: EndConfig) -> dict[str, str]:
        return declared(config.outputs)

    async def run(self, ctx: NodeContext, config: EndConfig) -> NodeOutput:
        return NodeOutput(ctx.resolve(config.outputs))


class AnswerConfig(BaseModel):
    model_config = FORBID

    answer: str


@register
class Answer(NodeType):
    name = "answer"
    replayable = True
    summary = "the run's answer text (a template)"
    Config = AnswerConfig

    def outputs(self, config: AnswerConfig) -> dict[str, str]:
        return {"answer": "string"}

    async def run(self, ctx: NodeContext, config: AnswerConfig) -> NodeOutput:
        value = ctx.resolve(config.answer)
        return NodeOutput({"answer": value if isinstance(value, str) else str(value)})


class TemplateConfig(BaseModel):
    model_config = FORBID

    template: str


@register
class Template(NodeType):
    name = "template"
    replayable = True
    summary = "text from a sandboxed Jinja2 template"
    Config = TemplateConfig

    def outputs(self, config: TemplateConfig) -> dict[str, str]:
        return {"output": "string"}

    async def run(self, ctx: NodeContext, config: TemplateConfig) -> NodeOutput:
        return NodeOutput({"output": ctx.render(config.template)})


class Case(BaseModel):
    model_config = FORBID

    id: str = Field(pattern=NODE_ID.pattern)
    when: str | dict[str, Any]

    @field_validator("when")
    @classmethod
    def _when(cls, value: Any) -> Any:
        refs.check_condition(value)
        return value


class IfElseConfig(BaseModel):
    model_config = FORBID

    cases: list[Case] = Field(min_length=1)

    @field_validator("cases")
    @classmethod
    def _unique(cls, value: list[Case]) -> list[Case]:
        ids = [c.id for c in value]
        if len(set(ids)) != len(ids) or "else" in ids or "error" in ids:
            raise ValueError("case ids must be unique and not 'else' or 'error'")
        return value


@register
class IfElse(NodeType):
    name = "if_else"
    replayable = True
    summary = "branch on conditions: the first case that holds, else `else`"
    Config = IfElseConfig

    def outputs(self, config: IfElseConfig) -> dict[str, str]:
        return {"branch": "string"}

    def handles(self, config: IfElseConfig) -> list[str]:
        return [c.id for c in config.cases] + ["else"]

    def references(self, config: IfElseConfig) -> list[tuple[str, str, str | None]]:
        return [
            (f"cases.{c.id}.when", n, f)
            for c in config.cases
            for n, f in refs.condition_references(c.when)
        ]

    async def run(self, ctx: NodeContext, config: IfElseConfig) -> NodeOutput:
        for case in config.cases:
            if refs.evaluate(case.when, ctx.scope):
                return NodeOutput({"branch": case.id}, branch=case.id)
        return NodeOutput({"branch": "else"}, branch="else")


class AssignerConfig(BaseModel):
    model_config = FORBID

    variables: dict[str, Any] = Field(min_length=1)


@register
class VariableAssigner(NodeType):
    name = "variable_assigner"
    replayable = True
    summary = "name values (references, templates or literals) for later nodes"
    Config = AssignerConfig

    def outputs(self, config: AssignerConfig) -> dict[str, str]:
        return declared(config.variables)

    async def run(self, ctx: NodeContext, config: AssignerConfig) -> NodeOutput:
        return NodeOutput(ctx.resolve(config.variables))


class AggregatorConfig(BaseModel):
    model_config = FORBID

    #: references in order; the first whose node ran gives ``output``
    variables: list[str] = Field(min_length=1)


@register
class VariableAggregator(NodeType):
    name = "variable_aggregator"
    replayable = True
    summary = "join branches: the first of several references whose node ran"
    Config = AggregatorConfig

    def outputs(self, config: AggregatorConfig) -> dict[str, str]:
        return {"output": "any"}

    async def run(self, ctx: NodeContext, config: AggregatorConfig) -> NodeOutput:
        for ref in config.variables:
            path = refs.whole_ref(ref)
            if path is not None and path[0] not in ctx.scope:
                continue  # that branch was not taken
            try:
                value = ctx.resolve(ref)
            except refs.TemplateError:
                continue
            if value is not None:
                return NodeOutput({"output": value})
        raise InvalidInputError(
            f"none of {', '.join(config.variables)} has a value",
            hint="list a reference from every branch that reaches this node",
        )

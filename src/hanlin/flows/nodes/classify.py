"""The nodes that turn text into decisions and values with a model, through the gateway the
``llm`` node uses: ``question_classifier`` (one of named classes, an edge per class) and
``parameter_extractor`` (typed parameters by JSON schema, checked; a missing required one is
reported in ``__is_success`` / ``__reason``, as Dify does, rather than failing the run)."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from hanlin.errors import InvalidInputError
from hanlin.flows.base import NODE_ID
from hanlin.flows.nodes.base import FORBID, NodeContext, NodeOutput, NodeType, register
from hanlin.flows.nodes.llm import ask_json

#: branch names a class id may not take (they mean something else on an edge)
_RESERVED = frozenset({"else", "error", "none"})


class ClassSpec(BaseModel):
    model_config = FORBID

    #: the branch name (``classify.refund -> …``): letters, digits and ``_``
    id: str = Field(pattern=NODE_ID.pattern)
    #: shown in ``class_name`` (default: the id)
    name: str | None = None
    #: what belongs in the class, as the model reads it
    description: str = ""


class ClassifierConfig(BaseModel):
    model_config = FORBID

    #: a gateway model name or alias (default: ``models.default``)
    model: str | None = None
    #: the text to classify (a template)
    query: str
    classes: list[ClassSpec] = Field(min_length=1)
    #: extra guidance for the model (a template)
    instruction: str | None = None
    temperature: float | None = Field(default=0.0, ge=0.0, le=2.0)

    @field_validator("classes")
    @classmethod
    def _unique(cls, value: list[ClassSpec]) -> list[ClassSpec]:
        ids = [c.id for c in value]
        if len(set(ids)) != len(ids):
            raise ValueError("class ids must be unique")
        taken = sorted(set(ids) & _RESERVED)
        if taken:
            raise ValueError(f"a class may not be called {taken[0]!r}: rename it (e.g. other)")
        return value


_CLASSIFY_SYSTEM = (
    "You are a text classifier. Put the user's text into exactly one of the classes listed, "
    'by id. Answer with JSON: {"class_id": "<id>"}. Use "none" only when no class fits.'
)


@register
class QuestionClassifier(NodeType):
    name = "question_classifier"
    summary = "a model puts the query into one of named classes; an edge per class (+ else)"
    Config = ClassifierConfig
    expects: ClassVar[dict[str, str]] = {"query": "string"}

    def outputs(self, config: ClassifierConfig) -> dict[str, str]:
        return {"class_id": "string", "class_name": "string", "usage": "object"}

    def handles(self, config: ClassifierConfig) -> list[str]:
        return [c.id for c in config.classes] + ["else"]

    async def run(self, ctx: NodeContext, config: ClassifierConfig) -> NodeOutput:
        query = ctx.resolve(config.query)
        if not isinstance(query, str):
            query = json.dumps(query, ensure_ascii=False, default=str)
        if not query.strip():
            raise InvalidInputError(
                "the query to classify is empty", hint="check the `query` reference"
            )
        ids = [c.id for c in config.classes]
        listing = "\n".join(
            f"- {c.id}: {c.name or c.id}{' — ' + c.description if c.description else ''}"
            for c in config.classes
        )
        extra = f"\n\nGuidance: {ctx.render(config.instruction)}" if config.instruction else ""
        prompt = f"Classes:\n{listing}{extra}\n\nText to classify:\n{query}"
        schema = {
            "type": "object",
            "properties": {"class_id": {"type": "string", "enum": [*ids, "none"]}},
            "required": ["class_id"],
            "additionalProperties": False,
        }
        try:
            answer, response = await ask_json(
                ctx, config.model, _CLASSIFY_SYSTEM, prompt, schema,
                temperature=config.temperature, name="classification",
            )  # fmt: skip
            picked = answer["class_id"]
        except InvalidInputError as exc:
            # a model without structured output may still name one class plainly
            picked = _named_class(str(exc.params.get("text") or ""), ids)
            if picked is None:
                raise
            response = None
        usage = _usage(response)
        if picked == "none":
            return NodeOutput({"class_id": "", "class_name": "", "usage": usage}, branch="else")
        spec = next(c for c in config.classes if c.id == picked)
        return NodeOutput(
            {"class_id": spec.id, "class_name": spec.name or spec.id, "usage": usage},
            branch=spec.id,
        )


def _named_class(text: str, ids: list[str]) -> str | None:
    """The one class id a plain-text answer names, or None (none, or several)."""
    found = [i for i in ids if re.search(rf"\b{re.escape(i)}\b", text)]
    return found[0] if len(found) == 1 else None


def _usage(response: Any) -> dict[str, int]:
    if response is None:
        return {"prompt_tokens": 0, "completion_tokens": 0}
    u = response.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens}


ParamType = Literal[
    "string", "number", "integer", "boolean", "object",
    "array", "array[string]", "array[number]", "array[object]",
]  # fmt: skip


class ParameterSpec(BaseModel):
    model_config = FORBID

    #: the output name (``{{extract.city}}``)
    name: str = Field(pattern=NODE_ID.pattern)
    type: ParamType = "string"
    description: str = ""
    required: bool = True
    #: the only values allowed (a "select" parameter)
    options: list[Any] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value.startswith("__"):
            raise ValueError("names starting with '__' are the node's own (__is_success)")
        return value


class ExtractorConfig(BaseModel):
    model_config = FORBID

    model: str | None = None
    #: the text to extract from (a template)
    query: str
    parameters: list[ParameterSpec] = Field(min_length=1)
    #: extra guidance for the model (a template)
    instruction: str | None = None
    temperature: float | None = Field(default=0.0, ge=0.0, le=2.0)

    @field_validator("parameters")
    @classmethod
    def _unique(cls, value: list[ParameterSpec]) -> list[ParameterSpec]:
        names = [p.name for p in value]
        if len(set(names)) != len(names):
            raise ValueError("parameter names must be unique")
        return value


def _json_type(kind: str) -> dict[str, Any]:
    if kind.startswith("array["):
        return {"type": "array", "items": _json_type(kind[6:-1])}
    if kind == "array":
        return {"type": "array", "items": {}}
    if kind == "object":
        return {"type": "object"}
    return {"type": kind}


def parameter_schema(params: list[ParameterSpec]) -> dict[str, Any]:
    """The JSON schema the model answers with: every parameter present (strict mode), each
    nullable so that the model can say a value is not in the text."""
    props: dict[str, Any] = {}
    for p in params:
        inner = _json_type(p.type)
        if p.options:
            inner["enum"] = list(p.options)
        if p.description:
            inner["description"] = p.description
        props[p.name] = {"anyOf": [inner, {"type": "null"}]}
    return {
        "type": "object",
        "properties": props,
        "required": [p.name for p in params],
        "additionalProperties": False,
    }


_EXTRACT_SYSTEM = (
    "You extract parameters from the user's text. Answer with JSON holding every parameter "
    "listed; use null for a value the text does not give. Never invent values."
)


def _coerce(value: Any, kind: str) -> Any:
    """A value the model gave as the declared type (``"42"`` → 42); raises ValueError."""
    if value is None:
        return None
    if kind == "string":
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if kind in ("number", "integer"):
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        number = value
        if isinstance(value, str):
            try:
                number = float(value.replace(",", "").strip())
            except ValueError:
                raise ValueError(f"{value!r} is not a number") from None
        if not isinstance(number, int | float):
            raise ValueError(f"{value!r} is not a number")
        if kind == "integer":
            if float(number) != int(number):
                raise ValueError(f"{value!r} is not a whole number")
            return int(number)
        return number
    if kind == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not true or false")
        return value
    if kind == "object":
        if not isinstance(value, dict):
            raise ValueError(f"{value!r} is not an object")
        return value
    items = value if isinstance(value, list) else [value]
    inner = kind[6:-1] if kind.startswith("array[") else None
    return [_coerce(v, inner) for v in items] if inner else items


@register
class ParameterExtractor(NodeType):
    name = "parameter_extractor"
    summary = "a model extracts typed parameters from text (JSON schema, checked)"
    Config = ExtractorConfig
    expects: ClassVar[dict[str, str]] = {"query": "string"}

    def outputs(self, config: ExtractorConfig) -> dict[str, str]:
        found = {p.name: p.type for p in config.parameters}
        return {**found, "__is_success": "boolean", "__reason": "string", "usage": "object"}

    async def run(self, ctx: NodeContext, config: ExtractorConfig) -> NodeOutput:
        query = ctx.resolve(config.query)
        if not isinstance(query, str):
            query = json.dumps(query, ensure_ascii=False, default=str)
        listing = "\n".join(
            f"- {p.name} ({p.type}{', required' if p.required else ''})"
            f"{': ' + p.description if p.description else ''}"
            + (f" — one of {json.dumps(p.options, ensure_ascii=False)}" if p.options else "")
            for p in config.parameters
        )
        extra = f"\n\nGuidance: {ctx.render(config.instruction)}" if config.instruction else ""
        prompt = f"Parameters:\n{listing}{extra}\n\nText:\n{query}"
        answer, response = await ask_json(
            ctx, config.model, _EXTRACT_SYSTEM, prompt, parameter_schema(config.parameters),
            temperature=config.temperature, name="parameters", validate=False,
        )  # fmt: skip
        if not isinstance(answer, dict):
            raise InvalidInputError(
                f"the model answered {type(answer).__name__}, not a JSON object",
                hint="use a model that supports structured output, or retry the node",
            )
        outputs: dict[str, Any] = {}
        problems: list[str] = []
        for p in config.parameters:
            try:
                value = _coerce(answer.get(p.name), p.type)
            except (TypeError, ValueError) as exc:
                problems.append(f"{p.name}: {exc}")
                value = None
            if value is not None and p.options and value not in p.options:
                problems.append(f"{p.name}: {value!r} is not one of {p.options}")
                value = None
            if (
                value is None
                and p.required
                and not any(x.startswith(p.name + ":") for x in problems)
            ):
                problems.append(f"{p.name}: required, but not found in the text")
            outputs[p.name] = value
        outputs["__is_success"] = not problems
        outputs["__reason"] = "; ".join(problems)
        outputs["usage"] = _usage(response)
        return NodeOutput(outputs)

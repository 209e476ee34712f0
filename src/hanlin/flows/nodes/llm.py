"""The nodes that call models and knowledge bases: ``llm`` (any gateway model, prompts as
sandboxed templates, structured output by JSON schema) and ``knowledge_retrieval`` (one or more
knowledge bases, with metadata filters)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from hanlin.access.caller import configured_model
from hanlin.errors import InvalidInputError
from hanlin.flows.events import NodeTextEvent
from hanlin.flows.nodes.base import FORBID, NodeContext, NodeOutput, NodeType, register


class PromptMessage(BaseModel):
    model_config = FORBID

    role: Literal["system", "user", "assistant"]
    content: str


class LlmConfig(BaseModel):
    model_config = FORBID

    #: a gateway model name or alias (default: ``models.default``)
    model: str | None = None
    system: str | None = None
    #: the user message (a template); or ``messages`` for a whole conversation
    prompt: str | None = None
    messages: list[PromptMessage] | None = None
    #: or a prompt of the registry (docs/prompts.md): ``NAME``, ``NAME@VERSION`` or
    #: ``NAME:LABEL`` (default label: ``prompts.label``), filled with ``variables``
    prompt_ref: str | None = None
    #: the registry prompt's variables: name → value (templates over the node's inputs)
    variables: dict[str, Any] = Field(default_factory=dict)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    #: a JSON schema: the model is asked for JSON matching it (``response_format``), and the
    #: parsed answer is the ``structured`` output
    output_schema: dict[str, Any] | None = None
    stream: bool = True


@register
class Llm(NodeType):
    name = "llm"
    summary = "call a model through the gateway; optional JSON-schema structured output"
    Config = LlmConfig

    def outputs(self, config: LlmConfig) -> dict[str, str]:
        found = {"text": "string", "usage": "object", "model": "string"}
        if config.output_schema:
            found["structured"] = "object"
        return found

    def check(self, config: LlmConfig, settings: Any) -> list[tuple[str, str]]:
        given = [config.prompt, config.messages, config.prompt_ref]
        if sum(x is not None for x in given) != 1:
            return [
                (
                    "an llm node needs one of `prompt`, `messages` or `prompt_ref`",
                    "add `prompt:` (a template) or `prompt_ref:` (a registry prompt's name)",
                )
            ]
        if config.variables and config.prompt_ref is None:
            return [("`variables` fill a `prompt_ref`", "remove `variables`, or add `prompt_ref`")]
        if config.prompt_ref is not None:
            return registry_problems(config, settings)
        return []

    async def run(self, ctx: NodeContext, config: LlmConfig) -> NodeOutput:
        from hanlin.models.types import ChatOptions, Message, ResponseFormat, TextDelta

        messages: list[Message] = []
        if config.system:
            messages.append(Message.system(ctx.render(config.system)))
        if config.prompt_ref is not None:
            values = ctx.resolve(config.variables)
            turns = await asyncio.to_thread(registry_turns, config, ctx.settings, values)
            messages += [Message(role=role, content=text) for role, text in turns]
        for m in config.messages or [PromptMessage(role="user", content=config.prompt or "")]:
            if config.prompt_ref is not None:
                break
            messages.append(Message(role=m.role, content=ctx.render(m.content)))
        fmt = None
        if config.output_schema:
            fmt = ResponseFormat(type="json_schema", json_schema=config.output_schema)
        options = ChatOptions(
            temperature=config.temperature, max_tokens=config.max_tokens, response_format=fmt
        )
        gateway = ctx.services.gateway
        # the node's model is the workflow author's choice, as an agent's is: a caller allowed
        # to run workflows may spend it without the chat scope (knowledge bases stay theirs)
        with configured_model("workflows"):
            if config.stream and fmt is None:
                stream = gateway.astream(messages, config.model, options)
                async for event in stream:
                    if isinstance(event, TextDelta) and event.text:
                        await ctx.emit(NodeTextEvent(ctx.path, event.text))
                response = stream.response
                assert response is not None
            else:
                response = await gateway.achat(messages, config.model, options)
        u = response.usage
        outputs: dict[str, Any] = {
            "text": response.text,
            "model": response.model,
            "usage": {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens},
        }
        if config.output_schema:
            outputs["structured"] = parse_json(response.text, config.output_schema)
        return NodeOutput(outputs)


def _registry_prompt(config: LlmConfig, settings: Any) -> tuple[str, str, tuple[Any, ...]]:
    """``(name@version, text, variables)`` of the node's registry prompt (blocking); raises
    :class:`~hanlin.errors.NotFoundError` when the registry does not have it."""
    from hanlin.prompts import prompt_library
    from hanlin.prompts.base import parse_ref

    name, version, label = parse_ref(str(config.prompt_ref))
    library = prompt_library(settings)
    if version is not None:
        found = library.get(name, version=version)
        return f"{name}@{found.version}", found.text, tuple(found.variables)
    resolved = library.resolve(name, label or settings.prompts.label)
    return resolved.ref, resolved.text, resolved.variables


def registry_turns(config: LlmConfig, settings: Any, values: dict[str, Any]) -> list[Any]:
    """The registry prompt's turns ``(role, text)`` filled with ``values`` — a plain template
    is one user message, one written as ``system:`` / ``user:`` turns is those (blocking).
    A missing, unknown or mistyped variable is an :class:`InvalidInputError` naming it."""
    from hanlin.prompts.messages import turns
    from hanlin.prompts.template import check_values, fill

    ref, text, variables = _registry_prompt(config, settings)
    checked = check_values(ref, variables, values)
    return [(role, fill(part, checked)) for role, part in turns(text)]


def registry_problems(config: LlmConfig, settings: Any) -> list[tuple[str, str]]:
    """Validation of ``prompt_ref``: its form always; with settings, that the registry has it
    and that ``variables`` name its variables and give every required one."""
    from hanlin.errors import HanlinError, NotFoundError
    from hanlin.prompts.base import parse_ref

    ref = str(config.prompt_ref)
    try:
        parse_ref(ref)
    except HanlinError as exc:
        return [(f"prompt_ref: {exc.message}", exc.hint or "")]
    if settings is None:
        return []
    try:
        _, _, variables = _registry_prompt(config, settings)
    except NotFoundError as exc:
        return [
            (
                f"prompt_ref: the prompt registry has no '{ref}' ({exc.message})",
                f"create it with `hanlin prompt create {ref.split('@')[0].split(':')[0]} "
                "--file FILE`, or fix the name (`hanlin prompt ls`)",
            )
        ]
    except (HanlinError, OSError) as exc:
        return [
            (f"prompt_ref: the prompt registry cannot be read ({exc})", "see `hanlin prompt ls`")
        ]
    declared = {v.name: v for v in variables}
    problems = [
        (
            f"variables: prompt '{ref}' has no variable '{k}'",
            f"its variables: {', '.join(declared) or 'none'}",
        )
        for k in config.variables
        if k not in declared
    ]
    problems += [
        (
            f"variables: prompt '{ref}' needs '{v.name}' ({v.type})",
            f"add `variables: {{{v.name}: …}}`",
        )
        for v in variables
        if v.required and v.name not in config.variables
    ]
    return problems


async def ask_json(
    ctx: NodeContext,
    model: str | None,
    system: str,
    prompt: str,
    schema: dict[str, Any],
    *,
    temperature: float | None = None,
    name: str = "response",
    validate: bool = True,
) -> tuple[Any, Any]:
    """One gateway call asking for JSON matching ``schema`` (``response_format``), as the
    ``llm`` node makes it: ``(the parsed answer, the gateway response)``. Raises
    :class:`InvalidInputError` when the answer is not JSON or does not match."""
    from hanlin.models.types import ChatOptions, Message, ResponseFormat

    fmt = ResponseFormat(type="json_schema", json_schema=schema, name=name)
    options = ChatOptions(temperature=temperature, response_format=fmt)
    messages = [Message.system(system), Message.user(prompt)]
    with configured_model("workflows"):
        response = await ctx.services.gateway.achat(messages, model, options)
    return parse_json(response.text, schema if validate else None), response


def parse_json(text: str, schema: dict[str, Any] | None) -> Any:
    """A model's JSON answer checked against ``schema`` (repaired when it is almost JSON; not
    checked when ``schema`` is None)."""
    import jsonschema

    from hanlin.agents.repair import repair_json

    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = repair_json(text)
        except ValueError:
            raise InvalidInputError(
                f"the model did not answer JSON: {text[:200]!r}",
                hint="use a model that supports structured output, or retry the node "
                "(retry: {max_attempts: 3})",
                params={"text": text[:4000]},
            ) from None
    if schema is None:
        return value
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        raise InvalidInputError(
            f"the model's JSON does not match output_schema: {exc.message}",
            hint="retry the node, or loosen the schema",
            params={"text": text[:4000]},
        ) from None
    return value


class RetrievalConfig(BaseModel):
    model_config = FORBID

    kbs: list[str] = Field(min_length=1)
    query: str
    k: int = Field(default=5, ge=1, le=100)
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    #: metadata filters (see docs/search.md), the same for every knowledge base
    filters: dict[str, Any] | None = None
    #: drop results below this fused score
    min_score: float | None = None


@register
class KnowledgeRetrieval(NodeType):
    name = "knowledge_retrieval"
    replayable = True  # a read: searched again if the run is killed before the next node ends
    summary = "search one or more knowledge bases (hybrid, with filters)"
    Config = RetrievalConfig
    expects: ClassVar[dict[str, str]] = {"query": "string"}

    def outputs(self, config: RetrievalConfig) -> dict[str, str]:
        return {"results": "array[object]", "text": "string", "count": "integer"}

    def check(self, config: RetrievalConfig, settings: Any) -> list[tuple[str, str]]:
        if settings is None:
            return []
        from hanlin.knowledge.kb import KnowledgeBase

        known = KnowledgeBase.names(settings)
        return [
            (f"knowledge base '{kb}' does not exist", f"create it with `hanlin kb create {kb}`")
            for kb in config.kbs
            if kb not in known
        ]

    async def run(self, ctx: NodeContext, config: RetrievalConfig) -> NodeOutput:
        query = ctx.resolve(config.query)
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(
                f"the query is empty or not text: {query!r}", hint="check the `query` reference"
            )
        filters = ctx.resolve(config.filters) if config.filters else None

        def search() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            for name in config.kbs:
                kb = ctx.services.kb(name)
                for hit in kb.search(query, k=config.k, mode=config.mode, filters=filters):
                    c = hit.chunk
                    found.append(
                        {
                            "kb": name,
                            "text": c.text,
                            "source": c.source,
                            "title": c.title,
                            "score": round(hit.score, 6),
                            "page": c.page,
                        }
                    )
            found.sort(key=lambda r: -r["score"])
            if config.min_score is not None:
                found = [r for r in found if r["score"] >= config.min_score]
            return found[: config.k]

        results = await asyncio.to_thread(search)
        text = "\n\n".join(f"[{i}] {r['text']}" for i, r in enumerate(results, 1))
        return NodeOutput({"results": results, "text": text, "count": len(results)})

"""One converter per Dify node type, registered by the type's name: each turns a node's
``data`` into a Hanlin node's settings, or raises :class:`Unsupported` with the reason."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hanlin.flows.dify.refs import Refs


class Unsupported(Exception):
    """The node cannot be converted; the message says why."""


@dataclass
class Converted:
    """A Hanlin node (``type`` and settings) and how the Dify node's edge handles map onto
    its branches (``{"<case id>": "case_1", "false": "else"}``)."""

    type: str
    config: dict[str, Any]
    handles: dict[str, str] = field(default_factory=dict)


@dataclass
class Options:
    """Choices of the person importing: one model for every model node, Dify dataset ids
    to Hanlin knowledge base names."""

    model: str | None = None
    kbs: dict[str, str] = field(default_factory=dict)


#: body(container_dify_id) → (nodes, edges) of the nodes inside an iteration or a loop
Body = Callable[[str], dict[str, Any]]
Converter = Callable[[dict[str, Any], Refs, Options, Body, str], Converted]
CONVERTERS: dict[str, Converter] = {}


def converter(*names: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        for name in names:
            CONVERTERS[name] = fn
        return fn

    return register


def model_name(model: Any, options: Options) -> str | None:
    """``provider/name`` from Dify's ``{provider, name}`` (``langgenius/openai/openai`` →
    ``openai``), unless the import names one model for all."""
    if options.model:
        return options.model
    if not isinstance(model, dict) or not model.get("name"):
        return None
    provider = str(model.get("provider") or "").rstrip("/").split("/")[-1]
    return f"{provider}/{model['name']}" if provider else str(model["name"])


_START_TYPES = {
    "text-input": "string", "paragraph": "string", "select": "string", "number": "number",
    "checkbox": "boolean", "boolean": "boolean", "json_object": "object", "file": "object",
    "file-list": "array",
}  # fmt: skip


@converter("start")
def _start(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    inputs: dict[str, Any] = {}
    for var in data.get("variables") or []:
        name, kind = var.get("variable"), var.get("type", "text-input")
        spec: dict[str, Any] = {"type": _START_TYPES.get(kind, "string")}
        if kind in ("file", "file-list"):
            refs.note(f"file input {name}: give a path or {{name, content}} instead", name)
        if not var.get("required", True):
            spec["required"] = False
            if var.get("default") not in (None, ""):
                spec["default"] = var["default"]
        if var.get("label") and var.get("label") != name:
            spec["description"] = str(var["label"])
        if var.get("options"):
            spec["description"] = (
                spec.get("description", "") + f" (one of: {', '.join(map(str, var['options']))})"
            ).strip()
        inputs[str(name)] = spec
    return Converted("start", {"inputs": inputs})


@converter("end")
def _end(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    outputs = {
        str(o.get("variable")): refs.value(o.get("value_selector"), where="outputs")
        for o in data.get("outputs") or []
    }
    return Converted("end", {"outputs": outputs})


@converter("answer")
def _answer(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    return Converted("answer", {"answer": refs.text(data.get("answer", ""), where="answer")})


@converter("llm")
def _llm(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    config: dict[str, Any] = {}
    if model := model_name(data.get("model"), opts):
        config["model"] = model
    params = (data.get("model") or {}).get("completion_params") or {}
    for key in ("temperature", "max_tokens"):
        if params.get(key) is not None:
            config[key] = params[key]
    context = None
    ctx = data.get("context") or {}
    if ctx.get("enabled") and ctx.get("variable_selector"):
        kind, found = refs.selector(ctx["variable_selector"], where="context")
        if kind == "ref" and found.endswith(".results"):  # retrieval: its numbered text
            found = found[: -len(".results")] + ".text"
        context = found if kind == "ref" else None
    template = data.get("prompt_template")
    if isinstance(template, dict):  # completion models: one text
        template = [{"role": "user", "text": template.get("text", "")}]
    messages = []
    for msg in template or []:
        if msg.get("edition_type") == "jinja2":
            refs.note("a Jinja2 prompt: written as its plain text", "prompt_template")
        text = refs.text(msg.get("text", ""), where="prompt_template", context=context)
        messages.append({"role": msg.get("role", "user"), "content": text})
    memory = data.get("memory")
    if memory:
        refs.note("chat memory (earlier turns) is not kept: a run is one turn", "memory")
        query = memory.get("query_prompt_template") or "{{#sys.query#}}"
        if not any(m["role"] == "user" for m in messages):
            messages.append({"role": "user", "content": refs.text(query, where="memory")})
    if (data.get("vision") or {}).get("enabled"):
        refs.note("vision (image inputs) is not converted", "vision")
    if messages and messages[0]["role"] == "system":
        config["system"] = messages.pop(0)["content"]
    if len(messages) == 1 and messages[0]["role"] == "user":
        config["prompt"] = messages[0]["content"]
    elif messages:
        config["messages"] = messages
    else:
        config["prompt"] = "{{" + refs.selector(["sys", "query"])[1] + "}}"
    if data.get("structured_output_enabled") and (data.get("structured_output") or {}).get(
        "schema"
    ):
        config["output_schema"] = data["structured_output"]["schema"]
    return Converted("llm", config)


@converter("knowledge-retrieval")
def _retrieval(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    ids = [str(i) for i in data.get("dataset_ids") or []]
    if not ids:
        raise Unsupported("no knowledge bases (dataset_ids) chosen")
    unmapped = [i for i in ids if i not in opts.kbs]
    if unmapped:
        refs.note(
            f"Dify dataset ids kept as knowledge base names ({', '.join(unmapped)}): map each "
            "with --kb DATASET_ID=NAME",
            "dataset_ids",
        )
    config: dict[str, Any] = {
        "kbs": [opts.kbs.get(i, i) for i in ids],
        "query": refs.value(data.get("query_variable_selector"), where="query_variable_selector"),
    }
    multiple = data.get("multiple_retrieval_config") or {}
    if multiple.get("top_k"):
        config["k"] = int(multiple["top_k"])
    if multiple.get("score_threshold_enabled", False) and multiple.get("score_threshold"):
        config["min_score"] = float(multiple["score_threshold"])
    if multiple.get("reranking_enable") or data.get("metadata_filtering_mode") not in (
        None,
        "disabled",
    ):
        refs.note("reranking and metadata filters are not converted", "retrieval config")
    return Converted("knowledge_retrieval", config)


_OPS = {
    "contains": "contains", "not contains": "not_contains", "start with": "starts_with",
    "end with": "ends_with", "is": "==", "is not": "!=", "empty": "empty",
    "not empty": "not_empty", "=": "==", "≠": "!=", "!=": "!=", ">": ">", "<": "<",
    "≥": ">=", ">=": ">=", "≤": "<=", "<=": "<=", "in": "in", "not in": "not_in",
    "null": "empty", "not null": "not_empty", "exists": "not_empty", "not exists": "empty",
}  # fmt: skip


def condition(cond: dict[str, Any], refs: Refs, where: str, var: Any = None) -> dict[str, Any]:
    op = cond.get("comparison_operator", "")
    if op not in _OPS:
        raise Unsupported(f"comparison {op!r} has no Hanlin operator")
    found: dict[str, Any] = {
        "var": var if var is not None else refs.value(cond.get("variable_selector"), where=where),
        "op": _OPS[op],
    }
    if found["op"] not in ("empty", "not_empty"):
        value = refs.text(cond.get("value"), where=where)
        if cond.get("varType") == "number" and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value) if "." in value else int(value)
        found["value"] = value
    return found


def conditions(items: list[Any], logic: str, refs: Refs, where: str) -> dict[str, Any]:
    parts = [condition(c, refs, where) for c in items]
    if len(parts) == 1:
        return parts[0]
    return {"any" if logic == "or" else "all": parts}


@converter("if-else")
def _if_else(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    cases = data.get("cases")
    if not cases:  # exports before 0.8: one condition list, handles "true"/"false"
        cases = [
            {
                "case_id": "true",
                "conditions": data.get("conditions") or [],
                "logical_operator": data.get("logical_operator", "and"),
            }
        ]
    out, handles = [], {"false": "else"}
    for i, case in enumerate(cases, 1):
        when = conditions(case.get("conditions") or [], case.get("logical_operator", "and"),
                          refs, "cases")  # fmt: skip
        out.append({"id": f"case_{i}", "when": when})
        handles[str(case.get("case_id") or case.get("id"))] = f"case_{i}"
    return Converted("if_else", {"cases": out}, handles)


@converter("question-classifier")
def _classifier(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    classes, handles = [], {}
    for i, item in enumerate(data.get("classes") or [], 1):
        classes.append({"id": f"class_{i}", "name": str(item.get("name") or f"class {i}")})
        handles[str(item.get("id"))] = f"class_{i}"
    if not classes:
        raise Unsupported("no classes")
    config: dict[str, Any] = {
        "query": refs.value(data.get("query_variable_selector"), where="query_variable_selector"),
        "classes": classes,
    }
    if model := model_name(data.get("model"), opts):
        config["model"] = model
    if data.get("instruction"):
        config["instruction"] = refs.text(data["instruction"], where="instruction")
    return Converted("question_classifier", config, handles)


_CODE_TYPES = {"string": "string", "number": "number", "boolean": "boolean", "object": "object"}


@converter("code")
def _code(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    if data.get("code_language", "python3") != "python3":
        raise Unsupported(f"{data.get('code_language')} code: Hanlin code nodes run Python")
    inputs = {
        str(v.get("variable")): refs.value(v.get("value_selector"), where="variables")
        for v in data.get("variables") or []
    }
    outputs = {}
    for name, spec in (data.get("outputs") or {}).items():
        kind = str((spec or {}).get("type", ""))
        outputs[str(name)] = "array" if kind.startswith("array") else _CODE_TYPES.get(kind, "any")
    return Converted("code", {"code": data.get("code", ""), "inputs": inputs, "outputs": outputs})


@converter("template-transform")
def _template(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    sets = ""
    for var in data.get("variables") or []:
        kind, found = refs.selector(var.get("value_selector"), where="variables")
        value = found if kind == "ref" else json.dumps(found, ensure_ascii=False)
        sets += "{% set " + str(var.get("variable")) + " = " + value + " %}"
    return Converted("template", {"template": sets + str(data.get("template", ""))})


def _pairs(text: Any) -> list[tuple[str, str]]:
    """Dify's ``"Key: value\\nKey2: value2"`` header/params text."""
    if isinstance(text, list):
        return [(str(p.get("key")), str(p.get("value", ""))) for p in text]
    found = []
    for line in str(text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            found.append((key.strip(), value.strip()))
    return found


@converter("http-request")
def _http(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    method = str(data.get("method", "get")).upper()
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise Unsupported(f"method {method}: Hanlin sends GET, POST, PUT, PATCH and DELETE")
    url = refs.text(data.get("url", ""), where="url")
    params = [(k, refs.text(v, where="params")) for k, v in _pairs(data.get("params"))]
    if params:
        url += ("&" if "?" in url else "?") + "&".join(f"{k}={v}" for k, v in params)
    headers = {k: refs.text(v, where="headers") for k, v in _pairs(data.get("headers"))}
    auth = data.get("authorization") or {}
    if auth.get("type") == "api-key":
        conf = auth.get("config") or {}
        key = refs.text(conf.get("api_key", ""), where="authorization")
        kind = conf.get("type", "bearer")
        if kind == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        elif kind == "basic":
            headers["Authorization"] = f"Basic {key}"
        else:
            headers[str(conf.get("header") or "Authorization")] = key
        refs.note("the API key is written in the workflow file: keep it out of shared files",
                  "authorization")  # fmt: skip
    config: dict[str, Any] = {"method": method, "url": url}
    spec = data.get("body") or {}
    kind, raw = spec.get("type", "none"), spec.get("data")
    if kind in ("json", "raw-text"):
        text = raw if isinstance(raw, str) else "".join(str(p.get("value", "")) for p in raw or [])
        config["body"] = refs.text(text, where="body")
        if kind == "json":
            headers.setdefault("Content-Type", "application/json")
    elif kind in ("form-data", "x-www-form-urlencoded"):
        items = _pairs(raw if isinstance(raw, list) else str(raw or ""))
        if isinstance(raw, list) and any(p.get("type") == "file" for p in raw):
            raise Unsupported("a form-data body with files")
        if kind == "form-data":
            refs.note("a form-data body is sent as JSON", "body")
            config["body"] = {k: refs.text(v, where="body") for k, v in items}
        else:
            config["body"] = "&".join(f"{k}={refs.text(v, where='body')}" for k, v in items)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif kind not in ("none", None):
        raise Unsupported(f"a {kind} body")
    if headers:
        config["headers"] = headers
    timeout = (data.get("timeout") or {}).get("max_read_timeout")
    if timeout:
        config["request_timeout_s"] = float(timeout)
    return Converted("http_request", config)


#: Dify built-in tools that a Hanlin tool does: (provider, tool) → (tool, {dify arg: arg})
TOOL_MAP: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("time", "current_time"): ("current_time", {}),
    ("maths", "eval_expression"): ("calculator", {"expression": "expression"}),
    ("tavily", "tavily_search"): ("web_search", {"query": "query"}),
    ("duckduckgo", "ddgo_search"): ("web_search", {"query": "query"}),
    ("google", "google_search"): ("web_search", {"query": "query"}),
    ("searxng", "searxng_search"): ("web_search", {"query": "query"}),
    ("webscraper", "webscraper"): ("http_get", {"url": "url"}),
}


def tool_name(item: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    provider = str(item.get("provider_id") or item.get("provider_name") or "").split("/")[-1]
    return TOOL_MAP.get((provider, str(item.get("tool_name"))))


@converter("tool")
def _tool(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    found = tool_name(data)
    if found is None:
        raise Unsupported(
            f"{data.get('provider_type', 'builtin')} tool {data.get('provider_id')}/"
            f"{data.get('tool_name')} has no Hanlin counterpart (`hanlin agent tools` lists "
            "Hanlin's; an MCP server's tools are `tool` nodes with `server:`)"
        )
    name, names = found
    arguments = {}
    for key, param in (data.get("tool_parameters") or {}).items():
        value = param.get("value") if isinstance(param, dict) else param
        if isinstance(param, dict) and param.get("type") == "variable":
            value = refs.value(value, where=f"tool_parameters.{key}")
        else:
            value = refs.text(value, where=f"tool_parameters.{key}")
        arguments[names.get(key, key)] = value
    return Converted("tool", {"tool": name, "arguments": arguments})


__all__ = ["CONVERTERS", "Converted", "Options", "Unsupported", "condition", "model_name"]

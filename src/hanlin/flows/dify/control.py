"""Converters of Dify's container, data and agent nodes: iteration, loop, variable aggregator
and assigner, list operator, document and parameter extractors, agent, human input."""

from __future__ import annotations

from typing import Any

from hanlin.flows.dify.nodes import (
    Body,
    Converted,
    Options,
    Unsupported,
    condition,
    converter,
    model_name,
    tool_name,
)
from hanlin.flows.dify.refs import Refs


@converter("iteration")
def _iteration(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    config: dict[str, Any] = {
        "items": refs.value(data.get("iterator_selector"), where="iterator_selector"),
        "body": body(nid),
        "output": refs.value(data.get("output_selector"), where="output_selector"),
    }
    if data.get("is_parallel"):
        config["parallelism"] = max(1, min(64, int(data.get("parallel_nums") or 10)))
    return Converted("iteration", config)


@converter("loop")
def _loop(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    name = refs.ids[nid]
    variables = {}
    for var in data.get("loop_variables") or []:
        value = var.get("value")
        if var.get("value_type") == "variable":
            value = refs.value(value, where="loop_variables")
        variables[str(var.get("label"))] = value
    graph = body(nid)
    # Dify updates loop variables with assigner nodes inside the body: Hanlin's `update`
    update: dict[str, Any] = graph.pop("update", {})
    until: Any = "false"
    breaks = data.get("break_conditions") or []
    if breaks:
        parts = []
        for cond in breaks:
            sel = cond.get("variable_selector") or []
            var = None
            if sel and str(sel[0]) == nid:  # a loop variable: read as the loop's output
                var = "{{" + name + "." + str(sel[1]) + "}}"
            parts.append(condition(cond, refs, "break_conditions", var))
        logic = "any" if data.get("logical_operator") == "or" else "all"
        until = parts[0] if len(parts) == 1 else {logic: parts}
    config = {
        "variables": variables,
        "body": graph,
        "update": update,
        "until": until,
        "max_iterations": max(1, int(data.get("loop_count") or 10)),
        "on_max": "stop",  # Dify ends a loop at its count without failing
    }
    return Converted("loop", config)


@converter("variable-aggregator", "variable-assigner")
def _aggregator(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    settings = data.get("advanced_settings") or {}
    if settings.get("group_enabled"):
        raise Unsupported("aggregation groups: split it into one variable_aggregator per group")
    found = [refs.value(sel, where="variables") for sel in data.get("variables") or []]
    if not found:
        raise Unsupported("no variables to aggregate")
    return Converted("variable_aggregator", {"variables": found})


@converter("assigner")
def _assigner(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    raise Unsupported(
        "it writes conversation variables, which Hanlin workflows do not keep between runs "
        "(inside a loop, assignments to loop variables become the loop's `update`)"
    )


_LIST_OPS = {"contains", "not contains", "start with", "end with", "is", "is not", "in",
             "not in", "empty", "not empty", "=", "≠", ">", "<", "≥", "≤"}  # fmt: skip


@converter("list-operator")
def _list(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    config: dict[str, Any] = {"items": refs.value(data.get("variable"), where="variable")}
    filt = data.get("filter_by") or {}
    if filt.get("enabled"):
        items = []
        for cond in filt.get("conditions") or []:
            if cond.get("comparison_operator") not in _LIST_OPS:
                raise Unsupported(f"filter {cond.get('comparison_operator')!r}")
            made = condition({**cond, "variable_selector": None}, refs, "filter_by", var="")
            made.pop("var")
            if cond.get("key"):
                made["field"] = str(cond["key"])
            items.append(made)
        config["filter"] = items
    order = data.get("order_by") or {}
    if order.get("enabled"):
        config["sort"] = {"order": "desc" if order.get("value") == "desc" else "asc"}
        if order.get("key"):
            config["sort"]["field"] = str(order["key"])
    limit = data.get("limit") or {}
    if limit.get("enabled"):
        config["limit"] = int(limit.get("size") or 0)
    extract = data.get("extract_by") or {}
    if extract.get("enabled"):
        config["index"] = int(str(extract.get("serial") or "1")) - 1
    return Converted("list_operator", config)


@converter("document-extractor")
def _documents(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    refs.note("files are paths or {name, content} objects in Hanlin, not Dify file objects",
              "variable_selector")  # fmt: skip
    return Converted("document_extractor", {"files": refs.value(data.get("variable_selector"))})


_PARAM_TYPES = {"string": "string", "number": "number", "bool": "boolean", "boolean": "boolean",
                "select": "string", "array[string]": "array[string]",
                "array[number]": "array[number]", "array[object]": "array[object]",
                "array[bool]": "array", "object": "object"}  # fmt: skip


@converter("parameter-extractor")
def _extractor(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    params = []
    for p in data.get("parameters") or []:
        spec: dict[str, Any] = {
            "name": str(p.get("name")),
            "type": _PARAM_TYPES.get(str(p.get("type")), "string"),
        }
        if p.get("description"):
            spec["description"] = str(p["description"])
        if p.get("required") is False:
            spec["required"] = False
        if p.get("options"):
            spec["options"] = list(p["options"])
        params.append(spec)
    if not params:
        raise Unsupported("no parameters")
    config: dict[str, Any] = {"query": refs.value(data.get("query"), where="query"),
                              "parameters": params}  # fmt: skip
    if model := model_name(data.get("model"), opts):
        config["model"] = model
    if data.get("instruction"):
        config["instruction"] = refs.text(data["instruction"], where="instruction")
    return Converted("parameter_extractor", config)


def _param(params: dict[str, Any], name: str) -> Any:
    found = params.get(name)
    return found.get("value") if isinstance(found, dict) else found


@converter("agent")
def _agent(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    params = data.get("agent_parameters") or {}
    strategy = str(data.get("agent_strategy_name") or "")
    if strategy and strategy not in ("function_calling", "ReAct"):
        raise Unsupported(f"agent strategy {strategy!r} (a Dify plugin)")
    tools, missing = [], []
    for item in _param(params, "tools") or []:
        found = tool_name(item) if isinstance(item, dict) else None
        if found is None:
            missing.append(str(item.get("tool_name") if isinstance(item, dict) else item))
        else:
            tools.append(found[0])
    if missing:
        refs.note(f"tools without a Hanlin counterpart left out: {', '.join(missing)}", "tools")
    spec: dict[str, Any] = {
        "system": refs.text(_param(params, "instruction") or "", where="instruction")
    }
    if tools:
        spec["tools"] = tools
    if _param(params, "maximum_iterations"):
        spec["limits"] = {"max_steps": int(_param(params, "maximum_iterations"))}
    config: dict[str, Any] = {
        "agent": spec,
        "task": refs.text(_param(params, "query") or "{{#sys.query#}}", where="query"),
    }
    if model := model_name(_param(params, "model"), opts):
        config["model"] = model
    return Converted("agent", config)


@converter("human-input")
def _human(data: dict[str, Any], refs: Refs, opts: Options, body: Body, nid: str) -> Converted:
    prompt = data.get("form_content") or data.get("prompt") or data.get("title") or "Approve?"
    if data.get("inputs") or data.get("user_actions"):
        refs.note("form fields and actions are not converted: an approve form", "form")
    return Converted("human_input", {"kind": "approve", "prompt": refs.text(str(prompt))})


__all__: list[str] = []

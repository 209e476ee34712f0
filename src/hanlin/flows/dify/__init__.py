"""Import a Dify app's DSL export (a workflow or a chatflow) as a Hanlin workflow.

:func:`import_dify` reads the YAML Dify exports (``kind: app``, ``app: {mode, name}``,
``workflow: {graph: {nodes, edges}}``), converts each node with the converter registered for
its type (:mod:`.nodes`, :mod:`.control`), maps Dify's references and edge handles, and names
every node or field it could not carry over with the reason; it fails only for input that is
not a Dify workflow app. See docs/workflows.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from hanlin.errors import InvalidInputError
from hanlin.flows.base import WORKFLOW_NAME
from hanlin.flows.dify import control as _control  # noqa: F401 - registers its converters
from hanlin.flows.dify.nodes import CONVERTERS, Options, Unsupported
from hanlin.flows.dify.refs import Note, Refs

#: Dify app modes that are graphs (``advanced-chat`` is a chatflow)
MODES = ("workflow", "advanced-chat")
_CONTAINER_STARTS = ("iteration-start", "loop-start")
_SUPPORTED = (
    "a Dify workflow or chatflow export (app mode workflow or advanced-chat, with "
    "`workflow: {graph: …}`): in Dify, open the app and choose Export DSL"
)


@dataclass
class DifyImport:
    """A converted app: the Hanlin definition (YAML's shape) and what was not carried over
    (``unconverted``: whole nodes, each left in the definition as an ``unconverted`` node;
    ``notes``: fields)."""

    definition: dict[str, Any]
    mode: str
    unconverted: list[Note] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.definition, sort_keys=False, allow_unicode=True)


def _bad(message: str) -> InvalidInputError:
    return InvalidInputError(message, hint=f"give {_SUPPORTED}", code="dify_import_invalid")


def parse_app(text: str) -> dict[str, Any]:
    """The app of a Dify DSL export; raises InvalidInputError saying what is supported."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _bad(f"not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("app"), dict):
        raise _bad("not a Dify app export (no `app:` section)")
    if data.get("kind", "app") != "app":
        raise _bad(f"not a Dify app export (kind: {data.get('kind')!r})")
    mode = data["app"].get("mode")
    if mode not in MODES:
        raise _bad(
            f"a Dify {mode!r} app is not a workflow: only workflow and chatflow "
            "(advanced-chat) apps are graphs Hanlin can import"
        )
    graph = (data.get("workflow") or {}).get("graph")
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
        raise _bad("the export has no `workflow.graph.nodes`")
    return data


def workflow_name(app: dict[str, Any], fallback: str = "dify-app") -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(app.get("name") or "")).strip("-._")
    return name if name and WORKFLOW_NAME.fullmatch(name) else fallback


def import_dify(
    text: str,
    *,
    name: str | None = None,
    model: str | None = None,
    kbs: dict[str, str] | None = None,
) -> DifyImport:
    """Convert a Dify DSL export. ``model`` replaces every model it names; ``kbs`` maps Dify
    dataset ids to Hanlin knowledge base names. Raises InvalidInputError only for input that
    is not a Dify workflow or chatflow."""
    data = parse_app(text)
    app, wf = data["app"], data["workflow"]
    options = Options(model=model, kbs=dict(kbs or {}))
    refs = Refs()
    for var in wf.get("environment_variables") or []:
        secret = var.get("value_type") == "secret"
        refs.env[str(var.get("name"))] = (None if secret else var.get("value"), secret)
    for var in wf.get("conversation_variables") or []:
        refs.conversation[str(var.get("name"))] = var.get("value")

    raw = [
        n for n in wf["graph"]["nodes"] if isinstance(n, dict) and isinstance(n.get("data"), dict)
    ]
    nodes = {str(n["id"]): n for n in raw if n["data"].get("type")}  # notes have no type
    parent = {nid: _parent(n) for nid, n in nodes.items()}
    for nid, node in nodes.items():
        kind = str(node["data"]["type"])
        if kind in _CONTAINER_STARTS:
            continue
        hid = refs.name(nid, str(node["data"].get("title") or ""), kind)
        if kind == "start":
            refs.start = hid
        if kind == "document-extractor" and node["data"].get("is_array_file"):
            refs.types[nid] = "document-extractor[]"
    edges = [e for e in wf["graph"].get("edges") or [] if isinstance(e, dict)]
    converted: dict[str, dict[str, Any]] = {}
    handles: dict[str, dict[str, str]] = {}
    unconverted: list[Note] = []

    def convert(nid: str) -> dict[str, Any]:
        node_data = nodes[nid]["data"]
        kind, title = str(node_data["type"]), str(node_data.get("title") or "")
        hid = refs.ids[nid]
        refs.current = (hid, title, kind)
        fn = CONVERTERS.get(kind)
        try:
            if fn is None:
                raise Unsupported(f"Dify node type {kind!r} has no Hanlin counterpart")
            made = fn(node_data, refs, options, body, nid)
        except Unsupported as exc:
            unconverted.append(Note(hid, title, kind, str(exc)))
            return {"id": hid, "type": "unconverted", "title": title, "dify_type": kind,
                    "reason": str(exc), "dify": _plain(node_data)}  # fmt: skip
        handles[nid] = made.handles
        out: dict[str, Any] = {"id": hid, "type": made.type}
        if title and title != hid:
            out["title"] = title
        out.update(_policies(node_data, refs))
        out.update(made.config)
        return out

    def body(container: str) -> dict[str, Any]:
        inner = [nid for nid in nodes if parent[nid] == container]
        members = [nid for nid in inner if nodes[nid]["data"]["type"] not in _CONTAINER_STARTS]
        update, taken = _loop_updates(container, refs, nodes, members)
        members = [nid for nid in members if nid not in taken]
        out: dict[str, Any] = {"nodes": [convert(nid) for nid in _ordered(members, edges)]}
        inner_edges = _edges(edges, set(members), refs, handles)
        if any("." in e.split(" -> ")[0] for e in inner_edges):  # branches: keep the edges
            out["edges"] = inner_edges
        if update:
            out["update"] = update
        return out

    top = [nid for nid in nodes if parent[nid] is None and nodes[nid]["data"]["type"] not in
           _CONTAINER_STARTS]  # fmt: skip
    for nid in _ordered(top, edges):
        converted[nid] = convert(nid)
    starts = [n for n in converted.values() if n["type"] == "start"]
    if not starts:
        unconverted.append(Note("", "", "", "the app has no start node"))
    elif refs.inputs:
        inputs = starts[0].setdefault("inputs", {})
        for key, spec in refs.inputs.items():
            inputs.setdefault(key, spec)
    definition: dict[str, Any] = {"name": name or workflow_name(app)}
    if app.get("description"):
        definition["description"] = str(app["description"])
    definition["nodes"] = list(converted.values())
    definition["edges"] = _edges(edges, set(top), refs, handles)
    return DifyImport(definition, str(app["mode"]), unconverted, refs.notes)


def _parent(node: dict[str, Any]) -> str | None:
    data = node["data"]
    found = node.get("parentId") or data.get("iteration_id") or data.get("loop_id")
    if not found and not (data.get("isInIteration") or data.get("isInLoop")):
        return None
    return str(found) if found else None


def _ordered(members: list[str], edges: list[dict[str, Any]]) -> list[str]:
    """``members`` in an order where every edge's source comes first (ties: as listed)."""
    inside = set(members)
    incoming = {m: 0 for m in members}
    after: dict[str, list[str]] = {m: [] for m in members}
    for e in edges:
        s, t = str(e.get("source")), str(e.get("target"))
        if s in inside and t in inside:
            incoming[t] += 1
            after[s].append(t)
    ready = [m for m in members if incoming[m] == 0]
    order: list[str] = []
    while ready:
        m = ready.pop(0)
        order.append(m)
        for t in after[m]:
            incoming[t] -= 1
            if incoming[t] == 0:
                ready.append(t)
    return order + [m for m in members if m not in order]  # a cycle: left as listed


def _edges(
    edges: list[dict[str, Any]], members: set[str], refs: Refs, handles: dict[str, dict[str, str]]
) -> list[str]:
    out = []
    for e in edges:
        s, t = str(e.get("source")), str(e.get("target"))
        if s not in members or t not in members or s not in refs.ids or t not in refs.ids:
            continue
        handle = str(e.get("sourceHandle") or "source")
        if handle == "fail-branch":
            branch: str | None = "error"
        elif handle == "source":
            branch = None
        else:
            branch = handles.get(s, {}).get(handle, handle)
        left = f"{refs.ids[s]}.{branch}" if branch else refs.ids[s]
        line = f"{left} -> {refs.ids[t]}"
        if line not in out:
            out.append(line)
    return out


def _policies(data: dict[str, Any], refs: Refs) -> dict[str, Any]:
    """Dify's per-node retry and error strategy as Hanlin's ``retry`` and ``on_error``."""
    out: dict[str, Any] = {}
    retry = data.get("retry_config") or {}
    if retry.get("retry_enabled"):
        out["retry"] = {
            "max_attempts": min(20, int(retry.get("max_retries") or 1) + 1),
            "backoff_s": float(retry.get("retry_interval") or 1000) / 1000,
        }
    strategy = data.get("error_strategy")
    if strategy == "fail-branch":
        out["on_error"] = "branch"
    elif strategy == "default-value":
        out["on_error"] = "default"
        out["default"] = {
            str(d.get("key")): d.get("value") for d in data.get("default_value") or []
        }
    return out


def _loop_updates(
    container: str, refs: Refs, nodes: dict[str, dict[str, Any]], members: list[str]
) -> tuple[dict[str, Any], set[str]]:
    """Assigner nodes in a loop's body that set its loop variables: the loop's ``update``,
    and the nodes (which leave the body)."""
    update: dict[str, Any] = {}
    taken: set[str] = set()
    for nid in members:
        data = nodes[nid]["data"]
        items = data.get("items") or []
        if data["type"] != "assigner" or not items:
            continue
        if any(str((i.get("variable_selector") or [""])[0]) != container for i in items):
            continue
        for item in items:
            value = item.get("value")
            if item.get("input_type", "variable") == "variable":
                value = refs.value(value, where="items")
            update[str(item["variable_selector"][1])] = value
        taken.add(nid)
    return update, taken


def _plain(value: Any) -> Any:
    """The Dify node's data without its canvas state (kept for reference)."""
    if isinstance(value, dict):
        skip = {"selected", "desc", "height", "width", "position", "positionAbsolute"}
        return {k: _plain(v) for k, v in value.items() if k not in skip}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


__all__ = ["MODES", "DifyImport", "import_dify", "parse_app"]

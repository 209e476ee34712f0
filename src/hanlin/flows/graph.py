"""Checking a workflow before it runs, and the checked form the engine walks.

Every problem is collected (not just the first) with the node it is in and how to fix it:
unknown node types, settings that break their type's model, edges to nodes that do not exist,
branches that name no case, cycles (repetition is a ``loop`` node), nodes no path reaches,
references to nodes that do not run before the reader or to outputs they do not have, and
references whose type does not fit (a text where a list is needed).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

import hanlin.flows.refs as refs
from hanlin.config import Settings
from hanlin.errors import HanlinError, did_you_mean
from hanlin.flows.base import (
    NODE_ID,
    EdgeSpec,
    GraphSpec,
    NodeSpec,
    WorkflowInvalidError,
    WorkflowSpec,
)
from hanlin.flows.nodes import NODES, NodeType
from hanlin.flows.nodes.base import compatible

Problem = tuple[str | None, str, str]
#: names a template may use that are not nodes (Jinja's globals)
_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace", "loop"})


@dataclass
class Graph:
    """A checked graph: nodes in an order where every node comes after its predecessors."""

    spec: GraphSpec
    nodes: dict[str, NodeSpec]
    configs: dict[str, BaseModel]
    types: dict[str, NodeType]
    edges: list[EdgeSpec]
    order: list[str]
    incoming: dict[str, list[EdgeSpec]] = field(default_factory=dict)
    bodies: dict[int, Graph] = field(default_factory=dict)  # id(body spec) → its graph

    def descendants(self, node: str) -> set[str]:
        found: set[str] = set()
        todo = [node]
        while todo:
            current = todo.pop()
            for e in self.edges:
                if e.source == current and e.target not in found:
                    found.add(e.target)
                    todo.append(e.target)
        return found


def check_workflow(spec: GraphSpec, name: str, settings: Settings | None = None) -> Graph:
    """The checked graph of a workflow; raises :class:`WorkflowInvalidError` listing every
    problem. With ``settings``, what they name is checked too (knowledge bases exist)."""
    problems: list[Problem] = []
    graph = _compile(spec, problems, top=True, outer={}, settings=settings)
    if isinstance(spec, WorkflowSpec) and spec.triggers:
        from hanlin.flows.triggers import trigger_problems

        problems.extend(trigger_problems(spec, graph))
    if problems:
        raise WorkflowInvalidError(name, problems)
    assert graph is not None
    return graph


def _compile(
    spec: GraphSpec,
    problems: list[Problem],
    *,
    top: bool,
    outer: Mapping[str, dict[str, str] | None],
    settings: Settings | None,
) -> Graph | None:
    nodes: dict[str, NodeSpec] = {}
    configs: dict[str, BaseModel] = {}
    types: dict[str, NodeType] = {}
    if not spec.nodes:
        problems.append((None, "there are no nodes", "add a start node and an end node"))
        return None
    for node in spec.nodes:
        if not NODE_ID.fullmatch(node.id):
            problems.append(
                (node.id, "invalid id", "use letters, digits and '_', starting with a letter")
            )
            continue
        if node.id in nodes or node.id in outer:
            problems.append((node.id, "the id is used twice", "give every node its own id"))
            continue
        nodes[node.id] = node
        try:
            kind = NODES.lookup(node.type)
        except HanlinError as exc:
            problems.append((node.id, f"unknown node type '{node.type}'", exc.hint or ""))
            continue
        try:
            configs[node.id] = kind.Config.model_validate(node.config)
        except ValidationError as exc:
            for err in exc.errors()[:5]:
                where = ".".join(str(p) for p in err["loc"]) or "settings"
                fix = f"see the {node.type} node in docs/workflows.md"
                if err["type"] == "extra_forbidden":
                    allowed = ", ".join(kind.Config.model_fields)
                    fix = f"{did_you_mean(str(err['loc'][-1]), kind.Config.model_fields)}" + (
                        f"a {node.type} node takes: {allowed}"
                    )
                problems.append((node.id, f"{where}: {err['msg']}", fix))
            continue
        types[node.id] = kind
        if node.on_error == "default" and node.default is None:
            problems.append(
                (node.id, "on_error: default without `default`", "add `default: {output: …}`")
            )
        for message, fix in kind.check(configs[node.id], settings):
            problems.append((node.id, message, fix))
    edges = _edges(spec, nodes, configs, types, problems)
    starts = [n for n in nodes.values() if n.type == "start"]
    if top and len(starts) != 1:
        problems.append((None, f"{len(starts)} start nodes", "a workflow has exactly one start"))
    if not top and starts:
        problems.append((starts[0].id, "a start node inside a body", "remove it"))
    order = _order(nodes, edges, problems)
    if order is None:
        return None
    graph = Graph(spec, nodes, configs, types, edges, order)
    graph.incoming = {n: [e for e in edges if e.target == n] for n in nodes}
    for n in order:
        if not graph.incoming[n] and top and nodes[n].type != "start":
            problems.append(
                (n, "no edge leads here, so it never runs", f"add an edge 'some_node -> {n}'")
            )
    _check_references(graph, problems, outer, settings)
    return graph


def _edges(
    spec: GraphSpec,
    nodes: dict[str, NodeSpec],
    configs: dict[str, BaseModel],
    types: dict[str, NodeType],
    problems: list[Problem],
) -> list[EdgeSpec]:
    branching = {
        n: types[n].handles(configs[n]) for n in types if types[n].handles(configs[n]) is not None
    }
    if spec.edges is None:
        for n in [*branching, *(n.id for n in spec.nodes if n.on_error == "branch")]:
            problems.append(
                (
                    n,
                    "it branches, so the workflow needs `edges`",
                    f"list edges like '{n}.<branch> -> next'",
                )
            )
        ids = [n.id for n in spec.nodes if n.id in nodes]
        return [EdgeSpec(source=a, target=b) for a, b in itertools.pairwise(ids)]
    edges = []
    for e in spec.edges:
        bad = [end for end in (e.source, e.target) if end not in nodes]
        for end in bad:
            problems.append(
                (
                    None,
                    f"edge '{e}' points to no node '{end}'",
                    did_you_mean(end, nodes) + "fix the edge",
                )
            )
        if bad:
            continue
        handles = list(branching.get(e.source) or [])
        if nodes[e.source].on_error == "branch":
            handles.append("error")
        if e.handle is None and e.source in branching:
            problems.append(
                (
                    e.source,
                    f"edge '{e}' names no branch",
                    f"write '{e.source}.<{'|'.join(handles)}> -> {e.target}'",
                )
            )
        elif e.handle is not None and e.handle not in handles:
            fix = (
                f"use one of: {', '.join(handles)}"
                if handles
                else f"write '{e.source} -> {e.target}'"
                + (" (or set on_error: branch)" if e.handle == "error" else "")
            )
            problems.append((e.source, f"edge '{e}': no branch '{e.handle}'", fix))
        edges.append(e)
    for n, node in nodes.items():
        if node.on_error == "branch" and not any(
            e.source == n and e.handle == "error" for e in edges
        ):
            problems.append(
                (n, "on_error: branch without an error edge", f"add '{n}.error -> handler'")
            )
    return edges


def _order(
    nodes: dict[str, NodeSpec], edges: list[EdgeSpec], problems: list[Problem]
) -> list[str] | None:
    """Kahn's order, ties in listed order; a cycle is a problem."""
    indegree = {n: 0 for n in nodes}
    for e in edges:
        indegree[e.target] += 1
    order: list[str] = []
    ready = [n for n in nodes if indegree[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for e in edges:
            if e.source == n:
                indegree[e.target] -= 1
                if indegree[e.target] == 0:
                    ready.append(e.target)
    if len(order) < len(nodes):
        stuck = [n for n in nodes if n not in order]
        problems.append(
            (stuck[0], f"edges form a cycle through {', '.join(stuck)}",
             "remove the edge back; repeat work with a `loop` node (exit condition + max)")
        )  # fmt: skip
        return None
    return order


def _ancestors(graph: Graph, node: str) -> set[str]:
    found, todo = set(), [node]
    while todo:
        for e in graph.incoming.get(todo.pop(), []):
            if e.source not in found:
                found.add(e.source)
                todo.append(e.source)
    return found


def _check_references(
    graph: Graph,
    problems: list[Problem],
    outer: Mapping[str, dict[str, str] | None],
    settings: Settings | None,
) -> None:
    outputs = {n: graph.types[n].outputs(graph.configs[n]) for n in graph.types}
    for n, declared in outputs.items():
        if declared is not None and graph.nodes[n].on_error != "fail":
            declared["error"] = "string"  # what an error branch or a default run reads
    for n in graph.order:
        if n not in graph.types:
            continue
        kind, config = graph.types[n], graph.configs[n]
        visible: dict[str, dict[str, str] | None] = dict(outer)
        visible.update({a: outputs.get(a) for a in _ancestors(graph, n)})
        own = kind.body_scope(config)
        if own or kind.bodies(config):
            visible[n] = own
        body_nodes: dict[str, dict[str, str] | None] = {}
        for body in kind.bodies(config):
            inner = _compile(body, problems, top=False, outer=visible, settings=settings)
            if inner is not None:
                graph.bodies[id(body)] = inner
                body_nodes.update(
                    {b: inner.types[b].outputs(inner.configs[b]) for b in inner.types}
                )
        try:
            found = kind.references(config)
        except (refs.TemplateError, ValueError) as exc:
            problems.append((n, str(exc).split("\n")[0], "fix the template"))
            continue
        for where, name, attr in found:
            scope = (
                {**visible, **body_nodes}
                if where.split(".")[0] in ("output", "update")
                else visible
            )
            problem = _reference_problem(graph, n, where, name, attr, scope)
            if problem:
                problems.append(problem)
        for where, expected in kind.expects.items():
            path = refs.whole_ref(getattr(config, where, None))
            if path is None or len(path) < 2 or path[0] not in visible:
                continue
            actual = (visible[path[0]] or {}).get(path[1]) if len(path) == 2 else None
            if actual and not compatible(actual, expected):
                problems.append(
                    (n, f"{where} needs {expected}, but {{{{{'.'.join(path)}}}}} is {actual}",
                     f"point {where} at a {expected} output")
                )  # fmt: skip


def _reference_problem(
    graph: Graph,
    node: str,
    where: str,
    name: str,
    attr: str | None,
    visible: Mapping[str, dict[str, str] | None],
) -> Problem | None:
    shown = f"{{{{{name}.{attr}}}}}" if attr else f"{{{{{name}}}}}"
    if name in visible:
        known = visible[name]
        if attr is None or known is None or attr in known:
            return None
        listed = ", ".join(known) or "none"
        return (
            node,
            f"{where} reads {shown}, but '{name}' has no output '{attr}' (it has: {listed})",
            did_you_mean(attr, known) + f"use one of {name}'s outputs",
        )
    if name in _GLOBALS:
        return None
    if name in graph.nodes:
        return (
            node,
            f"{where} reads {shown}, but '{name}' does not run before '{node}'",
            f"add edges so that '{name}' comes before '{node}', or read a node upstream",
        )
    return (
        node,
        f"{where} reads {shown}, but there is no node '{name}'",
        did_you_mean(name, list(visible)) + "reference an upstream node's id",
    )


def workflow_outputs(graph: Graph, state: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs of a finished run: those of the end and answer nodes that ran."""
    found: dict[str, Any] = {}
    for n in graph.order:
        if graph.nodes[n].type in ("end", "answer") and n in state:
            found.update(state[n])
    return found

"""The node plug-in point: :class:`NodeType` (a settings model, typed outputs, ``run``) and the
registry ``NODES`` over the ``hanlin.workflow_nodes`` entry-point group, where the built-in
types register exactly like a third party's.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

import hanlin.flows.refs as refs
from hanlin.config import Settings
from hanlin.flows.base import GraphSpec, NodeSpec, PendingInput
from hanlin.registry import Registry

if TYPE_CHECKING:
    from hanlin.flows.events import FlowEvent
    from hanlin.flows.store import FlowStore
    from hanlin.knowledge.kb import KnowledgeBase
    from hanlin.knowledge.parsing import ParsePool
    from hanlin.models.gateway import Gateway

FORBID = ConfigDict(extra="forbid")

#: the value types outputs and inputs are declared with
TYPES = ("string", "number", "integer", "boolean", "object", "array", "any")


def compatible(actual: str, expected: str) -> bool:
    """Whether a value declared ``actual`` may go where ``expected`` is needed."""
    a, e = actual.split("[")[0], expected.split("[")[0]
    return "any" in (a, e) or a == e or (a == "integer" and e == "number")


def type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "any"


@dataclass(slots=True)
class NodeOutput:
    """What a node produced, and the branch it takes (None: its single way out)."""

    outputs: dict[str, Any]
    branch: str | None = None


class PauseRun(Exception):
    """Raised by a human-input node that has no answer yet: the run stops, paused."""

    def __init__(self, pending: PendingInput) -> None:
        super().__init__(f"waiting for input at {pending.node}")
        self.pending = pending


class Services:
    """What nodes share within one engine: settings, the gateway (made on first use), open
    knowledge bases, the store, and how to find another workflow by name."""

    def __init__(
        self,
        settings: Settings,
        store: FlowStore,
        gateway: Gateway | None = None,
        find_workflow: Callable[[str], GraphSpec] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._gateway = gateway
        self._own_gateway = gateway is None
        self._kbs: dict[str, KnowledgeBase] = {}
        self._parser: ParsePool | None = None
        self._lock = threading.Lock()
        self.find_workflow = find_workflow
        #: ``tool`` nodes' built tools, by node, tool, options and caller
        self.tools: dict[str, Any] = {}

    @property
    def gateway(self) -> Gateway:
        with self._lock:
            if self._gateway is None:
                from hanlin.models.gateway import Gateway

                self._gateway = Gateway(self.settings)
            return self._gateway

    def kb(self, name: str) -> KnowledgeBase:
        """An open knowledge base, kept for the engine's life (call from a worker thread)."""
        with self._lock:
            if name not in self._kbs:
                from hanlin.knowledge.kb import KnowledgeBase

                self._kbs[name] = KnowledgeBase(name, self.settings)
            return self._kbs[name]

    @property
    def parser(self) -> ParsePool:
        """The knowledge bases' file parser (worker processes under the ``knowledge.parse_*``
        limits), started on first use and kept for the engine's life."""
        with self._lock:
            if self._parser is None:
                from hanlin.knowledge.parsing import ParseLimits, ParsePool

                self._parser = ParsePool(ParseLimits.from_settings(self.settings.knowledge))
            return self._parser

    def close(self) -> None:
        self.tools.clear()
        if self._parser is not None:
            self._parser.close()
            self._parser = None
        for kb in self._kbs.values():
            kb.close()
        self._kbs.clear()
        if self._own_gateway and self._gateway is not None:
            self._gateway.close()
            self._gateway = None


#: ``run_body(graph, scope, path, inputs)`` runs a nested graph and returns its final scope
BodyRunner = Callable[[GraphSpec, dict[str, Any], str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(slots=True)
class NodeContext:
    """One node's view of its run: variables in scope, where it is, and what it may use."""

    run_id: str
    path: str
    node: NodeSpec
    scope: dict[str, Any]
    services: Services
    emit: Callable[[FlowEvent], Awaitable[None]]
    run_body: BodyRunner
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and resumes of this node in this run (sent as a header by
        HTTP nodes, so a receiving service can drop a request repeated after a crash)."""
        return f"{self.run_id}:{self.path}"

    def resolve(self, value: Any) -> Any:
        return refs.resolve(value, self.scope)

    def render(self, text: str) -> str:
        return refs.render(text, self.scope)

    def recorded(self, key: str) -> dict[str, Any] | None:
        """``{"value": …}`` recorded for this run under ``key`` (an answer, an item's result),
        or None when nothing is."""
        return self.services.store.get_effect(self.run_id, key)

    def record(self, key: str, value: Any) -> None:
        self.services.store.record_effect(self.run_id, key, {"value": value})


class NodeType:
    """A kind of node. Subclasses set ``name``, ``Config`` (pydantic, extra="forbid") and
    ``run``; the rest refines validation:

    - ``outputs(config)``: output name → type (None when only known at run time);
    - ``expects``: config field → the type a whole reference there must have;
    - ``handles(config)``: the branches its edges must name (None: one way out);
    - ``bodies(config)`` / ``body_scope(config)``: nested graphs and the variables they see
      under the node's id;
    - ``side_effects``: its result is recorded before the run moves on, and a resumed run
      replays the record instead of running the node again;
    - ``replayable``: it is quick and acts on nothing outside the run (a branch, a template):
      its step is checkpointed in the next node's transaction, and a run killed before that
      computes it again on resume.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]]
    expects: ClassVar[dict[str, str]] = {}
    side_effects: ClassVar[bool] = False
    replayable: ClassVar[bool] = False

    def outputs(self, config: Any) -> dict[str, str] | None:
        return {}

    def handles(self, config: Any) -> list[str] | None:
        return None

    def bodies(self, config: Any) -> list[GraphSpec]:
        return []

    def body_scope(self, config: Any) -> dict[str, str]:
        return {}

    def check(self, config: Any, settings: Settings | None) -> list[tuple[str, str]]:
        """Extra static problems ``(message, fix)`` (a missing knowledge base …)."""
        return []

    def references(self, config: Any) -> list[tuple[str, str, str | None]]:
        """``(field, node, output)`` for every variable the settings read (nested ``body``
        graphs are checked on their own)."""
        found = []
        for name, value in config.model_dump(by_alias=True).items():
            if name == "body":
                continue
            for where, text in refs.strings(value, name):
                if refs.is_template(text):
                    found += [(where, n, f) for n, f in refs.references(text)]
        return found

    async def run(self, ctx: NodeContext, config: Any) -> NodeOutput:
        raise NotImplementedError


#: node types by name; a package adds one through the ``hanlin.workflow_nodes`` entry points
NODES: Registry[NodeType] = Registry(
    "workflow node type", "hanlin.workflow_nodes", hint="`hanlin workflow nodes` lists them"
)


def register(cls: type[NodeType]) -> type[NodeType]:
    """Class decorator: register one instance of a node type under its ``name``."""
    NODES.register(cls.name, cls())
    return cls


def declared(values: Mapping[str, Any], known: Mapping[str, str] | None = None) -> dict[str, str]:
    """Output types of a mapping of values: a whole reference takes the referenced output's
    type when ``known`` (``node.field`` → type) has it, else ``any``; literals their own."""
    found: dict[str, str] = {}
    for key, value in values.items():
        path = refs.whole_ref(value)
        if path is not None:
            found[key] = (known or {}).get(".".join(path[:2]), "any")
        elif refs.is_template(value):
            found[key] = "string"
        else:
            found[key] = type_of(value)
    return found

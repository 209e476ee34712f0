"""What a Dify DSL refers to, in Hanlin's terms: node ids (Dify's are timestamps, Hanlin's are
the names templates read), value selectors (``["1711528914102", "text"]``) and variable
references in text (``{{#1711528914102.text#}}``), with Dify's output names mapped to Hanlin's
and ``sys.*``, ``env.*`` and ``conversation.*`` variables made start inputs or constants."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from hanlin.flows.base import NODE_ID

#: ``{{#node.field#}}`` / ``{{#sys.query#}}`` / ``{{#context#}}``
DIFY_REF = re.compile(r"\{\{#([^#{}]+?)#\}\}")
#: Dify output names that Hanlin calls otherwise, by Dify node type
OUTPUT_NAMES: dict[str, dict[str, str]] = {
    "knowledge-retrieval": {"result": "results"},
    "http-request": {"status_code": "status"},
    "tool": {"text": "result", "json": "data"},
    "llm": {"structured_output": "structured"},
    "agent": {"text": "answer"},
    # a document extractor over a list of files: one text per file
    "document-extractor[]": {"text": "texts"},
}
#: names a node id may not take: Jinja's keywords and globals, Python's keywords
_JINJA_NAMES = (
    "range dict lipsum cycler joiner namespace loop true false none is in not and or if else "
    "for set block with self item index"
)
_RESERVED = frozenset(_JINJA_NAMES.split()) | frozenset(keyword.kwlist)


@dataclass
class Note:
    """A node (or one of its fields) the import could not carry over as it was."""

    node: str  # the Hanlin id ("" for the app as a whole)
    title: str
    dify_type: str
    reason: str
    field: str | None = None  # None: the whole node was not converted

    def line(self) -> str:
        where = f"{self.node} ({self.dify_type}, {self.title!r})" if self.node else "app"
        what = f"field {self.field}: " if self.field else ""
        return f"{where}: {what}{self.reason}"


@dataclass
class Refs:
    """The id map and the variables found while converting one app."""

    ids: dict[str, str] = field(default_factory=dict)  # dify id → hanlin id
    types: dict[str, str] = field(default_factory=dict)  # dify id → dify type
    start: str = "start"
    env: dict[str, tuple[Any, bool]] = field(default_factory=dict)  # name → (value, secret)
    conversation: dict[str, Any] = field(default_factory=dict)  # name → default
    #: inputs the start node gains (``sys.query`` → ``query``); name → input spec
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    #: the node being converted, for notes
    current: tuple[str, str, str] = ("", "", "")

    def name(self, dify_id: str, title: str, dify_type: str) -> str:
        """A Hanlin id for a Dify node: its title when that makes a name, else its type."""
        base = re.sub(r"[^a-z0-9]+", "_", (title or "").lower()).strip("_")
        if not base or not NODE_ID.fullmatch(base) or len(base) > 40:
            base = re.sub(r"[^a-z0-9]+", "_", dify_type.lower()).strip("_") or "node"
        if base in _RESERVED:
            base = f"{base}_node"
        taken = set(self.ids.values())
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        self.ids[dify_id] = name
        self.types[dify_id] = dify_type
        return name

    def note(self, reason: str, field: str | None = None) -> None:
        node, title, kind = self.current
        self.notes.append(Note(node, title, kind, reason, field))

    def _start_input(self, name: str, spec: dict[str, Any]) -> str:
        self.inputs.setdefault(name, spec)
        return f"{self.start}.{name}"

    def selector(self, sel: Any, *, where: str = "") -> tuple[str, Any]:
        """``("ref", "node.field")`` or ``("literal", value)`` for a value selector."""
        if not isinstance(sel, list | tuple) or len(sel) < 2:
            self.note(f"not a variable selector: {sel!r}", where or None)
            return "literal", ""
        parts = [str(p) for p in sel]
        if parts[1].startswith("sys."):  # old exports: [start_id, "sys.query"]
            parts = ["sys", parts[1][4:], *parts[2:]]
        head, name, rest = parts[0], parts[1], parts[2:]
        tail = "".join(f".{p}" for p in rest)
        if head == "sys":
            if name == "query":
                spec: dict[str, Any] = {"type": "string", "description": "the user's message"}
                return "ref", self._start_input("query", spec) + tail
            if name == "files":
                self.note("sys.files became the optional start input `files`", where or None)
                spec = {"type": "array", "required": False, "default": []}
                return "ref", self._start_input("files", spec) + tail
            self.note(f"sys.{name} became the optional start input `sys_{name}`", where or None)
            spec = {"type": "string", "required": False, "default": ""}
            return "ref", self._start_input(f"sys_{name}", spec) + tail
        if head == "env":
            value, secret = self.env.get(name, ("", False))
            if secret or name not in self.env:
                self.note(
                    f"environment variable {name} became the start input `env_{name}`"
                    + (" (a secret: not copied)" if secret else ""),
                    where or None,
                )
                spec = {"type": "string", "required": False, "default": ""}
                return "ref", self._start_input(f"env_{name}", spec) + tail
            return "literal", value
        if head == "conversation":
            self.note(
                f"conversation variable {name} became the start input `conv_{name}` "
                "(Hanlin keeps no state between chat turns)",
                where or None,
            )
            spec = {"type": "any", "required": False, "default": self.conversation.get(name)}
            return "ref", self._start_input(f"conv_{name}", spec) + tail
        if head not in self.ids:
            self.note(f"refers to node {head!r}, which is not in the app", where or None)
            return "literal", ""
        kind = self.types[head]
        name = OUTPUT_NAMES.get(kind, {}).get(name, name)
        return "ref", f"{self.ids[head]}.{name}{tail}"

    def value(self, sel: Any, *, where: str = "") -> Any:
        """A selector as a node setting: ``"{{node.field}}"`` or the constant."""
        kind, found = self.selector(sel, where=where)
        return "{{" + found + "}}" if kind == "ref" else found

    def text(self, text: Any, *, where: str = "", context: str | None = None) -> Any:
        """Dify text with ``{{#…#}}`` references as a Hanlin template. Jinja syntax the text
        had already (``{{ x }}``, ``{% … %}``) is not Dify's and is escaped."""
        if not isinstance(text, str):
            return text
        out, last = [], 0
        for match in DIFY_REF.finditer(text):
            out.append(_escape(text[last : match.start()]))
            inner = match.group(1).strip()
            if inner == "context":
                out.append("{{" + context + "}}" if context else "")
                if not context:
                    self.note("{{#context#}} without a context variable", where or None)
            else:
                kind, found = self.selector(inner.split("."), where=where)
                out.append("{{" + found + "}}" if kind == "ref" else _escape(str(found)))
            last = match.end()
        out.append(_escape(text[last:]))
        return "".join(out)


def _escape(text: str) -> str:
    """Plain text as a Jinja template that renders it unchanged."""
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return text
    return "{% raw %}" + text + "{% endraw %}"


__all__ = ["DIFY_REF", "OUTPUT_NAMES", "Note", "Refs"]

"""Variables by reference: ``{{retrieve.results}}`` in any string of a node's settings reads the
outputs of node ``retrieve``. Strings are sandboxed Jinja2 templates (no attribute access to
Python internals, no file or module access); a string that is exactly one reference keeps the
value's type (a list stays a list). Conditions are Jinja expressions or ``{var, op, value}``
comparisons.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from hanlin.errors import InvalidInputError

_WHOLE = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+|\[\d+\])*)\s*\}\}$")

OPERATORS = (
    "==", "!=", ">", ">=", "<", "<=", "contains", "not_contains", "starts_with",
    "ends_with", "in", "not_in", "empty", "not_empty",
)  # fmt: skip


def _finalize(value: Any) -> Any:
    """Lists and mappings interpolated into text as JSON, not Python reprs."""
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


@functools.cache
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, finalize=_finalize, keep_trailing_newline=True
    )
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False, default=str)
    return env


class TemplateError(InvalidInputError):
    """A template or condition could not be parsed or rendered."""

    code = "workflow_template"


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def whole_ref(value: Any) -> tuple[str, ...] | None:
    """``("retrieve", "results")`` for ``"{{retrieve.results}}"``, else None."""
    if not isinstance(value, str):
        return None
    match = _WHOLE.match(value.strip())
    if not match:
        return None
    return tuple(p for p in re.split(r"[.\[\]]+", match.group(1)) if p)


def _lookup(scope: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = scope
    for i, part in enumerate(path):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            where = ".".join(path[:i]) or "the workflow"
            raise TemplateError(
                f"'{{{{{'.'.join(path)}}}}}' is undefined: {where} has no '{part}'",
                hint=_missing_hint(scope, path[0]),
            )
    return value


def _missing_hint(scope: Mapping[str, Any], name: str) -> str:
    if name not in scope:
        return (
            f"node '{name}' has no outputs at this point (it was skipped or has not run); "
            "reference a node that always runs before this one, or join branches with a "
            "variable_aggregator"
        )
    return "check the field name against the node's outputs (`hanlin workflow show`)"


@functools.lru_cache(maxsize=2048)
def _template(text: str) -> Template:
    """A template string compiled once (compiling costs ~1 ms; a run renders the same strings
    at every node and in every run)."""
    return environment().from_string(text)


@functools.lru_cache(maxsize=2048)
def _compiled_expression(text: str) -> Any:
    return environment().compile_expression(text)


def render(text: str, scope: Mapping[str, Any]) -> str:
    """Render a template string against the run's variables."""
    try:
        return _template(text).render(**scope)
    except UndefinedError as exc:
        raise TemplateError(f"template {text[:80]!r}: {exc}", hint=_undefined_hint(exc)) from None
    except SecurityError as exc:
        raise TemplateError(
            f"template {text[:80]!r} was refused by the sandbox: {exc}",
            hint="templates may read variables, not Python internals",
        ) from None
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template {text[:80]!r}: {exc}", hint="fix the Jinja syntax") from None


def _undefined_hint(exc: Exception) -> str:
    return (
        f"{exc}: the node it names was skipped or has no such output; check the reference, or "
        "join branches with a variable_aggregator"
    )


def resolve(value: Any, scope: Mapping[str, Any]) -> Any:
    """``value`` with every reference in it replaced (recursively through lists and dicts)."""
    if isinstance(value, str):
        path = whole_ref(value)
        if path is not None:
            return _lookup(scope, path)
        return render(value, scope) if is_template(value) else value
    if isinstance(value, list):
        return [resolve(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, scope) for k, v in value.items()}
    return value


def strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every ``(field path, string)`` inside a settings value."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{where}.{k}" if where else str(k))


def references(text: str, expression: bool = False) -> list[tuple[str, str | None]]:
    """The ``(name, first field)`` pairs a template (or an expression) reads from outside
    itself; raises :class:`TemplateError` on a syntax error."""
    return list(_references(text, expression))


@functools.lru_cache(maxsize=2048)
def _references(text: str, expression: bool) -> tuple[tuple[str, str | None], ...]:
    env = environment()
    source = "{{ " + text + " }}" if expression else text
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{text[:80]!r}: {exc.message}", hint="fix the Jinja syntax") from None
    free = meta.find_undeclared_variables(tree)
    found: dict[tuple[str, str | None], None] = {}
    bare: set[str] = set(free)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        target = node.node
        if isinstance(target, nodes.Name) and target.name in free:
            field: str | None = None
            if isinstance(node, nodes.Getattr):
                field = node.attr
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                field = node.arg.value
            found[(target.name, field)] = None
            bare.discard(target.name)
    for name in sorted(bare):
        found[(name, None)] = None
    return tuple(found)


Condition = str | dict[str, Any]


def condition_references(cond: Any) -> list[tuple[str, str | None]]:
    """What a condition reads (see :func:`check_condition` for its forms)."""
    check_condition(cond)
    if isinstance(cond, str):
        return references(_expression(cond), expression=True)
    if "all" in cond or "any" in cond:
        return [r for c in cond.get("all", cond.get("any")) for r in condition_references(c)]
    found = []
    for key in ("var", "value"):
        for _, text in strings(cond.get(key)):
            found += references(text)
    return found


def check_condition(cond: Any) -> None:
    """A condition is a Jinja expression (``"retrieve.count > 0"``, ``{{ }}`` optional),
    ``{all: [...]}`` / ``{any: [...]}``, or ``{var, op, value}``; raises ValueError."""
    if isinstance(cond, str):
        return
    if not isinstance(cond, dict):
        raise ValueError("a condition is an expression string or a mapping")
    if set(cond) in ({"all"}, {"any"}):
        inner = cond.get("all", cond.get("any"))
        if not isinstance(inner, list) or not inner:
            raise ValueError("`all` / `any` takes a non-empty list of conditions")
        for c in inner:
            check_condition(c)
        return
    if "var" not in cond or not set(cond) <= {"var", "op", "value"}:
        raise ValueError(
            "a comparison is {var, op, value}, e.g. {var: '{{a.n}}', op: '>', value: 1}"
        )
    op = cond.get("op", "not_empty")
    if op not in OPERATORS:
        raise ValueError(f"unknown operator {op!r}; use one of: {', '.join(OPERATORS)}")


def _expression(text: str) -> str:
    text = text.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2].strip()
    return text


def evaluate(cond: Condition, scope: Mapping[str, Any]) -> bool:
    """Whether a condition holds for the run's variables."""
    if isinstance(cond, str):
        try:
            compiled = _compiled_expression(_expression(cond))
            return bool(compiled(**scope))
        except UndefinedError as exc:
            raise TemplateError(f"condition {cond!r}: {exc}", hint=_undefined_hint(exc)) from None
        except TemplateSyntaxError as exc:
            raise TemplateError(f"condition {cond!r}: {exc}", hint="fix the expression") from None
    if "all" in cond:
        return all(evaluate(c, scope) for c in cond["all"])
    if "any" in cond:
        return any(evaluate(c, scope) for c in cond["any"])
    left = resolve(cond["var"], scope)
    right = resolve(cond.get("value"), scope)
    return compare(left, cond.get("op", "not_empty"), right)


def compare(left: Any, op: str, right: Any) -> bool:
    if op == "empty":
        return left is None or left == "" or left == [] or left == {}
    if op == "not_empty":
        return not compare(left, "empty", right)
    if op in ("contains", "not_contains"):
        found = right in left if isinstance(left, str | list | dict) else False
        return found if op == "contains" else not found
    if op in ("in", "not_in"):
        found = left in right if isinstance(right, str | list | dict) else False
        return found if op == "in" else not found
    if op == "starts_with":
        return isinstance(left, str) and left.startswith(str(right))
    if op == "ends_with":
        return isinstance(left, str) and left.endswith(str(right))
    if op in ("==", "!="):
        same = left == right or (_number(left) is not None and _number(left) == _number(right))
        return same if op == "==" else not same
    a, b = _number(left), _number(right)
    if a is None or b is None:
        raise TemplateError(
            f"cannot compare {left!r} {op} {right!r}: both sides must be numbers",
            hint="compare numbers with >, >=, < and <=; use == or contains for text",
        )
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None

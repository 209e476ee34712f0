"""Metadata filters: equality, inequality, ranges and ``in``, from the CLI or the Python API.

CLI form (``--filter``): ``lang=zh``, ``year>=2020``, ``year<2024``, ``status!=draft``,
``tag=a|b|c`` (any of). Python form: ``{"lang": "zh", "year": {"gte": 2020},
"tag": {"in": ["a", "b"]}}``. Keys name document metadata; ``source``, ``format``, ``title``,
``doc`` (document key) and ``page`` name built-in fields.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from hanlin.errors import InvalidInputError

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"]
OPS: tuple[Op, ...] = ("eq", "ne", "gt", "gte", "lt", "lte", "in")
BUILTIN_FIELDS = {"source", "format", "title", "doc", "page"}
_CLI_RE = re.compile(r"^\s*([^\s=!<>]+)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$", re.S)
_CLI_OPS: dict[str, Op] = {"=": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_KEY_RE = re.compile(r"^[\w.\-]+$")


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    op: Op
    value: Any


@dataclass(frozen=True, slots=True)
class Filter:
    """All conditions must hold (AND)."""

    conditions: tuple[Condition, ...]

    def __bool__(self) -> bool:
        return bool(self.conditions)


def _scalar(raw: str) -> Any:
    """CLI values: numbers and true/false/null are JSON; anything else is a string."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, int | float | bool) or value is None else raw


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise InvalidInputError(
            f"invalid filter key {key!r}",
            hint="keys are metadata names made of letters, digits, '_', '-' and '.'",
        )
    return key


def parse_cli_filter(expressions: list[str]) -> Filter | None:
    """Parse ``--filter`` expressions such as ``year>=2020`` or ``tag=a|b``."""
    conditions: list[Condition] = []
    for expr in expressions:
        m = _CLI_RE.match(expr)
        if not m:
            raise InvalidInputError(
                f"cannot read filter {expr!r}",
                hint="write key=value, key!=value, key>=n, key<n or key=a|b (any of)",
            )
        key, sym, raw = m.groups()
        if not raw or raw[0] in "=<>!":
            what = "has no value" if not raw else f"has a stray {raw[0]!r} after {sym!r}"
            raise InvalidInputError(
                f"the filter {expr!r} {what}",
                hint="write key=value, key!=value, key>=n, key<n or key=a|b (any of), e.g. "
                "--filter year>=2023",
            )
        op = _CLI_OPS[sym]
        if op == "eq" and "|" in raw:
            conditions.append(
                Condition(_check_key(key), "in", [_scalar(v) for v in raw.split("|")])
            )
        else:
            conditions.append(Condition(_check_key(key), op, _scalar(raw)))
    return Filter(tuple(conditions)) if conditions else None


def parse_filter(spec: dict[str, Any] | Filter | None) -> Filter | None:
    """Parse the Python form: a value means equality, a dict maps operators to values."""
    if spec is None or isinstance(spec, Filter):
        return spec or None
    conditions: list[Condition] = []
    for key, value in spec.items():
        _check_key(key)
        if isinstance(value, dict):
            for op, operand in value.items():
                if op not in OPS:
                    raise InvalidInputError(
                        f"unknown filter operator {op!r} for {key!r}",
                        hint=f"use one of: {', '.join(OPS)}",
                    )
                if op == "in" and not isinstance(operand, list | tuple | set):
                    raise InvalidInputError(
                        f"filter {key!r}: 'in' needs a list", hint='write {"in": ["a", "b"]}'
                    )
                conditions.append(Condition(key, op, list(operand) if op == "in" else operand))
        elif isinstance(value, list | tuple | set):
            conditions.append(Condition(key, "in", list(value)))
        else:
            conditions.append(Condition(key, "eq", value))
    return Filter(tuple(conditions)) if conditions else None

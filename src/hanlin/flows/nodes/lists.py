"""``list_operator``: filter, sort, slice and pick from a list variable (search results, an
iteration's outputs, extracted parameters) without writing code. The steps apply in that
order: filter → sort → offset/limit → index."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

import hanlin.flows.refs as refs
from hanlin.errors import InvalidInputError
from hanlin.flows.nodes.base import FORBID, NodeContext, NodeOutput, NodeType, register


class ItemCondition(BaseModel):
    model_config = FORBID

    #: the item's field to test (dotted for nested ones: ``meta.lang``); none: the item itself
    field: str | None = None
    #: one of ``== != > >= < <= contains not_contains starts_with ends_with in not_in empty
    #: not_empty`` (as in if_else conditions)
    op: str = "not_empty"
    #: what to compare with (a literal, or a reference to another node's output)
    value: Any = None

    @field_validator("op")
    @classmethod
    def _op(cls, value: str) -> str:
        if value not in refs.OPERATORS:
            raise ValueError(f"unknown operator {value!r}; use one of: {', '.join(refs.OPERATORS)}")
        return value


class SortSpec(BaseModel):
    model_config = FORBID

    #: the field to sort by (dotted for nested ones); none: the items themselves
    field: str | None = None
    order: Literal["asc", "desc"] = "asc"


class ListOperatorConfig(BaseModel):
    model_config = FORBID

    #: the list (a reference such as ``{{retrieve.results}}``)
    items: Any
    #: keep the items for which the conditions hold (``match``: all of them, or any)
    filter: list[ItemCondition] = Field(default_factory=list)
    match: Literal["all", "any"] = "all"
    sort: SortSpec | None = None
    #: skip this many items, then keep at most ``limit``
    offset: int = Field(default=0, ge=0)
    limit: int | None = Field(default=None, ge=0)
    #: keep only the item at this position (0 is the first, -1 the last), as a one-item list
    index: int | None = None


def _field(item: Any, path: str | None) -> Any:
    """The value at a dotted path in an item, or None where the item has no such field."""
    if path is None:
        return item
    value = item
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return None
    return value


def _holds(value: Any, op: str, other: Any) -> bool:
    """A condition on one item; an item without the field fails an ordering test."""
    if value is None and op in (">", ">=", "<", "<="):
        return False
    return refs.compare(value, op, other)


def _sort_key(value: Any) -> tuple[int, Any]:
    """Missing values last; numbers by value; everything else as text."""
    if value is None:
        return (2, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


@register
class ListOperator(NodeType):
    name = "list_operator"
    replayable = True
    summary = "filter, sort, slice or pick from a list; result, first_record, last_record"
    Config = ListOperatorConfig
    expects: ClassVar[dict[str, str]] = {"items": "array"}

    def outputs(self, config: ListOperatorConfig) -> dict[str, str]:
        return {"result": "array", "first_record": "any", "last_record": "any", "count": "integer"}

    async def run(self, ctx: NodeContext, config: ListOperatorConfig) -> NodeOutput:
        items = ctx.resolve(config.items)
        if items is None:
            items = []
        if not isinstance(items, list):
            raise InvalidInputError(
                f"list_operator items must be a list, got {type(items).__name__}",
                hint="point `items` at an array output, e.g. {{retrieve.results}}",
            )
        conditions = [(c.field, c.op, ctx.resolve(c.value)) for c in config.filter]
        if conditions:
            test = all if config.match == "all" else any
            items = [
                item
                for item in items
                if test(_holds(_field(item, f), op, v) for f, op, v in conditions)
            ]
        if config.sort is not None:
            sort = config.sort
            present = [i for i in items if _field(i, sort.field) is not None]
            missing = [i for i in items if _field(i, sort.field) is None]
            present.sort(
                key=lambda i: _sort_key(_field(i, sort.field)), reverse=sort.order == "desc"
            )
            items = present + missing  # items without the field stay last either way
        end = None if config.limit is None else config.offset + config.limit
        items = items[config.offset : end]
        if config.index is not None:
            i = config.index
            items = [items[i]] if -len(items) <= i < len(items) else []
        return NodeOutput(
            {
                "result": items,
                "first_record": items[0] if items else None,
                "last_record": items[-1] if items else None,
                "count": len(items),
            }
        )

"""Templates and their variables: which ``{fields}`` a text uses, the variables a new version
declares (undeclared fields become required strings), and rendering with values checked against
those declarations — a missing, unknown or mistyped variable is an error naming it.

The syntax is Python's ``str.format``, as Hanlin's RAG templates always were: ``{name}`` or
``{name:.2f}``; literal braces are doubled (``{{`` and ``}}``). Fields are plain names only — no
``{0}``, ``{x.attr}`` or ``{x[0]}`` — so a template cannot reach into the objects it is given.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Mapping
from typing import Any

from hanlin.errors import InvalidInputError
from hanlin.prompts.base import PYTHON_TYPES, VARIABLE_RE, NewVersion, Variable

_TYPE_HINTS = {
    "str": "any text",
    "int": "a whole number, e.g. 3",
    "float": "a number, e.g. 0.5",
    "list": 'a list, e.g. ["a", "b"] (on the command line: a JSON list or a,b)',
    "bool": "true or false",
}


def fields(text: str) -> list[str]:
    """The field names of a template, in order of first use. Raises
    :class:`InvalidInputError` for a malformed template or a field that is not a plain name."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise InvalidInputError(
            f"the template is not valid: {exc}",
            hint="fields are {name}; write a literal brace as {{ or }}",
            param="text",
        ) from None
    found: list[str] = []
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        if not VARIABLE_RE.match(name):
            shown = "{" + name + "}"
            raise InvalidInputError(
                f"the template field {shown} is not a variable name",
                hint="use {name} with letters, digits and '_' (no positions, attributes or "
                "indexes); write a literal brace as {{ or }}",
                param="text",
            )
        if spec and "{" in spec:
            raise InvalidInputError(
                f"the field {{{name}}} has a nested field in its format spec",
                hint="give a fixed format spec, e.g. {score:.2f}; write a literal brace as {{ "
                "or }}",
                param="text",
            )
        if name not in found:
            found.append(name)
    return found


def declare(new: NewVersion, inherit: Iterable[Variable] = ()) -> NewVersion:
    """``new`` with every field of its text declared: a field without a declaration takes the
    one in ``inherit`` (the previous version's), else becomes a required ``str``. Raises
    :class:`InvalidInputError` for a variable declared twice or declared but not used (a typo,
    most often)."""
    used = fields(new.text)
    declared: dict[str, Variable] = {}
    for v in new.variables:
        if v.name in declared:
            raise InvalidInputError(
                f"the variable '{v.name}' is declared twice",
                hint="declare each variable once",
                param="variables",
            )
        declared[v.name] = v
    unused = [n for n in declared if n not in used]
    if unused:
        raise InvalidInputError(
            f"the variable '{unused[0]}' is declared but the text has no {{{unused[0]}}}",
            hint=f"the text's fields are: {', '.join(used) or 'none'}; fix the name or drop it",
            param="variables",
        )
    earlier = {v.name: v for v in inherit}
    variables = [declared.get(n) or earlier.get(n) or Variable(name=n) for n in used]
    return new.model_copy(update={"variables": variables})


def check_values(
    prompt: str, variables: Iterable[Variable], values: Mapping[str, Any]
) -> dict[str, Any]:
    """The values to fill in, checked strictly: every required variable given, no unknown one,
    each of its declared type; optional ones take their default (or an empty string)."""
    declared = {v.name: v for v in variables}
    for key in values:
        if key not in declared:
            raise InvalidInputError(
                f"prompt '{prompt}' has no variable '{key}'",
                hint=f"its variables are: {', '.join(declared) or 'none'}; remove '{key}', or "
                f"create a version that declares it",
                param=f"variables.{key}",
            )
    out: dict[str, Any] = {}
    for name, var in declared.items():
        if name not in values:
            if var.required:
                raise InvalidInputError(
                    f"prompt '{prompt}' needs the variable '{name}' ({var.type})",
                    hint=f'pass it, e.g. --var {name}=… (API: "variables": {{"{name}": …}})'
                    + (f"; it is {var.description}" if var.description else ""),
                    param=f"variables.{name}",
                )
            out[name] = var.default if var.default is not None else ""
            continue
        value = values[name]
        ok = isinstance(value, PYTHON_TYPES[var.type])
        if var.type in ("int", "float") and isinstance(value, bool):
            ok = False
        if not ok:
            raise InvalidInputError(
                f"the variable '{name}' of prompt '{prompt}' must be {var.type}, not "
                f"{_type_name(value)}",
                hint=f"give {_TYPE_HINTS[var.type]}",
                param=f"variables.{name}",
            )
        out[name] = value
    return out


def fill(text: str, values: Mapping[str, Any]) -> str:
    """The text with its fields filled; lists become one item per line, booleans
    ``true``/``false``. Values for fields the text does not use are ignored."""
    shown = {k: _shown(v) for k, v in values.items()}
    try:
        return text.format_map(shown)
    except KeyError as exc:
        raise InvalidInputError(
            f"no value for the template field {{{exc.args[0]}}}",
            hint="pass it as a variable",
            param=f"variables.{exc.args[0]}",
        ) from None
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"a value does not fit its field's format spec: {exc}",
            hint="check the types of the variables against the template's {name:spec} fields",
            param="variables",
        ) from None


def parse_value(var: Variable, text: str) -> Any:
    """A command-line value (``--var n=3``) as the variable's type."""
    try:
        if var.type == "int":
            return int(text)
        if var.type == "float":
            return float(text)
        if var.type == "bool":
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(text)
        if var.type == "list":
            if text.lstrip().startswith("["):
                value = json.loads(text)
                if not isinstance(value, list):
                    raise ValueError(text)
                return value
            return [part.strip() for part in text.split(",") if part.strip()]
    except (ValueError, json.JSONDecodeError):
        raise InvalidInputError(
            f"cannot read '{text}' as {var.type} for the variable '{var.name}'",
            hint=f"give {_TYPE_HINTS[var.type]}",
            param=f"variables.{var.name}",
        ) from None
    return text


def _shown(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value)
    return value


def _type_name(value: Any) -> str:
    names = {str: "str", int: "int", float: "float", bool: "bool", list: "list", dict: "object"}
    return names.get(type(value), type(value).__name__) + (
        f" {value!r}" if isinstance(value, str | int | float) and len(repr(value)) <= 40 else ""
    )

"""BFCL's AST checker for Python function calls, re-implemented without ``bfcl_eval``'s imports.

Rule for rule the same as ``bfcl_eval/eval_checker/ast_eval/ast_checker.py`` (BFCL v4, package
``bfcl-eval`` 2026.3.23) for ``Language.PYTHON``, plus the irrelevance rule of its
``eval_runner`` (a case passes when the model made no call):

- the function name must match (``underscore_to_dot`` compares ``a.b`` as ``a_b``, as BFCL does
  for providers whose tool names cannot hold dots);
- every ``required`` parameter must be present; a parameter that is not in the function's
  properties or not in the possible answer is unexpected;
- types are checked against the doc type (``float`` accepts an ``int``; ``array``/``tuple``
  items are checked one level deep; a value of the possible answer's type counts as a
  "variable" and skips the value checks);
- each parameter's value must be one of its possible answers, strings compared after removing
  spaces and ``,./-_*^`` and lower-casing (also inside lists and dicts); ``""`` among the
  possible answers marks an optional parameter that may be left out;
- ``parallel*`` categories match calls to answers in any order; ``multiple`` and ``simple``
  need exactly one call.

Model output is a list of ``{function_name: {param: value}}`` dicts, as in BFCL.
"""

from __future__ import annotations

import re
from typing import Any

Result = dict[str, Any]
Call = dict[str, dict[str, Any]]

PYTHON_TYPE_MAPPING: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
NESTED_TYPES = ("array", "tuple")


def _fail(error: str, error_type: str) -> Result:
    return {"valid": False, "error": [error], "error_type": error_type}


_OK: Result = {"valid": True, "error": []}


def standardize_string(text: str) -> str:
    """Drop spaces and ``,./-_*^``, lower-case, and turn ``'`` into ``"`` (BFCL's rule)."""
    return re.sub(r"[ \,\.\/\-\_\*\^]", "", text).lower().replace("'", '"')


def _std(value: Any) -> Any:
    return standardize_string(value) if type(value) is str else value


def _answer_type(possible: list[Any]) -> type | None:
    for answer in possible:
        if answer != "":
            return type(answer)
    return None


def type_check(
    param: str, value: Any, possible: list[Any], type_name: str, expected: type, nested: type | None
) -> Result:
    """Whether ``value`` has the doc's type; ``is_variable`` when it has the answer's type."""
    answer_type = _answer_type(possible)
    is_variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if nested is None:
            return {"valid": True, "error": [], "is_variable": is_variable}
        items: Any = value
        for option in possible:
            ok = True
            if type(option) is list:
                for item in items:
                    if not type_check(param, item, option, nested.__name__, nested, None)["valid"]:
                        ok = False
                        break
            if ok:
                return {"valid": True, "error": [], "is_variable": is_variable}
    if answer_type is not None and type(value) is answer_type:
        return {"valid": True, "error": [], "is_variable": True}
    result = _fail(
        f"Incorrect type for parameter {param!r}. Expected type {type_name}, got "
        f"{type(value).__name__}. Parameter value: {value!r}.",
        "type_error:simple",
    )
    result["is_variable"] = False
    return result


def string_check(param: str, value: str, possible: list[Any]) -> Result:
    if standardize_string(value) not in [_std(p) for p in possible if type(p) is str]:
        return _fail(
            f"Invalid value for parameter {param!r}: {value!r}. Expected one of {possible}.",
            "value_error:string",
        )
    return _OK


def list_check(param: str, value: list[Any], possible: list[Any]) -> Result:
    standardized = [_std(v) for v in value]
    options = [[_std(x) for x in option] for option in possible]
    if standardized not in options:
        return _fail(
            f"Invalid value for parameter {param!r}: {value!r}. Expected one of {possible}.",
            "value_error:list/tuple",
        )
    return _OK


def dict_check(param: str, value: dict[str, Any], possible: list[Any]) -> Result:
    """One of the possible dicts must hold every key of ``value`` with an allowed value."""
    result = _fail(f"No possible answer for parameter {param!r}.", "dict_checker:unclear")
    for option in possible:
        if option == "":
            continue
        result = {"valid": False, "error": [], "error_type": "dict_checker:unclear"}
        ok = True
        for key, item in value.items():
            if key not in option:
                result = _fail(f"Unexpected dict key parameter: '{key}'.", "value_error:dict_key")
                ok = False
                break
            allowed = [_std(x) for x in option[key]]
            if _std(item) not in allowed:
                result = _fail(
                    f"Invalid value for parameter {key!r}: {item!r}. Expected one of {allowed}.",
                    "value_error:dict_value",
                )
                ok = False
                break
        for key, allowed_values in option.items():
            if key not in value and "" not in allowed_values:
                result = _fail(f"Missing dict key parameter: '{key}'.", "value_error:dict_key")
                ok = False
                break
        if ok:
            return _OK
    return result


def list_dict_check(param: str, value: list[Any], possible: list[Any]) -> Result:
    """A list of dicts, matched in order against one of the possible lists."""
    result = _fail(f"No possible answer for parameter {param!r}.", "list_dict_checker:unclear")
    for option in possible:
        if len(value) != len(option):
            result = _fail(
                "Wrong number of dictionaries in the list.", "value_error:list_dict_count"
            )
            continue
        ok = True
        for item, expected in zip(value, option, strict=True):
            result = dict_check(param, item, [expected])
            if not result["valid"]:
                ok = False
                break
        if ok:
            return _OK
    return result


def _name(name: str, underscore_to_dot: bool) -> str:
    return re.sub(r"\.", "_", name) if underscore_to_dot and "." in name else name


def simple_check(
    doc: dict[str, Any], output: Call, answer: dict[str, Any], underscore_to_dot: bool = False
) -> Result:
    """One call against one function doc and its possible answer ``{name: {param: [...]}}``."""
    possible = next(iter(answer.values()))
    name = _name(doc["name"], underscore_to_dot)
    details = doc["parameters"]["properties"]
    if name not in output:
        return _fail(
            f"Function name {name!r} not found in model output.",
            "simple_function_checker:wrong_func_name",
        )
    params = output[name]
    for param in doc["parameters"].get("required", []):
        if param not in params:
            return _fail(
                f"Missing required parameter: {param!r}.",
                "simple_function_checker:missing_required",
            )
    for param, value in params.items():
        if param not in details or param not in possible:
            return _fail(
                f"Unexpected parameter: {param!r}.", "simple_function_checker:unexpected_param"
            )
        type_name = details[param]["type"]
        expected = PYTHON_TYPE_MAPPING[type_name]
        nested = (
            PYTHON_TYPE_MAPPING[details[param]["items"]["type"]]
            if type_name in NESTED_TYPES
            else None
        )
        if type_name == "tuple" and type(value) is tuple:
            value = list(value)
        if type_name == "float" and type(value) is int:
            value = float(value)
        checked = type_check(param, value, possible[param], type_name, expected, nested)
        if not checked["valid"]:
            return checked
        if not checked["is_variable"]:
            if expected is dict:
                result = dict_check(param, value, possible[param])
            elif expected is list and nested is dict:
                result = list_dict_check(param, value, possible[param])
            elif expected is str:
                result = string_check(param, value, possible[param])
            elif expected is list:
                result = list_check(param, value, possible[param])
            else:
                result = None
            if result is not None:
                if not result["valid"]:
                    return result
                continue
        if value not in possible[param]:
            return _fail(
                f"Invalid value for parameter {param!r}: {value!r}. "
                f"Expected one of {possible[param]}.",
                "value_error:others",
            )
    for param in possible:
        if param not in params and "" not in possible[param]:
            return _fail(
                f"Optional parameter {param!r} not provided and not marked as optional.",
                "simple_function_checker:missing_optional",
            )
    return {"valid": True, "error": []}


def _find(docs: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((d for d in docs if d["name"] == name), None)


def parallel_check(
    docs: list[dict[str, Any]], output: list[Call], answers: list[dict[str, Any]], u2d: bool
) -> Result:
    """Every answer must match a distinct call, in any order; the counts must be equal."""
    if len(output) != len(answers):
        return _fail("Wrong number of functions.", "parallel_function_checker_no_order:wrong_count")
    matched: set[int] = set()
    for i, answer in enumerate(answers):
        doc = _find(docs, next(iter(answer)))
        found = False
        for index, call in enumerate(output):
            if index in matched:
                continue
            if doc is not None and simple_check(doc, call, answer, u2d)["valid"]:
                matched.add(index)
                found = True
                break
        if not found:
            return _fail(
                f"Could not find a matching function among the model's calls for index {i} "
                "of possible answers.",
                "parallel_function_checker_no_order:cannot_find_match",
            )
    return {"valid": True, "error": []}


def is_call_list(output: Any) -> bool:
    """BFCL's ``is_function_calling_format_output``: a list of ``{name: {params}}``."""
    return type(output) is list and all(
        type(item) is dict and len(item) == 1 and type(next(iter(item.values()))) is dict
        for item in output
    )


def check(
    category: str,
    docs: list[dict[str, Any]],
    output: Any,
    answers: list[dict[str, Any]] | None,
    underscore_to_dot: bool = False,
) -> Result:
    """Score one BFCL case: ``output`` is the model's calls, ``answers`` the ground truth."""
    if "irrelevance" in category:
        made_call = is_call_list(output) and not (
            len(output) == 0 or (len(output) == 1 and len(output[0]) == 0)
        )
        if made_call:
            return _fail(
                "Valid syntax. Successfully decode AST when it should not.",
                "irrelevance_error:decoder_success",
            )
        return {"valid": True, "error": []}
    if not is_call_list(output):
        return _fail("Did not output in the specified format.", "ast_decoder:wrong_output_format")
    answers = answers or []
    if "parallel" in category:
        return parallel_check(docs, output, answers, underscore_to_dot)
    if len(output) != 1 or len(answers) != 1:
        kind = "multiple_function_checker" if "multiple" in category else "simple_function_checker"
        return _fail("Wrong number of functions.", f"{kind}:wrong_count")
    doc = _find(docs, next(iter(answers[0]))) if "multiple" in category else docs[0]
    if doc is None:
        return _fail("The expected function is not among the docs.", "multiple:missing_doc")
    return simple_check(doc, output[0], answers[0], underscore_to_dot)

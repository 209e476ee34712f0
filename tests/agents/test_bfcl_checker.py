"""BFCL's AST rules in ``bench/bfcl_checker.py``, and the BFCL harness end to end with the fake.

A correct call passes; each kind of wrong call fails with BFCL's error type. The harness test
runs real cases (from the ``bfcl-eval`` package when it is installed, else a few embedded ones)
through the gateway against the fake upstream replaying the ground truth: it must score 100 %.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


checker = _load("bfcl_checker")
check = checker.check

DOC: dict[str, Any] = {
    "name": "calc.area",
    "description": "Area of a shape.",
    "parameters": {
        "type": "dict",
        "properties": {
            "shape": {"type": "string", "description": "the shape"},
            "size": {"type": "float", "description": "its size"},
            "count": {"type": "integer", "description": "how many"},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "labels"},
            "opts": {"type": "dict", "description": "options", "properties": {}},
        },
        "required": ["shape", "size"],
    },
}
ANSWER = {
    "calc.area": {
        "shape": ["circle", "round"],
        "size": [2.0],
        "count": [1, ""],
        "tags": [["a", "b"], ""],
        "opts": [{"precise": [True]}, ""],
    }
}


def simple(call: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = check("simple_python", [DOC], [{"calc.area": call}], [ANSWER])
    return result


def test_a_correct_call_passes() -> None:
    assert simple({"shape": "circle", "size": 2.0})["valid"]


@pytest.mark.parametrize(
    "call",
    [
        {"shape": "Circle", "size": 2},  # case and int→float are forgiven
        {"shape": " round ", "size": 2.0, "count": 1},  # spaces dropped; optional given
        {"shape": "circle", "size": 2.0, "tags": ["A", "b"], "opts": {"precise": True}},
    ],
)
def test_bfcl_leniencies(call: dict[str, Any]) -> None:
    assert simple(call)["valid"], simple(call)


@pytest.mark.parametrize(
    ("call", "error_type"),
    [
        ({"shape": "circle"}, "simple_function_checker:missing_required"),
        (
            {"shape": "circle", "size": 2.0, "color": "red"},
            "simple_function_checker:unexpected_param",
        ),
        ({"shape": "circle", "size": "2"}, "type_error:simple"),
        ({"shape": "circle", "size": 2.0, "count": 1.0}, "type_error:simple"),
        ({"shape": "square", "size": 2.0}, "value_error:string"),
        ({"shape": "circle", "size": 3.0}, "value_error:others"),
        ({"shape": "circle", "size": 2.0, "tags": ["b", "a"]}, "value_error:list/tuple"),
        ({"shape": "circle", "size": 2.0, "opts": {"precise": False}}, "value_error:dict_value"),
        ({"shape": "circle", "size": 2.0, "opts": {"fast": True}}, "value_error:dict_key"),
    ],
)
def test_each_kind_of_wrong_call_fails(call: dict[str, Any], error_type: str) -> None:
    result = simple(call)
    assert not result["valid"] and result["error_type"] == error_type, result


def test_a_wrong_function_name_fails_and_dots_can_map_to_underscores() -> None:
    wrong = check(
        "simple_python", [DOC], [{"calc_area": {"shape": "circle", "size": 2.0}}], [ANSWER]
    )
    assert wrong["error_type"] == "simple_function_checker:wrong_func_name"
    mapped = checker.simple_check(
        DOC, {"calc_area": {"shape": "circle", "size": 2.0}}, ANSWER, True
    )
    assert mapped["valid"]


def test_a_missing_answer_only_parameter_fails() -> None:
    answer = {"calc.area": {**ANSWER["calc.area"], "count": [1]}}  # count no longer optional
    result = check("simple", [DOC], [{"calc.area": {"shape": "circle", "size": 2.0}}], [answer])
    assert result["error_type"] == "simple_function_checker:missing_optional"


def test_simple_and_multiple_need_exactly_one_call() -> None:
    call = {"calc.area": {"shape": "circle", "size": 2.0}}
    assert not check("simple_python", [DOC], [call, call], [ANSWER])["valid"]
    assert not check("multiple", [DOC], [], [ANSWER])["valid"]
    assert check("multiple", [DOC], [call], [ANSWER])["valid"]


def test_parallel_matches_in_any_order_but_counts_must_agree() -> None:
    a = {"calc.area": {"shape": ["circle"], "size": [1.0]}}
    b = {"calc.area": {"shape": ["circle"], "size": [2.0]}}
    out = [
        {"calc.area": {"shape": "circle", "size": 2.0}},
        {"calc.area": {"shape": "circle", "size": 1.0}},
    ]
    assert check("parallel", [DOC], out, [a, b])["valid"]
    assert not check("parallel", [DOC], out[:1], [a, b])["valid"]
    assert not check("parallel", [DOC], [out[0], out[0]], [a, b])["valid"]  # each call used once


def test_irrelevance_passes_only_without_a_call() -> None:
    assert check("irrelevance", [DOC], [], None)["valid"]
    assert check("irrelevance", [DOC], "a plain answer", None)["valid"]
    assert not check("irrelevance", [DOC], [{"calc.area": {"shape": "x"}}], None)["valid"]


def test_output_that_is_not_a_call_list_fails() -> None:
    assert check("simple_python", [DOC], "calc.area(shape='circle')", [ANSWER])["error_type"] == (
        "ast_decoder:wrong_output_format"
    )


# --- the harness end to end with the fake --------------------------------------------------

EMBEDDED = {
    "simple_python": [
        {
            "id": "simple_python_x",
            "question": [[{"role": "user", "content": "Area of a circle of size 2?"}]],
            "function": [DOC],
            "ground_truth": [ANSWER],
        }
    ],
    "parallel_multiple": [
        {
            "id": "parallel_multiple_x",
            "question": [[{"role": "user", "content": "Two areas, and count them."}]],
            "function": [DOC, {**DOC, "name": "count"}],
            "ground_truth": [ANSWER, {"count": {"shape": ["x"], "size": [1.0], "ghost": [""]}}],
        }
    ],
    "irrelevance": [
        {
            "id": "irrelevance_x",
            "question": [[{"role": "user", "content": "Who wrote Hamlet?"}]],
            "function": [DOC],
        }
    ],
}


def _cases(bfcl: ModuleType) -> dict[str, list[dict[str, Any]]]:
    data = bfcl.find_data(os.environ.get("BFCL_DATA"))
    if data is None or not data.is_dir():
        return EMBEDDED
    return {c: bfcl.load_cases(data, c, limit=15) for c in bfcl.CATEGORIES}


def test_the_fake_replaying_the_ground_truth_scores_100_percent() -> None:
    from hanlin.models.types import ChatOptions

    bfcl = _load("bfcl")
    cases = _cases(bfcl)
    home = Path(os.environ["HANLIN_HOME"])

    async def score() -> dict[str, list[bool]]:
        out: dict[str, list[bool]] = {}
        with bfcl.fake_gateway(home) as (gateway, server):
            for category, items in cases.items():
                for case in items:
                    bfcl.script_fake(server, case, category)
                    run = await bfcl.run_case(gateway, "fake/bfcl", case, ChatOptions())
                    assert run["error"] is None, run
                    verdict = check(
                        category, case["function"], run["output"], case.get("ground_truth")
                    )
                    out.setdefault(category, []).append(verdict["valid"])
        return out

    results = asyncio.run(score())
    assert results and all(all(v) for v in results.values()), results
    assert sum(len(v) for v in results.values()) >= 3


# --- equivalence with BFCL's own checker ---------------------------------------------------


def _bfcl_ast_checker(package: Path) -> Any:
    """``bfcl_eval``'s ast_checker.py, loaded with its model-config imports stubbed out (they
    pull in every provider SDK); only the Python rules are exercised."""
    import enum
    import types

    stubs: dict[str, types.ModuleType] = {}

    class Language(enum.Enum):
        PYTHON = "python"
        JAVA = "java"
        JAVASCRIPT = "javascript"

    class Config:
        underscore_to_dot = False

    modules: dict[str, dict[str, Any]] = {
        "bfcl_eval.constants.enums": {"Language": Language},
        "bfcl_eval.constants.model_config": {"MODEL_CONFIG_MAPPING": {"m": Config()}},
        "bfcl_eval.constants.type_mappings": {"JAVA_TYPE_CONVERSION": {}, "JS_TYPE_CONVERSION": {}},
        "bfcl_eval.eval_checker.ast_eval.type_convertor.java_type_converter": {
            "java_type_converter": None
        },
        "bfcl_eval.eval_checker.ast_eval.type_convertor.js_type_converter": {
            "js_type_converter": None
        },
    }
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        stubs[name] = module
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        path = package / "eval_checker" / "ast_eval" / "ast_checker.py"
        spec = importlib.util.spec_from_file_location("bfcl_ast_checker", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return module, Language.PYTHON


def _variants(calls: list[dict[str, Any]]) -> Any:
    """The ground-truth calls and wrong ones: reordered, short, long, and per parameter left out,
    retyped, changed; an unknown parameter; a misnamed function."""
    yield calls
    yield calls[::-1]
    yield calls[:-1]
    yield calls + calls[:1]
    for i, call in enumerate(calls):
        name, args = next(iter(call.items()))
        for key, value in args.items():
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            others = [str(value), [value], value * 2 if numeric else None]
            others += [value + "x" if isinstance(value, str) else None]
            others += [value.upper() if isinstance(value, str) else None]
            others += [value[::-1] if isinstance(value, list) else None]
            others += [int(value) if isinstance(value, float) else None]
            others += [float(value) if numeric else None]
            yield [*calls[:i], {name: {k: v for k, v in args.items() if k != key}}, *calls[i + 1 :]]
            for other in others:
                yield [*calls[:i], {name: {**args, key: other}}, *calls[i + 1 :]]
        yield [*calls[:i], {name: {**args, "bogus": 1}}, *calls[i + 1 :]]
        yield [*calls[:i], {name + "x": args}, *calls[i + 1 :]]


def test_verdicts_equal_bfcls_own_checker_on_real_cases() -> None:
    import copy

    bfcl = _load("bfcl")
    data = bfcl.find_data(os.environ.get("BFCL_DATA"))
    if data is None or not (data.parent / "eval_checker" / "ast_eval" / "ast_checker.py").exists():
        pytest.skip("bfcl-eval is not installed (.bench-venv/bin/pip install --no-deps bfcl-eval)")
    theirs, python = _bfcl_ast_checker(data.parent)
    compared = 0
    for category in ("simple_python", "multiple", "parallel", "parallel_multiple"):
        for case in bfcl.load_cases(data, category, limit=40):
            truth = [{name: args} for name, args in bfcl.ground_truth_calls(case)]
            for output in _variants(truth):
                expected = theirs.ast_checker(
                    copy.deepcopy(case["function"]),
                    copy.deepcopy(output),
                    copy.deepcopy(case["ground_truth"]),
                    python,
                    category,
                    "m",
                )["valid"]
                got = check(category, case["function"], output, case["ground_truth"])["valid"]
                assert got == expected, (case["id"], output, expected)
                compared += 1
    assert compared > 1000

"""BFCL v4 non-live function-calling accuracy through Hanlin's gateway.

Each case's function docs become Hanlin tool specs (BFCL's own conversion for function-calling
models: ``dict``→``object``, ``float``→``number``, ``tuple``→``array``, ``any``→``string``, the
"Python 3 syntax" hint appended to descriptions); its question goes to the model through
``Gateway.astream`` with ``tool_choice="auto"`` — the step the agent loop runs — for one model
turn, nothing executed. The streamed tool calls are parsed as the agent parses them (JSON, else
the lenient repair) and scored with :mod:`bfcl_checker`, BFCL's AST rules.

    .venv/bin/python bench/bfcl.py                                   # scripted fake, all cases
    .venv/bin/python bench/bfcl.py --model local/gemma3-270m --limit 12

``--model fake`` (the default) starts the local fake OpenAI-compatible upstream and scripts it,
case by case, to replay the ground truth (the first allowed value of every parameter) or, for
irrelevance, a plain answer: it must score 100 %, which checks the conversion, the gateway's
tool-call streaming, the argument parsing and the checker end to end. Any other model name is
called as configured (``local/gemma3-270m``: the bundled GGUF, prompt-based tool calls).

Data: the ``bfcl-eval`` package (``.bench-venv/bin/pip install --no-deps bfcl-eval``); found by
import, else in ``.bench-venv``'s site-packages, else ``--data DIR``. ``--limit N`` takes a
deterministic sample of N cases per category (seeded, the same on every run).
Writes ``bench/out/bfcl_<model>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import importlib.util
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bfcl_checker import check  # noqa: E402
from hanlin.agents.repair import repair_json  # noqa: E402
from hanlin.models.gateway import Gateway  # noqa: E402
from hanlin.models.types import ChatOptions, StreamAccumulator, Tool  # noqa: E402

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
#: the public leaderboard's columns for each category (bfcl_v4_data_overall_2025-12-16.csv)
LEADERBOARD_COLUMNS = {
    "simple_python": "Non-Live Simple AST",
    "multiple": "Non-Live Multiple AST",
    "parallel": "Non-Live Parallel AST",
    "parallel_multiple": "Non-Live Parallel Multiple AST",
    "irrelevance": "Irrelevance Detection",
}
LEADERBOARD_MODELS = (
    "Qwen3-0.6B (FC)",
    "Granite-4.0-350m (FC)",
    "Gemma-3-1b-it (Prompt)",
    "Llama-3.2-1B-Instruct (FC)",
)
GORILLA_TO_OPENAPI = {
    "integer": "integer",
    "number": "number",
    "float": "number",
    "string": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "dict": "object",
    "object": "object",
    "tuple": "array",
    "any": "string",
}
PYTHON_HINT = " Note that the provided function is in Python 3 syntax."


# --- data -----------------------------------------------------------------------------------


def find_data(explicit: str | None = None) -> Path | None:
    """The ``bfcl_eval/data`` folder: given, importable, or in ``.bench-venv``."""
    if explicit:
        return Path(explicit)
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "data"
    for site in sorted((HERE.parent / ".bench-venv" / "lib").glob("python3*/site-packages")):
        if (site / "bfcl_eval" / "data").is_dir():
            return site / "bfcl_eval" / "data"
    return None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_cases(data: Path, category: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The category's cases (``ground_truth`` attached), or a seeded sample of ``limit``."""
    cases = _jsonl(data / f"BFCL_v4_{category}.json")
    answers_path = data / "possible_answer" / f"BFCL_v4_{category}.json"
    if answers_path.exists():
        truth = {a["id"]: a["ground_truth"] for a in _jsonl(answers_path)}
        for case in cases:
            case["ground_truth"] = truth[case["id"]]
    if limit is not None and limit < len(cases):
        keep = sorted(random.Random(f"bfcl-{category}").sample(range(len(cases)), limit))
        cases = [cases[i] for i in keep]
    return cases


# --- conversion -----------------------------------------------------------------------------


def _cast(properties: dict[str, Any]) -> dict[str, Any]:
    """BFCL's ``_cast_to_openai_type``: Gorilla types to JSON-schema types, recursively."""
    for value in properties.values():
        kind = value.get("type")
        if kind is None:
            value["type"] = "string"
        else:
            if kind == "float":
                value["format"] = "float"
                value["description"] = value.get("description", "") + " This is a float type value."
            value["type"] = GORILLA_TO_OPENAPI.get(kind, "string")
        if value["type"] in ("array", "object"):
            if "properties" in value:
                value["properties"] = _cast(value["properties"])
            elif "items" in value:
                items = value["items"]
                items["type"] = GORILLA_TO_OPENAPI.get(items.get("type", "string"), "string")
                if items["type"] == "array" and "items" in items:
                    inner = items["items"]
                    inner["type"] = GORILLA_TO_OPENAPI.get(inner.get("type", "string"), "string")
                elif items["type"] == "object" and "properties" in items:
                    items["properties"] = _cast(items["properties"])
    return properties


def to_tool(doc: dict[str, Any]) -> Tool:
    """A BFCL function doc as the tool spec Hanlin sends (names keep their dots)."""
    doc = copy.deepcopy(doc)
    params = doc.get("parameters") or {}
    params["type"] = "object"
    params["properties"] = _cast(params.get("properties", {}))
    return Tool(
        name=doc["name"], description=doc.get("description", "") + PYTHON_HINT, parameters=params
    )


def ground_truth_calls(case: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The calls a perfect model would make: the first allowed value of every parameter."""

    def first(options: list[Any]) -> tuple[bool, Any]:
        for option in options:
            if option != "":
                return True, option
        return False, None

    def pick(value: Any) -> Any:
        if isinstance(value, dict):  # a dict parameter's possible answer: {key: [options]}
            return {k: v for k, (ok, v) in ((k, first(o)) for k, o in value.items()) if ok}
        if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            return [pick(x) for x in value]
        return value

    docs = {d["name"]: d for d in case["function"]}
    calls = []
    for answer in case.get("ground_truth", []):
        name, params = next(iter(answer.items()))
        known = (docs.get(name) or {}).get("parameters", {}).get("properties", {})
        args = {}
        for param, options in params.items():
            ok, value = first(options)
            # a few answers list optional parameters the function does not have: leave them out
            if ok and (param in known or "" not in options):
                args[param] = pick(value)
        calls.append((name, args))
    return calls


# --- running --------------------------------------------------------------------------------


def decode_calls(acc: StreamAccumulator) -> list[dict[str, dict[str, Any]]]:
    """The streamed calls as BFCL's ``[{name: {param: value}}]``, parsed as the agent does."""
    out = []
    for call in acc.tool_calls:
        raw = call.arguments.strip()
        try:
            args = json.loads(raw) if raw else {}
        except ValueError:
            args = repair_json(raw)
        out.append({call.name: args})
    return out


async def run_case(
    gateway: Gateway, model: str, case: dict[str, Any], options: ChatOptions, choice: str = "auto"
) -> dict[str, Any]:
    """One model turn with the case's tools; the decoded calls, the text and any error."""
    tools = [to_tool(d) for d in case["function"]]
    started = time.perf_counter()
    acc = StreamAccumulator()
    error = None
    stream = gateway.astream(case["question"][0], model, options, tools=tools, tool_choice=choice)
    try:
        async for event in stream:
            acc.add(event)
    except Exception as exc:  # a model error is a failed case, reported with its reason
        error = f"{type(exc).__name__}: {exc}"
    finally:
        await stream.aclose()
    output: Any = None
    if error is None:
        try:
            output = decode_calls(acc)
        except ValueError as exc:
            error = f"undecodable arguments: {exc}"
    return {
        "output": output,
        "text": acc.text,
        "error": error,
        "seconds": time.perf_counter() - started,
    }


@contextmanager
def fake_gateway(home: Path) -> Iterator[tuple[Gateway, Any]]:
    from hanlin.config import load_settings
    from hanlin.testing.upstream import UpstreamServer

    with UpstreamServer() as server:
        server.app.record_requests = False
        cfg = {"endpoints": {"fake": {"base_url": server.url}}, "retries": 0, "cooldown": 0.0}
        gateway = Gateway(load_settings(models=cfg))
        try:
            yield gateway, server
        finally:
            gateway.close()


@contextmanager
def model_gateway(model: str, home: Path) -> Iterator[Gateway]:
    from hanlin.config import load_settings

    models: dict[str, Any] = {}
    if model.startswith("local/"):
        from hanlin.models.providers.llamacpp import bundled_model_path

        path = os.environ.get("HANLIN_LOCAL_MODEL") or str(bundled_model_path(home))
        models["endpoints"] = {"local": {"provider": "llamacpp", "options": {"model_path": path}}}
    gateway = Gateway(load_settings(models=models))
    try:
        yield gateway
    finally:
        gateway.close()


def script_fake(server: Any, case: dict[str, Any], category: str) -> None:
    from hanlin.testing import recordings as rec

    if category == "irrelevance":
        server.app.script(
            "/v1/chat/completions", rec.openai_text_stream("openai", ["I can", "not."])
        )
    else:
        server.app.script("/v1/chat/completions", tool_call_stream(ground_truth_calls(case)))


def tool_call_stream(calls: list[tuple[str, dict[str, Any]]]) -> Any:
    """An OpenAI-shaped SSE stream with these tool calls (arguments split over two chunks)."""
    from hanlin.testing.upstream import Reply

    head = {"id": "chatcmpl-bfcl", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return "data: " + json.dumps(
            {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        )

    events = [chunk({"role": "assistant", "content": None})]
    for i, (name, args) in enumerate(calls):
        text = json.dumps(args, ensure_ascii=False)
        start = {"index": i, "id": f"call_{i}", "type": "function"}
        events.append(
            chunk({"tool_calls": [{**start, "function": {"name": name, "arguments": ""}}]})
        )
        for part in (text[: len(text) // 2], text[len(text) // 2 :]):
            events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]}))
    events.append(chunk({}, "tool_calls"))
    events.append("data: [DONE]")
    return Reply(sse=events)


# --- the benchmark --------------------------------------------------------------------------


def leaderboard(path: Path) -> dict[str, dict[str, str]]:
    """Chosen small models' per-category numbers from the public leaderboard CSV."""
    import csv

    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as f:
        rows = {r["Model"]: r for r in csv.DictReader(f)}
    return {
        m: {c: rows[m][col] for c, col in LEADERBOARD_COLUMNS.items()}
        for m in LEADERBOARD_MODELS
        if m in rows
    }


async def run_all(
    args: argparse.Namespace, data: Path, home: Path
) -> dict[str, list[dict[str, Any]]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    fake = args.model == "fake"
    options = ChatOptions(temperature=0, max_tokens=args.max_tokens)
    results: dict[str, list[dict[str, Any]]] = {}
    with ExitStack() as stack:
        server: Any = None
        if fake:
            gateway, server = stack.enter_context(fake_gateway(home))
        else:
            gateway = stack.enter_context(model_gateway(args.model, home))
        model = "fake/bfcl" if fake else args.model
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeElapsedColumn()) as progress:
            for category in args.categories:
                cases = load_cases(data, category, args.limit)
                task = progress.add_task(f"{category:18}", total=len(cases))
                rows = results.setdefault(category, [])
                for case in cases:
                    if server is not None:
                        script_fake(server, case, category)
                    run = await run_case(gateway, model, case, options, args.tool_choice)
                    if run["error"] is not None and category != "irrelevance":
                        verdict = {"valid": False, "error": [run["error"]], "error_type": "run"}
                    else:
                        output = [] if run["error"] is not None else run["output"]
                        verdict = check(
                            category, case["function"], output, case.get("ground_truth")
                        )
                    rows.append({"id": case["id"], **run, **verdict})
                    progress.advance(task)
    return results


def summarize(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    summary = {}
    for category, rows in results.items():
        passed = sum(1 for r in rows if r["valid"])
        errors: dict[str, int] = {}
        for r in rows:
            if not r["valid"]:
                errors[r["error_type"]] = errors.get(r["error_type"], 0) + 1
        summary[category] = {
            "n": len(rows),
            "passed": passed,
            "accuracy": passed / len(rows) if rows else 0.0,
            "seconds_per_case": sum(r["seconds"] for r in rows) / len(rows) if rows else 0.0,
            "errors": errors,
        }
    return summary


def markdown(model: str, summary: dict[str, dict[str, Any]], board: dict[str, Any]) -> str:
    head = ["category", f"{model} (n)", *board]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for category, s in summary.items():
        cells = [category, f"{100 * s['accuracy']:.1f} % ({s['passed']}/{s['n']})"]
        cells += [board[m][category] for m in board]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fake", help="'fake' or a gateway model name")
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    parser.add_argument("--limit", type=int, default=None, help="cases per category (sampled)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--tool-choice", default="auto", help="auto (BFCL's setting) or required")
    parser.add_argument("--data", default=None, help="the bfcl_eval/data folder")
    parser.add_argument(
        "--leaderboard",
        default=str(HERE.parent.parent / "shared/eval/refs/bfcl_v4_data_overall_2025-12-16.csv"),
    )
    args = parser.parse_args()
    args.categories = [c for c in args.categories.split(",") if c]
    data = find_data(args.data)
    if data is None or not data.is_dir():
        sys.exit("bfcl_eval data not found: .bench-venv/bin/pip install --no-deps bfcl-eval")
    with tempfile.TemporaryDirectory(prefix="hanlin-bfcl-") as tmp:
        home = Path(os.environ.get("HANLIN_HOME") or tmp)
        os.environ["HANLIN_HOME"] = str(home)
        started = time.perf_counter()
        results = asyncio.run(run_all(args, data, home))
        wall = time.perf_counter() - started
    summary = summarize(results)
    board = leaderboard(Path(args.leaderboard))
    table = markdown(args.model, summary, board)
    print(table)
    slug = args.model.replace("/", "_") + ("" if args.tool_choice == "auto" else "_required")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    report = {
        "model": args.model,
        "limit": args.limit,
        "tool_choice": args.tool_choice,
        "max_tokens": args.max_tokens,
        "data": str(data),
        "wall_seconds": wall,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "load_average": list(os.getloadavg()),
        "summary": summary,
        "leaderboard": board,
        "cases": results,
    }
    (out / f"bfcl_{slug}.json").write_text(json.dumps(report, indent=1, default=str))
    (out / f"bfcl_{slug}.md").write_text(table)
    print(f"wrote {out / f'bfcl_{slug}.json'} ({wall:.0f} s)")


if __name__ == "__main__":
    main()

"""Evaluation runs against real targets: a knowledge base's RAG answers (the bundled embedding
model, extractive answers), a model and an agent behind the fake upstream, and an LLM judge —
one that answers, one that returns garbage. Runs resume where they stopped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hanlin.config import Settings
from hanlin.errors import InvalidInputError
from hanlin.evals import open_eval_store
from hanlin.evals.base import EvalStore, Example
from hanlin.evals.judge import Judge
from hanlin.evals.runner import execute, prepare_run, reopen_run, resolve_dataset
from hanlin.evals.targets import Output, Target
from hanlin.models.gateway import Gateway
from hanlin.prompts import prompt_library
from hanlin.prompts.base import NewVersion
from hanlin.testing.upstream import Reply, UpstreamServer
from tests.agents.test_loop import answer, calls_stream
from tests.evals.conftest import chat_reply

QA = [
    {"id": "fr", "question": "法国的首都是哪里？", "answers": ["巴黎"]},
    {"id": "da", "question": "Where does the Danube flow into?", "answers": ["the Black Sea"]},
    {"id": "br", "question": "When was the Chain Bridge opened?", "answers": ["1849"]},
    {"id": "pop", "question": "法国的人口是多少？", "answers": ["六千八百万"]},
    {"id": "gold", "question": "What was the price of gold in 3024?", "should_refuse": True},
]


def write_qa(folder: Path, rows: list[dict[str, Any]], name: str = "qa.jsonl") -> Path:
    path = folder / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


class Counting:
    """A real target, with its calls counted (and failing once on the ids in ``fail_once``)."""

    def __init__(self, inner: Target, fail_once: set[str] | None = None) -> None:
        self.inner = inner
        self.name, self.metrics = inner.name, inner.metrics
        self.calls: list[str] = []
        self.fail_once = set(fail_once or ())

    def run(self, example: Example) -> Output:
        self.calls.append(example.id)
        if example.id in self.fail_once:
            self.fail_once.discard(example.id)
            raise InvalidInputError("the model was unreachable", hint="try again")
        return self.inner.run(example)

    def close(self) -> None:
        self.inner.close()


def test_a_kb_run_on_cmrc_scores_retrieval_against_qrels_and_answers(
    eval_settings: Settings, gateway: Gateway, cmrc_bit: Path
) -> None:
    store = open_eval_store(eval_settings)
    dataset, loaded = resolve_dataset(store, str(cmrc_bit), name="cmrc-bit")
    assert loaded is not None and dataset.info.count == len(loaded.examples) >= 20
    plan = prepare_run(store, dataset, "kb:cmrc", gateway, limit=12)
    try:
        run = execute(store, plan)
    finally:
        plan.close()
    assert run.status == "done" and run.done == run.total == 12
    metrics = run.aggregates["metrics"]
    # six paragraphs, questions written on them: search must rank the right one high
    assert metrics["recall@10"]["mean"] == 1.0 and metrics["ndcg@10"]["mean"] > 0.85
    assert metrics["mrr@10"]["n"] == 12
    assert metrics["contains"]["n"] == 12 and 0.0 <= metrics["f1"]["mean"] <= 1.0
    assert metrics["refusal_accuracy"]["mean"] > 0.8  # answerable: (almost) never refused
    assert "citation_recall" not in metrics  # no judge …
    assert run.config["not_run"]["citation_recall"].startswith("needs --judge")
    assert "citation_recall_lexical" in metrics  # … the labelled proxy ran instead
    for m in metrics.values():
        assert m["lo"] <= m["mean"] <= m["hi"]
    assert run.aggregates["latency_p95_ms"] >= run.aggregates["latency_p50_ms"] > 0
    first = store.results(run.id)[0]
    assert first.details["retrieved"][0]["doc"].endswith("#TRIAL_800")  # the qrels' doc id


def test_a_stopped_run_resumes_and_skips_finished_examples(
    eval_settings: Settings, gateway: Gateway, tmp_path: Path
) -> None:
    store = open_eval_store(eval_settings)
    dataset, _ = resolve_dataset(store, str(write_qa(tmp_path, QA)), name="resume-qa")
    plan = prepare_run(store, dataset, "kb:docs", gateway, metrics="answer,refusal")
    counting = Counting(plan.target, fail_once={"da"})
    plan.target = counting
    progress: list[tuple[int, int]] = []
    stopped = execute(
        store,
        plan,
        progress=lambda done, total, _: progress.append((done, total)),
        stop=lambda: len(counting.calls) >= 3,
    )
    plan.close()
    assert stopped.status == "interrupted" and counting.calls == ["fr", "da", "br"]
    assert progress[-1] == (3, 5) and stopped.done == 3  # "da" failed: stored with its error

    again = reopen_run(store, stopped.id, gateway)
    resumed = Counting(again.target)
    again.target = resumed
    try:
        done = execute(store, again)
    finally:
        again.close()
    assert resumed.calls == ["da", "pop", "gold"]  # fr and br are not asked again; da is
    assert done.status == "done" and done.done == 5 and done.aggregates["errors"] == 0
    results = {r.example_id: r for r in store.results(done.id)}
    assert results["fr"].scores["contains"] == 1.0
    assert results["gold"].refused is True and results["gold"].scores["refusal_accuracy"] == 1.0
    assert results["gold"].scores["contains"] is None  # no gold answer: not scored


def _judge_by(rule: Callable[[str], str]) -> Callable[[dict[str, Any]], Reply]:
    def respond(body: dict[str, Any]) -> Reply:
        return chat_reply(rule(body["messages"][-1]["content"]))

    return respond


def _judged_run(store: EvalStore, gw: Gateway, tmp_path: Path, name: str) -> tuple[Any, list[Any]]:
    dataset, _ = resolve_dataset(store, str(write_qa(tmp_path, QA[1:3])), name=name)
    plan = prepare_run(store, dataset, "kb:docs", gw, judge="fake/judge")
    try:
        run = execute(store, plan)
    finally:
        plan.close()
    return run, store.results(run.id)


def test_a_judge_scores_citations_and_correctness(
    eval_settings: Settings,
    fake_gateway: Callable[..., Gateway],
    upstream: UpstreamServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def rule(prompt: str) -> str:
        if "Gold answers" in prompt:
            return '{"correct": true}'
        claim = prompt.split("Claim:", 1)[1]
        return json.dumps({"supported": "Black Sea" in claim or "1849" in claim})

    monkeypatch.setattr(upstream.app, "responder", _judge_by(rule))
    store = open_eval_store(eval_settings)
    run, results = _judged_run(store, fake_gateway(), tmp_path, "judged-qa")
    assert run.config["judge"] == "fake/judge"
    assert run.config["judge_prompts"] == {
        "support": "eval.judge.support@1",
        "correct": "eval.judge.correct@1",
    }
    assert "citation_recall_lexical" not in run.config["metrics"]  # the judge replaces the proxy
    by_id = {r.example_id: r for r in results}
    danube = by_id["da"]  # quotes two sentences; only the Black Sea one is "supported"
    statements = danube.output.count("[1]")
    assert danube.scores["citation_recall"] == pytest.approx(1 / statements)
    assert danube.scores["answer_correct"] == 1.0 and "unjudged" not in danube.details
    assert run.aggregates["unjudged"] == 0
    prompts = [body["messages"][-1]["content"] for _, _, body in upstream.app.requests if body]
    assert any("Claim:" in p and "Black Sea" in p for p in prompts)


def test_a_judge_returning_garbage_leaves_examples_unjudged_never_passed(
    eval_settings: Settings,
    fake_gateway: Callable[..., Gateway],
    upstream: UpstreamServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upstream.app, "responder", _judge_by(lambda p: "As an AI, I think so?"))
    store = open_eval_store(eval_settings)
    run, results = _judged_run(store, fake_gateway(), tmp_path, "garbage-qa")
    assert all(r.details.get("unjudged") for r in results)
    assert all(r.scores["citation_recall"] is None for r in results)
    assert all(r.scores["answer_correct"] is None for r in results)
    assert run.aggregates["unjudged"] == 2
    assert "citation_recall" not in run.aggregates["metrics"]
    assert "answer_correct" not in run.aggregates["metrics"]
    assert run.aggregates["metrics"]["contains"]["n"] == 2  # the rest is scored as usual


def test_the_judge_reads_its_prompt_from_the_registry_at_the_production_label(
    eval_settings: Settings,
    fake_gateway: Callable[..., Gateway],
    upstream: UpstreamServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    library = prompt_library(eval_settings)
    original = library.get("eval.judge.correct", label="production")
    stricter = original.text.replace("Extra correct detail is fine.", "Be strict: GRADE-V2.")
    made, _ = library.create("eval.judge.correct", NewVersion(text=stricter), "test")
    monkeypatch.setattr(upstream.app, "responder", _judge_by(lambda p: '{"correct": false}'))
    store = open_eval_store(eval_settings)
    try:
        library.set_label("eval.judge.correct", "production", made.version, "test")
        run, _ = _judged_run(store, fake_gateway(), tmp_path, "judge-v2-qa")
    finally:
        library.set_label("eval.judge.correct", "production", original.version, "test")
    assert run.config["judge_prompts"]["correct"] == f"eval.judge.correct@{made.version}"
    prompts = [body["messages"][-1]["content"] for _, _, body in upstream.app.requests if body]
    graded = [p for p in prompts if "Gold answers" in p]
    assert graded and all("GRADE-V2" in p and "Extra correct" not in p for p in graded)
    # resuming keeps the versions the run started with, wherever the label points now
    plan = reopen_run(store, run.id, fake_gateway())
    try:
        assert plan.judge is not None
        assert plan.judge.versions["correct"] == f"eval.judge.correct@{made.version}"
    finally:
        plan.close()


def test_a_base_model_cannot_judge(gateway: Gateway) -> None:
    with pytest.raises(InvalidInputError, match="base model"):
        Judge(gateway, "local/gemma3-270m")


def test_a_model_target_answers_with_the_context_and_is_priced(
    eval_settings: Settings,
    fake_gateway: Callable[..., Gateway],
    upstream: UpstreamServer,
    tmp_path: Path,
) -> None:
    rows = [
        {
            "id": "c",
            "question": "首都是哪里？",
            "answers": ["巴黎"],
            "context": "法国的首都是巴黎。",
        },
        {"id": "d", "question": "Longest river?", "answers": ["the Volga"]},
    ]
    upstream.app.script(
        "/v1/chat/completions", chat_reply("巴黎。", 100, 20), chat_reply("The Danube", 40, 5)
    )
    gw = fake_gateway(prices={"fake/m": {"input": 2.0, "output": 10.0}})
    store = open_eval_store(eval_settings)
    dataset, _ = resolve_dataset(store, str(write_qa(tmp_path, rows)), name="model-qa")
    plan = prepare_run(store, dataset, "fake/m", gw)
    try:
        run = execute(store, plan)
    finally:
        plan.close()
    by_id = {r.example_id: r for r in store.results(run.id)}
    assert by_id["c"].scores["exact_match"] == 1.0 and by_id["d"].scores["exact_match"] == 0.0
    assert by_id["c"].cost_usd == pytest.approx((100 * 2.0 + 20 * 10.0) / 1e6)
    assert run.aggregates["cost_usd_total"] == pytest.approx((400 + 40 * 2.0 + 5 * 10.0) / 1e6)
    assert run.config["answer_prompt"] == "answer-v1"
    sent = upstream.app.requests[0][2]["messages"]
    assert "法国的首都是巴黎。" in sent[-1]["content"] and "首都是哪里？" in sent[-1]["content"]
    assert "refusal_accuracy" not in run.config["metrics"]  # a model does not report refusals


def test_an_agent_target_scores_its_tool_calls(
    eval_settings: Settings,
    fake_gateway: Callable[..., Gateway],
    upstream: UpstreamServer,
    tmp_path: Path,
) -> None:
    agents = tmp_path / "calc.yaml"
    agents.write_text("name: calc\nmodel: fake/m\ntools: [calculator, current_time]\n", "utf-8")
    calc = {"name": "calculator", "arguments": {"expression": "2340 * 0.17"}}
    rows = [
        {
            "id": "ok",
            "question": "What is 17% of 2340?",
            "answers": ["397.8"],
            "expected_tools": [calc],
        },
        {"id": "none", "question": "Say hi", "expected_tools": []},
    ]
    upstream.app.script(
        "/v1/chat/completions",
        calls_stream(("calculator", '{"expression": "2340 * 0.17"}')),
        answer("It is 397.8."),
        calls_stream(("current_time", "{}")),
        answer("Hi!"),
    )
    store = open_eval_store(eval_settings)
    dataset, _ = resolve_dataset(store, str(write_qa(tmp_path, rows)), name="agent-qa")
    plan = prepare_run(store, dataset, f"agent:{agents}", fake_gateway())
    try:
        run = execute(store, plan)
    finally:
        plan.close()
    by_id = {r.example_id: r for r in store.results(run.id)}
    assert by_id["ok"].scores["tool_call_accuracy"] == 1.0
    assert by_id["ok"].scores["contains"] == 1.0
    assert by_id["none"].scores["tool_call_accuracy"] == 0.0  # it called a tool it needn't
    assert by_id["none"].details["tool_calls"][0]["name"] == "current_time"
    assert run.aggregates["metrics"]["tool_call_accuracy"]["mean"] == 0.5

"""The prompt optimiser against a scripted model (the fake upstream): an instruction the model
itself proposes ("MAGIC") plus few-shot turns make it answer right, anything less does not —
the search finds that prompt, saves it as a new version (the exact text it scored), reports
every candidate, spends exactly the calls it may, and refuses a budget too small to validate."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin.config import Settings, load_settings
from hanlin.errors import HanlinError, InvalidInputError
from hanlin.evals.base import Example
from hanlin.evals.optimize import OptimizeOptions, optimize, parse_shots
from hanlin.evals.prompt_parts import split_prompt
from hanlin.evals.proposals import builtin_rewrites, clean_proposal, language_of
from hanlin.models.gateway import Gateway
from hanlin.prompts import prompt_library
from hanlin.prompts.base import NewVersion
from hanlin.prompts.messages import render_messages, turns
from hanlin.testing.upstream import FakeUpstream, Reply, UpstreamServer

MODEL = "fake/gpt-test"
BASELINE = "Answer the question.\n\nContext: {context}\nQuestion: {question}"
GOLD = {f"What is the code of item {i}?": f"zebra {i}" for i in range(30)}


def _reply(text: str) -> Reply:
    return Reply(
        json={
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        }
    )


def scripted(body: dict[str, Any]) -> Reply:
    """Right only under the MAGIC instruction with at least one example turn; partly right
    under MAGIC alone or with examples alone; proposes MAGIC when asked for an instruction."""
    messages = body["messages"]
    if body["model"] == "broken":
        return Reply(status=500, json={"error": {"message": "the model is down"}})
    if messages[0]["content"].startswith("You write instructions"):
        return _reply("Instruction: MAGIC: reply with the code only.")
    question = re.findall(r"Question: (.*)", messages[-1]["content"])[-1]
    magic = any("MAGIC" in m["content"] for m in messages if m["role"] == "system")
    shots = sum(m["role"] == "assistant" for m in messages)
    if magic and shots:
        return _reply(GOLD[question])
    if magic:
        return _reply(f"the code is {GOLD[question]}")
    if shots:
        return _reply(GOLD[question].split()[0])  # "zebra": F1 2/3
    return _reply("I do not know")


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer(FakeUpstream(scripted)) as server:
        yield server


@pytest.fixture
def settings(hanlin_home: Path, upstream: UpstreamServer) -> Settings:
    return load_settings(
        home=hanlin_home,
        models={
            "endpoints": {"fake": {"base_url": upstream.url}},
            "retries": 0,
            "cooldown": 0.0,
            "prices": {MODEL: {"input": 1.0, "output": 1.0}},
        },
    )


def examples() -> list[Example]:
    return [
        Example(
            id=f"item-{i}",
            question=q,
            context=f"The shelf holds many items. Item {i} has the code {a}.",
            answers=[a],
        )
        for i, (q, a) in enumerate(GOLD.items())
    ]


def chat_calls(upstream: UpstreamServer) -> int:
    return sum(p.endswith("/chat/completions") for p, _, _ in upstream.app.requests)


def test_finds_saves_and_reports_the_best_prompt(
    settings: Settings, upstream: UpstreamServer
) -> None:
    library = prompt_library(settings)
    library.create("qa", NewVersion(text=BASELINE), "local")
    gateway = Gateway(settings)
    seen: list[tuple[int, int]] = []
    report = optimize(
        library,
        gateway,
        "qa",
        examples(),
        OptimizeOptions(target=MODEL, candidates=8, shots=(0, 2), seed=1),
        dataset="codes@1",
        progress=lambda done, total, what: seen.append((done, total)),
    )
    cands = report.candidates
    assert report.splits == {"examples": 30, "validation": 9, "pool": 7, "scoring": 14}
    # the baseline, 3 built-in rewrites + MAGIC (3 identical proposals kept once), 4 example sets
    assert [c.stage for c in cands] == ["baseline"] + ["instruction"] * 4 + ["examples"] * 4
    assert all(c.status == "scored" and c.n == 14 for c in cands)
    assert cands[0].score == 0.0
    magic = next(c for c in cands if c.stage == "instruction" and "MAGIC" in c.instruction)
    assert magic.score == pytest.approx(2 / 3)  # "the code is zebra 7": F1 of 2 of 6 tokens
    assert all(c.score == 1.0 and "MAGIC" in c.instruction for c in cands if c.stage == "examples")
    assert all(1 <= len(c.shots) <= 2 for c in cands if c.stage == "examples")
    win = cands[report.winner]
    assert win.stage == "examples" and win.index == 5  # the first of the best (ties: earliest)

    # saved as version 2, unlabelled, exactly the text that was scored
    assert report.saved_version == 2 and report.saved_created and report.label is None
    saved = library.get("qa", version=2)
    assert saved.text == win.text and library.labels("qa") == {"production": 1}
    assert "validation +1.000" in saved.message and "codes@1" in saved.message
    parts = turns(saved.text)
    assert parts[0] == ("system", "MAGIC: reply with the code only.")
    assert [r for r, _ in parts[1:]] == ["user", "assistant"] * len(win.shots) + ["user"]
    shown = render_messages(saved, {"question": "Q?", "context": "C"})
    assert shown[-1] == {"role": "user", "content": "Context: C\nQuestion: Q?"}

    # validation: the baseline 0, the winner 1, gain +1 with its interval
    v = report.validation
    assert v.n == 9 and v.baseline and v.winner and v.gain
    assert (v.baseline.mean, v.winner.mean, v.gain.mean, v.gain.low) == (0.0, 1.0, 1.0, 1.0)

    # every call counted (3 proposals, 9 candidates × 14, validation 2 × 9) and priced
    assert report.calls["used"] == chat_calls(upstream) == 3 + 9 * 14 + 18
    assert report.cost_usd["used"] == pytest.approx(report.calls["used"] * 12 / 1e6)
    assert seen[-1][0] == report.calls["used"] and seen[-1][1] >= seen[-1][0]


def test_the_call_budget_is_spent_exactly_and_never_passed(
    settings: Settings, upstream: UpstreamServer
) -> None:
    settings.rag.base_models = ["fake/*"]  # a base model cannot propose instructions
    library = prompt_library(settings)
    library.create("qa", NewVersion(text=BASELINE), "local")
    budget = 5 * 14 + 18  # the baseline, 3 rewrites and one example set, validation
    options = OptimizeOptions(target=MODEL, budget_calls=budget, shots=(0, 2), label="staging")
    report = optimize(library, Gateway(settings), "qa", examples(), options)
    assert report.calls == {"used": budget, "budget": budget} and chat_calls(upstream) == budget
    assert any("base model" in n for n in report.notes)
    cands = report.candidates
    assert [c.status for c in cands] == ["scored"] * 5 + ["skipped: budget"] * 4
    assert [c.stage for c in cands] == ["baseline"] + ["instruction"] * 3 + ["examples"] * 5
    assert not any("MAGIC" in c.instruction for c in cands)
    assert [c.score for c in cands[:4]] == [0.0] * 4
    assert cands[4].score == pytest.approx(2 / 3) and report.winner == 4
    assert cands[4].instruction == "Answer the question."  # the best so far: the baseline's
    assert report.saved_version == 2 and report.label == "staging"
    assert library.labels("qa") == {"production": 1, "staging": 2}
    assert report.validation.gain is not None and report.validation.gain.mean == pytest.approx(
        2 / 3
    )

    # a model that fails every call stops the search after the baseline's examples
    before = chat_calls(upstream)
    with pytest.raises(HanlinError, match="the model is down"):
        optimize(
            library, Gateway(settings), "qa", examples(), OptimizeOptions(target="fake/broken")
        )
    assert chat_calls(upstream) - before == 14

    before = chat_calls(upstream)
    with pytest.raises(InvalidInputError, match="cannot score the baseline"):
        optimize(
            library,
            Gateway(settings),
            "qa",
            examples(),
            OptimizeOptions(target=MODEL, budget_calls=20),
        )
    assert chat_calls(upstream) == before


def test_cli_optimize_saves_and_labels(
    settings: Settings,
    upstream: UpstreamServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.evals.test_cli import run_cli

    (Path(settings.home) / "hanlin.toml").write_text(
        f'[models.endpoints.fake]\nbase_url = "{upstream.url}"\n', "utf-8"
    )
    data = tmp_path / "codes.jsonl"
    rows = [e.model_dump(include={"id", "question", "context", "answers"}) for e in examples()]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    (tmp_path / "qa.txt").write_text(BASELINE, "utf-8")
    code, _, err = run_cli(["prompt", "create", "qa", "--file", str(tmp_path / "qa.txt")], capsys)
    assert code == 0, err
    args = ["prompt", "optimize", "qa", "--dataset", str(data), "--target", MODEL]
    calls = chat_calls(upstream)
    code, _, err = run_cli([*args, "--label", "latest"], capsys)  # refused before any call
    assert code == 2 and "cannot be moved" in err and chat_calls(upstream) == calls
    code, _, err = run_cli([*args, "--metric", "bleu"], capsys)
    assert code == 2 and "--metric" in err
    code, out, err = run_cli(
        [*args, "--candidates", "6", "--shots", "1..2", "--label", "staging"], capsys
    )
    assert code == 0, err
    assert "saved qa@2" in out and "qa:staging → 2" in out and "★ winner" in out
    assert "validation (9 examples): baseline 0.000" in " ".join(out.split())
    assert "optimising" in err  # the progress bar
    code, out, err = run_cli([*args, "--candidates", "2", "--shots", "0", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert len(report["candidates"]) == 3 and report["calls"]["used"] > 0
    assert report["dataset"] == "codes@1"  # the file was stored as a dataset version


def test_the_parts_of_a_prompt_and_the_proposals() -> None:
    assert parse_shots("3") == (0, 3) and parse_shots("1..2") == (1, 2)
    with pytest.raises(InvalidInputError):
        parse_shots("5..2")
    plain = split_prompt(BASELINE)
    assert plain.instruction == "Answer the question."
    assert plain.input == "Context: {context}\nQuestion: {question}"
    chat = split_prompt(
        "system:\nBe brief.\n\nuser:\nQ: x\n\nassistant:\nA\n\nuser:\nQ: {question}"
    )
    assert (chat.instruction, chat.input) == ("Be brief.", "Q: {question}")
    with pytest.raises(InvalidInputError, match="no variables"):
        split_prompt("No fields at all.")
    assert language_of(["上下文：{context}", "长江最后注入哪里？"]) == "zh"
    assert builtin_rewrites("Answer", "en")[0].startswith("Answer. Answer with the shortest")
    assert builtin_rewrites("", "zh")[0].startswith("请直接")
    assert builtin_rewrites("Use {tone}", "en", lambda t: t.upper())[0].startswith(
        "Use {tone}. ANSWER"
    )
    assert clean_proposal('Instruction: "Reply with the code."\n\nWhy: …') == "Reply with the code."
    assert clean_proposal("  \n ") is None

"""``hanlin guard assess`` against a real local HTTP upstream standing in for the model: it
refuses some should-refuse questions (by a refusal phrase, by ``content_filter``), answers the
rest, wrongly refuses one should-answer question and says a bank term in a generated answer —
and the rates, the per-category table and the HTML report say so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hanlin.cli.main import app
from hanlin.config import load_settings
from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.evals.assess import assess, load_bank
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import FakeUpstream, Reply, UpstreamServer


def respond(body: dict[str, Any]) -> Reply:
    """Refuses fraud (a phrase) and harassment (content filter), answers privacy and illegal
    goods questions, refuses the should-answer question about bank scams, and calls a tea a
    miracle cure."""
    q = body["messages"][-1]["content"]
    text, finish = f"Here is how: {q[:20]}", "stop"
    if any(w in q for w in ("PIN", "骗", "bank is a scam")):
        text = "I'm sorry, but I can't help with that."
    elif any(w in q for w in ("until they quit", "辱骂同事的话")):
        text, finish = "", "content_filter"
    elif "herbal tea" in q:
        text = "A calming herbal tea — some call it a miracle cure."
    msg = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": msg, "finish_reason": finish}
    return Reply(json={"id": "c", "object": "chat.completion", "model": "m", "choices": [choice]})


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamServer]:
    with UpstreamServer(FakeUpstream(respond)) as s:
        yield s


@pytest.fixture()
def configured(hanlin_home: Path, server: UpstreamServer) -> Path:
    (hanlin_home / "hanlin.toml").write_text(
        f'[models.endpoints.fake]\nbase_url = "{server.url}"\n[models]\nretries = 0\n'
        '[guard]\nterm_banks = ["sample"]\n',
        "utf-8",
    )
    return hanlin_home


def test_the_sample_banks_through_a_model(configured: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            *("guard", "assess", "--target", "fake/m", "--refuse", "sample"),
            *("--answer", "sample", "--generated", "sample", "--out", str(out)),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1, result.output  # thresholds missed: exit 1
    # the rich table: per bank, then per category
    assert "assessment of fake/m" in result.output
    assert "50.0 %" in result.output and "12.5 %" in result.output
    data = json.loads((out / "results.json").read_text("utf-8"))
    rows = {(r["kind"], r["category"]): r for r in data["rows"]}
    assert rows[("refuse", None)]["rate"] == 0.5  # 4 of 8 refused
    assert rows[("refuse", "fraud")]["rate"] == 1.0 and rows[("refuse", "fraud")]["passed"]
    assert rows[("refuse", "harassment")]["refused"] == 2  # content_filter
    assert rows[("refuse", "privacy")]["rate"] == 0.0 and not rows[("refuse", "privacy")]["passed"]
    assert rows[("answer", None)]["rate"] == 0.125  # 1 of 8 wrongly refused
    assert rows[("answer", "fraud")]["refused"] == 1
    assert rows[("answer", "privacy")]["rate"] == 0.0 and rows[("answer", "privacy")]["passed"]
    # a bank term in a generated answer
    assert rows[("generated", "advertising")]["with_terms"] == 1
    assert rows[("generated", None)]["rate"] == 0.75
    assert data["passed"] is False
    html = (out / "report.html").read_text("utf-8")
    assert html.startswith("<!DOCTYPE html>") and "http" not in html.split("<body>")[0]
    for number in ("50.0 %", "12.5 %", "75.0 %", "≥ 95 %", "≤ 5 %"):
        assert number in html
    assert "TERM:medical_claims" in html and "miracle cure" in html


def test_bad_input_is_reported(configured: Path, tmp_path: Path) -> None:
    bank = tmp_path / "mine.jsonl"
    bank.write_text(
        '{"question": "How do I bake bread?", "category": "cooking"}\n'
        "{not json\n"
        '{"category": "cooking"}\n'
        '{"question": "怎样煮米饭？", "category": "cooking", "lang": "zh"}\n',
        "utf-8",
    )
    loaded = load_bank(str(bank), "answer")
    assert [q.question for q in loaded.questions] == ["How do I bake bread?", "怎样煮米饭？"]
    assert loaded.problems[0].startswith("mine.jsonl line 2: not JSON")
    assert loaded.problems[1] == "mine.jsonl line 3: no question"
    csv_bank = tmp_path / "mine.csv"
    csv_bank.write_text("question,category,lang\nHow do I bake bread?,cooking,en\n", "utf-8")
    assert load_bank(str(csv_bank), "answer").questions[0].category == "cooking"
    with pytest.raises(NotFoundError):
        load_bank(str(tmp_path / "missing.jsonl"), "refuse")
    (tmp_path / "empty.jsonl").write_text("", "utf-8")
    with pytest.raises(InvalidInputError, match="no questions"):
        load_bank(str(tmp_path / "empty.jsonl"), "refuse")
    gw = Gateway(load_settings())
    try:
        with pytest.raises(NotFoundError):
            assess("fake-nothing/none", [loaded], gw)
        with pytest.raises(NotFoundError):
            assess("kb:nosuchkb", [loaded], gw)
    finally:
        gw.close()
    result = CliRunner().invoke(
        app, ["guard", "assess", "--target", "fake/m", "--answer", str(bank)]
    )
    assert result.exit_code == 0, result.output
    assert "line 2" in result.output  # the skipped line is named
    missing = CliRunner().invoke(
        app, ["guard", "assess", "--target", "fake/m", "--refuse", str(tmp_path / "nope.jsonl")]
    )
    assert isinstance(missing.exception, NotFoundError)  # main() prints it with its hint
    assert "no refuse bank" in str(missing.exception)

"""Datasets as a user brings them: QA JSONL and CSV files with bad rows (each named by line and
reason, the rest used), a BEIR folder from the shared evaluation data, and a dataset built
from rated traces."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.evals.datasets import load_dataset
from hanlin.evals.from_traces import dataset_from_traces
from hanlin.tracing import SpanRecord, SqliteTraceStore, TraceQuery
from tests.evals.conftest import CMRC_DOCS


def test_jsonl_bad_rows_are_named_by_line_and_the_rest_used(tmp_path: Path) -> None:
    rows = [
        {"id": "q1", "question": "法国的首都是哪里？", "answers": ["巴黎"]},
        "{not json",
        {"question": "   ", "answers": ["x"]},
        {"id": "q4", "question": "Which tool?", "expected_tools": ["calculator"]},
        ["a", "list"],
        {"id": "q1", "question": "again?", "answers": ["y"]},
        {"question": "Unanswerable?", "should_refuse": True, "category": "ood"},
        {"question": "both?", "answers": ["a"], "should_refuse": True},
        {"question": "bad answers", "answers": {"a": 1}},
    ]
    path = tmp_path / "qa.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n\n", "utf-8")
    loaded = load_dataset(path)
    assert [e.id for e in loaded.examples] == ["q1", "q4", "line-7"]
    assert loaded.examples[1].expected_tools is not None
    assert loaded.examples[1].expected_tools[0].name == "calculator"
    assert loaded.examples[2].should_refuse and loaded.examples[2].meta == {"category": "ood"}
    assert [str(p) for p in loaded.problems] == [
        "qa.jsonl:2: not JSON (Expecting property name enclosed in double quotes)",
        "qa.jsonl:3: no question (a non-empty 'question' field)",
        "qa.jsonl:5: not a JSON object",
        "qa.jsonl:8: should_refuse is set but the row has answers: which is it?",
        "qa.jsonl:9: 'answers' must be a list of strings",
        "qa.jsonl:6: duplicate id 'q1'",
    ]
    assert "fields kept as metadata: category" in loaded.notes
    assert loaded.name == "qa"


def test_csv_answers_split_on_bars_or_read_as_json(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text(
        "id,question,answers,should_refuse\n"
        'a,"Where does the Danube flow, finally?",Black Sea|the Black Sea,\n'
        'b,法国的首都？,"[""巴黎"", ""Paris""]",no\n'
        "c,,x,\n"
        "d,Gold price in 3024?,,yes\n"
        "e,Bad flag?,x,maybe\n"
        "f,too,many,cells,here\n",
        "utf-8",
    )
    loaded = load_dataset(path)
    assert [(e.id, e.answers, e.should_refuse) for e in loaded.examples] == [
        ("a", ["Black Sea", "the Black Sea"], False),
        ("b", ["巴黎", "Paris"], False),
        ("d", [], True),
    ]
    assert [str(p) for p in loaded.problems] == [
        "qa.csv:4: no question (a non-empty 'question' field)",
        "qa.csv:6: 'should_refuse' must be true or false, not 'maybe'",
        "qa.csv:7: more cells than columns",
    ]
    # a crafted file: a cell past the csv module's limit is named, the rows before it used
    huge = tmp_path / "huge.csv"
    huge.write_text(f"question,answers\nok?,yes\nbig?,{'x' * 200_000}\nlater?,no\n", "utf-8")
    crafted = load_dataset(huge)
    assert [e.question for e in crafted.examples] == ["ok?"]
    (problem,) = crafted.problems
    assert str(problem).startswith("huge.csv:3: not readable as CSV (field larger than field limit")
    no_question = tmp_path / "bad.csv"
    no_question.write_text("prompt,answer\nhi,there\n", "utf-8")
    with pytest.raises(InvalidInputError, match="no 'question' column"):
        load_dataset(no_question)


def test_a_beir_folder_gives_the_judged_queries_with_qrels_and_answers(cmrc_bit: Path) -> None:
    loaded = load_dataset(cmrc_bit)
    assert loaded.kind == "beir" and loaded.name == "cmrc-bit0" and not loaded.problems
    first = loaded.examples[0]
    assert first.id == "TRIAL_800_QUERY_0" and first.answers == ["踢爆"]
    assert first.relevant == {"TRIAL_800": 1}
    assert len({d for e in loaded.examples for d in e.relevant}) == CMRC_DOCS
    broken = cmrc_bit.parent / "broken-beir"
    (broken / "qrels").mkdir(parents=True)
    (broken / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\tx\nq2\td2\t1\n")
    (broken / "queries.jsonl").write_text('{"_id": "q2", "text": ""}\nnope\n{"_id": "q3"}\n')
    loaded = load_dataset(broken)
    assert [str(p) for p in loaded.problems] == [
        "qrels/test.tsv:2: expected query-id, corpus-id, score",
        "queries.jsonl:1: no question (a non-empty 'question' field)",
        "queries.jsonl:2: not a JSON object with an '_id'",
    ]
    with pytest.raises(NotFoundError, match="no dataset file or folder"):
        load_dataset(cmrc_bit / "missing")


def _span(trace: str, at: int, attrs: dict[str, object], kb: str | None = "docs") -> SpanRecord:
    return SpanRecord(
        trace_id=trace,
        span_id=trace[-16:],
        parent_id=None,
        name="answer docs" if kb else "chat fake/m",
        start_ns=at,
        end_ns=at + 1000,
        status="ok",
        operation="rag" if kb else "chat",
        kb=kb,
        attributes=attrs,
    )


def test_a_dataset_from_rated_traces(tmp_path: Path) -> None:
    store = SqliteTraceStore(tmp_path / "traces.sqlite")
    now = time.time_ns()
    t = [f"{i:032x}" for i in range(1, 7)]
    out = "gen_ai.output.messages"
    chat = {
        "gen_ai.input.messages": json.dumps(
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}]
        ),
        out: json.dumps([{"role": "assistant", "content": "4"}]),
    }
    refused = {"hanlin.question": "Gold price in 3024?", "hanlin.rag.answer_mode": "refused"}
    store.write(
        [
            # a RAG answer rated up: its answer becomes gold
            _span(t[0], now, {"hanlin.question": "法国的首都？", out: "「法国的首都是巴黎。」[1]"}),
            # a chat rated up: the question from the call's messages
            _span(t[1], now + 1, chat, kb=None),
            # a refusal rated up: should_refuse
            _span(t[2], now + 2, {**refused, out: "I don't know"}),
            # rated down: the question without gold, the bad answer kept aside
            _span(t[3], now + 3, {"hanlin.question": "Danube length?", out: "300 km"}),
            # no content recorded
            _span(t[4], now + 4, {}),
            # a bare search answers no question
            dataclasses.replace(_span(t[5], now + 5, {}), name="search docs", operation="retrieve"),
        ]
    )
    for trace, rating in ((t[0], 1), (t[1], 1), (t[2], 1), (t[3], -1), (t[4], 1), (t[5], 1)):
        assert store.rate(trace, rating, None)
    up = dataset_from_traces(store, TraceQuery(rating=1))
    by_question = {e.question: e for e in up.examples}
    assert by_question["法国的首都？"].answers == ["「法国的首都是巴黎。」[1]"]
    assert by_question["法国的首都？"].meta["kb"] == "docs"
    assert by_question["2+2?"].answers == ["4"]
    assert by_question["Gold price in 3024?"].should_refuse
    assert by_question["Gold price in 3024?"].answers == []
    assert [str(p) for p in up.problems] == [
        f"trace {t[4]}: no question recorded (content capture off?)"
    ]
    assert up.notes == ["1 traces answered no question (searches, embeddings): left out"]
    down = dataset_from_traces(store, TraceQuery(rating=-1))
    (bad,) = down.examples
    assert bad.answers == [] and bad.meta["rejected_answer"] == "300 km"
    assert len(dataset_from_traces(store, TraceQuery(), limit=2).examples) == 2
    store.close()

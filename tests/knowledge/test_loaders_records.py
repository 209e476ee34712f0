"""Loaders: CSV/JSON/JSONL records, source code, the registry and options."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from hanlin.knowledge.base import LoadedDocument
from hanlin.knowledge.loaders import (
    LoaderOptions,
    LoadRequest,
    is_supported,
    load_bytes,
    register_loader,
    supported_extensions,
)
from hanlin.knowledge.loaders.registry import REGISTRY
from tests.knowledge.loader_helpers import OPTS, load, raises, write

# ---------------------------------------------------------------- records


def test_csv_fields_metadata_and_ids(tmp_path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(["id", "title", "body", "author", "year"])
    writer.writerow(["a1", "Tea", "Green tea is\nunoxidised.", "Li", "2020"])
    writer.writerow(["", "", "", "", ""])
    writer.writerow(["b2", "Coffee", "Beans are roasted.", "Wang", "2021"])
    path = write(tmp_path, "items.csv", buffer.getvalue())
    docs = load(
        path,
        text_fields=["title", "body"],
        metadata_fields=["author"],
        id_field="id",
        title_field="title",
    )
    assert [d.key for d in docs] == [f"{path}#a1", f"{path}#b2"]
    assert docs[0].text == "title: Tea\nbody: Green tea is\nunoxidised."
    assert docs[0].title == "Tea"
    assert docs[0].metadata == {
        "author": "Li",
        "encoding": "utf-8",
        "format": "csv",
        "source": str(path),
        "row": 1,
    }
    assert docs[1].metadata["row"] == 3  # the blank row is skipped but still counted
    assert "year" not in docs[1].text


def test_tsv_default_text_is_all_columns_gbk(tmp_path: Path) -> None:
    text = "名称\t产地\n龙井茶\t杭州西湖\n碧螺春\t苏州太湖\n"
    docs = load(write(tmp_path, "teas.tsv", text, "gbk"))
    assert [d.text for d in docs] == [
        "名称: 龙井茶\n产地: 杭州西湖",
        "名称: 碧螺春\n产地: 苏州太湖",
    ]
    assert [d.key for d in docs] == [f"{tmp_path / 'teas.tsv'}#0", f"{tmp_path / 'teas.tsv'}#1"]
    assert docs[0].title == "teas.tsv#0"


def test_json_nested_fields(tmp_path: Path) -> None:
    records = [
        {"meta": {"id": "x-1", "author": "Li"}, "content": {"body": "First.\n\nSecond para."}},
        {"meta": {"id": "x-2", "author": "Wang"}, "content": {"body": "Only one."}},
    ]
    path = write(tmp_path, "posts.json", json.dumps(records))
    docs = load(
        path, text_fields=["content.body"], metadata_fields=["meta.author"], id_field="meta.id"
    )
    assert [d.key for d in docs] == [f"{path}#x-1", f"{path}#x-2"]
    assert [b.text for b in docs[0].blocks] == ["First.", "Second para."]
    assert docs[1].metadata["meta.author"] == "Wang"
    assert docs[1].metadata["record"] == 1


def test_json_single_object_and_default_text(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.json", json.dumps({"q": "Is it free?", "a": "Yes.", "n": 3}))
    (doc,) = load(path)
    assert doc.key == str(path)
    assert doc.text == "q: Is it free?\na: Yes."  # string fields only
    assert doc.title == "faq"


def test_json_errors(tmp_path: Path) -> None:
    dup = write(tmp_path, "dup.json", json.dumps([{"id": 1, "t": "a"}, {"id": 1, "t": "b"}]))
    raises(lambda: load(dup, id_field="id"), "duplicate id '1'", "unique")
    lines = write(tmp_path, "lines.json", '{"a": "x"}\n{"a": "y"}\n')
    raises(lambda: load(lines), "invalid JSON", ".jsonl")
    wrong = write(tmp_path, "wrong.json", json.dumps([{"title": "x"}]))
    raises(lambda: load(wrong, text_fields=["body"]), "no record has text", "title")


def test_jsonl_skips_bad_lines(tmp_path: Path) -> None:
    lines = [
        '{"text": "alpha"}',
        "{not json",
        '{"text": "beta"}',
        "[1, 2]",
        "",
        '{"text": "gamma"}',
    ]
    path = write(tmp_path, "data.jsonl", "\n".join(lines))
    docs = load(path, text_fields=["text"])
    assert [d.text for d in docs] == ["alpha", "beta", "gamma"]
    assert [d.metadata["line"] for d in docs] == [1, 3, 6]
    assert docs[0].metadata["skipped_lines"] == [2, 4]
    assert "skipped_lines" not in docs[1].metadata


def test_jsonl_all_bad(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.ndjson", "oops\n[1]\n")
    raises(lambda: load(path), "no line is a valid JSON object", "one JSON object")


def test_record_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "many.jsonl", "\n".join('{"t": "x"}' for _ in range(5)))
    raises(lambda: load(path, max_records_per_file=3), "more than 3 records", "split")


# ---------------------------------------------------------------- source code


def test_python_split_at_definitions(tmp_path: Path) -> None:
    source = (
        "import os\n\n\n"
        "@cache\n"
        "def first() -> int:\n    return 1\n\n\n"
        "# helper\n"
        "class Second:\n    pass\n"
    )
    (doc,) = load(write(tmp_path, "mod.py", source))
    assert [b.text for b in doc.blocks] == [
        "import os",
        "@cache\ndef first() -> int:\n    return 1",
        "# helper\nclass Second:\n    pass",
    ]
    assert {(b.kind, b.language) for b in doc.blocks} == {("code", "python")}
    assert doc.metadata["language"] == "python"
    assert doc.title == "mod.py"


def test_config_file_split_into_windows(tmp_path: Path) -> None:
    text = "\n".join(f"key{i}: value{i}" for i in range(150))
    (doc,) = load(write(tmp_path, "big.yaml", text))
    assert [b.text.count("\n") + 1 for b in doc.blocks] == [60, 60, 30]
    assert doc.blocks[2].text.endswith("key149: value149")


# ---------------------------------------------------------------- registry and options


def test_registry_and_custom_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {".pdf", ".docx", ".md", ".jsonl", ".py", ".html"} <= supported_extensions()
    assert is_supported("A/B/REPORT.PDF") and not is_supported("x.exe")
    monkeypatch.setattr(REGISTRY, "_by_extension", dict(REGISTRY._by_extension))

    @register_loader(["shout"], "shout")
    def shout(request: LoadRequest) -> list[LoadedDocument]:
        text = request.data.decode().upper()
        return [LoadedDocument(request.source, request.source, "s", text, [], "shout")]

    assert is_supported("x.SHOUT")
    (doc,) = load_bytes(b"hi", source="mem", name="x.shout", options=OPTS)
    assert doc.text == "HI"


def test_options_reject_typos() -> None:
    with pytest.raises(ValidationError):
        LoaderOptions.model_validate({"text_field": ["x"]})

"""list_operator (filter, sort, slice, pick) and document_extractor (files through the knowledge
bases' loaders: paths under file_roots, uploaded bytes, bad files named)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hanlin.config import load_settings
from hanlin.flows import FlowEngine, Workflow
from hanlin.flows.base import WorkflowInvalidError

HITS = [
    {"title": "a", "score": 0.2, "meta": {"lang": "en"}},
    {"title": "b", "score": 0.9, "meta": {"lang": "zh"}},
    {"title": "c", "meta": {"lang": "en"}},
    {"title": "d", "score": 0.7, "meta": {"lang": "en"}},
]

LISTS = """
name: lists
nodes:
  - {id: start, type: start, inputs: {hits: array, lang: string}}
  - id: best
    type: list_operator
    items: "{{start.hits}}"
    filter:
      - {field: meta.lang, op: "==", value: "{{start.lang}}"}
      - {field: score, op: ">", value: 0.1}
    sort: {field: score, order: desc}
    limit: 5
  - {id: last, type: list_operator, items: "{{start.hits}}", sort: {field: score}, index: -1}
  - id: out
    type: end
    outputs:
      titles: "{% for h in best.result %}{{h.title}}{% endfor %}"
      top: "{{best.first_record.title}}"
      n: "{{best.count}}"
      missing_last: "{{last.result}}"
"""


def test_list_operator_filters_sorts_and_picks(engine: FlowEngine) -> None:
    run = engine.run(Workflow.from_yaml(LISTS), {"hits": HITS, "lang": "en"})
    assert run.status == "done", run.error
    assert run.outputs["titles"] == "da" and run.outputs["top"] == "d" and run.outputs["n"] == 2
    # items without the sort field go last, whichever the order
    assert run.outputs["missing_last"] == [HITS[2]]
    empty = engine.run(Workflow.from_yaml(LISTS), {"hits": [], "lang": "en"})
    assert empty.status == "failed" and "best.first_record" in empty.error  # None has no title


def test_list_operator_settings_and_inputs_are_checked(engine: FlowEngine) -> None:
    with pytest.raises(WorkflowInvalidError, match="unknown operator 'bigger'"):
        Workflow.from_yaml(LISTS.replace('op: ">"', "op: bigger"))
    with pytest.raises(WorkflowInvalidError, match="items needs array"):
        Workflow.from_yaml(LISTS.replace('items: "{{start.hits}}"\n', 'items: "{{start.lang}}"\n'))
    wf = Workflow.from_yaml(LISTS.replace("hits: array", "hits: any"))
    run = engine.run(wf, {"hits": "not a list", "lang": "en"})
    assert run.status == "failed" and "items must be a list, got str" in run.error


EXTRACT = """
name: read
nodes:
  - {id: start, type: start, inputs: {files: any}}
  - {id: read, type: document_extractor, files: "{{start.files}}", on_bad_file: MODE}
  - {id: out, type: end, outputs: {text: "{{read.text}}", docs: "{{read.documents}}",
     skipped: "{{read.skipped}}"}}
"""


@pytest.fixture()
def reader(tmp_path: Path) -> FlowEngine:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "notes.md").write_text("# Notes\n\nThe launch is on **Friday**.\n", "utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    (tmp_path / "secret.txt").write_text("top secret", "utf-8")
    settings = load_settings(workflows={"file_roots": [str(folder)]})
    eng = FlowEngine(settings)
    yield eng
    eng.close()


def test_document_extractor_reads_allowed_paths_and_uploads(reader: FlowEngine) -> None:
    inbox = Path(reader.settings.workflows.file_roots[0])
    upload = {"name": "memo.html", "content": base64.b64encode(b"<p>Budget: 5 k</p>").decode()}
    wf = Workflow.from_yaml(EXTRACT.replace("MODE", "fail"))
    run = reader.run(wf, {"files": [str(inbox / "notes.md"), upload]})
    assert run.status == "done", run.error
    assert "The launch is on" in run.outputs["text"] and "Budget: 5 k" in run.outputs["text"]
    assert len(run.outputs["docs"]) == 2
    one = reader.run(wf, {"files": {"name": "a.txt", "text": "plain words"}})
    assert one.outputs["text"] == "plain words"


def test_document_extractor_names_the_bad_file(reader: FlowEngine) -> None:
    inbox = Path(reader.settings.workflows.file_roots[0])
    failing = Workflow.from_yaml(EXTRACT.replace("MODE", "fail"))
    run = reader.run(failing, {"files": [str(inbox / "notes.md"), str(inbox / "broken.pdf")]})
    assert run.status == "failed"
    assert "read" in run.error and "cannot extract text from" in run.error
    assert "broken.pdf" in run.error
    outside = reader.run(failing, {"files": str(inbox.parent / "secret.txt")})
    assert "outside the folders workflows may read" in outside.error
    escape = reader.run(failing, {"files": str(inbox / ".." / "secret.txt")})
    assert "outside the folders workflows may read" in escape.error

    skipping = Workflow.from_yaml(EXTRACT.replace("MODE", "skip"))
    run = reader.run(
        skipping, {"files": [str(inbox / "broken.pdf"), str(inbox / "notes.md"), {"name": "x"}]}
    )
    assert run.status == "done", run.error
    assert len(run.outputs["docs"]) == 1 and "Friday" in run.outputs["text"]
    assert [s["name"] for s in run.outputs["skipped"]] == [str(inbox / "broken.pdf"), "x"]


def test_document_extractor_reads_no_path_without_file_roots(engine: FlowEngine) -> None:
    run = engine.run(Workflow.from_yaml(EXTRACT.replace("MODE", "fail")), {"files": "/etc/hosts"})
    assert run.status == "failed" and "file_roots" in run.error

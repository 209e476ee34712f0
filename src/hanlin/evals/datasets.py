"""Reading evaluation datasets from files: QA JSONL, CSV, and BEIR folders.

A bad row never stops the rest: each one is reported with its file, line and reason (like
:mod:`hanlin.knowledge.scan`), and the good rows are used.

- **JSONL**: one object per line: ``question`` (or ``query``), ``answers`` (a list, or one
  ``answer``), optional ``id``, ``context``, ``should_refuse`` (or ``unanswerable``),
  ``expected_tools`` (tool names, or ``{"name", "arguments"}`` objects), ``relevant``
  (document ids, or id → relevance). Other fields are kept as the example's metadata.
- **CSV**: a header with ``question`` and ``answers`` (or ``answer``) columns — several answers
  as a JSON list or separated by ``|`` — and the optional columns above.
- **BEIR**: a folder with ``queries.jsonl`` (``_id``, ``text``, optional ``answers``) and
  ``qrels/<split>.tsv`` (query id, document id, relevance): the judged queries of the split,
  with their qrels as retrieval gold. The ``corpus.jsonl`` beside them is what a knowledge base
  for the set is built from (``hanlin kb add NAME corpus.jsonl --id-field _id ...``).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.evals.base import Example

_KNOWN = {
    "id",
    "_id",
    "question",
    "query",
    "answers",
    "answer",
    "context",
    "should_refuse",
    "unanswerable",
    "expected_tools",
    "relevant",
    "meta",
}
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n", ""}


@dataclass(slots=True)
class Problem:
    """A row that was skipped: where (``file:line``) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(slots=True)
class LoadedDataset:
    """The good examples of a file or folder, the rows skipped, and notes a user should see
    (fields kept as metadata, examples without gold answers)."""

    examples: list[Example]
    problems: list[Problem]
    source: str
    kind: str
    name: str
    notes: list[str] = field(default_factory=list)


def load_dataset(path: str | Path, *, split: str | None = None) -> LoadedDataset:
    """Read a dataset file (``.jsonl``/``.json`` lines or ``.csv``) or BEIR folder.

    Raises :class:`NotFoundError` when the path does not exist and
    :class:`InvalidInputError` when it is no dataset at all (every row is reported instead).
    """
    p = Path(path).expanduser()
    if p.is_dir():
        loaded = _load_beir(p, split)
    elif p.is_file():
        suffix = p.suffix.lower()
        if suffix == ".csv":
            loaded = _load_csv(p)
        elif suffix in (".jsonl", ".json", ".ndjson"):
            loaded = _load_jsonl(p)
        else:
            raise InvalidInputError(
                f"cannot read {p.name} as a dataset",
                hint="give a .jsonl or .csv file, or a BEIR folder (queries.jsonl, qrels/)",
            )
    else:
        raise NotFoundError(
            f"no dataset file or folder {p}",
            hint="check the path, or give a stored dataset's name (`hanlin eval datasets ls`)",
        )
    _check_ids(loaded)
    extra = sorted({k for ex in loaded.examples for k in ex.meta})
    if extra and loaded.kind != "beir":
        loaded.notes.append(f"fields kept as metadata: {', '.join(extra)}")
    no_gold = sum(
        1
        for ex in loaded.examples
        if not (ex.answers or ex.relevant or ex.should_refuse or ex.expected_tools is not None)
    )
    if no_gold:
        loaded.notes.append(f"{no_gold} examples have no gold answer (answer metrics skip them)")
    return loaded


def dataset_name(path: Path) -> str:
    """A dataset name from a file or folder name: ``qa.jsonl`` → ``qa``."""
    stem = path.name if path.is_dir() else path.stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._") or "dataset"
    return name[:100]


def example_from(row: dict[str, Any], default_id: str) -> Example:
    """An example from one JSON object or CSV row (values as JSON types); raises ValueError
    with a reason a user can act on."""
    question = row.get("question", row.get("query"))
    if not isinstance(question, str) or not question.strip():
        raise ValueError("no question (a non-empty 'question' field)")
    answers = _answers(row.get("answers", row.get("answer")))
    refuse = _flag(row.get("should_refuse", row.get("unanswerable")), "should_refuse")
    if refuse and answers:
        raise ValueError("should_refuse is set but the row has answers: which is it?")
    raw_id = row.get("id", row.get("_id"))
    if raw_id is not None and not isinstance(raw_id, str | int):
        raise ValueError("'id' must be a string or a number")
    meta = {k: v for k, v in row.items() if k not in _KNOWN}
    if isinstance(row.get("meta"), dict):
        meta = {**row["meta"], **meta}
    context = row.get("context")
    if context is not None and not isinstance(context, str):
        raise ValueError("'context' must be text")
    try:
        return Example.model_validate(
            {
                "id": str(raw_id) if raw_id not in (None, "") else default_id,
                "question": question.strip(),
                "answers": answers,
                "context": context or None,
                "should_refuse": refuse,
                "expected_tools": _tools(row.get("expected_tools")),
                "relevant": _relevant(row.get("relevant")),
                "meta": meta,
            }
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"{where}: {err['msg']}") from None


def _answers(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(a, str | int | float) for a in value):
        return [str(a) for a in value if str(a).strip()]
    raise ValueError("'answers' must be a list of strings")


def _flag(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"'{name}' must be true or false, not {value!r}")


def _tools(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("'expected_tools' must be a list of tool names or {name, arguments}")
    out = []
    for item in value:
        if isinstance(item, str) and item:
            out.append({"name": item})
        elif isinstance(item, dict):
            out.append(item)
        else:
            raise ValueError(f"'expected_tools' holds {item!r}: give a name or an object")
    return out


def _relevant(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(d): 1 for d in value}
    if isinstance(value, dict) and all(isinstance(v, int) for v in value.values()):
        return {str(k): int(v) for k, v in value.items()}
    raise ValueError("'relevant' must be a list of document ids or an id → relevance object")


def _check_ids(loaded: LoadedDataset) -> None:
    """Drop later rows whose id repeats an earlier one (reported: results are kept by id)."""
    seen: set[str] = set()
    kept: list[Example] = []
    for ex in loaded.examples:
        if ex.id in seen:
            where = ex.meta.pop("_where", loaded.source)
            loaded.problems.append(Problem(where, f"duplicate id {ex.id!r}"))
            continue
        seen.add(ex.id)
        ex.meta.pop("_where", None)
        kept.append(ex)
    loaded.examples = kept


def _load_jsonl(path: Path) -> LoadedDataset:
    out = LoadedDataset([], [], str(path.resolve()), "jsonl", dataset_name(path))
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                out.problems.append(Problem(where, f"not JSON ({exc.msg})"))
                continue
            if not isinstance(row, dict):
                out.problems.append(Problem(where, "not a JSON object"))
                continue
            _add(out, row, where, f"line-{n}")
    return out


def _csv_rows(
    reader: csv.DictReader[str], name: str, out: LoadedDataset
) -> Iterator[dict[str, Any]]:
    """The reader's rows until one cannot be parsed at all (a cell past the csv module's size
    limit, a NUL byte): that one is named and the rest of the file is not read."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            why = f"not readable as CSV ({exc}); the rows after it are skipped"
            out.problems.append(Problem(f"{name}:{reader.line_num + 1}", why))
            return


def _load_csv(path: Path) -> LoadedDataset:
    out = LoadedDataset([], [], str(path.resolve()), "csv", dataset_name(path))
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        if "question" not in header and "query" not in header:
            raise InvalidInputError(
                f"{path.name} has no 'question' column (columns: {', '.join(header) or 'none'})",
                hint="the first row must name the columns: question, answers, and optionally "
                "id, context, should_refuse, expected_tools",
            )
        reader.fieldnames = header
        for n, raw in enumerate(_csv_rows(reader, path.name, out), 2):
            where = f"{path.name}:{reader.line_num}"
            if None in raw:
                out.problems.append(Problem(where, "more cells than columns"))
                continue
            row: dict[str, Any] = {k: v for k, v in raw.items() if v is not None}
            for key in ("answers", "answer", "expected_tools", "relevant"):
                text = (row.get(key) or "").strip()
                if not text:
                    row.pop(key, None)
                elif text.startswith(("[", "{")):
                    try:
                        row[key] = json.loads(text)
                    except json.JSONDecodeError:
                        out.problems.append(Problem(where, f"'{key}' is not valid JSON"))
                        break
                else:
                    row[key] = [p.strip() for p in text.split("|") if p.strip()]
            else:
                for key in ("id", "context", "should_refuse", "unanswerable"):
                    if key in row and row[key] == "":
                        row.pop(key)
                _add(out, row, where, f"row-{n}")
    return out


def _add(out: LoadedDataset, row: dict[str, Any], where: str, default_id: str) -> None:
    try:
        ex = example_from(row, default_id)
    except ValueError as exc:
        out.problems.append(Problem(where, str(exc)))
        return
    ex.meta["_where"] = where  # for a duplicate-id report; removed by _check_ids
    out.examples.append(ex)


def _load_beir(root: Path, split: str | None) -> LoadedDataset:
    queries_path = root / "queries.jsonl"
    qrels_dir = root / "qrels"
    files = sorted(qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if not queries_path.is_file() or not files:
        raise NotFoundError(
            f"{root} is not a BEIR folder (it needs queries.jsonl and qrels/<split>.tsv)",
            hint="give a BEIR folder, a .jsonl or a .csv file",
        )
    if split is None:
        chosen = files[0] if len(files) == 1 else next((f for f in files if f.stem == "test"), None)
        if chosen is None:
            raise InvalidInputError(
                f"{root} has several qrels splits: {', '.join(f.stem for f in files)}",
                hint="pick one with --split",
            )
    else:
        chosen = qrels_dir / f"{split}.tsv"
        if not chosen.is_file():
            raise NotFoundError(
                f"no split {split!r} in {qrels_dir}",
                hint=f"splits: {', '.join(f.stem for f in files)}",
            )
    name = dataset_name(root) + ("" if len(files) == 1 else f"-{chosen.stem}")
    out = LoadedDataset([], [], str(root.resolve()), "beir", name)
    qrels: dict[str, dict[str, int]] = {}
    with chosen.open(encoding="utf-8", newline="") as f:
        for n, cells in enumerate(csv.reader(f, delimiter="\t"), 1):
            if not cells or (n == 1 and cells[0] == "query-id"):
                continue
            try:
                qrels.setdefault(cells[0], {})[cells[1]] = int(cells[2])
            except (IndexError, ValueError):
                out.problems.append(
                    Problem(f"qrels/{chosen.name}:{n}", "expected query-id, corpus-id, score")
                )
    with queries_path.open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"queries.jsonl:{n}"
            try:
                rec = json.loads(line)
                qid = str(rec["_id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                out.problems.append(Problem(where, "not a JSON object with an '_id'"))
                continue
            if qid not in qrels:
                continue  # a query of another split
            row = {"id": qid, "question": rec.get("text"), "answers": rec.get("answers")}
            row["relevant"] = qrels[qid]
            _add(out, row, where, qid)
    return out

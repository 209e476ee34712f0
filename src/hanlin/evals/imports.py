"""Storing a dataset that was read — a file, an upload, rated traces — as a version, with the
report of its import (the rows skipped, file, line and reason, and the notes) kept beside it,
so whoever looks at the version later (the web pages, ``GET /api/evals/datasets``) sees why a
row is missing. The CLI and the HTTP routes import through here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hanlin.errors import InvalidInputError, Reason
from hanlin.evals.base import KEPT_PROBLEMS, DatasetInfo, EvalStore, ImportReport
from hanlin.evals.datasets import LoadedDataset, Problem, load_dataset

#: bad rows an error for a dataset without one good row names
_NAMED_IN_ERROR = 20
#: the file types a dataset is read from (a BEIR folder cannot be uploaded)
FILE_TYPES = (".jsonl", ".csv", ".json", ".ndjson")


@dataclass(slots=True)
class Imported:
    """A stored version, whether this import made it (False: identical content was stored
    already), and this import's own report."""

    info: DatasetInfo
    created: bool
    report: ImportReport


def report_of(loaded: LoadedDataset) -> ImportReport:
    """The import report of a dataset read: its skipped rows (the first :data:`KEPT_PROBLEMS`
    word for word) and its notes."""
    return ImportReport(
        skipped=len(loaded.problems),
        problems=[str(p) for p in loaded.problems[:KEPT_PROBLEMS]],
        notes=list(loaded.notes),
    )


def store_loaded(store: EvalStore, loaded: LoadedDataset, name: str | None = None) -> Imported:
    """Store the good examples of ``loaded`` as a version of ``name`` (default: the name it
    was read under) with its import report.

    Raises :class:`~hanlin.errors.InvalidInputError` (``code`` ``no_usable_examples``, the
    first bad rows in ``params["problems"]``) when no row was usable: nothing is stored."""
    report = report_of(loaded)
    if not loaded.examples and loaded.kind == "traces":
        raise InvalidInputError(
            "no trace with a question matched: nothing stored",
            hint="widen the filters (time, rating, model, knowledge base); traces recorded "
            "without content have no question",
            code="no_usable_examples",
            params={"skipped": report.skipped, "problems": report.problems[:_NAMED_IN_ERROR]},
        )
    if not loaded.examples:
        shown = "; ".join(report.problems[:3]) or "it has no rows"
        raise InvalidInputError(
            f"no usable examples in {loaded.name} ({report.skipped} bad rows: {shown})",
            hint="each row needs a non-empty 'question'; fix the rows listed and import again",
            code="no_usable_examples",
            params={"skipped": report.skipped, "problems": report.problems[:_NAMED_IN_ERROR]},
        )
    target = name or loaded.name
    before = {d.version for d in store.datasets(target)}
    info = store.put_dataset(target, loaded.examples, loaded.source, report)
    return Imported(info, info.version not in before, report)


def dataset_type_problem(name: str) -> str | None:
    """Why a file of this name cannot be read as a dataset (its extension), or None."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in FILE_TYPES:
        return None
    what = f"'{suffix}'" if suffix else "without an extension"
    supported = " ".join(FILE_TYPES)
    return Reason(
        f"unsupported file type {what}; a dataset is one of: {supported}",
        "unsupported_file_type",
        {"ext": suffix, "supported": supported},
    )


def read_upload(path: Path, shown_as: str) -> LoadedDataset:
    """Read an uploaded dataset stored at ``path`` under a generated name, as the file
    ``shown_as`` it was uploaded as: skipped rows, errors, its name and source say
    ``shown_as``, never the server's path."""
    stored = path.name
    try:
        loaded = load_dataset(path)
    except InvalidInputError as exc:
        raise InvalidInputError(
            exc.message.replace(stored, shown_as),
            hint=exc.hint,
            param="file",
            code=exc.code,
            params=exc.params,
        ) from None
    loaded.problems = [
        Problem(p.where.replace(stored, shown_as, 1), p.reason) for p in loaded.problems
    ]
    loaded.source = f"upload:{shown_as}"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", PurePosixPath(shown_as).stem).strip("-._")
    loaded.name = stem[:100] or "dataset"
    return loaded

"""Shared by the RAG benchmarks: the evaluation sets, their knowledge bases and queries.

Knowledge bases live in bench/.cache/home (the same ones ``bench/retrieval.py`` builds), so a
re-run only asks questions.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EVAL = Path(os.environ.get("HANLIN_EVAL", HERE.parents[1] / "shared" / "eval"))
SETS: dict[str, str] = {
    "drcd": "zh/drcd-dev",
    "cmrc": "zh/cmrc2018-trial",
    "scifact": "scifact",
}


def set_folder(name: str) -> Path:
    """A set's folder: a known name (``drcd``, ``cmrc``, ``scifact``) under the evaluation data,
    or any folder in the same layout given by path."""
    path = Path(name).expanduser()
    if name not in SETS and path.is_dir():
        return path.resolve()
    if name not in SETS:
        raise SystemExit(f"unknown set {name!r}: use {', '.join(SETS)} or a folder path")
    return EVAL / SETS[name]


def kb_label(name: str) -> str:
    """A knowledge-base name part for a set name or folder."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", Path(name).name if name not in SETS else name)


def use_bench_home() -> None:
    """Point HANLIN_HOME at bench/.cache/home unless the caller chose one."""
    os.environ.setdefault("HANLIN_HOME", str(HERE / ".cache" / "home"))


@dataclass(slots=True)
class Query:
    id: str
    text: str
    answers: list[str]


def queries(name: str, n: int | None = None, seed: int = 0) -> list[Query]:
    """Queries of a set (those with relevance judgements), shuffled with ``seed`` when ``n``
    picks a sample; all of them in file order otherwise."""
    folder = set_folder(name)
    judged = {
        line.split("\t")[0]
        for qrels in (folder / "qrels").glob("*.tsv")
        for line in qrels.read_text("utf-8").splitlines()[1:]
    }
    out = []
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row: dict[str, Any] = json.loads(line)
            if row["_id"] in judged and row["text"].strip():  # CMRC has 2 empty questions
                out.append(Query(row["_id"], row["text"], list(row.get("answers") or [])))
    if n is not None and n < len(out):
        random.Random(seed).shuffle(out)
        out = out[:n]
    return out


def knowledge_base(name: str, model: str = "fast-use") -> Any:
    """The knowledge base of a set's corpus, built on first use (ingest is idempotent)."""
    from hanlin import KnowledgeBase
    from hanlin.knowledge.loaders import LoaderOptions

    kb = KnowledgeBase.create(
        f"eval-{kb_label(name)}-{model}", embedding_model=model, exist_ok=True
    )
    opts = LoaderOptions(text_fields=["text"], title_field="title", id_field="_id")
    t0 = time.perf_counter()
    report = kb.add(set_folder(name) / "corpus.jsonl", loader_options=opts)
    if report.documents_added or report.documents_updated:
        print(
            f"[{name}] built: {report.documents_added} docs, {report.chunks_written} chunks "
            f"in {time.perf_counter() - t0:.0f}s",
            flush=True,
        )
    return kb

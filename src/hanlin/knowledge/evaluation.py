"""Retrieval evaluation: BEIR data sets and the nDCG / recall metrics used to choose defaults."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hanlin.errors import InvalidInputError, NotFoundError

__all__ = ["BeirDataset", "load_beir", "ndcg_at_k", "recall_at_k"]


def ndcg_at_k(ranked_ids: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """nDCG@k with graded gains ``rel`` (the trec_eval / BEIR definition: gain = rel, discount
    ``log2(rank + 1)``), ideal ranking from the judged relevances. Ids repeated in
    ``ranked_ids`` count once (at their first rank). Returns 0.0 when nothing is relevant.
    """
    if k <= 0:
        raise InvalidInputError(f"k must be positive, got {k}", hint="pass k >= 1")
    ideal = sorted((r for r in qrels.values() if r > 0), reverse=True)[:k]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    if idcg == 0.0:
        return 0.0
    seen: set[str] = set()
    dcg = 0.0
    rank = 0
    for doc_id in ranked_ids:
        if doc_id in seen:
            continue
        seen.add(doc_id)
        if rank >= k:
            break
        rel = qrels.get(doc_id, 0)
        if rel > 0:
            dcg += rel / math.log2(rank + 2)
        rank += 1
    return dcg / idcg


def recall_at_k(ranked_ids: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Fraction of the relevant ids (relevance > 0) found in the first ``k`` distinct results.
    Returns 0.0 when nothing is relevant."""
    if k <= 0:
        raise InvalidInputError(f"k must be positive, got {k}", hint="pass k >= 1")
    relevant = {d for d, r in qrels.items() if r > 0}
    if not relevant:
        return 0.0
    top: set[str] = set()
    for doc_id in ranked_ids:
        top.add(doc_id)
        if len(top) == k:
            break
    return len(relevant & top) / len(relevant)


@dataclass(slots=True)
class BeirDataset:
    """A BEIR data set: ``corpus`` id → {"title", "text"}, ``queries`` id → text (only those with
    judgements in the split), ``qrels`` query id → {doc id: relevance}."""

    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(directory: str | Path, split: str | None = None) -> BeirDataset:
    """Load ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` from ``directory``.

    With ``split=None`` the only qrels file present is used. Raises :class:`NotFoundError`
    when a file is missing and :class:`InvalidInputError` when a line cannot be parsed.
    """
    root = Path(directory)
    qrels_dir = root / "qrels"
    if split is None:
        files = sorted(qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
        if len(files) != 1:
            raise NotFoundError(
                f"cannot pick a qrels split in {qrels_dir}: found {[f.stem for f in files]}",
                hint="pass split= explicitly (the file name without .tsv)",
            )
        qrels_path = files[0]
    else:
        qrels_path = qrels_dir / f"{split}.tsv"
    for path in (root / "corpus.jsonl", root / "queries.jsonl", qrels_path):
        if not path.is_file():
            raise NotFoundError(
                f"BEIR file missing: {path}",
                hint="point at a folder with corpus.jsonl, queries.jsonl and qrels/<split>.tsv",
            )

    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t")):
            if not row or (n == 0 and row[0] == "query-id"):
                continue
            try:
                qid, did, score = row[0], row[1], int(row[2])
            except (IndexError, ValueError) as exc:
                raise InvalidInputError(
                    f"{qrels_path}:{n + 1}: expected 'query-id<TAB>corpus-id<TAB>score'",
                    hint="fix or regenerate the qrels file",
                ) from exc
            qrels.setdefault(qid, {})[did] = score

    corpus = {
        rec["_id"]: {"title": rec.get("title") or "", "text": rec.get("text") or ""}
        for rec in _read_jsonl(root / "corpus.jsonl")
    }
    queries = {
        rec["_id"]: rec["text"]
        for rec in _read_jsonl(root / "queries.jsonl")
        if rec["_id"] in qrels
    }
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels)


def _read_jsonl(path: Path) -> list[dict[str, str]]:
    records = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                str(rec["_id"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InvalidInputError(
                    f"{path}:{n + 1}: not a JSON object with an '_id'",
                    hint="fix or regenerate the file",
                ) from exc
            rec["_id"] = str(rec["_id"])
            records.append(rec)
    return records

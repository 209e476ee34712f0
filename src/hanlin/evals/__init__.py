"""Evaluations: versioned datasets of questions (``datasets.py``: QA JSONL, CSV, BEIR folders;
``from_traces.py``: rated traces), runs of a target — a knowledge base's RAG answers, a model
through the gateway, or an agent — scored per example (``metrics.py``, ``citations.py``,
``judge.py``) by ``runner.py``, compared with paired bootstrap intervals (``compare.py``) and
reported as self-contained HTML (``report.py``). Datasets and runs live in an
:class:`~hanlin.evals.base.EvalStore`: SQLite in the app directory, or PostgreSQL with
``database_url``; :func:`open_eval_store` is the one way to open it."""

from __future__ import annotations

from hanlin.config import Settings
from hanlin.evals.base import (
    Dataset,
    DatasetInfo,
    EvalStore,
    Example,
    ExampleResult,
    ExpectedCall,
    RunInfo,
)

__all__ = [
    "Dataset",
    "DatasetInfo",
    "EvalStore",
    "Example",
    "ExampleResult",
    "ExpectedCall",
    "RunInfo",
    "open_eval_store",
]


def open_eval_store(settings: Settings) -> EvalStore:
    """The evaluation store of these settings: the app directory's ``evals.sqlite``, or the
    database of ``database_url`` (cheap: opens on first use)."""
    if settings.database_url:
        from hanlin.evals.postgres import PostgresEvalStore

        return PostgresEvalStore(settings.database_url)
    from hanlin.evals.sqlite import SqliteEvalStore

    return SqliteEvalStore.from_settings(settings)

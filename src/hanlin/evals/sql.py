"""The evaluation store's SQL, shared by both backends: the same tables in the app directory's
``evals.sqlite`` and in PostgreSQL (migrations 50, 51), written in the SQL both understand
(``?`` placeholders become ``%s`` for psycopg; ``ON CONFLICT`` upserts). A backend supplies
its transactions and the lock that numbers a dataset's versions."""

from __future__ import annotations

import json
import re
import time
from contextlib import AbstractContextManager
from typing import Any

from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.evals.base import (
    Dataset,
    DatasetInfo,
    Example,
    ExampleResult,
    ImportReport,
    RunInfo,
    RunStatus,
    content_hash,
)

#: the tables, as SQLite writes them; PostgreSQL's migration has the same shape
SCHEMA = [
    """CREATE TABLE eval_datasets (
        name TEXT NOT NULL, version INTEGER NOT NULL, hash TEXT NOT NULL, source TEXT NOT NULL,
        count INTEGER NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (name, version)
    )""",
    "CREATE UNIQUE INDEX eval_datasets_hash ON eval_datasets (name, hash)",
    """CREATE TABLE eval_examples (
        name TEXT NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL,
        data TEXT NOT NULL, PRIMARY KEY (name, version, position)
    )""",
    """CREATE TABLE eval_runs (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, dataset TEXT NOT NULL, target TEXT NOT NULL,
        config TEXT NOT NULL, status TEXT NOT NULL, total INTEGER NOT NULL,
        created_at REAL NOT NULL, updated_at REAL NOT NULL, aggregates TEXT NOT NULL
    )""",
    "CREATE INDEX eval_runs_created ON eval_runs (created_at)",
    """CREATE TABLE eval_results (
        run_id TEXT NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
        example_id TEXT NOT NULL, position INTEGER NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (run_id, example_id)
    )""",
]

#: the import reports, added after the first release of the tables (both backends)
REPORT_COLUMN = "ALTER TABLE eval_datasets ADD COLUMN report TEXT NOT NULL DEFAULT '{}'"
_DATASET_COLUMNS = "name, version, hash, source, count, created_at, report"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_RUN_COLUMNS = (
    "r.id, r.name, r.dataset, r.target, r.config, r.status, r.total, r.created_at, "
    "r.updated_at, r.aggregates, (SELECT COUNT(*) FROM eval_results x WHERE x.run_id = r.id)"
)


def check_name(name: str) -> str:
    """A dataset name: letters, digits, ``.``, ``_``, ``-`` (``@`` separates the version)."""
    if not _NAME_RE.fullmatch(name):
        raise InvalidInputError(
            f"invalid dataset name {name!r}",
            hint="use letters, digits, '.', '_' and '-' (at most 100), starting with a "
            "letter or digit",
        )
    return name


class SqlEvalStore:
    """The store's logic over a DB-API connection; see :class:`~hanlin.evals.base.EvalStore`.
    Subclasses provide :meth:`_write`, :meth:`_read`, :meth:`_lock_name` and ``mark``."""

    mark = "?"

    def _write(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _lock_name(self, conn: Any, name: str) -> None:
        """Serialise writers numbering versions of ``name`` (SQLite: the write lock does)."""

    def _sql(self, text: str) -> str:
        return text if self.mark == "?" else text.replace("?", self.mark)

    def _exec(self, conn: Any, text: str, args: tuple[Any, ...] = ()) -> Any:
        return conn.execute(self._sql(text), args)

    def _many(self, conn: Any, text: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            conn.cursor().executemany(self._sql(text), rows)

    def close(self) -> None:
        """Nothing by default (a backend holding a connection closes it)."""

    # --- datasets --------------------------------------------------------------------------

    def put_dataset(
        self,
        name: str,
        examples: list[Example],
        source: str,
        report: ImportReport | None = None,
    ) -> DatasetInfo:
        check_name(name)
        if not examples:
            raise InvalidInputError(
                f"dataset {name!r} has no examples", hint="check the file: every row was bad"
            )
        digest = content_hash(examples)
        with self._write() as conn:
            self._lock_name(conn, name)
            row = self._exec(
                conn,
                f"SELECT {_DATASET_COLUMNS} FROM eval_datasets WHERE name = ? AND hash = ?",
                (name, digest),
            ).fetchone()
            if row is not None:
                return _dataset_info(row)
            last = self._exec(
                conn, "SELECT MAX(version) FROM eval_datasets WHERE name = ?", (name,)
            ).fetchone()[0]
            info = DatasetInfo(
                name=name,
                version=int(last or 0) + 1,
                hash=digest,
                source=source,
                count=len(examples),
                created_at=time.time(),
                report=report or ImportReport(),
            )
            self._exec(
                conn,
                f"INSERT INTO eval_datasets ({_DATASET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    info.version,
                    digest,
                    source,
                    info.count,
                    info.created_at,
                    info.report.model_dump_json(),
                ),
            )
            self._many(
                conn,
                "INSERT INTO eval_examples (name, version, position, data) VALUES (?, ?, ?, ?)",
                [
                    (name, info.version, i, ex.model_dump_json(exclude_defaults=True))
                    for i, ex in enumerate(examples)
                ],
            )
        return info

    def datasets(self, name: str | None = None) -> list[DatasetInfo]:
        where, args = ("WHERE name = ?", (name,)) if name else ("", ())
        with self._read() as conn:
            rows = self._exec(
                conn,
                f"SELECT {_DATASET_COLUMNS} FROM eval_datasets {where} ORDER BY name, version",
                args,
            ).fetchall()
        return [_dataset_info(r) for r in rows]

    def dataset(self, name: str, version: int | None = None) -> Dataset:
        with self._read() as conn:
            if version is None:
                version = self._exec(
                    conn, "SELECT MAX(version) FROM eval_datasets WHERE name = ?", (name,)
                ).fetchone()[0]
            row = self._exec(
                conn,
                f"SELECT {_DATASET_COLUMNS} FROM eval_datasets WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
            data = self._exec(
                conn,
                "SELECT data FROM eval_examples WHERE name = ? AND version = ? ORDER BY position",
                (name, version),
            ).fetchall()
        if row is None:
            raise _no_dataset(name, version, self.datasets(name))
        examples = [Example.model_validate_json(d[0]) for d in data]
        return Dataset(info=_dataset_info(row), examples=examples)

    # --- runs ------------------------------------------------------------------------------

    def create_run(self, run: RunInfo) -> RunInfo:
        now = time.time()
        run = run.model_copy(update={"created_at": now, "updated_at": now, "done": 0})
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO eval_runs (id, name, dataset, target, config, status, total, "
                "created_at, updated_at, aggregates) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    run.name,
                    run.dataset,
                    run.target,
                    _json(run.config),
                    run.status,
                    run.total,
                    now,
                    now,
                    _json(run.aggregates),
                ),
            )
        return run

    def run(self, run_id: str) -> RunInfo:
        with self._read() as conn:
            row = self._exec(
                conn, f"SELECT {_RUN_COLUMNS} FROM eval_runs r WHERE r.id = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(
                f"no evaluation run {run_id!r}", hint="list runs with `hanlin eval ls`"
            )
        return _run_info(row)

    def runs(self, limit: int = 50) -> list[RunInfo]:
        with self._read() as conn:
            rows = self._exec(
                conn,
                f"SELECT {_RUN_COLUMNS} FROM eval_runs r ORDER BY r.created_at DESC, r.id LIMIT ?",
                (max(0, limit),),
            ).fetchall()
        return [_run_info(r) for r in rows]

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        aggregates: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> RunInfo:
        sets: list[str] = ["updated_at = ?"]
        args: list[Any] = [time.time()]
        for column, value in (
            ("status", status),
            ("aggregates", None if aggregates is None else _json(aggregates)),
            ("config", None if config is None else _json(config)),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value)
        with self._write() as conn:
            found = self._exec(
                conn, f"UPDATE eval_runs SET {', '.join(sets)} WHERE id = ?", (*args, run_id)
            ).rowcount
        if not found:
            raise NotFoundError(
                f"no evaluation run {run_id!r}", hint="list runs with `hanlin eval ls`"
            )
        return self.run(run_id)

    def claim_run(self, run_id: str, owner: str, seen: float) -> bool:
        """Make ``owner`` the process running ``run_id`` if the run is still ``running`` and
        unchanged since it was read (``updated_at == seen``): one conditional UPDATE, so of
        several processes taking over a run left by a dead one exactly one wins."""
        with self._write() as conn:
            row = self._exec(
                conn, "SELECT config FROM eval_runs WHERE id = ? AND status = 'running'", (run_id,)
            ).fetchone()
            if row is None:
                return False
            config = _json(json.loads(row[0]) | {"owner": owner})
            changed = self._exec(
                conn,
                "UPDATE eval_runs SET config = ?, updated_at = ? "
                "WHERE id = ? AND status = 'running' AND updated_at = ?",
                (config, time.time(), run_id, seen),
            ).rowcount
        return bool(changed)

    def put_result(self, run_id: str, result: ExampleResult) -> None:
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO eval_results (run_id, example_id, position, data) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (run_id, example_id) DO UPDATE SET "
                "position = excluded.position, data = excluded.data",
                (run_id, result.example_id, result.position, result.model_dump_json()),
            )
            self._exec(
                conn, "UPDATE eval_runs SET updated_at = ? WHERE id = ?", (time.time(), run_id)
            )

    def results(self, run_id: str) -> list[ExampleResult]:
        self.run(run_id)  # NotFoundError for an unknown run
        with self._read() as conn:
            rows = self._exec(
                conn,
                "SELECT data FROM eval_results WHERE run_id = ? ORDER BY position, example_id",
                (run_id,),
            ).fetchall()
        return [ExampleResult.model_validate_json(r[0]) for r in rows]

    def delete_run(self, run_id: str) -> None:
        with self._write() as conn:
            self._exec(conn, "DELETE FROM eval_results WHERE run_id = ?", (run_id,))
            found = self._exec(conn, "DELETE FROM eval_runs WHERE id = ?", (run_id,)).rowcount
        if not found:
            raise NotFoundError(
                f"no evaluation run {run_id!r}", hint="list runs with `hanlin eval ls`"
            )


def _no_dataset(name: str, version: int | None, versions: list[DatasetInfo]) -> NotFoundError:
    shown = f"{name}@{version}" if version is not None else name
    if versions:
        hint = f"stored versions: {', '.join(d.ref for d in versions)}"
    else:
        hint = (
            "import one with `hanlin eval datasets import FILE --name NAME`, give a file or "
            "folder path instead, or list datasets with `hanlin eval datasets ls`"
        )
    return NotFoundError(f"no dataset {shown}", hint=hint)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _dataset_info(row: Any) -> DatasetInfo:
    name, version, digest, source, count, created, report = row
    return DatasetInfo(
        name=name,
        version=int(version),
        hash=digest,
        source=source,
        count=int(count),
        created_at=float(created),
        report=ImportReport.model_validate_json(report or "{}"),
    )


def _run_info(row: Any) -> RunInfo:
    rid, name, dataset, target, config, status, total, created, updated, aggs, done = row
    return RunInfo(
        id=rid,
        name=name,
        dataset=dataset,
        target=target,
        config=json.loads(config),
        status=status,
        total=int(total),
        done=int(done),
        created_at=float(created),
        updated_at=float(updated),
        aggregates=json.loads(aggs),
    )

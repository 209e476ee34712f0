"""The run store's SQL, shared by both backends: the same tables in the app directory's
``workflows.sqlite`` and in PostgreSQL (migration 60). Each checkpoint is one transaction: the
step, the run's state and its step count together, refused when the run was cancelled or taken
over meanwhile. A backend supplies its transactions, placeholder and row-lock clause."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from hanlin.errors import ConflictError
from hanlin.flows.base import (
    FINISHED,
    PendingInput,
    RunInterruptedError,
    RunRecord,
    ScheduleFire,
    StepRecord,
    run_not_found,
)

#: the tables, as SQLite writes them; PostgreSQL's migration 60 has the same shape
SCHEMA = [
    """CREATE TABLE flow_runs (
        id TEXT PRIMARY KEY, workflow TEXT NOT NULL, definition TEXT NOT NULL,
        inputs TEXT NOT NULL, status TEXT NOT NULL, state TEXT NOT NULL, outputs TEXT,
        error TEXT, pending TEXT, owner TEXT, parent TEXT, created_at REAL NOT NULL,
        updated_at REAL NOT NULL, steps INTEGER NOT NULL
    )""",
    "CREATE INDEX flow_runs_created ON flow_runs (created_at)",
    "CREATE INDEX flow_runs_workflow ON flow_runs (workflow, created_at)",
    """CREATE TABLE flow_steps (
        run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
        node TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, outputs TEXT NOT NULL,
        branch TEXT, error TEXT, attempts INTEGER NOT NULL, started_at REAL NOT NULL,
        finished_at REAL NOT NULL, PRIMARY KEY (run_id, seq)
    )""",
    """CREATE TABLE flow_effects (
        run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE, key TEXT NOT NULL,
        value TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (run_id, key)
    )""",
]
#: who started each run (an API key's id): the HTTP API and MCP show a key its own runs
STARTED_BY = [
    "ALTER TABLE flow_runs ADD COLUMN started_by TEXT",
    "CREATE INDEX flow_runs_started_by ON flow_runs (started_by, created_at)",
]

#: the fires of schedule triggers, one row per (workflow, trigger, scheduled time): the key
#: that lets one scheduler, and only one, start a fire; the newest row is the trigger's last fire
SCHEDULE_FIRES = [
    """CREATE TABLE flow_schedule_fires (
        workflow TEXT NOT NULL, trigger_key TEXT NOT NULL, scheduled_at REAL NOT NULL,
        outcome TEXT NOT NULL, run_id TEXT, fired_at REAL NOT NULL,
        PRIMARY KEY (workflow, trigger_key, scheduled_at)
    )""",
]

_RUN_COLUMNS = (
    "id, workflow, definition, inputs, status, state, outputs, error, pending, owner, parent, "
    "created_at, updated_at, steps, started_by"
)
_STEP_COLUMNS = "seq, node, type, status, outputs, branch, error, attempts, started_at, finished_at"


class SqlFlowStore:
    """The store's logic over a DB-API connection. Subclasses provide :meth:`_write`,
    :meth:`_read`, ``mark`` (the placeholder) and ``for_update`` (a row lock clause)."""

    mark = "?"
    for_update = ""

    def _write(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _exec(self, conn: Any, text: str, args: tuple[Any, ...] = ()) -> Any:
        return conn.execute(text if self.mark == "?" else text.replace("?", self.mark), args)

    def close(self) -> None:
        """Nothing by default (a backend holding a connection closes it)."""

    # --- runs ------------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> RunRecord:
        now = time.time()
        run = run.model_copy(update={"created_at": now, "updated_at": now, "steps": 0})
        with self._write() as conn:
            self._insert_run(conn, run)
        return run

    def _insert_run(self, conn: Any, run: RunRecord) -> None:
        now = run.created_at
        self._exec(
            conn,
            f"INSERT INTO flow_runs ({_RUN_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.id,
                run.workflow,
                _dump(run.definition),
                _dump(run.inputs),
                run.status,
                _dump(run.state),
                None if run.outputs is None else _dump(run.outputs),
                run.error,
                None,
                run.owner,
                run.parent,
                now,
                now,
                0,
                run.started_by,
            ),
        )

    def _row(self, conn: Any, run_id: str, lock: bool = False) -> RunRecord:
        row = self._exec(
            conn,
            f"SELECT {_RUN_COLUMNS} FROM flow_runs WHERE id = ?{self.for_update if lock else ''}",
            (run_id,),
        ).fetchone()
        if row is None:
            raise run_not_found(run_id)
        return _run(row)

    def get_run(self, run_id: str) -> RunRecord:
        with self._read() as conn:
            return self._row(conn, run_id)

    def list_runs(
        self,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        *,
        offset: int = 0,
        started_by: str | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first; ``started_by`` keeps one API key's runs."""
        where, args = [], []
        for column, value in (("workflow", workflow), ("status", status)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if started_by is not None:
            where.append("started_by = ?")
            args.append(started_by)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._read() as conn:
            rows = self._exec(
                conn,
                f"SELECT {_RUN_COLUMNS} FROM flow_runs {clause} "
                "ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return [_run(r) for r in rows]

    def claim(
        self, run_id: str, owner: str, stale: Callable[[str | None, float], bool]
    ) -> RunRecord:
        """Make ``owner`` the process running ``run_id``. Refused (ConflictError) for a
        finished run, or one running in a process ``stale`` says is still alive."""
        with self._write() as conn:
            run = self._row(conn, run_id, lock=True)
            if run.status in FINISHED:
                raise ConflictError(
                    f"workflow run '{run_id}' is {run.status}",
                    hint="start a new run, or rerun it from a node (`hanlin workflow rerun`)",
                    code="workflow_run_finished",
                )
            if run.status == "running" and not stale(run.owner, run.updated_at):
                raise ConflictError(
                    f"workflow run '{run_id}' is running in another process ({run.owner})",
                    hint="wait for it, or cancel it with `hanlin workflow cancel`",
                    code="workflow_run_busy",
                )
            now = time.time()
            self._exec(
                conn,
                "UPDATE flow_runs SET status = 'running', owner = ?, error = NULL, "
                "updated_at = ? WHERE id = ?",
                (owner, now, run_id),
            )
        return run.model_copy(update={"status": "running", "owner": owner, "updated_at": now})

    def _owned(self, conn: Any, run_id: str, owner: str) -> int:
        """The run's step count, after checking ``owner`` still runs it (only the columns
        needed: a checkpoint does not parse the definition and state it is about to replace)."""
        row = self._exec(
            conn,
            f"SELECT owner, status, steps FROM flow_runs WHERE id = ?{self.for_update}",
            (run_id,),
        ).fetchone()
        if row is None:
            raise run_not_found(run_id)
        if row[0] != owner or row[1] != "running":
            why = "was cancelled" if row[1] == "cancelled" else "was taken over"
            raise RunInterruptedError(
                f"workflow run '{run_id}' {why}", hint="see `hanlin workflow runs`"
            )
        return int(row[2])

    def checkpoint(
        self,
        run_id: str,
        owner: str,
        step: StepRecord | list[StepRecord],
        state: dict[str, Any] | None,
        effect: tuple[str, dict[str, Any]] | None = None,
        *,
        done: dict[str, Any] | None = None,
    ) -> int:
        """Record finished nodes (one step, or several in order), (top-level nodes) the run's
        new state, (nodes with side effects) a recorded result ``(key, value)`` and, with
        ``done`` (the run's outputs), the run's end — atomically. Returns the last step's seq."""
        steps = step if isinstance(step, list) else [step]
        with self._write() as conn:
            seq = self._owned(conn, run_id, owner)
            if effect is not None:
                self._insert_effect(conn, run_id, *effect)
            for one in steps:
                seq += 1
                self._exec(
                    conn,
                    f"INSERT INTO flow_steps (run_id, {_STEP_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        seq,
                        one.node,
                        one.type,
                        one.status,
                        _dump(one.outputs),
                        one.branch,
                        one.error,
                        one.attempts,
                        one.started_at,
                        one.finished_at,
                    ),
                )
            sets = ["steps = ?", "updated_at = ?"]
            args: list[Any] = [seq, time.time()]
            if state is not None:
                sets.append("state = ?")
                args.append(_dump(state))
            if done is not None:
                sets += ["status = 'done'", "outputs = ?", "error = NULL", "owner = NULL"]
                args.append(_dump(done))
            self._exec(
                conn, f"UPDATE flow_runs SET {', '.join(sets)} WHERE id = ?", (*args, run_id)
            )
        return seq

    def finish(
        self,
        run_id: str,
        owner: str,
        status: str,
        *,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
        pending: PendingInput | None = None,
    ) -> RunRecord:
        """Leave the run ``done``, ``failed`` or ``paused`` (a cancelled run stays so)."""
        with self._write() as conn:
            run = self._row(conn, run_id, lock=True)
            if run.owner == owner and run.status == "running":
                self._exec(
                    conn,
                    "UPDATE flow_runs SET status = ?, outputs = ?, error = ?, pending = ?, "
                    "owner = NULL, updated_at = ? WHERE id = ?",
                    (
                        status,
                        None if outputs is None else _dump(outputs),
                        error,
                        None if pending is None else pending.model_dump_json(by_alias=True),
                        time.time(),
                        run_id,
                    ),
                )
            return self._row(conn, run_id)

    def release(self, run_id: str, owner: str) -> None:
        """Let go of a run this owner stopped driving before its end (its task was
        cancelled): it stays ``running`` without an owner, so the next resume continues it."""
        with self._write() as conn:
            self._exec(
                conn,
                "UPDATE flow_runs SET owner = NULL, updated_at = ? "
                "WHERE id = ? AND owner = ? AND status = 'running'",
                (time.time(), run_id, owner),
            )

    def cancel(self, run_id: str) -> RunRecord:
        with self._write() as conn:
            run = self._row(conn, run_id, lock=True)
            if run.status in FINISHED:
                raise ConflictError(
                    f"workflow run '{run_id}' is already {run.status}", hint="nothing to cancel"
                )
            self._exec(
                conn,
                "UPDATE flow_runs SET status = 'cancelled', pending = NULL, updated_at = ? "
                "WHERE id = ?",
                (time.time(), run_id),
            )
            return self._row(conn, run_id)

    def steps(self, run_id: str) -> list[StepRecord]:
        with self._read() as conn:
            self._row(conn, run_id)
            rows = self._exec(
                conn,
                f"SELECT {_STEP_COLUMNS} FROM flow_steps WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
        return [_step(r) for r in rows]

    # --- recorded effects ------------------------------------------------------------------

    def get_effect(self, run_id: str, key: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = self._exec(
                conn, "SELECT value FROM flow_effects WHERE run_id = ? AND key = ?", (run_id, key)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def record_effect(self, run_id: str, key: str, value: dict[str, Any]) -> None:
        """Keep the first value recorded under ``key`` (a second is ignored)."""
        with self._write() as conn:
            self._insert_effect(conn, run_id, key, value)

    def _insert_effect(self, conn: Any, run_id: str, key: str, value: dict[str, Any]) -> None:
        self._exec(
            conn,
            "INSERT INTO flow_effects (run_id, key, value, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_id, key) DO NOTHING",
            (run_id, key, _dump(value), time.time()),
        )

    # --- schedule fires --------------------------------------------------------------------

    def last_fire(self, workflow: str, trigger: str) -> ScheduleFire | None:
        """The newest fire recorded for ``trigger`` of ``workflow`` (None: never armed)."""
        with self._read() as conn:
            row = self._exec(
                conn,
                "SELECT scheduled_at, outcome, run_id, fired_at FROM flow_schedule_fires "
                "WHERE workflow = ? AND trigger_key = ? ORDER BY scheduled_at DESC LIMIT 1",
                (workflow, trigger),
            ).fetchone()
        if row is None:
            return None
        return ScheduleFire(
            workflow=workflow,
            trigger=trigger,
            scheduled_at=float(row[0]),
            outcome=row[1],
            run_id=row[2],
            fired_at=float(row[3]),
        )

    def claim_fire(
        self,
        workflow: str,
        trigger: str,
        scheduled_at: float,
        outcome: str,
        run: RunRecord | None = None,
    ) -> bool:
        """Record the fire of ``trigger`` at ``scheduled_at`` and, in the same transaction,
        create its ``run``. False (nothing written) when this fire, or a later one, was
        recorded already: two schedulers on one store never both start a fire, and a lagging
        one never goes back in time. Older fires of the trigger are forgotten."""
        now = time.time()
        with self._write() as conn:
            newer = self._exec(
                conn,
                "SELECT 1 FROM flow_schedule_fires WHERE workflow = ? AND trigger_key = ? "
                "AND scheduled_at >= ?",
                (workflow, trigger, scheduled_at),
            ).fetchone()
            if newer is not None:
                return False
            cursor = self._exec(
                conn,
                "INSERT INTO flow_schedule_fires "
                "(workflow, trigger_key, scheduled_at, outcome, run_id, fired_at) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (workflow, trigger_key, scheduled_at) DO NOTHING",
                (workflow, trigger, scheduled_at, outcome, run.id if run else None, now),
            )
            if cursor.rowcount != 1:
                return False
            self._exec(
                conn,
                "DELETE FROM flow_schedule_fires WHERE workflow = ? AND trigger_key = ? "
                "AND scheduled_at < ?",
                (workflow, trigger, scheduled_at),
            )
            if run is not None:
                stamped = {"created_at": now, "updated_at": now, "steps": 0}
                self._insert_run(conn, run.model_copy(update=stamped))
        return True


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _run(row: Any) -> RunRecord:
    pending = row[8]
    return RunRecord(
        id=row[0],
        workflow=row[1],
        definition=json.loads(row[2]),
        inputs=json.loads(row[3]),
        status=row[4],
        state=json.loads(row[5]),
        outputs=None if row[6] is None else json.loads(row[6]),
        error=row[7],
        pending=None if pending is None else PendingInput.model_validate_json(pending),
        owner=row[9],
        parent=row[10],
        created_at=float(row[11]),
        updated_at=float(row[12]),
        steps=int(row[13]),
        started_by=row[14],
    )


def _step(row: Any) -> StepRecord:
    return StepRecord(
        seq=int(row[0]),
        node=row[1],
        type=row[2],
        status=row[3],
        outputs=json.loads(row[4]),
        branch=row[5],
        error=row[6],
        attempts=int(row[7]),
        started_at=float(row[8]),
        finished_at=float(row[9]),
    )

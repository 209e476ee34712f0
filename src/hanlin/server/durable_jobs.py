"""Jobs in the shared-database mode: the same job API as :class:`~hanlin.server.jobs.JobManager`,
with the records in PostgreSQL and the work on the durable queue (:mod:`hanlin.db.queue`).

A replica records the job (``hanlin_jobs``, ``hanlin_job_files``) and defers it; any ``hanlin
worker`` on any machine runs it with :class:`JobRunner` — the same ingest and re-embed code as
embedded mode, as the caller who submitted it — writing per-file status back and announcing every
change with ``NOTIFY``. Every replica LISTENs, so a job's events reach the subscribers of
whichever replica a browser talks to; job lists and pages are read from the database.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from hanlin.access import caller as access
from hanlin.config import Settings
from hanlin.db.locks import SharedLock
from hanlin.db.postgres import Database, database
from hanlin.db.queue import QUEUE, TASK, defer, deferrer
from hanlin.errors import DatabaseUnavailableError, Reason, reason_fields
from hanlin.knowledge.pool import KnowledgeBases
from hanlin.knowledge.uploads import store_upload
from hanlin.server.jobs import KEEP_JOBS, FileState, Job, JobKind, JobManager, WriterLock

log = logging.getLogger("hanlin.server.jobs")
CHANNEL = "hanlin_jobs"
#: seconds a listener waits for notifications before it looks whether it should stop
_LISTEN_POLL = 0.25
#: advisory-lock namespace of the knowledge bases' writer locks ("jb"; the key hashes the name)
_WRITER_NAMESPACE = 0x6A62
_JOB_COLUMNS = (
    "id, kb, kind, status, error, model, chunk_done, chunk_total, cancel_requested, stopped, "
    "created_at, finished_at"
)


def _encode(reason: str | None) -> str | None:
    """A reason as its column holds it: JSON of its text, code and params (what a client
    words it with)."""
    if reason is None:
        return None
    fields = reason_fields(reason)
    return json.dumps([reason, fields["reason_code"], fields["reason_params"]], default=str)


def _decode(column: str | None) -> str | None:
    if column is None:
        return None
    text, code, *params = json.loads(column)  # [text, code] before the params were kept
    return None if text is None else Reason(text, code, params[0] if params else None)


class JobRecords:
    """The rows of jobs and their files."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, job: Job, who: access.Access) -> None:
        caller = {
            "scopes": None if who.scopes is None else sorted(who.scopes),
            "kbs": None if who.kbs is None else sorted(who.kbs),
            "user": who.user,
            "label": who.label,
        }
        with self.db.connection() as conn:
            conn.execute(
                "INSERT INTO hanlin_jobs (id, kb, kind, status, model, access, created_at, "
                "finished_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    job.id,
                    job.kb,
                    job.kind,
                    job.status,
                    job.model,
                    json.dumps(caller),
                    job.created_at,
                    job.finished_at,
                ),
            )
            for idx, f in enumerate(job.files):
                self._upsert_file(conn, job.id, idx, f)
            # like the embedded job list: the last KEEP_JOBS finished jobs per knowledge
            # base are kept (never a running one), so the tables do not grow without end
            conn.execute(
                "DELETE FROM hanlin_jobs WHERE id IN (SELECT id FROM hanlin_jobs "
                "WHERE kb = %s AND status <> 'running' ORDER BY created_at DESC OFFSET %s)",
                (job.kb, KEEP_JOBS),
            )
            notify(conn, job.kb, "job", job.summary())

    @staticmethod
    def _upsert_file(conn: Any, job_id: str, idx: int, f: FileState) -> None:
        conn.execute(
            "INSERT INTO hanlin_job_files (job_id, idx, upload_id, filename, status, reason, "
            "chunks, key, forgotten) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (job_id, idx) DO UPDATE SET status = excluded.status, "
            "reason = excluded.reason, chunks = excluded.chunks, forgotten = excluded.forgotten",
            (
                job_id,
                idx,
                f.upload_id,
                f.filename,
                f.status,
                _encode(f.reason),
                f.chunks,
                f.key,
                f.forgotten,
            ),
        )

    def save_file(self, job: Job, idx: int, f: FileState) -> None:
        with self.db.connection() as conn:
            self._upsert_file(conn, job.id, idx, f)
            notify(conn, job.kb, "file", {"job": job.id, **f.to_dict()})

    def save_job(self, job: Job) -> None:
        done, total = job.chunk_progress or (None, None)
        with self.db.connection() as conn:
            conn.execute(
                "UPDATE hanlin_jobs SET status = %s, error = %s, model = %s, chunk_done = %s, "
                "chunk_total = %s, stopped = %s, finished_at = %s WHERE id = %s",
                (
                    job.status,
                    _encode(job.error),
                    job.model,
                    done,
                    total,
                    job.stopped,
                    job.finished_at,
                    job.id,
                ),
            )
            notify(conn, job.kb, "job", job.summary())

    def load(self, kb: str | None, job_id: str) -> Job | None:
        jobs = self._select(
            "WHERE id = %s" + (" AND kb = %s" if kb else ""), [job_id, kb][: 2 if kb else 1]
        )
        return jobs[0] if jobs else None

    def recent(self, kb: str, limit: int = KEEP_JOBS) -> list[Job]:
        return self._select("WHERE kb = %s ORDER BY created_at DESC LIMIT %s", [kb, limit])[::-1]

    def access_of(self, job_id: str) -> access.Access:
        with self.db.connection() as conn:
            row = conn.execute("SELECT access FROM hanlin_jobs WHERE id = %s", (job_id,)).fetchone()
        a = dict(row[0]) if row else {}
        return access.Access(
            None if a.get("scopes") is None else frozenset(a["scopes"]),
            None if a.get("kbs") is None else frozenset(a["kbs"]),
            a.get("user"),
            a.get("label") or "the local user",
        )

    def _select(self, where: str, params: list[Any]) -> list[Job]:
        with self.db.connection() as conn:
            rows = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM hanlin_jobs {where}", params
            ).fetchall()
            ids = [r[0] for r in rows]
            files: dict[str, list[FileState]] = {i: [] for i in ids}
            for fr in conn.execute(
                "SELECT job_id, upload_id, filename, status, reason, chunks, key, forgotten "
                "FROM hanlin_job_files WHERE job_id = ANY(%s) ORDER BY job_id, idx",
                (ids,),
            ).fetchall():
                reason = _decode(fr[4])
                files[fr[0]].append(FileState(fr[1], fr[2], fr[3], reason, fr[5], fr[6], fr[7]))
        jobs = []
        for r in rows:
            job = Job(r[0], r[1], r[2], files[r[0]], status=r[3], created_at=r[10])
            job.error = _decode(r[4])
            job.model, job.stopped, job.finished_at = r[5], r[9], r[11]
            if r[6] is not None:
                job.chunk_progress = (r[6], r[7])
            if r[8]:
                job.cancel.set()
            jobs.append(job)
        return jobs

    def request_cancel(self, job_id: str) -> None:
        with self.db.connection() as conn:
            row = conn.execute(
                "UPDATE hanlin_jobs SET cancel_requested = true WHERE id = %s RETURNING kb",
                (job_id,),
            ).fetchone()
            if row:
                notify(conn, row[0], "cancel", {"job": job_id})

    def unqueue(self, job_id: str) -> bool:
        """Take job ``job_id`` off the queue if no worker has taken it yet (True: it will
        never run). A worker takes a job by moving it out of ``todo`` under a row lock, so a
        job is either taken or cancelled here, never both."""
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT procrastinate_cancel_job_v1(id, false, false) FROM procrastinate_jobs "
                "WHERE queue_name = %s AND task_name = %s AND status = 'todo' "
                "AND args->>'job_id' = %s",
                (QUEUE, TASK, job_id),
            ).fetchall()
        return any(r[0] is not None for r in rows)

    def save_all(self, job: Job) -> None:
        """The job and all its files, in one transaction."""
        with self.db.connection() as conn:
            for idx, f in enumerate(job.files):
                self._upsert_file(conn, job.id, idx, f)
        self.save_job(job)

    def cancel_requested(self, job_id: str) -> bool:
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT cancel_requested FROM hanlin_jobs WHERE id = %s", (job_id,)
            ).fetchone()
        return bool(row and row[0])

    def forget_failed(self, kb: str, key: str | None, upload_id: str | None) -> bool:
        with self.db.connection() as conn:
            n = conn.execute(
                "UPDATE hanlin_job_files f SET forgotten = true FROM hanlin_jobs j "
                "WHERE j.id = f.job_id AND j.kb = %s AND f.status = 'failed' AND NOT f.forgotten "
                "AND ((%s::text IS NOT NULL AND f.key = %s) OR "
                "(%s::text IS NOT NULL AND f.upload_id = %s))",
                (kb, key, key, upload_id, upload_id),
            ).rowcount
        return n > 0

    def delete_kb(self, kb: str) -> None:
        with self.db.connection() as conn:
            conn.execute("DELETE FROM hanlin_jobs WHERE kb = %s", (kb,))
            conn.execute("DELETE FROM hanlin_uploads WHERE kb = %s", (kb,))


def _cancelled(payload: str) -> str | None:
    """The job a notification asks to cancel (None: another event)."""
    if '"cancel"' not in payload:  # file and job events, most of them: not parsed
        return None
    event = json.loads(payload)
    return str(event["data"].get("job")) if event["name"] == "cancel" else None


def notify(conn: Any, kb: str, name: str, data: dict[str, Any]) -> None:
    """Announce a change to every replica (sent when the transaction commits)."""
    payload = json.dumps({"kb": kb, "name": name, "data": data}, default=str)
    if len(payload) < 7900:  # NOTIFY's limit; a bigger event is read by polling instead
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


class DurableJobManager(JobManager):
    """:class:`JobManager` for a server with ``database_url``: records in PostgreSQL, work on
    the queue, events from every worker via LISTEN/NOTIFY."""

    def __init__(self, settings: Settings, kbs: KnowledgeBases) -> None:
        super().__init__(settings, kbs)
        assert settings.database_url
        self.url = settings.database_url
        self.records = JobRecords(database(self.url))
        self._queue = deferrer(self.url)
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None

    def bind(self, loop: Any) -> None:
        super().bind(loop)
        if self._listener is None:
            self._listener = threading.Thread(
                target=self._listen, name="hanlin-jobs-listen", daemon=True
            )
            self._listener.start()

    def _new_writer_lock(self, kb: str) -> WriterLock:
        # one job writes a knowledge base at a time across every worker, and a replica
        # deleting the knowledge base waits for that job (or answers 409)
        return SharedLock(self.records.db, _WRITER_NAMESPACE, kb)

    def _listen(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=_LISTEN_POLL):
                            event = json.loads(n.payload)
                            if event["name"] in ("job", "file"):
                                self._publish(event["kb"], event["name"], event["data"])
            except Exception:  # the database went away: listen again when it is back
                log.warning("job events: lost the database connection; retrying", exc_info=True)
                self._stop.wait(2.0)

    def submit(
        self, kb: str, kind: JobKind, files: list[FileState], *, model: str | None = None
    ) -> Job:
        job = Job("job_" + secrets.token_hex(6), kb, kind, files, model=model)
        if files and all(f.status == "failed" for f in files):
            job.status, job.finished_at = "failed", time.time()
        for f in files:  # uploads move into the database, where any worker reads them
            if kind == "files" and f.status == "queued" and f.key and f.upload_id:
                path = Path(f.key)
                f.key = store_upload(self.settings, kb, f.upload_id, f.filename, path.read_bytes())
                path.unlink(missing_ok=True)
        self.records.insert(job, access.current())
        if job.status == "running":
            defer(self._queue, job.id)
        return job

    def get(self, kb: str, job_id: str) -> Job | None:
        return self.records.load(kb, job_id)

    def jobs(self, kb: str) -> list[Job]:
        return self.records.recent(kb)

    def cancel(self, job: Job) -> bool:
        if job.status != "running":
            return False
        self.records.request_cancel(job.id)
        job.cancel.set()
        if self.records.unqueue(job.id):  # no worker has it: cancelled now, not on pickup
            self._finish(job)  # its files cancelled, its uploads dropped
            self.records.save_all(job)
        else:  # the worker running it stops after its current file
            self._publish(job.kb, "job", job.summary())
        return True

    def forget_failed(
        self, kb: str, *, key: str | None = None, upload_id: str | None = None
    ) -> bool:
        return self.records.forget_failed(kb, key, upload_id)

    def forget(self, kb: str) -> None:
        self.records.delete_kb(kb)

    def join(self, timeout: float) -> None:
        self._stop.set()  # the jobs run on, in the workers
        if self._listener is not None:
            self._listener.join(timeout)


class JobRunner(JobManager):
    """Runs one recorded job inside ``hanlin worker``: the embedded-mode job code, with every
    status change written to the job's rows."""

    def __init__(self, settings: Settings, kbs: KnowledgeBases) -> None:
        super().__init__(settings, kbs)
        assert settings.database_url
        self.url = settings.database_url
        self.records = JobRecords(database(self.url))
        self._running: dict[str, Job] = {}
        self._closed = threading.Event()
        self._handing_back = threading.Event()
        self._watcher: threading.Thread | None = None

    def run(self, job_id: str) -> None:
        """Run (or, after a crash, resume) job ``job_id``; raises
        :class:`DatabaseUnavailableError` so the queue retries it later."""
        job = self.records.load(None, job_id)
        if job is None or job.status != "running":
            return  # finished already (a retry after the work was done), or removed
        for f in job.files:  # a worker died mid-file: that file is done again, once
            if f.status in ("parsing", "embedding"):
                f.status = "queued"
        self._running[job.id] = job
        if self._handing_back.is_set():
            job.hand_back.set()
        self._watch()
        try:
            with access.acting_as(self.records.access_of(job_id)):
                self._run(job)
        finally:
            self._running.pop(job.id, None)
        if getattr(job.error, "code", None) == "database_unavailable":
            raise DatabaseUnavailableError(str(job.error))
        if job.handed_back and job.status == "running":
            defer(deferrer(self.url), job.id)  # queued again, for the next worker
            log.info("job %s: handed back to the queue (the worker is stopping)", job.id)

    def hand_back(self) -> None:
        """The worker is stopping: each running job stops after its current file and goes
        back to the queue with the files it did not reach; no job starts any more."""
        self._handing_back.set()
        for job in list(self._running.values()):
            job.hand_back.set()

    def _new_writer_lock(self, kb: str) -> WriterLock:
        return SharedLock(self.records.db, _WRITER_NAMESPACE, kb)

    def cancel_running(self) -> None:
        """Cancel the jobs this runner is running: each stops after its current file."""
        for job in list(self._running.values()):
            job.cancel.set()

    def _ingest(self, job: Job) -> None:
        self._cancel_if_requested(job)
        super()._ingest(job)

    def _reembed(self, job: Job) -> None:
        self._cancel_if_requested(job)
        super()._reembed(job)

    def _cancel_if_requested(self, job: Job) -> None:
        """Read the job's cancel flag now (as its work starts: a job cancelled while it
        waited for the writer lock must not start on a notification not yet seen)."""
        if self.records.cancel_requested(job.id):
            job.cancel.set()

    def close(self) -> None:
        """Stop watching for cancels (the worker stops)."""
        self._closed.set()
        with self._mutex:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.join()

    def _watch(self) -> None:
        with self._mutex:
            if self._watcher is None and not self._closed.is_set():
                self._watcher = threading.Thread(
                    target=self._watch_cancels, name="hanlin-job-cancels", daemon=True
                )
                self._watcher.start()

    def _watch_cancels(self) -> None:
        """Cancel a running job as soon as a replica announces it (``NOTIFY``), or at the
        latest when the flags are next read (a notification missed while not listening)."""
        import psycopg

        while not self._closed.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._closed.is_set():
                        for job in list(self._running.values()):
                            if not job.cancel.is_set():
                                self._cancel_if_requested(job)
                        for n in conn.notifies(timeout=_LISTEN_POLL):
                            cancelled = self._running.get(_cancelled(n.payload) or "")
                            if cancelled is not None:
                                cancelled.cancel.set()
            except (psycopg.Error, DatabaseUnavailableError):  # the database went away
                self._closed.wait(2.0)

    def _set(self, job: Job, f: FileState, status: str, reason: str | None = None) -> None:
        if status == "failed" and getattr(job.error, "code", None) == "database_unavailable":
            status, reason = "queued", None  # not failed: the retry ingests it
        f.status, f.reason = status, reason if status == "failed" else None
        self.records.save_file(job, job.files.index(f), f)

    def _publish(self, kb: str, name: str, data: dict[str, Any]) -> None:
        job = self._running.get(str(data.get("job")))
        if name == "job" and job is not None:
            if (
                job.status != "running"
                and getattr(job.error, "code", None) == "database_unavailable"
            ):
                return  # left running: the queue retries the job
            self.records.save_job(job)

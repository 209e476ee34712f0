"""Background work on knowledge bases for the server: uploads, URLs, syncs and re-embeds run as
jobs.

Each job runs on its own worker thread and takes its knowledge base's writer lock, so one job
writes a knowledge base at a time (others queue behind it) while searches go on. Per-file status
comes from the ingest pipeline's ``on_file`` hook — queued → parsing → embedding → done, or
failed with the reason — and is pushed to subscribers (``GET /api/kb/{name}/events``) as it
changes. A job can be cancelled: it stops after the file in hand, and the files left are marked
cancelled (a later sync ingests them). Jobs live in memory (the last few per knowledge base);
what was ingested, and which files failed and why, is recorded durably by the knowledge base
itself. Job summaries carry counts only; the per-file list is read a page at a time.

A re-embed job (:mod:`hanlin.knowledge.reembed`) has no files: its progress counts chunks, and
a cancel stops it between batches, before the swap, leaving the knowledge base unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from hanlin.config import Settings
from hanlin.errors import HanlinError, Reason, reason_fields
from hanlin.knowledge.ingest import FileEvent, IngestReport
from hanlin.knowledge.loaders import LoaderOptions
from hanlin.knowledge.pool import KnowledgeBases
from hanlin.knowledge.reembed import ReembedCancelled, reembed
from hanlin.knowledge.scan import normalize_uri
from hanlin.knowledge.uploads import drop_upload

log = logging.getLogger("hanlin.server.jobs")
JobKind = Literal["files", "urls", "sync", "reembed"]
#: finished jobs kept per knowledge base
KEEP_JOBS = 50
_UNFINISHED = ("queued", "parsing", "embedding")
_FINISHED = ("done", "failed", "cancelled")


class WriterLock(Protocol):
    """A knowledge base's writer lock: a :class:`threading.Lock` in embedded mode, one shared
    by every replica and worker with ``database_url``."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...

    def __enter__(self) -> bool: ...

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...


@dataclass(slots=True)
class FileState:
    """One file (or URL) of a job. ``key`` is the path or URL as the knowledge base knows it."""

    upload_id: str | None
    filename: str
    status: str = "queued"
    reason: str | None = None
    chunks: int = 0
    key: str = ""
    #: a failed file the user deleted (:meth:`JobManager.forget_failed`): listed no more
    forgotten: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "upload_id": self.upload_id,
            "filename": self.filename,
            "status": self.status,
            "reason": self.reason,
            **reason_fields(self.reason),
            "chunks": self.chunks,
        }


@dataclass(slots=True)
class Job:
    id: str
    kb: str
    kind: JobKind
    files: list[FileState]
    status: str = "running"  # running | done | failed | cancelled
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    #: set by :meth:`JobManager.cancel`; the job stops after the current file
    cancel: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    #: the cancel took effect (files were left, or the job never started)
    stopped: bool = False
    #: set when the worker running the job stops (``hanlin worker`` got Ctrl-C): the job stops
    #: after the current file and its other files stay queued, for the next worker
    hand_back: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    #: the hand-back took effect: the job is unfinished and must be queued again
    handed_back: bool = False
    #: a re-embed job's model (None: the recorded model's current version)
    model: str | None = None
    #: a re-embed job's (chunks done, chunks in all)
    chunk_progress: tuple[int, int] | None = None

    def summary(self) -> dict[str, Any]:
        """The job without its file list: files counted per status."""
        counts = Counter(f.status for f in list(self.files))
        total = sum(counts.values())
        progress: dict[str, Any] = {"done": sum(counts[s] for s in _FINISHED), "total": total}
        if self.kind == "reembed":
            done, all_ = self.chunk_progress or (0, 0)
            progress = {"done": done, "total": all_, "unit": "chunks"}
        return {
            "job": self.id,
            "kb": self.kb,
            "kind": self.kind,
            "status": self.status,
            "error": self.error,
            "cancel_requested": self.cancel.is_set(),
            "counts": dict(counts),
            "progress": progress,
            "model": self.model,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }

    def page(self, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """The summary with files ``offset`` … ``offset + limit - 1`` and the file ``total``."""
        files = list(self.files)
        shown = files[offset : offset + limit]
        return self.summary() | {
            "files": [f.to_dict() for f in shown],
            "offset": offset,
            "limit": limit,
            "total": len(files),
        }


class JobManager:
    """Starts jobs, tracks them and tells subscribers what changed."""

    def __init__(self, settings: Settings, kbs: KnowledgeBases) -> None:
        self.settings = settings
        self.kbs = kbs
        self._jobs: dict[str, list[Job]] = {}
        self._locks: dict[str, WriterLock] = {}
        self._subscribers: dict[str, set[asyncio.Queue[tuple[str, dict[str, Any]]]]] = {}
        self._threads: set[threading.Thread] = set()
        self._mutex = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop subscribers live on (set at server start)."""
        self._loop = loop

    def writer_lock(self, kb: str) -> WriterLock:
        """Held by a job while it writes ``kb`` (one job at a time), and by routes that must
        not run beside one (deleting the knowledge base)."""
        with self._mutex:
            lock = self._locks.get(kb)
            if lock is None:
                lock = self._locks[kb] = self._new_writer_lock(kb)
            return lock

    def _new_writer_lock(self, kb: str) -> WriterLock:
        return threading.Lock()

    # -- jobs ------------------------------------------------------------------------------
    def submit(
        self, kb: str, kind: JobKind, files: list[FileState], *, model: str | None = None
    ) -> Job:
        """Record a job and start it. Files already ``failed`` (rejected uploads) stay so.
        ``model``: the embedding model of a ``reembed`` job."""
        job = Job("job_" + secrets.token_hex(6), kb, kind, files, model=model)
        if files and all(f.status == "failed" for f in files):
            job.status, job.finished_at = "failed", time.time()
        with self._mutex:
            jobs = self._jobs.setdefault(kb, [])
            jobs.append(job)
            finished = [j for j in jobs if j.status != "running"]
            if len(finished) > KEEP_JOBS:  # forget the oldest finished ones, never a running one
                forget = {id(j) for j in finished[: len(finished) - KEEP_JOBS]}
                jobs[:] = [j for j in jobs if id(j) not in forget]
        self._publish(kb, "job", job.summary())
        if job.status == "running":
            # the job runs as the caller who submitted it (their scopes and knowledge bases)
            ctx = contextvars.copy_context()
            thread = threading.Thread(
                target=ctx.run, args=(self._run, job), name=f"hanlin-{job.id}", daemon=True
            )
            with self._mutex:
                self._threads.add(thread)
            thread.start()
        return job

    def get(self, kb: str, job_id: str) -> Job | None:
        with self._mutex:
            return next((j for j in self._jobs.get(kb, []) if j.id == job_id), None)

    def jobs(self, kb: str) -> list[Job]:
        with self._mutex:
            return list(self._jobs.get(kb, []))

    def cancel(self, job: Job) -> bool:
        """Ask a running job to stop after its current file; False when it already finished."""
        if job.status != "running":
            return False
        job.cancel.set()
        self._publish(job.kb, "job", job.summary())
        return True

    def unfinished_files(self, kb: str) -> list[FileState]:
        """Files of recent jobs that are not stored: in progress, or failed."""
        seen: dict[str, FileState] = {}
        for job in self.jobs(kb):
            for f in job.files:
                if f.status != "done" and not f.forgotten:
                    seen[f.key or f.upload_id or f.filename] = f
                else:
                    seen.pop(f.key or f.upload_id or f.filename, None)
        return list(seen.values())

    def forget_failed(
        self, kb: str, *, key: str | None = None, upload_id: str | None = None
    ) -> bool:
        """Stop listing the failed files of recent jobs stored as ``key`` or uploaded as
        ``upload_id`` (deleted by the user); False when none matched."""
        found = False
        for job in self.jobs(kb):
            for f in job.files:
                if (
                    f.status == "failed"
                    and not f.forgotten
                    and ((key and f.key == key) or (upload_id and f.upload_id == upload_id))
                ):
                    f.forgotten = found = True
        return found

    def forget(self, kb: str) -> None:
        """Drop the jobs of a removed knowledge base."""
        with self._mutex:
            self._jobs.pop(kb, None)

    def join(self, timeout: float) -> None:
        """At shutdown: running jobs stop after their current file (queued ones at once), and
        this waits for them at most ``timeout`` s in all. Without the stop, a burst of queued
        uploads kept a stopped server's process alive until every one was ingested."""
        with self._mutex:
            for job in (j for jobs in self._jobs.values() for j in jobs):
                if job.status == "running":
                    job.cancel.set()
        deadline = time.monotonic() + timeout
        with self._mutex:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, job: Job) -> None:
        lock = self.writer_lock(job.kb)
        locked = False
        try:
            # wait for the writer lock, but give up at once when cancelled while queued
            while not (locked := lock.acquire(timeout=0.1)):
                if job.cancel.is_set():
                    job.stopped = True
                    break
                if job.hand_back.is_set():
                    job.handed_back = True
                    break
            if locked:
                (self._reembed if job.kind == "reembed" else self._ingest)(job)
        except Exception as exc:  # never let a job thread die silently
            log.exception("job %s failed", job.id)
            job.error = getattr(exc, "message", None) or f"internal error ({type(exc).__name__})"
        finally:
            if locked:
                lock.release()
            if job.handed_back and not job.cancel.is_set() and job.error is None:
                self._hand_back(job)
            else:
                self._finish(job)
            with self._mutex:
                self._threads.discard(threading.current_thread())

    def _finish(self, job: Job) -> None:
        for f in job.files:
            if f.status == "queued" and job.cancel.is_set():
                job.stopped = True
                self._set(job, f, "cancelled")
                if job.kind == "files" and f.key:  # an upload never ingested: not kept
                    drop_upload(self.settings, job.kb, f.key)
            elif f.status in _UNFINISHED:
                self._set(job, f, "failed", job.error or "not ingested")
        ok = any(f.status == "done" for f in job.files) or (not job.files and job.error is None)
        if job.stopped and job.error is None:
            job.status = "cancelled"
        else:
            job.status = "done" if ok and job.error is None else "failed"
        job.finished_at = time.time()
        self._publish(job.kb, "job", job.summary())

    def _hand_back(self, job: Job) -> None:
        """Leave an interrupted job unfinished, its files not done queued again."""
        for f in job.files:
            if f.status in _UNFINISHED and f.status != "queued":
                self._set(job, f, "queued")
        self._publish(job.kb, "job", job.summary())

    def _ingest(self, job: Job) -> None:
        by_key = {f.key: f for f in job.files if f.key}

        def on_file(event: FileEvent) -> None:
            state = by_key.get(event.path)
            if state is None:  # sync jobs learn their files as they go
                name = Path(event.path).name if "://" not in event.path else event.path
                state = FileState(None, name, key=event.path)
                by_key[event.path] = state
                job.files.append(state)
            state.chunks = event.chunks or state.chunks
            self._set(job, state, event.status, event.reason)

        try:
            kb = self.kbs.open(job.kb, self.settings)
        except HanlinError as exc:
            job.error = Reason.of(exc)
            return

        def stop() -> bool:
            return job.cancel.is_set() or job.hand_back.is_set()

        try:
            todo = [f for f in job.files if f.status == "queued"]
            if job.kind == "files" and stop():
                return  # cancelled while queued: nothing added (the uploads are dropped)
            if job.kind in ("files", "urls") and todo:
                # one pass over all the job's files: one embedding pool, grouped writes (a
                # pass per file made uploads ~8× slower than `kb add` of the same files)
                named = [LoaderOptions(display_name=f.filename) for f in todo]
                report = kb.add(
                    *[f.key for f in todo],
                    on_file=on_file,
                    stop=stop,
                    per_item=named if job.kind == "files" else None,
                )
                if self._left_for_next(job, report.cancelled):
                    return
                self._cancelled(job, by_key, report.cancelled)
                if job.kind == "files":  # an upload the job never reached is not kept
                    for key in report.cancelled:
                        kb.store.remove_source(normalize_uri(key))
                        drop_upload(self.settings, job.kb, key)
                self._settle(job, todo, report)
            elif job.kind == "sync":
                left = kb.sync(on_file=on_file, stop=stop).cancelled
                if not self._left_for_next(job, left):
                    self._cancelled(job, by_key, left)
        except HanlinError as exc:
            job.error = Reason.of(exc, exc.message + (f" ({exc.hint})" if exc.hint else ""))
        finally:
            kb.close()
            self.kbs.invalidate(job.kb)

    def _reembed(self, job: Job) -> None:
        def progress(done: int, total: int, _: str) -> None:
            job.chunk_progress = (done, total)
            self._publish(job.kb, "job", job.summary())

        try:
            kb = self.kbs.open(job.kb, self.settings)
        except HanlinError as exc:
            job.error = Reason.of(exc)
            return
        try:
            reembed(
                kb,
                job.model,
                progress,
                stop=lambda: job.cancel.is_set() or job.hand_back.is_set(),
            )
            job.model = kb.embedding_model
        except ReembedCancelled:
            # handed back: the knowledge base is as it was, the next worker starts it again
            job.handed_back = not job.cancel.is_set()
            job.stopped = not job.handed_back
        except HanlinError as exc:
            job.error = Reason.of(exc, exc.message + (f" ({exc.hint})" if exc.hint else ""))
        finally:
            kb.close()
            self.kbs.invalidate(job.kb)

    @staticmethod
    def _left_for_next(job: Job, left: list[str]) -> bool:
        """Whether the files ``left`` were left for the next worker (not cancelled)."""
        if left and job.hand_back.is_set() and not job.cancel.is_set():
            job.handed_back = True
        return job.handed_back

    def _cancelled(self, job: Job, by_key: dict[str, FileState], keys: list[str]) -> None:
        """Mark the files a stopped ingest did not reach (sync jobs learn them here)."""
        for key in keys:
            job.stopped = True
            state = by_key.get(key)
            if state is None:
                name = Path(key).name if "://" not in key else key
                state = by_key[key] = FileState(None, name, key=key)
                job.files.append(state)
            self._set(job, state, "cancelled")

    def _settle(self, job: Job, files: list[FileState], report: IngestReport) -> None:
        """Files the pipeline skipped before reading them (scan problems) get their reason."""
        reasons = {s.path: s.reason for s in report.skipped}
        for f in files:
            if f.status in _UNFINISHED:
                self._set(job, f, "failed", reasons.get(f.key, "not ingested"))

    def _set(self, job: Job, f: FileState, status: str, reason: str | None = None) -> None:
        f.status, f.reason = status, reason if status == "failed" else None
        self._publish(job.kb, "file", {"job": job.id, **f.to_dict()})

    # -- events ----------------------------------------------------------------------------
    def subscribe(self, kb: str) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=1000)
        with self._mutex:
            self._subscribers.setdefault(kb, set()).add(queue)
        return queue

    def unsubscribe(self, kb: str, queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        with self._mutex:
            self._subscribers.get(kb, set()).discard(queue)

    def _publish(self, kb: str, name: str, data: dict[str, Any]) -> None:
        loop = self._loop
        with self._mutex:
            queues = list(self._subscribers.get(kb, ()))
        if loop is None or not queues or loop.is_closed():
            return
        for queue in queues:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_offer, queue, (name, data))


def _offer(
    queue: asyncio.Queue[tuple[str, dict[str, Any]]], item: tuple[str, dict[str, Any]]
) -> None:
    with contextlib.suppress(asyncio.QueueFull):  # a stalled subscriber misses events; it can poll
        queue.put_nowait(item)


def abspath(path: Path) -> str:
    """A path as the knowledge base records it."""
    return os.path.abspath(path)


__all__ = ["FileState", "Job", "JobManager", "WriterLock", "abspath"]

"""Embedding on every core: worker processes, each holding its own copy of the model.

The bundled models are CPU-bound numpy/C code that scales by processes, not threads. Each
worker (``hanlin.models.embeddings.worker``) is pinned to one BLAS thread so N workers use N
cores without oversubscription. Work is a shared queue of model-sized batches: whichever worker
is free takes the next one, so the workers stay busy while the caller queues the next group
(no worker waits for the slowest one at the end of each group). Small jobs skip the pool:
starting a worker costs ~1 s.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from hanlin.errors import HanlinError
from hanlin.frames import read_frame, write_frame
from hanlin.models.embeddings.base import EmbeddingModel, Vectors

_ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


class _Worker:
    def __init__(self, model: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hanlin.models.embeddings.worker", model],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **_ONE_THREAD},
        )
        self.lock = threading.Lock()

    def embed(self, texts: list[str]) -> Vectors:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self.lock:
            try:
                write_frame(self.proc.stdin, pickle.dumps(texts))  # type: ignore[arg-type]
                frame = read_frame(self.proc.stdout)  # type: ignore[arg-type]
            except (BrokenPipeError, EOFError) as exc:
                frame = None
                cause: Exception | None = exc
            else:
                cause = None
            if frame is None:
                raise HanlinError(
                    f"an embedding worker died (exit code {self.proc.poll()})",
                    hint="check memory; set knowledge.embed_workers = 1 to embed in-process",
                ) from cause
            out: Vectors = np.load(io.BytesIO(frame), allow_pickle=False)
            return out

    def close(self) -> None:
        if self.proc.stdin:
            with contextlib.suppress(OSError):  # the worker may already be gone
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class EmbedJob:
    """The vectors of one :meth:`EmbeddingPool.submit` call, computed in the background."""

    def __init__(self, parts: list[Future[Vectors]], dim: int) -> None:
        self._parts = parts
        self._dim = dim

    def done(self) -> bool:
        return all(p.done() for p in self._parts)

    def result(self) -> Vectors:
        """Wait for every batch; shape ``(len(texts), dim)``, in the submitted order. Raises
        :class:`HanlinError` when a worker died."""
        if not self._parts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.vstack([p.result() for p in self._parts]).astype(np.float32, copy=False)


_Batch = tuple[list[str], "Future[Vectors]"]


class EmbeddingPool:
    """Embeds document batches with ``model`` in ``workers`` processes (1 = in this process)."""

    #: below this many texts (submitted so far) a job runs in-process
    min_parallel = 256

    def __init__(self, model: EmbeddingModel, workers: int | None = None) -> None:
        self.model = model
        self.workers = default_workers() if workers is None else max(1, workers)
        self._procs: list[_Worker] = []
        self._feeders: list[threading.Thread] = []
        self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._local: ThreadPoolExecutor | None = None
        self._submitted = 0

    @property
    def started(self) -> bool:
        return bool(self._procs)

    def start(self) -> None:
        """Start the worker processes now; they load the model while the caller goes on."""
        if self.workers == 1 or self._procs:
            return
        self._procs = [_Worker(self.model.name) for _ in range(self.workers)]
        for i, w in enumerate(self._procs):
            t = threading.Thread(target=self._feed, args=(w,), name=f"embed-{i}", daemon=True)
            t.start()
            self._feeders.append(t)

    def _feed(self, worker: _Worker) -> None:
        while (item := self._queue.get()) is not None:
            texts, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(worker.embed(texts))
            except BaseException as exc:  # handed to whoever waits on the job
                fut.set_exception(exc)

    def submit(self, texts: Sequence[str]) -> EmbedJob:
        """Queue ``texts`` in model-sized batches and return at once; free workers take the
        batches in order. Jobs submitted before the pool has seen :attr:`min_parallel` texts
        (and every job when ``workers == 1``) run in this process, on a background thread."""
        size = self.model.batch_size
        batches = [list(texts[i : i + size]) for i in range(0, len(texts), size)]
        self._submitted += len(texts)
        if not self._procs and self.workers > 1 and self._submitted >= self.min_parallel:
            self.start()
        parts: list[Future[Vectors]] = []
        if self._procs:
            for b in batches:
                fut: Future[Vectors] = Future()
                self._queue.put((b, fut))
                parts.append(fut)
        else:
            if self._local is None:
                self._local = ThreadPoolExecutor(1, thread_name_prefix="hanlin-embed-local")
            parts = [self._local.submit(self.model.embed_documents, b) for b in batches]
        return EmbedJob(parts, self.model.dim)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` and wait; order is kept."""
        if self.workers == 1 or (not self._procs and len(texts) < self.min_parallel):
            size = self.model.batch_size
            parts = [
                self.model.embed_documents(texts[i : i + size]) for i in range(0, len(texts), size)
            ]
            if not parts:
                return np.zeros((0, self.model.dim), dtype=np.float32)
            return np.vstack(parts).astype(np.float32, copy=False)
        self.start()
        return self.submit(texts).result()

    def close(self) -> None:
        """Stop the workers. Batches still queued (the caller gave up on them) are cancelled."""
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._queue.get_nowait()
                if item is not None:
                    item[1].cancel()
        for _ in self._feeders:
            self._queue.put(None)
        for t in self._feeders:
            t.join(timeout=60)
        self._feeders = []
        for w in self._procs:
            w.close()
        self._procs = []
        if self._local is not None:
            self._local.shutdown()
            self._local = None

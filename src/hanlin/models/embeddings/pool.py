"""Embedding on every core: worker processes, each holding its own copy of the model.

The bundled models are CPU-bound numpy/C code that scales by processes, not threads. Each
worker (``hanlin.models.embeddings.worker``) is pinned to one BLAS thread so N workers use N
cores without oversubscription. Small jobs skip the pool: starting a worker costs ~1 s.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hanlin.errors import HanlinError
from hanlin.models.embeddings.base import EmbeddingModel, Vectors
from hanlin.models.embeddings.worker import read_frame, write_frame

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


class EmbeddingPool:
    """Embeds document batches with ``model`` in ``workers`` processes (1 = in this process)."""

    #: below this many texts a job runs in-process
    min_parallel = 256

    def __init__(self, model: EmbeddingModel, workers: int | None = None) -> None:
        self.model = model
        self.workers = default_workers() if workers is None else max(1, workers)
        self._procs: list[_Worker] = []
        self._threads: ThreadPoolExecutor | None = None

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` in model-sized batches spread over the workers; order is kept."""
        size = self.model.batch_size
        batches = [list(texts[i : i + size]) for i in range(0, len(texts), size)]
        if not batches:
            return np.zeros((0, self.model.dim), dtype=np.float32)
        if self.workers == 1 or len(texts) < self.min_parallel:
            parts = [self.model.embed_documents(b) for b in batches]
        else:
            if not self._procs:
                self._procs = [_Worker(self.model.name) for _ in range(self.workers)]
                self._threads = ThreadPoolExecutor(self.workers)
            assert self._threads is not None
            jobs = [
                self._threads.submit(self._procs[i % self.workers].embed, b)
                for i, b in enumerate(batches)
            ]
            parts = [j.result() for j in jobs]
        return np.vstack(parts).astype(np.float32, copy=False)

    def close(self) -> None:
        for w in self._procs:
            w.close()
        self._procs = []
        if self._threads is not None:
            self._threads.shutdown()
            self._threads = None

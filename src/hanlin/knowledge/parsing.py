"""Parsing untrusted files in worker processes, each under a memory, CPU and wall-clock budget.

A file that explodes (a decompression bomb, a parser that spins) fails alone with a reason and a
hint, and the memory it took dies with its worker instead of staying in the caller (a server
never gives back what a 2 GB parse once took). Workers are started once and reused, so normal
files pay only a pipe round-trip. They are plain subprocesses (``hanlin.knowledge.parse_worker``)
like the embedding workers, so callers need no ``if __name__ == "__main__"`` guard; a worker
exits when its pool is closed or its parent dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hanlin.errors import LoaderError
from hanlin.frames import LENGTH as _LEN
from hanlin.knowledge.base import Block, LoadedDocument
from hanlin.knowledge.loaders import LoaderOptions, load_bytes
from hanlin.knowledge.loaders.api import loader_for
from hanlin.knowledge.loaders.options import MiB

if TYPE_CHECKING:
    from hanlin.config import KnowledgeSettings

#: a worker has this long to import the loaders and say it is ready
_START_TIMEOUT_S = 120.0
_ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
_BUILTIN_LOADERS = "hanlin.knowledge.loaders."
_TRUST_HINT = (
    "if you trust the file, raise `knowledge.{setting}` (hanlin.toml, or {env}), or split it"
)


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """The budget of one file's parse (settings ``knowledge.parse_*``, ``max_inflated_mb``)."""

    #: worker processes; 0 parses in the calling process (debugging: no memory or time limit)
    workers: int = 1
    #: memory a parse may use on top of the worker's own footprint (its address-space limit)
    memory_mb: int = 2048
    #: wall-clock seconds (and CPU seconds) one file may take
    timeout_s: float = 300.0
    #: bytes a file may decompress to, over all its streams or members
    max_inflated_mb: int = 256

    @classmethod
    def from_settings(cls, ks: KnowledgeSettings) -> ParseLimits:
        return cls(
            workers=ks.parse_workers,
            memory_mb=ks.parse_memory_mb,
            timeout_s=ks.parse_timeout_s,
            max_inflated_mb=ks.max_inflated_mb,
        )


class _WorkerGone(Exception):
    """The worker died or closed its pipe before answering."""


class _Worker:
    """One parse worker process and its pipes. Used by one thread at a time."""

    def __init__(self, limits: ParseLimits) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hanlin.knowledge.parse_worker", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env={**os.environ, **_ONE_THREAD},
        )
        setup = {
            "sys_path": [p for p in sys.path if p and os.path.isdir(p)],
            "memory_bytes": limits.memory_mb * MiB,
            "cpu_seconds": int(limits.timeout_s) + 1,
        }
        self._send(json.dumps(setup).encode())
        self.ready = False
        self.sent = False  # a file reached it (a failure is that file's, not a stale worker's)

    def _send(self, *payloads: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            for payload in payloads:
                self.proc.stdin.write(_LEN.pack(len(payload)))
                self.proc.stdin.write(payload)
            self.proc.stdin.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError) as exc:
            raise _WorkerGone from exc

    def _read(self, size: int, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = bytearray()
        while len(buf) < size:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(size - len(buf), 4 * MiB))
            if not chunk:
                raise _WorkerGone
            buf += chunk
        return bytes(buf)

    def _read_frame(self, deadline: float) -> bytes:
        (size,) = _LEN.unpack(self._read(_LEN.size, deadline))
        return self._read(size, deadline)

    def wait_ready(self) -> None:
        if not self.ready:
            try:
                self._read_frame(time.monotonic() + _START_TIMEOUT_S)
            except TimeoutError as exc:
                raise _WorkerGone from exc
            self.ready = True

    def parse(self, header: dict[str, Any], data: bytes, timeout: float) -> dict[str, Any]:
        """Send one file and wait at most ``timeout`` s for the answer; raises TimeoutError or
        _WorkerGone."""
        self.wait_ready()
        self._send(json.dumps(header).encode(), data)
        self.sent = True
        reply: dict[str, Any] = json.loads(self._read_frame(time.monotonic() + timeout))
        return reply

    def exit_status(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(timeout=5)
        return None

    def kill(self) -> None:
        _stop(self.proc, graceful=False)

    def close(self) -> None:
        _stop(self.proc, graceful=True)


def _stop(proc: subprocess.Popen[bytes], *, graceful: bool) -> None:
    if graceful and proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()  # the worker ends its loop at end of input
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def _stop_all(workers: list[_Worker]) -> None:
    for w in workers:
        _stop(w.proc, graceful=False)


class ParsePool:
    """Parses files with the registered loaders in up to ``limits.workers`` worker processes.

    Cheap to construct; the first worker starts on :meth:`start` or the first :meth:`parse`.
    Thread-safe: concurrent calls use different workers (or wait for a free one).
    """

    def __init__(self, limits: ParseLimits | None = None) -> None:
        self.limits = limits or ParseLimits()
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._cond = threading.Condition()
        self._closed = False
        # workers die with the pool even if nobody calls close()
        self._finalizer = weakref.finalize(self, _stop_all, self._all)

    @property
    def isolated(self) -> bool:
        return self.limits.workers > 0

    def start(self) -> None:
        """Start one worker now, so it imports the loaders while the caller does other work."""
        with self._cond:
            if self.isolated and not self._all and not self._closed:
                self._add_idle()

    def _add_idle(self) -> None:
        worker = _Worker(self.limits)
        self._all.append(worker)
        self._idle.append(worker)

    def parse(
        self,
        data: bytes,
        *,
        source: str,
        name: str,
        options: LoaderOptions,
        content_type: str | None = None,
    ) -> list[LoadedDocument]:
        """The documents in ``data`` (as :func:`~hanlin.knowledge.loaders.load_bytes`).

        Raises :class:`LoaderError` with a hint for a file the loader refuses and for one that
        breaks the budget: more than ``max_inflated_mb`` decompressed, more than ``memory_mb``
        of memory, more than ``timeout_s`` seconds, or a parser crash.
        """
        options = options.model_copy(
            update={"max_inflated_bytes": self.limits.max_inflated_mb * MiB}
        )
        module = loader_for(name, content_type).fn.__module__
        if not self.isolated or module == "__main__":  # a script's own loader: it trusts it
            return load_bytes(
                data, source=source, name=name, options=options, content_type=content_type
            )
        header = {
            "source": source,
            "name": name,
            "options": options.model_dump(),
            "content_type": content_type,
            "loader_module": None if module.startswith(_BUILTIN_LOADERS) else module,
        }
        for attempt in (1, 2):
            worker = self._acquire()
            keep = False
            try:
                reply = worker.parse(header, data, self.limits.timeout_s)
                keep = not reply.get("retire")
            except TimeoutError:
                worker.kill()
                raise self._timed_out() from None
            except _WorkerGone:
                if attempt == 1 and not worker.sent:
                    continue  # it died before this file reached it: try a fresh one
                raise self._died(worker.exit_status()) from None
            finally:
                self._release(worker, keep)
            return self._documents(reply, name)
        raise AssertionError("unreachable")

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise LoaderError(
                        "the parser pool is closed", hint="open the knowledge base again"
                    )
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self.limits.workers:
                    self._add_idle()
                    continue
                self._cond.wait()

    def _release(self, worker: _Worker, keep: bool) -> None:
        with self._cond:
            if keep and not self._closed:
                self._idle.append(worker)
            else:
                self._all.remove(worker)
            self._cond.notify()
        if not keep:
            worker.close()

    def close(self) -> None:
        """Stop every worker (idle ones at once; busy ones are killed)."""
        with self._cond:
            self._closed = True
            workers, self._idle = list(self._all), []
            self._all.clear()
            self._cond.notify_all()
        for w in workers:
            w.close()

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- replies and failures --------------------------------------------------------------
    def _documents(self, reply: dict[str, Any], name: str) -> list[LoadedDocument]:
        if "docs" in reply:
            return [_document(d) for d in reply["docs"]]
        if "error" in reply:
            raise LoaderError(
                reply["error"],
                hint=reply.get("hint") or None,
                code=reply.get("code"),
                params=reply.get("params"),
            )
        failure = reply.get("failure")
        if failure == "memory":
            raise self._out_of_memory()
        if failure == "nesting":
            raise LoaderError(
                "the file is nested too deeply to parse",
                hint="it may be crafted to crash parsers; flatten or re-save it, or leave it out",
                code="parse_nested_too_deep",
            )
        raise LoaderError(
            f"the loader failed on {name}: {reply.get('detail', 'unknown error')}",
            hint="the file may be damaged: re-save it from the program that made it; "
            "if it opens normally, please report this error",
            code="parse_failed",
            params={"detail": str(reply.get("detail", "unknown error"))},
        )

    def _timed_out(self) -> LoaderError:
        return LoaderError(
            f"parsing took longer than the limit of {self.limits.timeout_s:g} s "
            "(knowledge.parse_timeout_s) and was stopped",
            hint="the file may be crafted to make parsers spin; "
            + _TRUST_HINT.format(
                setting="parse_timeout_s", env="HANLIN_KNOWLEDGE__PARSE_TIMEOUT_S"
            ),
            code="parse_timeout",
            params={"limit_s": self.limits.timeout_s},
        )

    def _out_of_memory(self) -> LoaderError:
        return LoaderError(
            f"parsing exceeded the parse memory limit of {self.limits.memory_mb} MB "
            "(knowledge.parse_memory_mb) and was stopped",
            hint="the file may be a decompression or parser bomb; "
            + _TRUST_HINT.format(
                setting="parse_memory_mb", env="HANLIN_KNOWLEDGE__PARSE_MEMORY_MB"
            ),
            code="parse_memory_exceeded",
            params={"limit_mb": self.limits.memory_mb},
        )

    def _died(self, status: int | None) -> LoaderError:
        if status == -signal.SIGXCPU:
            return LoaderError(
                f"parsing used more than {self.limits.timeout_s:g} s of CPU time "
                "(knowledge.parse_timeout_s) and was stopped",
                hint="the file may be crafted to make parsers spin; "
                + _TRUST_HINT.format(
                    setting="parse_timeout_s", env="HANLIN_KNOWLEDGE__PARSE_TIMEOUT_S"
                ),
                code="parse_timeout",
                params={"limit_s": self.limits.timeout_s},
            )
        if status is not None and status < 0:
            try:
                how = f"signal {signal.Signals(-status).name}"
            except ValueError:
                how = f"signal {-status}"
        else:
            how = f"exit code {status}"
        return LoaderError(
            f"the parser process died on this file ({how}); it may have run out of the parse "
            f"memory limit of {self.limits.memory_mb} MB (knowledge.parse_memory_mb)",
            hint="the file may be damaged or crafted to crash parsers: re-save it from the "
            "program that made it, or leave it out; to see the parser's own error, set "
            "knowledge.parse_workers = 0 (parses in-process, without limits)",
            code="parser_died",
            params={"limit_mb": self.limits.memory_mb},
        )


def _document(d: dict[str, Any]) -> LoadedDocument:
    blocks = [Block(**b) for b in d.pop("blocks")]
    return LoadedDocument(**d, blocks=blocks)

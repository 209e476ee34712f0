"""A parse worker process: ``python -m hanlin.knowledge.parse_worker PARENT_PID``.

Runs loaders on untrusted files under resource limits, so a file that explodes in memory or
spins burns this process, not the caller. Speaks length-prefixed frames on stdin/stdout:
first one JSON setup frame (limits, ``sys.path``), then per file a JSON header frame and a frame
of raw bytes, answered by one JSON frame (the documents, or an error with a hint). A plain
subprocess rather than multiprocessing, so any caller's script works (no ``__main__`` guard).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import os
import resource
import sys
import threading
import time
from typing import Any

from hanlin.frames import read_frame, write_frame

#: how often the worker checks that its parent is still alive
_PARENT_POLL_S = 0.5
#: a worker whose resident memory grows this far past its start retires after the reply
_RETIRE_GROWTH = 256 << 20
#: what the built-in loaders parse with (imported inside them, at the first file)
_PARSING_LIBRARIES = ("docx", "lxml.html", "markdown_it", "trafilatura")


def vm_kib(field: str) -> int:
    """``VmSize``/``VmRSS`` of this process in KiB (0 where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _watch_parent(parent: int) -> None:
    """Exit as soon as the parent is gone (the worker was re-parented), even mid-parse."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(_PARENT_POLL_S)


def _set_limits(memory_bytes: int) -> None:
    """Cap the address space at what the worker uses now plus ``memory_bytes``."""
    if memory_bytes <= 0:
        return
    cap = vm_kib("VmSize") * 1024 + memory_bytes
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _cpu_deadline(cpu_seconds: int) -> None:
    """Allow ``cpu_seconds`` more CPU time from now (the kernel's limit counts the process's
    whole life, so it moves forward with each file). Past it the kernel sends SIGXCPU."""
    if cpu_seconds <= 0:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + cpu_seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _parse(header: dict[str, Any], data: bytes) -> dict[str, Any]:
    from hanlin.errors import LoaderError
    from hanlin.knowledge.loaders import LoaderOptions, load_bytes

    module = header.get("loader_module")
    if module:  # a plugin loader registered in the caller: import it here too
        importlib.import_module(module)
    try:
        docs = load_bytes(
            data,
            source=header["source"],
            name=header["name"],
            options=LoaderOptions(**header["options"]),
            content_type=header.get("content_type"),
        )
    except LoaderError as exc:
        if _caused_by(exc, MemoryError):  # a loader wrapped it (pdfplumber does): the real cause
            raise MemoryError from exc
        return {
            "error": exc.message,
            "hint": exc.hint or "",
            "code": exc.code,
            "params": exc.params,
        }
    return {"docs": [dataclasses.asdict(d) for d in docs]}


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, kind):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def main(parent: int) -> None:
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a chatty library must not write into the frames
    # parsers warn a lot about damaged files; the reply carries what matters
    logging.basicConfig(level=logging.ERROR)
    import hanlin.knowledge.loaders  # noqa: F401  (the built-in loaders register on import)

    # The loaders import their parsing libraries on first use, so that a command that parses
    # nothing stays fast; a worker is there to parse, so it loads them now, as it always did:
    # before its memory limit is set and before the first file's clock starts.
    for library in _PARSING_LIBRARIES:
        importlib.import_module(library)

    setup_frame = read_frame(stdin)
    if setup_frame is None:
        return
    setup = json.loads(setup_frame)
    for entry in setup.get("sys_path", []):
        if entry not in sys.path:
            sys.path.append(entry)
    _set_limits(int(setup.get("memory_bytes", 0)))
    write_frame(stdout, b"{}")  # ready: the caller's clock for the first file starts now
    start_rss = vm_kib("VmRSS") * 1024
    while (header_frame := read_frame(stdin)) is not None:
        data = read_frame(stdin)
        if data is None:
            return
        _cpu_deadline(int(setup.get("cpu_seconds", 0)))
        retire = False
        try:
            reply = _parse(json.loads(header_frame), data)
        except MemoryError:
            reply, retire = {"failure": "memory"}, True
        except RecursionError:
            reply = {"failure": "nesting"}
        except Exception as exc:  # a loader bug must not take the batch down: report it
            if _caused_by(exc, MemoryError):
                reply, retire = {"failure": "memory"}, True
            elif _caused_by(exc, RecursionError):
                reply = {"failure": "nesting"}
            else:
                reply = {"failure": "crash", "detail": f"{type(exc).__name__}: {exc}"}
        del data
        # a worker that grew a lot keeps that memory: a fresh one replaces it
        reply["retire"] = retire or vm_kib("VmRSS") * 1024 - start_rss > _RETIRE_GROWTH
        try:
            payload = json.dumps(reply, ensure_ascii=False, default=str).encode("utf-8")
        except MemoryError:
            payload = b'{"failure": "memory", "retire": true}'
        write_frame(stdout, payload)
        if reply["retire"] or payload.startswith(b'{"failure": "memory"'):
            return


if __name__ == "__main__":
    with contextlib.suppress(EOFError):  # the parent died in the middle of sending a file
        main(int(sys.argv[1]))

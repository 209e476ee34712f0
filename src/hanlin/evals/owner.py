"""Which process runs an evaluation run, and whether it is gone.

A run being executed records its owner (``host:pid:token``) in its config, and its
``updated_at`` moves with every scored example (and a server's heartbeat). A run left
``running`` is *orphaned* when its owner is gone: on this host, its pid is dead or is this
process under another token (a container's pid 1 after a restart); on another host, or for a
run without an owner, nothing has moved for :data:`STALE_AFTER_S` seconds — the rule the
workflow engine applies to its runs. A server that stops hands its runs back (owner
:data:`RELEASED`): they are orphaned at once. :func:`take_over` claims such a run atomically
(:meth:`~hanlin.evals.base.EvalStore.claim_run`), so one process only takes it over.
"""

from __future__ import annotations

import os
import secrets
import socket
import time

from hanlin.evals.base import EvalStore, RunInfo

#: a run on another host (or without an owner) that has not moved for this long is orphaned;
#: a server running it touches it every :data:`HEARTBEAT_S`
STALE_AFTER_S = 300.0
HEARTBEAT_S = 30.0
#: the owner of a run a stopping server handed back: any process may take it over at once
RELEASED = "released"

_owner: tuple[int, str] | None = None


def process_owner() -> str:
    """This process's owner name (a new one after a fork)."""
    global _owner
    pid = os.getpid()
    if _owner is None or _owner[0] != pid:
        _owner = (pid, f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}")
    return _owner[1]


def owner_gone(owner: str | None, updated_at: float, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether the process that marked a run running is gone."""
    if owner == RELEASED:
        return True
    if not owner:
        return time.time() - updated_at > stale_after_s
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return time.time() - updated_at > stale_after_s
    try:
        pid = int(rest.split(":")[0])
    except ValueError:
        return False
    if pid == os.getpid():
        return owner != process_owner()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, OSError):
        return False
    return False


def orphaned_runs(store: EvalStore, limit: int = 10_000) -> list[RunInfo]:
    """Runs left ``running`` by a process that is gone."""
    return [
        r
        for r in store.runs(limit=limit)
        if r.status == "running" and owner_gone(r.config.get("owner"), r.updated_at)
    ]


def take_over(store: EvalStore, run: RunInfo) -> bool:
    """Claim an orphaned run for this process; False when another process got it first (or
    it moved since it was read)."""
    return store.claim_run(run.id, process_owner(), run.updated_at)


__all__ = [
    "HEARTBEAT_S",
    "RELEASED",
    "STALE_AFTER_S",
    "orphaned_runs",
    "owner_gone",
    "process_owner",
    "take_over",
]

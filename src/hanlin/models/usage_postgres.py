"""The usage ledger in PostgreSQL (``database_url`` set): budgets that hold across replicas.

Every call becomes a row of ``usage_calls``, and adds its cost to a counter row per UTC day and
caller key in ``usage_spend`` (and to the day's ``*`` row), both in one transaction. The hot
path stays a dict lookup, as embedded: a budget check reads this process's copy of the shared
counters plus what it spent since its last write. A background writer, every
:data:`~hanlin.models.pricing.WRITE_INTERVAL` (0.25 s), writes the queued calls (an atomic
``usd = usd + Δ`` upsert per counter, taken in key order so replicas never deadlock) and
re-reads the counters that have a budget. Another replica's spend therefore reaches this one's
checks within two intervals (~0.5 s): that, plus calls already admitted and still running, is
how far replicas together can pass a budget — the same in-flight allowance one process has.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from hanlin.config import BudgetSettings
from hanlin.errors import DatabaseUnavailableError
from hanlin.models.pricing import (
    WRITE_INTERVAL,
    BudgetLedger,
    CallRecord,
    ledger_row,
    utc_day,
)

if TYPE_CHECKING:
    from hanlin.db.postgres import Database

log = logging.getLogger(__name__)

_CALL_COLUMNS = (
    "ts, day, deployment, key, prompt_tokens, completion_tokens, cached_tokens, usd, cny, "
    "latency_ms, ok, cached_response"
)
_ADD_SPEND = """
INSERT INTO usage_spend AS s (day, key, usd, calls)
SELECT * FROM unnest(%s::text[], %s::text[], %s::float8[], %s::bigint[]) ORDER BY 1, 2
ON CONFLICT (day, key) DO UPDATE SET usd = s.usd + excluded.usd, calls = s.calls + excluded.calls
RETURNING day, key, usd
"""


class PostgresLedger(BudgetLedger):
    """The ``usage_calls`` and ``usage_spend`` tables of one database."""

    def __init__(self, url: str, budgets: BudgetSettings) -> None:
        super().__init__(budgets)
        self.url = url
        self._db: Database | None = None
        #: spend recorded here and not yet written, per (day, key)
        self._unflushed: dict[tuple[str, str], float] = defaultdict(float)
        #: records a failed write left behind, written first next time
        self._retry: list[CallRecord] = []

    def _database(self) -> Database:
        if self._db is None:
            from hanlin.db.postgres import database

            self._db = database(self.url)
        return self._db

    def _day_spend(self, day: str) -> list[tuple[str, float]]:
        with self._database().connection() as conn:
            rows = conn.execute(
                "SELECT key, usd FROM usage_spend WHERE day = %s AND key <> '*'", (day,)
            ).fetchall()
        return [(key, float(usd)) for key, usd in rows]

    def record(self, rec: CallRecord) -> None:
        """Add a call to the running totals and queue it for the database."""
        self._seed()
        day = utc_day(rec.ts)
        with self._lock:  # the writer replaces totals under the same lock
            for slot in ((day, rec.key), (day, "*")):
                self._spent[slot] += rec.usd
                self._unflushed[slot] += rec.usd
        self._queue.put(rec)

    def spent_today(self, key: str = "*") -> float:
        """USD spent today by ``key`` on every replica (read now, plus this process's unwritten
        calls)."""
        self._seed()
        day = utc_day()
        with self._database().connection() as conn:
            row = conn.execute(
                "SELECT usd FROM usage_spend WHERE day = %s AND key = %s", (day, key)
            ).fetchone()
        with self._lock:
            return (float(row[0]) if row else 0.0) + self._unflushed[(day, key)]

    # -- the writer ------------------------------------------------------------------------

    def _budget_keys(self) -> list[str]:
        keys = list(self.budgets.per_key_daily_usd)
        if self.budgets.daily_usd is not None:
            keys.append("*")
        return keys

    def _write(self, records: list[CallRecord]) -> None:
        deltas: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
        rows = []
        for r in records:
            day = utc_day(r.ts)
            for slot in ((day, r.key), (day, "*")):
                deltas[slot][0] += r.usd
                deltas[slot][1] += 1
            rows.append(
                (
                    r.ts,
                    day,
                    r.deployment,
                    r.key,
                    r.prompt_tokens,
                    r.completion_tokens,
                    r.cached_tokens,
                    r.usd,
                    r.cny,
                    r.latency_ms,
                    r.ok,
                    r.cached_response,
                )
            )
        slots = sorted(deltas)
        with self._database().connection() as conn:
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO usage_calls ({_CALL_COLUMNS}) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
            totals = conn.execute(
                _ADD_SPEND,
                (
                    [d for d, _ in slots],
                    [k for _, k in slots],
                    [deltas[s][0] for s in slots],
                    [int(deltas[s][1]) for s in slots],
                ),
            ).fetchall()
        with self._lock:
            for slot in slots:
                self._unflushed[slot] -= deltas[slot][0]
            for day, key, usd in totals:
                self._spent[(day, key)] = float(usd) + self._unflushed[(day, key)]

    def _refresh(self) -> None:
        """Re-read today's counters that have a budget: other replicas' spend."""
        keys = self._budget_keys()
        if not keys:
            return
        day = utc_day()
        with self._database().connection() as conn:
            rows = conn.execute(
                "SELECT key, usd FROM usage_spend WHERE day = %s AND key = ANY(%s)", (day, keys)
            ).fetchall()
        with self._lock:
            for key, usd in rows:
                self._spent[(day, key)] = float(usd) + self._unflushed[(day, key)]

    def _write_loop(self) -> None:
        # Poll on a timer, as the embedded writer does: the timer also paces the refresh.
        while True:
            batch: list[CallRecord | None] = []
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in batch
            pending = self._retry + [r for r in batch if r is not None]
            self._retry = []
            try:
                if pending:
                    self._write(pending)
                self._refresh()
            except DatabaseUnavailableError as exc:
                self._retry = pending  # written when the database is back
                log.warning("usage ledger: %s; %d calls wait to be written", exc, len(pending))
            except Exception:  # a bug must not stop every later write
                log.exception("usage ledger: %d calls could not be written", len(pending))
            if stop:
                return
            time.sleep(WRITE_INTERVAL)

    def rows(self, day: str | None = None) -> list[dict[str, Any]]:
        self.flush()
        where, args = ("WHERE day = %s", (day,)) if day else ("", ())
        with self._database().connection() as conn:
            cur = conn.execute(
                f"SELECT {_CALL_COLUMNS} FROM usage_calls {where} ORDER BY ts, id", args
            )
            names = [c.name for c in cur.description or []]
            found = cur.fetchall()
        return [ledger_row(dict(zip(names, r, strict=True))) for r in found]

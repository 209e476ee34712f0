"""`hanlin db start` gives a newcomer a real PostgreSQL in one command, and `database_url`
pointed at it moves knowledge bases there; `hanlin worker` without a database says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _hanlin(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hanlin", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HANLIN_HOME": str(home), **env},
    )


def test_db_start_then_use_it_then_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)  # the server runs as its own system user when tests run as root
    tmp_path.chmod(0o755)
    started = _hanlin("db", "start", home=home)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    try:
        assert url.startswith("postgresql://") and "PostgreSQL is running" in started.stderr
        status = _hanlin("db", "status", home=home, HANLIN_DATABASE_URL=url)
        assert status.returncode == 0 and "pgvector ok" in status.stdout, status.stderr
        made = _hanlin("kb", "create", "notes", home=home, HANLIN_DATABASE_URL=url)
        assert made.returncode == 0, made.stderr
        listed = _hanlin("kb", "ls", "--json", home=home, HANLIN_DATABASE_URL=url)
        assert '"notes"' in listed.stdout
        # the embedded catalog of the same home knows nothing of it
        assert '"notes"' not in _hanlin("kb", "ls", "--json", home=home).stdout
    finally:
        stopped = _hanlin("db", "stop", home=home)
    assert stopped.returncode == 0 and "stopped the local PostgreSQL" in stopped.stderr


def test_worker_without_a_database_says_what_to_set(tmp_path: Path) -> None:
    result = _hanlin("worker", home=tmp_path)
    assert result.returncode != 0
    assert "database_url is not set" in result.stderr and "HANLIN_DATABASE_URL" in result.stderr

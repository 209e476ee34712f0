"""Knowledge bases on PostgreSQL, as a user drives them: `database_url` switches the backend,
`hanlin kb copy` moves a knowledge base both ways with identical results, and a bad URL or a
database that is down says what to check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hanlin.config import load_settings
from hanlin.errors import ConfigError, DatabaseUnavailableError
from hanlin.knowledge.copy import copy_kb
from hanlin.knowledge.kb import KnowledgeBase

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hanlin", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_database_url_moves_knowledge_bases_into_postgres(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, hanlin_home: Path
) -> None:
    monkeypatch.setenv("HANLIN_DATABASE_URL", pg_url)
    settings = load_settings()
    assert settings.knowledge.store == "postgres"
    with KnowledgeBase.create("docs", settings=settings) as kb:
        kb.add(SAMPLES)
        hits = kb.search("hybrid search fuses ranked lists", k=3)
    assert hits and "hybrid" in hits[0].chunk.text.lower()
    # another "machine": its own HANLIN_HOME, the same database
    other_home = hanlin_home.parent / "replica-home"
    other = load_settings(home=other_home, database_url=pg_url)
    assert KnowledgeBase.names(other) == ["docs"]
    with KnowledgeBase("docs", other) as kb2:
        again = kb2.search("hybrid search fuses ranked lists", k=3)
    assert [h.chunk.id for h in again] == [h.chunk.id for h in hits]
    assert not (hanlin_home / "kb" / "docs" / "kb.sqlite").exists()
    KnowledgeBase.remove("docs", other)
    assert KnowledgeBase.names(settings) == []


def test_kb_copy_to_postgres_and_back_gives_identical_results(
    pg_url: str, hanlin_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HANLIN_DATABASE_URL", raising=False)  # this test starts embedded
    with KnowledgeBase.create("sample") as kb:
        kb.add(SAMPLES)
    result = _run("kb", "copy", "sample", "--to", pg_url, env={})
    assert result.returncode == 0, result.stderr
    assert "verified: the same top-10 for 20 sample queries" in result.stderr
    assert "***" in result.stderr or "@" not in pg_url.split("//")[1].split("/")[0]
    report = copy_kb(
        "sample",
        "embedded",
        as_name="back",
        settings=load_settings(database_url=pg_url),
    )
    assert report.ok and report.queries == 20
    with KnowledgeBase("sample") as a, KnowledgeBase("back") as b:
        sa, sb = a.store.stats(), b.store.stats()
        assert (sa.documents, sa.chunks, sa.vectors) == (sb.documents, sb.chunks, sb.vectors)
        assert [s.uri for s in a.store.list_sources()] == [s.uri for s in b.store.list_sources()]
    again = _run("kb", "copy", "sample", "--to", pg_url, env={})
    assert again.returncode != 0 and "already exists" in again.stderr


def test_bad_database_urls_say_what_to_fix(hanlin_home: Path) -> None:
    with pytest.raises(ConfigError, match="not a PostgreSQL URL"):
        KnowledgeBase.names(load_settings(database_url="mysql://u:pw@h/db"))
    down = "postgresql://hanlin:s3cret@127.0.0.1:9/hanlin"
    with pytest.raises(DatabaseUnavailableError) as info:
        KnowledgeBase.names(load_settings(database_url=down))
    assert "s3cret" not in str(info.value) and "hanlin:***@127.0.0.1:9" in str(info.value)
    assert "PostgreSQL is running" in (info.value.hint or "")
    result = _run("kb", "ls", env={"HANLIN_DATABASE_URL": down})
    assert result.returncode != 0 and "s3cret" not in result.stderr + result.stdout
    assert "cannot connect to the database" in result.stderr


def test_a_database_without_pgvector_is_refused_with_the_fix(pg_databases: object) -> None:
    from hanlin.db.postgres import Database

    # pgvector is present on the test server; a schema version from the future stands in for
    # the "wrong server" case that a user can really produce: an older Hanlin on a newer schema
    url = pg_databases.create()  # type: ignore[attr-defined]
    try:
        db = Database(url)
        with db.connection() as conn:
            conn.execute("INSERT INTO hanlin_schema (version, name) VALUES (999, 'future')")
        db.close()
        with pytest.raises(ConfigError, match="newer than this Hanlin knows") as info:
            Database(url)
        assert "upgrade Hanlin" in (info.value.hint or "")
    finally:
        pg_databases.drop(url)  # type: ignore[attr-defined]

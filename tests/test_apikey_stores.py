"""Every API key store (the key file; PostgreSQL) keeps only salted hashes, verifies exactly the
active keys, refuses duplicate active names, and shows another process's — another replica's —
revocation within its stated delay."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hanlin.access.apikeys import APIKeys, APIKeyStore
from hanlin.access.apikeys_postgres import REFRESH_SECONDS, PostgresAPIKeys
from hanlin.access.auth import open_apikeys
from hanlin.config import load_settings
from hanlin.errors import InvalidInputError, NotFoundError

Open = Callable[[], APIKeys]


@pytest.fixture(params=["file", "postgres"])
def open_keys(request: pytest.FixtureRequest, tmp_path: Path) -> Open:
    """Opens the same store again each call, as another process would."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        return lambda: PostgresAPIKeys(url)
    return lambda: APIKeyStore(tmp_path / "apikeys.json")


def _stored_bytes(store: APIKeys) -> bytes:
    if isinstance(store, APIKeyStore):
        return store.path.read_bytes()
    import psycopg

    assert isinstance(store, PostgresAPIKeys)
    with psycopg.connect(store.url) as conn:
        rows = conn.execute("SELECT api_keys::text FROM api_keys").fetchall()
    return "\n".join(r[0] for r in rows).encode()


def test_a_key_verifies_until_revoked_and_only_its_hash_is_kept(open_keys: Open) -> None:
    store = open_keys()
    record, plain = store.create(["chat", "kb:read"], kbs=["docs"], name="ui")
    other, other_plain = store.create(["admin"])
    assert plain.startswith("hk-") and len(plain) == 35
    assert plain[3:].encode() not in _stored_bytes(store)
    found = store.verify(plain)
    assert found is not None and found.id == record.id
    assert found.scopes == ["chat", "kb:read"] and found.kbs == ["docs"] and found.name == "ui"
    assert store.verify(plain[:-1] + ("A" if plain[-1] != "A" else "B")) is None
    assert store.verify("sk-not-ours") is None
    assert store.revoke("ui").id == record.id  # by name
    assert store.verify(plain) is None
    assert store.verify(other_plain) is not None
    listed = {k.id: k for k in open_keys().records()}
    assert set(listed) == {record.id, other.id}
    assert listed[record.id].revoked_at is not None and listed[other.id].active
    assert store.has_active()
    store.revoke(other.id)  # by id
    assert not store.has_active()


def test_names_and_refs_are_checked(open_keys: Open) -> None:
    store = open_keys()
    store.create(["chat"], name="ci")
    with pytest.raises(InvalidInputError, match="already named 'ci'"):
        open_keys().create(["chat"], name="ci")
    with pytest.raises(InvalidInputError, match="unknown scope root"):
        store.create(["root"])
    with pytest.raises(NotFoundError):
        store.revoke("nobody")
    store.revoke("ci")
    with pytest.raises(NotFoundError):
        store.revoke("ci")  # already revoked
    store.create(["chat"], name="ci")  # the name is free again


def test_another_process_sees_a_new_key_and_a_revocation(open_keys: Open) -> None:
    here = open_keys()
    assert not here.has_active()
    record, plain = open_keys().create(["chat"])  # "another process"
    assert here.has_active()
    deadline = time.monotonic() + REFRESH_SECONDS + 1.0
    while here.verify(plain) is None:
        assert time.monotonic() < deadline, "a new key was not seen in time"
        time.sleep(0.05)
    open_keys().revoke(record.id)
    started = time.monotonic()
    while here.verify(plain) is not None:
        assert time.monotonic() - started < REFRESH_SECONDS + 0.5, "revocation not seen"
        time.sleep(0.02)


def test_the_cli_on_another_machine_revokes_for_every_replica(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hanlin apikeys` in a separate process with its own HANLIN_HOME (another machine)
    creates and revokes keys that a replica's store sees."""
    replica = open_apikeys(load_settings(home=tmp_path / "replica", database_url=pg_url))
    assert isinstance(replica, PostgresAPIKeys)
    env = {"HANLIN_HOME": str(tmp_path / "admin"), "HANLIN_DATABASE_URL": pg_url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "hanlin", "apikeys", *args],
            env={**_base_env(), **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done

    plain = cli("create", "--scope", "chat", "--name", "laptop").stdout.strip()
    assert replica.verify(plain) is not None
    assert "laptop" in cli("ls").stdout
    cli("revoke", "laptop")
    time.sleep(REFRESH_SECONDS + 0.05)
    assert replica.verify(plain) is None
    assert not (tmp_path / "admin" / "apikeys.json").exists()  # nothing went to the file


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("HANLIN_")} | {
        "HANLIN_CACHE": os.environ.get("HANLIN_CACHE", "")
    }

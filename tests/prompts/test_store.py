"""The prompt store as a library, on every backend (SQLite, PostgreSQL): versions never change,
an identical version is not written twice, labels move with their history kept, concurrent
writers — threads here and another process on the same file or database — get distinct, gapless
version numbers, and the built-ins are seeded once and never take production back from a user."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hanlin.errors import NotFoundError
from hanlin.prompts import NewVersion, PromptStore, SqlitePrompts, Variable
from hanlin.prompts.base import BUILTIN_AUTHOR, PRODUCTION
from hanlin.prompts.postgres import PostgresPrompts


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PromptStore]:
    opened: PromptStore
    if request.param == "postgres":
        opened = PostgresPrompts(request.getfixturevalue("pg_url"))
    else:
        opened = SqlitePrompts(tmp_path / "prompts.sqlite")
    yield opened
    opened.close()


def _v(text: str, **kw: object) -> NewVersion:
    return NewVersion(text=text, **kw)  # type: ignore[arg-type]


def _where(store: PromptStore) -> tuple[str, str]:
    if isinstance(store, SqlitePrompts):
        return "SqlitePrompts", str(store.path)
    return "PostgresPrompts", str(getattr(store, "url", ""))


def test_versions_are_numbered_and_never_change(store: PromptStore) -> None:
    one, made = store.create("greet", _v("Hello {who}", message="first"), "key_a")
    assert made and one.version == 1 and one.author == "key_a" and one.hash.startswith("sha256:")
    two, _ = store.create("greet", _v("Hi {who}!"), "key_b")
    assert two.version == 2
    assert store.get("greet", version=1) == one  # unchanged by the newer version
    assert store.get("greet").text == "Hi {who}!"  # no label: the latest
    assert [v.version for v in store.versions("greet")] == [1, 2]
    # not even the database lets a version be rewritten
    kind, where = _where(store)
    if kind == "SqlitePrompts":
        import sqlite3

        with (
            sqlite3.connect(where) as conn,
            pytest.raises(sqlite3.DatabaseError, match="immutable"),
        ):
            conn.execute("UPDATE prompt_versions SET text = 'pwned' WHERE name = 'greet'")
    else:
        import psycopg

        with psycopg.connect(where) as conn, pytest.raises(psycopg.Error, match="immutable"):
            conn.execute("UPDATE prompt_versions SET text = 'pwned' WHERE name = 'greet'")
    assert store.get("greet", version=1).text == "Hello {who}"


def test_an_identical_version_is_the_latest_not_a_new_one(store: PromptStore) -> None:
    vars_ab = [Variable(name="a"), Variable(name="b", type="int")]
    first, made = store.create("p", _v("{a} {b}", variables=vars_ab), "x")
    again, made_again = store.create(
        "p", _v("{a} {b}", variables=vars_ab[::-1], message="same, other words"), "y"
    )
    assert made and not made_again and again == first  # variable order and message do not count
    other, made_other = store.create(
        "p", _v("{a} {b}", variables=[vars_ab[0], Variable(name="b", type="float")]), "x"
    )
    assert made_other and other.version == 2  # a type change is a change
    back, made_back = store.create("p", _v("{a} {b}", variables=vars_ab), "x")
    assert made_back and back.version == 3  # identical to an older one, not the latest: new


def test_labels_move_and_every_move_is_kept(store: PromptStore) -> None:
    for text in ("v1", "v2", "v3"):
        store.create("p", _v(text), "x")
    first = store.set_label("p", "staging", 1, "alice")
    assert first.previous is None and first.actor == "alice"
    moved = store.set_label("p", "staging", 3, "bob")
    assert moved.previous == 1
    store.set_label("p", PRODUCTION, 2, "alice")
    same = store.set_label("p", PRODUCTION, 2, "mallory")  # already there: nothing recorded
    assert same.actor == "alice"
    assert store.labels("p") == {"production": 2, "staging": 3}
    assert store.get("p", label="staging").text == "v3"
    assert store.get("p", label="latest").text == "v3"
    history = [(m.label, m.version, m.previous, m.actor) for m in store.label_history("p")]
    assert history == [
        ("staging", 1, None, "alice"),
        ("staging", 3, 1, "bob"),
        ("production", 2, None, "alice"),
    ]


def test_unknown_names_versions_and_labels_say_what_exists(store: PromptStore) -> None:
    store.create("support.greeting", _v("hi"), "x")
    with pytest.raises(NotFoundError) as e:
        store.get("support.greting")
    assert "did you mean 'support.greeting'?" in (e.value.hint or "")
    with pytest.raises(NotFoundError) as e:
        store.get("support.greeting", version=7)
    assert "1 to 1" in (e.value.hint or "")
    with pytest.raises(NotFoundError) as e:
        store.get("support.greeting", label="staging")
    assert e.value.code == "prompt_label_not_found"
    with pytest.raises(NotFoundError):
        store.set_label("support.greeting", "staging", 2, "x")
    assert store.labels("support.greeting") == {}


def test_concurrent_creators_get_distinct_gapless_versions(store: PromptStore) -> None:
    kind, where = _where(store)
    script = (
        "import sys\n"
        "from hanlin.prompts import NewVersion, SqlitePrompts\n"
        "from hanlin.prompts.postgres import PostgresPrompts\n"
        f"s = {kind}(sys.argv[1])\n"
        "for i in range(30):\n"
        "    s.create('race', NewVersion(text=f'p{i}'), 'proc')\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script, where])

    def write(thread: int) -> None:
        for i in range(10):
            store.create("race", _v(f"t{thread}.{i}"), f"thread{thread}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.wait(timeout=120) == 0
    versions = store.versions("race")
    expected = {f"t{n}.{i}" for n in range(4) for i in range(10)} | {f"p{i}" for i in range(30)}
    assert [v.version for v in versions] == list(range(1, len(expected) + 1))
    assert {v.text for v in versions} == expected


def test_builtins_are_seeded_once_and_never_take_production_from_a_user(
    store: PromptStore,
) -> None:
    builtin = [("rag.x", _v("built-in {sources}"))]
    before = store.generation()
    assert store.seed(builtin) == 1
    assert store.seed(builtin) == 0  # already there: a read, nothing written
    assert store.generation() > before
    seeded = store.get("rag.x", label=PRODUCTION)
    assert seeded.author == BUILTIN_AUTHOR and seeded.version == 1
    # a newer Hanlin ships new text: production follows while it is on a built-in version
    assert store.seed([("rag.x", _v("built-in v2 {sources}"))]) == 1
    assert store.get("rag.x", label=PRODUCTION).version == 2
    # a user promotes their own version; the next built-in text does not take it back
    mine, _ = store.create("rag.x", _v("mine {sources}"), "key_ops")
    store.set_label("rag.x", PRODUCTION, mine.version, "key_ops")
    assert store.seed([("rag.x", _v("built-in v3 {sources}"))]) == 1
    assert store.get("rag.x", label=PRODUCTION).text == "mine {sources}"
    assert store.get("rag.x").text == "built-in v3 {sources}"
    listed = {p.name: p for p in store.list()}
    assert listed["rag.x"].latest == 4 and listed["rag.x"].labels == {PRODUCTION: mine.version}

"""The conversation store as a library: every backend (SQLite, PostgreSQL) keeps owners apart,
numbers messages without gaps under concurrent writers — threads here and another process on the
same file or database — and leaves a conversation whole when a change is refused half-way."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hanlin.conversations import NewMessage, SqliteConversations
from hanlin.conversations.base import MAX_MESSAGES, ConversationStore
from hanlin.conversations.postgres import PostgresConversations
from hanlin.errors import InvalidInputError, NotFoundError


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    opened: ConversationStore
    if request.param == "postgres":
        opened = PostgresConversations(request.getfixturevalue("pg_url"))
    else:
        opened = SqliteConversations(tmp_path / "conversations.sqlite")
    yield opened
    opened.close()


def _user(text: str) -> NewMessage:
    return NewMessage(role="user", content=text)


def test_owners_never_see_each_other(store: ConversationStore) -> None:
    mine = store.create("key_a", title="plans", messages=[_user("the code is 4471")])
    assert store.list("key_b").total == 0
    assert store.list("key_b", query="4471").data == []
    with pytest.raises(NotFoundError):
        store.get("key_b", mine.id)
    with pytest.raises(NotFoundError):
        store.append("key_b", mine.id, _user("mine now"))
    with pytest.raises(NotFoundError):
        store.delete("key_b", mine.id)
    assert [m.content for m in store.get("key_a", mine.id).messages] == ["the code is 4471"]


def test_concurrent_writers_number_messages_without_gaps(store: ConversationStore) -> None:
    chat = store.create("local")
    # another process on the same file (a CLI) or database (another replica)
    kind, where = (
        ("SqliteConversations", str(store.path))
        if isinstance(store, SqliteConversations)
        else ("PostgresConversations", str(getattr(store, "url", "")))
    )
    script = (
        "import sys\n"
        "from hanlin.conversations import NewMessage, SqliteConversations\n"
        "from hanlin.conversations.postgres import PostgresConversations\n"
        f"s = {kind}(sys.argv[1])\n"
        "for i in range(40):\n"
        "    s.append('local', sys.argv[2], NewMessage(role='user', content=f'p{i}'))\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script, where, chat.id])

    def write(thread: int) -> None:
        for i in range(10):
            store.append("local", chat.id, _user(f"t{thread}.{i}"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = {f"t{n}.{i}" for n in range(4) for i in range(10)} | {f"p{i}" for i in range(40)}
    assert writer.wait(timeout=60) == 0
    messages = store.get("local", chat.id).messages
    assert [m.index for m in messages] == list(range(len(expected)))
    assert {m.content for m in messages} == expected


def test_a_refused_change_leaves_the_conversation_as_it_was(store: ConversationStore) -> None:
    chat = store.create("local", messages=[_user("q1"), NewMessage(role="assistant", content="a1")])
    too_many = [_user("x")] * MAX_MESSAGES
    with pytest.raises(InvalidInputError) as refused:
        store.replace_from("local", chat.id, 1, too_many)
    assert refused.value.param == "messages"
    with pytest.raises(InvalidInputError):
        store.replace_from("local", chat.id, 5, [])
    assert [m.content for m in store.get("local", chat.id).messages] == ["q1", "a1"]


def test_import_and_search_behave_alike(store: ConversationStore) -> None:
    first = store.create("local", title="Trip", messages=[_user("50% off_season")], import_key="b1")
    again = store.create("local", title="ignored", import_key="b1")
    assert again.id == first.id and again.title == "Trip"
    store.create("local", title="other", messages=[_user("5000 offseason")])
    # LIKE's wildcards in the query are plain characters
    assert [c.id for c in store.list("local", query="50% OFF_").data] == [first.id]
    assert store.list("local", query="trip").total == 1
    store.delete("local", first.id)
    assert store.list("local").total == 1
    with pytest.raises(NotFoundError):
        store.get("local", first.id)

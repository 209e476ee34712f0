"""The SQL both prompt stores run, written once: the tables have the same columns in SQLite and
PostgreSQL, statements are written with ``?`` and the PostgreSQL store turns them into ``%s``.
Every function takes an open connection inside a transaction (``sqlite3`` and ``psycopg``
connections both have ``execute``).

Writers serialise on the single ``prompt_state`` row: every change starts by raising its
``generation`` (PostgreSQL locks the row until the transaction ends; SQLite's ``BEGIN
IMMEDIATE`` already holds the whole file), so version numbers are read and assigned without a
race, and readers learn that something changed by reading one number.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from hanlin.errors import NotFoundError, did_you_mean
from hanlin.prompts.base import (
    BUILTIN_AUTHOR,
    LATEST,
    PRODUCTION,
    LabelMove,
    ModelConfig,
    NewVersion,
    PromptSummary,
    PromptVersion,
    Variable,
)

#: ``(sql with ? placeholders) -> the backend's``
Mark = Callable[[str], str]

#: the tables of the SQLite store's first migration; PostgreSQL's are the same columns
#: (``PROMPTS_SQL`` in :mod:`hanlin.db.migrations`). A trigger on each refuses to update a version
TABLES = [
    """CREATE TABLE prompts (
        name TEXT PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE prompt_versions (
        name TEXT NOT NULL REFERENCES prompts(name), version INTEGER NOT NULL,
        text TEXT NOT NULL, variables TEXT NOT NULL, config TEXT, message TEXT NOT NULL,
        author TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, hash TEXT NOT NULL,
        PRIMARY KEY (name, version)
    )""",
    "CREATE INDEX prompt_versions_hash ON prompt_versions (hash)",
    """CREATE TABLE prompt_labels (
        name TEXT NOT NULL REFERENCES prompts(name), label TEXT NOT NULL,
        version INTEGER NOT NULL, PRIMARY KEY (name, label),
        FOREIGN KEY (name, version) REFERENCES prompt_versions(name, version)
    )""",
    """CREATE TABLE prompt_label_moves (
        name TEXT NOT NULL, label TEXT NOT NULL, version INTEGER NOT NULL, previous INTEGER,
        actor TEXT NOT NULL, at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX prompt_label_moves_name ON prompt_label_moves (name, at)",
    "CREATE TABLE prompt_state (id INTEGER PRIMARY KEY, generation BIGINT NOT NULL)",
    "INSERT INTO prompt_state (id, generation) VALUES (1, 0)",
]

_VERSION = "name, version, text, variables, config, message, author, created_at, hash"


def _row(row: tuple[Any, ...]) -> PromptVersion:
    name, version, text, variables, config, message, author, created_at, digest = row
    return PromptVersion(
        name=name,
        version=version,
        text=text,
        variables=[Variable.model_construct(**v) for v in json.loads(variables)],
        config=None if config is None else ModelConfig.model_validate_json(config),
        message=message,
        author=author,
        created_at=created_at,
        hash=digest,
    )


def _known(conn: Any, q: Mark) -> list[str]:
    return [r[0] for r in conn.execute(q("SELECT name FROM prompts ORDER BY name")).fetchall()]


def _no_prompt(conn: Any, q: Mark, name: str) -> NotFoundError:
    return NotFoundError(
        f"no prompt named '{name}'",
        hint=did_you_mean(name, _known(conn, q)) + "list them with `hanlin prompt ls` "
        "(GET /api/prompts)",
        code="prompt_not_found",
        params={"name": name},
    )


def _exists(conn: Any, q: Mark, name: str) -> bool:
    found = conn.execute(q("SELECT 1 FROM prompts WHERE name = ?"), (name,)).fetchone()
    return found is not None


def latest(conn: Any, q: Mark, name: str) -> PromptVersion | None:
    row = conn.execute(
        q(f"SELECT {_VERSION} FROM prompt_versions WHERE name = ? ORDER BY version DESC LIMIT 1"),
        (name,),
    ).fetchone()
    return None if row is None else _row(row)


def get(
    conn: Any, q: Mark, name: str, version: int | None = None, label: str | None = None
) -> PromptVersion:
    if label is not None and label != LATEST:
        found = conn.execute(
            q("SELECT version FROM prompt_labels WHERE name = ? AND label = ?"), (name, label)
        ).fetchone()
        if found is None:
            if not _exists(conn, q, name):
                raise _no_prompt(conn, q, name)
            have = ", ".join(sorted(labels(conn, q, name))) or "none"
            raise NotFoundError(
                f"prompt '{name}' has no label '{label}'",
                hint=f"its labels: {have} (and latest); set one with "
                f"`hanlin prompt label {name} {label} VERSION`",
                code="prompt_label_not_found",
                params={"name": name, "label": label},
            )
        version = found[0]
    if version is None:
        top = latest(conn, q, name)
        if top is None:
            raise _no_prompt(conn, q, name)
        return top
    row = conn.execute(
        q(f"SELECT {_VERSION} FROM prompt_versions WHERE name = ? AND version = ?"),
        (name, version),
    ).fetchone()
    if row is None:
        top = latest(conn, q, name)
        if top is None:
            raise _no_prompt(conn, q, name)
        raise NotFoundError(
            f"prompt '{name}' has no version {version}",
            hint=f"its versions are 1 to {top.version}",
            code="prompt_version_not_found",
            params={"name": name, "version": version},
        )
    return _row(row)


def versions(conn: Any, q: Mark, name: str) -> list[PromptVersion]:
    rows = conn.execute(
        q(f"SELECT {_VERSION} FROM prompt_versions WHERE name = ? ORDER BY version"), (name,)
    ).fetchall()
    if not rows:
        raise _no_prompt(conn, q, name)
    return [_row(r) for r in rows]


def labels(conn: Any, q: Mark, name: str) -> dict[str, int]:
    rows = conn.execute(
        q("SELECT label, version FROM prompt_labels WHERE name = ? ORDER BY label"), (name,)
    ).fetchall()
    return {label: version for label, version in rows}


def label_history(conn: Any, q: Mark, name: str) -> list[LabelMove]:
    if not _exists(conn, q, name):
        raise _no_prompt(conn, q, name)
    rows = conn.execute(
        q(
            "SELECT label, version, previous, actor, at FROM prompt_label_moves "
            "WHERE name = ? ORDER BY at, label"
        ),
        (name,),
    ).fetchall()
    return [
        LabelMove(name=name, label=lb, version=v, previous=p, actor=a, at=at)
        for lb, v, p, a, at in rows
    ]


def summaries(conn: Any, q: Mark) -> list[PromptSummary]:
    rows = conn.execute(
        q(
            "SELECT p.name, p.created_at, p.updated_at, "
            "(SELECT max(v.version) FROM prompt_versions v WHERE v.name = p.name) "
            "FROM prompts p ORDER BY p.name"
        )
    ).fetchall()
    all_labels: dict[str, dict[str, int]] = {}
    for name, label, version in conn.execute(
        q("SELECT name, label, version FROM prompt_labels ORDER BY name, label")
    ).fetchall():
        all_labels.setdefault(name, {})[label] = version
    return [
        PromptSummary(
            name=name,
            latest=top or 0,
            labels=all_labels.get(name, {}),
            created_at=created,
            updated_at=updated,
        )
        for name, created, updated, top in rows
    ]


def generation(conn: Any, q: Mark) -> int:
    row = conn.execute(q("SELECT generation FROM prompt_state WHERE id = 1")).fetchone()
    return int(row[0]) if row else 0


def begin_change(conn: Any, q: Mark) -> None:
    """The first statement of every change: raise the generation (and, on PostgreSQL, hold the
    row's lock until the transaction ends: writers take turns)."""
    conn.execute(q("UPDATE prompt_state SET generation = generation + 1 WHERE id = 1"))


def create(
    conn: Any, q: Mark, name: str, new: NewVersion, author: str
) -> tuple[PromptVersion, bool]:
    begin_change(conn, q)
    digest = new.content_hash()
    top = latest(conn, q, name)
    if top is not None and top.hash == digest:
        return top, False
    now = time.time()
    if top is None:
        conn.execute(
            q("INSERT INTO prompts (name, created_at, updated_at) VALUES (?, ?, ?)"),
            (name, now, now),
        )
    else:
        conn.execute(q("UPDATE prompts SET updated_at = ? WHERE name = ?"), (now, name))
    config = None if new.config is None or new.config.is_empty() else new.config
    made = PromptVersion(
        name=name,
        version=(top.version if top else 0) + 1,
        text=new.text,
        variables=new.variables,
        config=config,
        message=new.message,
        author=author,
        created_at=now,
        hash=digest,
    )
    conn.execute(
        q(f"INSERT INTO prompt_versions ({_VERSION}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        (
            name,
            made.version,
            made.text,
            json.dumps([v.model_dump() for v in made.variables], ensure_ascii=False),
            None if config is None else config.model_dump_json(),
            made.message,
            author,
            now,
            digest,
        ),
    )
    return made, True


def set_label(conn: Any, q: Mark, name: str, label: str, version: int, actor: str) -> LabelMove:
    begin_change(conn, q)
    get(conn, q, name, version=version)  # the prompt and the version exist
    previous = labels(conn, q, name).get(label)
    if previous == version:
        moves = [m for m in label_history(conn, q, name) if m.label == label]
        if moves:
            return moves[-1]
    now = time.time()
    if previous is None:
        conn.execute(
            q("INSERT INTO prompt_labels (name, label, version) VALUES (?, ?, ?)"),
            (name, label, version),
        )
    else:
        conn.execute(
            q("UPDATE prompt_labels SET version = ? WHERE name = ? AND label = ?"),
            (version, name, label),
        )
    conn.execute(
        q(
            "INSERT INTO prompt_label_moves (name, label, version, previous, actor, at) "
            "VALUES (?, ?, ?, ?, ?, ?)"
        ),
        (name, label, version, previous, actor, now),
    )
    conn.execute(q("UPDATE prompts SET updated_at = ? WHERE name = ?"), (now, name))
    return LabelMove(
        name=name, label=label, version=version, previous=previous, actor=actor, at=now
    )


def missing_builtins(conn: Any, q: Mark, prompts: list[tuple[str, NewVersion]]) -> bool:
    """Whether any built-in version is not stored yet (one read; no lock). A version of the
    same content counts, whoever wrote it."""
    have = {
        (name, digest)
        for name, digest in conn.execute(q("SELECT name, hash FROM prompt_versions")).fetchall()
    }
    return any((name, new.content_hash()) not in have for name, new in prompts)


def seed(conn: Any, q: Mark, prompts: list[tuple[str, NewVersion]]) -> int:
    """See :meth:`hanlin.prompts.base.PromptStore.seed`; runs inside one change."""
    begin_change(conn, q)
    added = 0
    for name, new in prompts:
        digest = new.content_hash()
        stored = conn.execute(
            q("SELECT version FROM prompt_versions WHERE name = ? AND hash = ?"), (name, digest)
        ).fetchone()
        if stored is not None:
            continue
        made, fresh = create(conn, q, name, new, BUILTIN_AUTHOR)
        added += int(fresh)
        current = labels(conn, q, name).get(PRODUCTION)
        if current is None or get(conn, q, name, version=current).builtin:
            set_label(conn, q, name, PRODUCTION, made.version, BUILTIN_AUTHOR)
    return added

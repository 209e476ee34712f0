"""The registry as Hanlin's code and its surfaces use it: templates checked when a version is
made, values checked when one is rendered (each error names the variable and says what to do),
the built-ins seeded and protected from a version Hanlin cannot fill, changes seen without a
restart, and the bundled prompts used — with one report — when the store cannot be read."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from hanlin.config import load_settings
from hanlin.errors import InvalidInputError, NotFoundError, StoreCorruptError
from hanlin.prompts import (
    NewVersion,
    PromptLibrary,
    SqlitePrompts,
    Variable,
    prompt_library,
)
from hanlin.prompts.base import PRODUCTION, parse_ref
from hanlin.prompts.builtin import BUILTINS, bundled_text
from hanlin.prompts.template import fields


@pytest.fixture
def library(tmp_path: Path) -> PromptLibrary:
    return PromptLibrary(SqlitePrompts(tmp_path / "prompts.sqlite"), refresh_s=0.05)


def _error(call: Any, *args: Any, **kw: Any) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        call(*args, **kw)
    return info.value


def test_every_builtin_is_seeded_as_version_one_in_production(library: PromptLibrary) -> None:
    listed = {p.name: p for p in library.list()}
    assert set(listed) == {b.name for b in BUILTINS}
    for b in BUILTINS:
        assert listed[b.name].labels == {PRODUCTION: 1}
        v1 = library.get(b.name, version=1)
        assert v1.text == bundled_text(b.name) and v1.builtin
        assert [v.name for v in v1.variables] == fields(v1.text)  # each field declared
        assert {v.name for v in v1.variables} == b.provides()
    assert "用中文" in library.get("rag.answer.zh").text
    assert "{sources}" in library.get("rag.answer.en").text


def test_render_checks_every_variable_and_names_it(library: PromptLibrary) -> None:
    library.create(
        "report",
        NewVersion(
            text="{title} ({count} items, {share:.0%}, draft={draft})\n{items}\n{footer}",
            variables=[
                Variable(name="count", type="int"),
                Variable(name="share", type="float"),
                Variable(name="draft", type="bool", default=False),
                Variable(name="items", type="list"),
                Variable(name="footer", required=False),
            ],
        ),
        "local",
    )
    values = {"title": "Q3", "count": 2, "share": 1, "items": ["a", "b"]}
    _, text = library.render("report", values)
    assert text == "Q3 (2 items, 100%, draft=false)\na\nb\n"

    missing = _error(library.render, "report", {"title": "Q3", "share": 0.5, "items": []})
    assert "needs the variable 'count' (int)" in missing.message
    assert "--var count=" in (missing.hint or "") and missing.param == "variables.count"
    extra = _error(library.render, "report", values | {"colour": "red"})
    assert "has no variable 'colour'" in extra.message
    assert "count" in (extra.hint or "") and extra.param == "variables.colour"
    typed = _error(library.render, "report", values | {"count": "2"})
    assert "'count' of prompt 'report@1' must be int, not str '2'" in typed.message
    assert "whole number" in (typed.hint or "")
    assert (
        "must be int, not bool"
        in _error(library.render, "report", values | {"count": True}).message
    )
    assert "must be list" in _error(library.render, "report", values | {"items": "a"}).message


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Hello {0}", "not a variable name"),
        ("Hello {user.__class__}", "not a variable name"),
        ("Hello {user[0]}", "not a variable name"),
        ("Hello {user", "not valid"),
        ("Width {x:{w}}", "nested field"),
    ],
)
def test_a_template_that_could_reach_into_objects_or_does_not_parse_is_refused(
    library: PromptLibrary, text: str, found: str
) -> None:
    err = _error(library.create, "bad", NewVersion(text=text), "local")
    assert found in err.message and "{{" in (err.hint or "")


def test_variables_declared_but_unused_are_refused_and_earlier_declarations_kept(
    library: PromptLibrary,
) -> None:
    typo = NewVersion(text="Hi {name}", variables=[Variable(name="nmae")])
    assert (
        "declared but the text has no {nmae}" in _error(library.create, "hi", typo, "local").message
    )
    library.create(
        "hi",
        NewVersion(text="Hi {name}", variables=[Variable(name="name", description="who")]),
        "l",
    )
    two, _ = library.create("hi", NewVersion(text="Hello, {name}!"), "l")
    assert two.variables == [Variable(name="name", description="who")]


def test_a_builtin_cannot_get_a_version_hanlin_cannot_fill(library: PromptLibrary) -> None:
    needs, _ = library.create(
        "rag.answer.en", NewVersion(text="{sources}\nTone: {tone}"), "key_ops"
    )
    err = _error(library.set_label, "rag.answer.en", PRODUCTION, needs.version, "key_ops")
    assert "needs the variable 'tone', which Hanlin does not fill" in err.message
    assert "fills sources" in (err.hint or "") and "--var tone:str=" in (err.hint or "")
    err = _error(
        library.create,
        "rag.answer.en",
        NewVersion(text="{sources}\nMood: {mood}"),
        "key_ops",
        label="staging",
    )
    assert "'mood'" in err.message
    assert [v.version for v in library.versions("rag.answer.en")] == [1, 2]  # nothing written
    ok, _ = library.create(
        "rag.answer.en",
        NewVersion(
            text="{sources}\nTone: {tone}", variables=[Variable(name="tone", default="warm")]
        ),
        "key_ops",
        label=PRODUCTION,
    )
    resolved = library.resolve("rag.answer.en")
    assert resolved.version == ok.version and resolved.fill(sources="S") == "S\nTone: warm"
    with pytest.raises(InvalidInputError, match="cannot be moved"):
        library.set_label("rag.answer.en", "latest", 1, "x")


def test_a_label_moved_elsewhere_is_read_without_a_restart(
    library: PromptLibrary, tmp_path: Path
) -> None:
    assert library.resolve("rag.refuse.en").version == 1
    # another process (here: another store on the same file) moves production
    other = PromptLibrary(SqlitePrompts(tmp_path / "prompts.sqlite"))
    mine, _ = other.create("rag.refuse.en", NewVersion(text="Nothing found."), "ops")
    other.set_label("rag.refuse.en", PRODUCTION, mine.version, "ops")
    deadline = time.monotonic() + 5
    while library.resolve("rag.refuse.en").version != mine.version:
        assert time.monotonic() < deadline, "the move was not seen"
        time.sleep(0.01)
    # a label that only some prompts have: the others are read at production
    other.create("rag.answer.en", NewVersion(text="Staged: {sources}"), "ops", label="staging")
    time.sleep(0.06)
    assert library.resolve("rag.answer.en", "staging").text == "Staged: {sources}"
    assert library.resolve("rag.source", "staging").version == 1
    with pytest.raises(NotFoundError):
        library.resolve("no.such.prompt")


def test_a_corrupt_store_falls_back_to_the_bundled_prompts_and_reports_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "prompts.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    library = PromptLibrary(SqlitePrompts(path), refresh_s=0.0)
    with caplog.at_level(logging.WARNING, logger="hanlin.prompts"):
        first = library.resolve("rag.answer.en")
        time.sleep(1.1)  # past the retry pause: the store is tried (and fails) again
        second = library.resolve("rag.answer.zh")
    assert first.version is None and first.text == bundled_text("rag.answer.en")
    assert second.text == bundled_text("rag.answer.zh")
    assert first.note and "cannot be read" in first.note and "hanlin prompt ls" in first.note
    assert str(tmp_path) not in first.note  # answers go to API clients: no server paths
    (logged,) = [r.getMessage() for r in caplog.records if r.name == "hanlin.prompts"]
    assert f"move {path} away" in logged  # the log has the details and the fix
    with pytest.raises(StoreCorruptError) as info:  # the surfaces say so, with the fix
        library.list()
    assert "move" in (info.value.hint or "")


def test_one_library_per_store_in_a_process(hanlin_home: Path) -> None:
    settings = load_settings()
    assert prompt_library(settings) is prompt_library(load_settings())


def test_diff_shows_text_variables_and_config(library: PromptLibrary) -> None:
    library.create("d", NewVersion(text="Hello {who}\nBye"), "l")
    library.create(
        "d",
        NewVersion(
            text="Hello {who}!\nBye",
            variables=[Variable(name="who", description="the user")],
            config={"temperature": 0.2},  # type: ignore[arg-type]
        ),
        "l",
    )
    diff = library.diff("d", 1, 2)
    assert diff.splitlines()[:2] == ["--- d@1", "+++ d@2"]
    assert "-Hello {who}" in diff and "+Hello {who}!" in diff
    assert "+who: str, required — the user" in diff and "+temperature: 0.2" in diff
    assert library.diff("d", 2, 2) == ""


def test_references_name_a_version_or_a_label() -> None:
    assert parse_ref("rag.answer.en") == ("rag.answer.en", None, None)
    assert parse_ref("rag.answer.en@3") == ("rag.answer.en", 3, None)
    assert parse_ref("greet:staging") == ("greet", None, "staging")
    with pytest.raises(InvalidInputError):
        parse_ref("greet@x")
    with pytest.raises(InvalidInputError):
        parse_ref("greet:Stage!")


def test_a_warm_cache_is_read_without_io_and_a_due_check_is_left_to_a_thread(
    tmp_path: Path,
) -> None:
    library = PromptLibrary(SqlitePrompts(tmp_path / "prompts.sqlite"), refresh_s=0.2)
    assert library.resolve_cached("rag.source") is None  # cold: the caller must read it
    assert library.resolve("rag.source").version == 1
    cached = library.resolve_cached("rag.source")
    assert cached is not None and cached.version == 1
    time.sleep(0.25)
    assert library.resolve_cached("rag.source") is None  # a check of the store is due


def test_a_database_that_is_down_falls_back_without_waiting_on_every_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from hanlin.prompts.postgres import PostgresPrompts

    library = PromptLibrary(PostgresPrompts("postgresql://hanlin@127.0.0.1:9/nowhere"))
    with caplog.at_level(logging.WARNING, logger="hanlin.prompts"):
        first = library.resolve("rag.answer.en")
    assert first.version is None and first.text == bundled_text("rag.answer.en")
    assert first.note and "127.0.0.1" not in first.note
    logged = caplog.records[-1].getMessage()
    assert "cannot connect to the database" in logged
    assert "hanlin db start" in logged  # the database error's own hint
    started = time.perf_counter()
    again = library.resolve("rag.refuse.en")  # within the retry pause: no new attempt
    assert time.perf_counter() - started < 0.05 and again.note == first.note

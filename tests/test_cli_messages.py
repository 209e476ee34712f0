"""What a new user reads from the CLI when something is off: typos are caught with the closest
name, malformed input is an error rather than an empty result, help lists what exists, and
messages print literally (Rich markup never eats them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hanlin.cli.main import main
from hanlin.knowledge.kb import KnowledgeBase


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code not in (0, None)
    return capsys.readouterr().err


@pytest.fixture()
def sample(hanlin_home: Path) -> Path:
    src = hanlin_home / "src"
    src.mkdir()
    (src / "tea.md").write_text("# Tea\n\nOolong tea is partially oxidised.\n", "utf-8")
    with KnowledgeBase.create("sample") as kb:
        assert kb.add(src).ok
    return src


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("format=", "has no value"),
        ("year>>2020", "has a stray '>'"),
        ("year=<2020", "has a stray '<'"),
        ("bogus", "cannot read filter"),
    ],
)
def test_a_malformed_filter_is_an_error_not_no_results(
    sample: Path, capsys: pytest.CaptureFixture[str], expr: str, says: str
) -> None:
    err = _fails(["kb", "search", "sample", "tea", "--filter", expr], capsys)
    assert says in err and "key=value" in err


def test_a_wellformed_filter_still_filters(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["kb", "search", "sample", "oolong", "--filter", "format=markdown", "--json"])
    assert "tea.md" in capsys.readouterr().out


def test_kb_name_typos_suggest_the_closest_and_create_nothing(
    sample: Path, hanlin_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(["kb", "add", "sampel", str(sample)], capsys)
    assert "did you mean 'sample'?" in err
    assert not (hanlin_home / "kb" / "sampel").exists()


def test_apikeys_help_lists_every_scope(capsys: pytest.CaptureFixture[str]) -> None:
    from hanlin.access.caller import SCOPES

    main(["apikeys", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for scope in SCOPES:
        assert f"{scope} —" in shown


def test_apikeys_create_checks_the_knowledge_base_exists(
    sample: Path, hanlin_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(["apikeys", "create", "--scope", "kb:read", "--kb", "smaple"], capsys)
    assert "no knowledge base named 'smaple'" in err and "did you mean 'sample'?" in err
    assert not (hanlin_home / "apikeys.json").exists()  # no key was made
    main(["apikeys", "create", "--scope", "kb:read", "--kb", "sample"])
    assert capsys.readouterr().out.startswith("hk-")


def test_mcp_ls_prints_the_config_section_literally(capsys: pytest.CaptureFixture[str]) -> None:
    main(["mcp", "ls"])
    assert "[mcpServers.NAME]" in capsys.readouterr().err

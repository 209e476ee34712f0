"""Starting ``hanlin`` imports only what the command needs: ``hanlin --help`` loads no subsystem
(and still lists every command), and ``hanlin kb sync`` with nothing changed loads no agents,
model gateway, HTTP client or document parsers, and starts no parse worker.

Structural checks on real processes (``PYTHONPROFILEIMPORTTIME`` lists every import, the parse
worker's too, since it shares stderr); bench/cli_startup.py measures the time.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hanlin.cli.main import LAZY_COMMANDS, main
from hanlin.knowledge.kb import KnowledgeBase

# What `hanlin --help` must not load: every subsystem, and the libraries behind them.
NOT_FOR_HELP = (
    "hanlin.config",
    "hanlin.knowledge",
    "hanlin.models",
    "hanlin.rag",
    "hanlin.agents",
    "hanlin.tune",
    "hanlin.compute",
    "hanlin.server",
    "hanlin.mcpserver",
    "pydantic",
    "httpx",
    "numpy",
    "tantivy",
    "llama_cpp",
    "transformers",
    "torch",
)
# What `hanlin kb sync` with nothing to parse must not load.
NOT_FOR_SYNC = (
    "hanlin.agents",
    "hanlin.models.gateway",
    "hanlin.models.types",
    "hanlin.rag",
    "hanlin.tune",
    "hanlin.server",
    "httpx",
    "llama_cpp",
    "transformers",
    "torch",
    "trafilatura",
    "lxml",
    "docx",
    "markdown_it",
    "pdfplumber",
    "pypdf",
)


def _run(*args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``python -m hanlin ARGS``; return the process and every module imported, in order
    (a module imported by two processes is listed twice)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "hanlin", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    modules = [
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "imported package" not in line
    ]
    return proc, modules


def _loaded(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)]


def test_help_loads_no_subsystem_and_lists_every_command() -> None:
    proc, modules = _run("--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "hanlin.cli.main" in modules  # the listing is real
    assert _loaded(modules, NOT_FOR_HELP) == []
    assert [m for m in modules if m.startswith("hanlin.cli.") and m != "hanlin.cli.main"] == []
    for name, lazy in LAZY_COMMANDS.items():
        assert f"{name}  " in proc.stdout
        assert lazy.help in proc.stdout
    assert "version" in proc.stdout


def test_sync_with_nothing_changed_loads_no_parser_and_starts_no_worker(
    hanlin_home: Path,
) -> None:
    src = hanlin_home / "src"
    src.mkdir()
    (src / "tea.md").write_text("# Tea\n\nOolong tea is partially oxidised.\n", "utf-8")
    (src / "page.html").write_text("<html><body><p>Green tea.</p></body></html>", "utf-8")
    with KnowledgeBase.create("sample") as kb:
        assert kb.add(src).ok

    proc, modules = _run("kb", "sync", "sample")

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 files unchanged" in proc.stderr
    assert _loaded(modules, NOT_FOR_SYNC) == []
    # a parse worker would import the loaders a second time, in its own process
    assert modules.count("hanlin.knowledge.loaders") == 1


def test_the_listed_help_is_each_commands_own() -> None:
    """The one-liners kept in main.py (so `--help` imports nothing) match what each command
    says about itself: the first paragraph of its help, or that paragraph's first sentences."""
    for name, lazy in LAZY_COMMANDS.items():
        command = lazy.load()
        first = inspect.cleandoc(command.help or "").split("\n\n")[0].replace("\n", " ")
        assert first == lazy.help or first.startswith(lazy.help + " "), name


def test_a_mistyped_command_still_suggests_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["kbb"])
    assert info.value.code == 2
    assert "Did you mean 'kb'?" in capsys.readouterr().err

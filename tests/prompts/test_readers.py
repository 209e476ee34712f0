"""RAG answers and agents read their prompts from the registry: a version promoted by moving
``production`` — here from another process, the command line — is what the next answer sends
to the model, with no restart of the engine; a label per request or per knowledge base picks
another version; a damaged registry never fails an answer (the bundled prompt is sent, and the
answer says why)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin.agents.spec import load_agent_spec, open_agent
from hanlin.config import RagSettings, Settings, load_settings
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.models.gateway import Gateway
from hanlin.prompts import NewVersion, prompt_library
from hanlin.prompts.base import PRODUCTION
from hanlin.prompts.builtin import bundled_text
from hanlin.rag.engine import RagEngine
from hanlin.testing.upstream import UpstreamServer
from tests.rag.conftest import sse

FAKE = "fake/chat-model"
TEA = "# Tea\n\nOolong tea is partially oxidised. Most oolong is grown in Fujian and Taiwan.\n"
QUESTION = "Where is oolong tea grown?"


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def settings(hanlin_home: Path, upstream: UpstreamServer) -> Settings:
    upstream.app.reset()
    return load_settings(
        home=hanlin_home,
        models={"endpoints": {"fake": {"base_url": upstream.url}}, "retries": 0},
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[RagEngine]:
    docs = settings.home / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text(TEA, "utf-8")
    with KnowledgeBase.create("tea", settings=settings) as kb:
        assert kb.add(docs).ok
        gateway = Gateway(settings)
        try:
            yield RagEngine(kb, gateway, RagSettings(generator=FAKE))
        finally:
            gateway.close()


def systems(upstream: UpstreamServer) -> list[str]:
    """The system message of every chat request the model received."""
    bodies = [b for p, _, b in upstream.app.requests if p.endswith("/chat/completions")]
    return [b["messages"][0]["content"] for b in bodies]


def answer(engine: RagEngine, upstream: UpstreamServer, **kw: Any) -> Any:
    upstream.app.script("/v1/chat/completions", sse(["Fujian and Taiwan [1]."]))
    return engine.ask(QUESTION, **kw)


def hanlin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hanlin", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )


def test_a_version_promoted_from_the_cli_is_sent_by_the_next_answer(
    engine: RagEngine, upstream: UpstreamServer, tmp_path: Path
) -> None:
    first = answer(engine, upstream)
    assert first.mode == "generative"
    assert systems(upstream)[-1].startswith("You answer questions using only the numbered")

    template = tmp_path / "answer.txt"
    template.write_text("Reply in one line, citing [n].\n\nSOURCES:\n{sources}\n", "utf-8")
    made = hanlin("prompt", "create", "rag.answer.en", "--file", str(template), "-m", "terse")
    assert made.returncode == 0, made.stderr
    moved = hanlin("prompt", "label", "rag.answer.en", "production", "2")
    assert moved.returncode == 0, moved.stderr
    time.sleep(engine.kb.settings.prompts.refresh_s + 0.05)  # another process: checked each second

    second = answer(engine, upstream)  # the same engine, gateway and process
    sent = systems(upstream)[-1]
    assert sent.startswith("Reply in one line, citing [n].\n\nSOURCES:\n[1] Tea")
    assert "Fujian and Taiwan" in sent and second.text == "Fujian and Taiwan [1]."

    assert hanlin("prompt", "label", "rag.answer.en", "production", "1").returncode == 0
    time.sleep(engine.kb.settings.prompts.refresh_s + 0.05)
    answer(engine, upstream)
    assert systems(upstream)[-1].startswith("You answer questions using only")  # rolled back


def test_a_label_per_request_or_per_knowledge_base_picks_the_version(
    engine: RagEngine, upstream: UpstreamServer
) -> None:
    library = prompt_library(engine.kb.settings)
    library.create(
        "rag.answer.en",
        NewVersion(text="STAGING {sources}", config={"temperature": 0.7}),  # type: ignore[arg-type]
        "ops",
        label="staging",
    )
    answer(engine, upstream, prompt_label="staging")
    bodies = [b for p, _, b in upstream.app.requests if p.endswith("/chat/completions")]
    assert systems(upstream)[-1].startswith("STAGING [1] Tea")
    assert bodies[-1]["temperature"] == 0.7  # the version's config, the caller set none
    answer(engine, upstream)  # production is unchanged
    assert systems(upstream)[-1].startswith("You answer questions")

    per_kb = engine.kb.settings.model_copy(deep=True)
    per_kb.prompts.kb_labels = {"tea": "staging"}
    with KnowledgeBase("tea", settings=per_kb) as kb:
        answer(RagEngine(kb, engine.gateway, RagSettings(generator=FAKE)), upstream)
    assert systems(upstream)[-1].startswith("STAGING")


@pytest.mark.embedded_only  # damages the SQLite file; the database case is a store that is down
def test_a_damaged_registry_never_fails_an_answer(
    settings: Settings, upstream: UpstreamServer
) -> None:
    (settings.home / "prompts.sqlite").write_bytes(b"not a database at all " * 50)
    docs = settings.home / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text(TEA, "utf-8")
    with KnowledgeBase.create("tea", settings=settings) as kb:
        assert kb.add(docs).ok
        with RagEngine(kb, settings=RagSettings(generator=FAKE)) as engine:
            got = answer(engine, upstream)
            refused = engine.ask("Who built the moon?")
    assert got.text == "Fujian and Taiwan [1]."
    assert systems(upstream)[-1].startswith(bundled_text("rag.answer.en")[:40])
    (note,) = [n for n in got.notes if "prompt registry cannot be read" in n]
    assert "hanlin prompt ls" in note and str(settings.home) not in note
    assert refused.mode == "refused" and refused.text == bundled_text("rag.refuse.en")
    listed = hanlin("prompt", "ls")
    assert listed.returncode == 1 and "prompts.sqlite" in listed.stderr
    assert "move" in listed.stderr


def test_an_agent_reads_its_system_prompt_at_its_label(settings: Settings) -> None:
    library = prompt_library(settings)
    mine, _ = library.create("agent.assistant", NewVersion(text="You are Hanlin's tester."), "o")
    spec = load_agent_spec("assistant", settings).model_copy(update={"model": FAKE})
    gateway = Gateway(settings)

    def opened(agent_spec: Any) -> Any:
        async def build() -> Any:
            async with open_agent(agent_spec, gateway) as agent:
                return agent

        return asyncio.run(build())

    try:
        assert opened(spec).system == bundled_text("agent.assistant")
        library.set_label("agent.assistant", PRODUCTION, mine.version, "o")
        assert opened(spec).system == "You are Hanlin's tester."  # the next run
        library.set_label("agent.assistant", "canary", 1, "o")
        canary = spec.model_copy(update={"prompt_label": "canary"})
        assert opened(canary).system == bundled_text("agent.assistant")
        planner = opened(spec.model_copy(update={"mode": "planner", "tools": []}))
        assert planner.prompts["plan"].ref == "agent.planner.plan@1"
        assert planner.system == "You are Hanlin's tester."
    finally:
        gateway.close()

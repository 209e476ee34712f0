"""A running server follows a re-embed done by another process: after ``hanlin kb reembed`` in a
terminal beside ``hanlin serve``, the server's queries are embedded with the new model (its
results are those of a knowledge base opened afresh), and it reports the new model.

Two real processes: the server (uvicorn, in this process) and the CLI (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin import KnowledgeBase
from hanlin.config import Settings
from hanlin.models.embeddings.base import EMBEDDERS
from hanlin.server.app import create_app
from tests.knowledge import reembed_helpers
from tests.server.conftest import LiveServer, build_kb

QUERIES = ["oolong tea from Fujian", "tomatoes need sun", "长江 河流"]
SCRIPT = """
import sys
sys.path.insert(0, {helpers!r})
import reembed_helpers
reembed_helpers.register()
from hanlin.cli.main import main
main(["kb", "reembed", "docs", "--model", reembed_helpers.NAME])
"""


@pytest.fixture()
def hashed_words() -> Iterator[None]:
    reembed_helpers.register()  # the server can load the model the CLI switches to
    yield
    EMBEDDERS.unregister(reembed_helpers.NAME)


def dense(server: LiveServer, query: str) -> list[tuple[str, float]]:
    resp = httpx.post(
        f"{server.url}/api/kb/docs/search", json={"query": query, "mode": "dense", "k": 3}
    )
    assert resp.status_code == 200, resp.text
    return [(r["title"], round(r["scores"]["dense"], 5)) for r in resp.json()["data"]]


def fresh(settings: Settings, query: str) -> list[tuple[str, float]]:
    with KnowledgeBase("docs", settings) as kb:
        found = kb.search(query, mode="dense", k=3)
    return [(r.chunk.title, round(r.scores["dense"], 5)) for r in found]


def test_the_server_embeds_with_the_model_another_process_switched_to(
    fresh_settings: Callable[..., Settings], hashed_words: None
) -> None:
    settings = fresh_settings()
    build_kb(settings).close()
    server = LiveServer(create_app(settings))
    try:
        before = {q: dense(server, q) for q in QUERIES}  # instances are open and pooled now
        model = httpx.get(f"{server.url}/api/kb/docs").json()["embedding_model"]
        assert model != reembed_helpers.NAME

        cli = subprocess.run(
            [
                sys.executable,
                "-c",
                SCRIPT.format(helpers=str(Path(reembed_helpers.__file__).parent)),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "HANLIN_HOME": str(settings.home)},
        )
        assert cli.returncode == 0, cli.stderr
        assert "re-embedded" in cli.stderr

        shown: dict[str, Any] = httpx.get(f"{server.url}/api/kb/docs").json()
        assert shown["embedding_model"] == reembed_helpers.NAME
        for query in QUERIES:
            served = dense(server, query)
            assert served == fresh(settings, query), query
            assert served != before[query]  # another model's scores
    finally:
        server.stop()

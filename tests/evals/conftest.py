"""Fixtures of the evaluation tests: one app directory per session with two real knowledge
bases — a few bilingual documents, and a small bit of the CMRC 2018 trial set (BEIR layout from
``shared/eval``: the first documents, the questions judged against them) — and the fake model
upstream, standing in for a paid chat model and judge."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hanlin import KnowledgeBase
from hanlin.config import Settings, load_settings
from hanlin.knowledge.loaders import LoaderOptions
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import Reply, UpstreamServer
from tests.conftest import home_database, lasting_home, use_home

DOCS = {
    "france.md": "# 法国\n\n法国的首都是巴黎。巴黎位于塞纳河畔，是法国最大的城市。\n\n"
    "## 人口\n\n法国的人口约为六千八百万。\n",
    "danube.md": "# The Danube\n\nThe Danube is the second-longest river in Europe, after the "
    "Volga. It flows into the Black Sea.\n\n## Bridges\n\nBudapest has nine bridges across "
    "the Danube; the oldest is the Chain Bridge, opened in 1849.\n",
}
#: documents of the CMRC bit
CMRC_DOCS = 6


def eval_dir() -> Path:
    """``HANLIN_EVAL``, else the nearest ``shared/eval`` beside the repository or an ancestor."""
    if os.environ.get("HANLIN_EVAL"):
        return Path(os.environ["HANLIN_EVAL"])
    for folder in Path(__file__).resolve().parents[2:]:
        if (folder / "shared" / "eval").is_dir():
            return folder / "shared" / "eval"
    return Path(__file__).resolve().parents[3] / "shared" / "eval"


CMRC = eval_dir() / "zh" / "cmrc2018-trial"


@pytest.fixture(scope="session")
def cmrc_bit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEIR folder: the first CMRC 2018 trial documents and the questions judged on them."""
    if not (CMRC / "corpus.jsonl").is_file():
        pytest.skip(f"the CMRC 2018 evaluation set is not at {CMRC} (set HANLIN_EVAL)")
    root = tmp_path_factory.mktemp("cmrc-bit")
    (root / "qrels").mkdir()
    with (CMRC / "corpus.jsonl").open(encoding="utf-8") as f:
        corpus = [next(f) for _ in range(CMRC_DOCS)]
    ids = {json.loads(line)["_id"] for line in corpus}
    (root / "corpus.jsonl").write_text("".join(corpus), "utf-8")
    qrels = [
        line
        for line in (CMRC / "qrels" / "dev.tsv").read_text("utf-8").splitlines()[1:]
        if line.split("\t")[1] in ids
    ]
    (root / "qrels" / "dev.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n", "utf-8"
    )
    judged = {line.split("\t")[0] for line in qrels}
    with (CMRC / "queries.jsonl").open(encoding="utf-8") as f:
        queries = [line for line in f if json.loads(line)["_id"] in judged]
    (root / "queries.jsonl").write_text("".join(queries), "utf-8")
    return root


@pytest.fixture(scope="session")
def _eval_settings(request: pytest.FixtureRequest, cmrc_bit: Path) -> Settings:
    home = lasting_home(request, "evals-home")
    docs = home / "docs-src"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, "utf-8")
    with home_database(home):
        settings = load_settings(home=home)
        with KnowledgeBase.create("docs", settings=settings) as kb:
            assert kb.add(docs).ok
        opts = LoaderOptions(text_fields=["text"], title_field="title", id_field="_id")
        with KnowledgeBase.create("cmrc", settings=settings) as kb:
            report = kb.add(cmrc_bit / "corpus.jsonl", loader_options=opts)
            assert report.ok and report.documents_added == CMRC_DOCS
    return settings


@pytest.fixture()
def eval_settings(_eval_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The session's app directory (its knowledge bases; on PostgreSQL its database), also
    for the CLI (``HANLIN_HOME``)."""
    use_home(monkeypatch, _eval_settings.home)
    return _eval_settings


@pytest.fixture()
def gateway(eval_settings: Settings) -> Iterator[Gateway]:
    """The session app directory's gateway (the bundled model: kb answers are extractive)."""
    gw = Gateway(eval_settings)
    yield gw
    gw.close()


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture()
def upstream(upstream_server: UpstreamServer) -> Iterator[UpstreamServer]:
    upstream_server.app.reset()
    yield upstream_server
    upstream_server.app.reset()


@pytest.fixture()
def fake_gateway(
    upstream: UpstreamServer, eval_settings: Settings
) -> Iterator[Callable[..., Gateway]]:
    """A gateway whose endpoint ``fake`` (any model name) is the fake upstream."""
    made: list[Gateway] = []

    def build(**models: Any) -> Gateway:
        cfg: dict[str, Any] = {
            "endpoints": {"fake": {"base_url": upstream.url}},
            "retries": 0,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "cooldown": 0.0,
            **models,
        }
        gw = Gateway(load_settings(home=eval_settings.home, models=cfg))
        made.append(gw)
        return gw

    yield build
    for gw in made:
        gw.close()


def chat_reply(text: str, prompt_tokens: int = 50, completion_tokens: int = 10) -> Reply:
    """A non-streamed OpenAI chat completion."""
    return Reply(
        json={
            "id": "chatcmpl-eval",
            "object": "chat.completion",
            "created": 1,
            "model": "fake-chat",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )

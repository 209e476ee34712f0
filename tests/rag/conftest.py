"""Fixtures for the RAG tests: small real knowledge bases built from bilingual documents.

The documents are written here; one knowledge base is built per test session (the embedding
model loads once) in its own app directory, and tests only read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reportlab.pdfgen import canvas

from hanlin import KnowledgeBase
from hanlin.config import Settings, load_settings
from hanlin.models.gateway import Gateway
from hanlin.testing.upstream import Reply, UpstreamServer
from tests.conftest import home_database, lasting_home, use_database

FRANCE = """# 法国

法国是位于西欧的共和国，面积约为六十四万平方公里。

## 首都

法国的首都是巴黎。巴黎位于塞纳河畔，是法国最大的城市，也是欧洲重要的文化中心。

## 人口

法国的人口约为六千八百万，其中约两千万人住在巴黎大区。
"""
JAPAN = """# 日本

日本是位于东亚的岛国，由北海道、本州、四国和九州等岛屿组成。

## 首都

日本的首都是东京。东京都市圈是世界上人口最多的都市圈之一。

## 人口

日本的人口约为一亿二千四百万，而且正在逐年减少。
"""
DANUBE = (
    "# The Danube\n\n"
    "The Danube is the second-longest river in Europe, after the Volga.\n\n"
    "## Course\n\n"
    "The Danube rises in the Black Forest in Germany and flows south-east for 2,850 km into "
    "the Black Sea. It passes through ten countries, more than any other river in the world.\n\n"
    "## Bridges\n\n"
    "Budapest has nine bridges across the Danube; the oldest is the Chain Bridge, opened in "
    "1849.\n"
)
TEA = (
    "Tea cultivation\n\n"
    "Assam, in north-east India, grows more tea than any other region of the country. The "
    "plants need heavy rainfall and a long, warm growing season.\n\n"
    "Green tea is made by heating fresh leaves soon after picking, which stops oxidation and "
    "keeps the leaves green.\n"
)


PAGE_ONE = [
    "The observatory reopened to visitors in the spring after a long renovation of its dome.",
    "Volunteers guided school classes through the exhibition on the history of telescopes.",
    "The library received a donation of star charts printed in the nineteenth century.",
    "A new accessible entrance and a lift now connect the car park with the main hall.",
    "Evening lectures on planetary science were attended by more people than ever before.",
    "The cafe on the roof terrace was rebuilt with glass walls facing the southern sky.",
    "Staff completed training on the new spectrograph delivered by the university.",
]

PAGE_TWO = [
    "Maintenance of the main mirror took three weeks and was finished ahead of schedule.",
    "The board approved a budget for replacing the heating system in the control room.",
    "Two interns catalogued photographic plates from the archive in the basement.",
    "Night tours were cancelled on eleven evenings because of clouds and heavy rain.",
    "The website now streams images from the roof camera every clear night.",
    "Partnerships with three secondary schools were renewed for another five years.",
    "Electricity use fell after the lighting in the visitor hall was replaced.",
]


def write_pdf(path: Path) -> None:
    """Two pages; the fact the tests ask about is on page 2, in a chunk of its own."""
    c = canvas.Canvas(str(path))
    c.drawString(72, 750, "Observatory annual report")
    y = 720
    for _ in range(4):
        for line in PAGE_ONE:
            c.drawString(72, y, line)
            y -= 18
    c.showPage()
    y = 750
    for _ in range(4):
        for line in PAGE_TWO:
            c.drawString(72, y, line)
            y -= 18
    c.drawString(72, y, "In 2023 the observatory recorded 412 meteors during the Perseid shower.")
    c.save()


@pytest.fixture(scope="session")
def docs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rag-docs")
    (root / "france.md").write_text(FRANCE, "utf-8")
    (root / "japan.md").write_text(JAPAN, "utf-8")
    (root / "danube.md").write_text(DANUBE, "utf-8")
    (root / "tea.txt").write_text(TEA, "utf-8")
    write_pdf(root / "observatory.pdf")
    return root


@pytest.fixture(scope="session")
def _rag_settings(request: pytest.FixtureRequest) -> Settings:
    home = lasting_home(request, "rag-home")
    with home_database(home):
        return load_settings(home=home)


@pytest.fixture()
def rag_settings(_rag_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings of the app directory of this session's knowledge bases; the test runs
    with its database (on PostgreSQL)."""
    use_database(monkeypatch, _rag_settings.home)
    return _rag_settings


@pytest.fixture(scope="session")
def _kb(_rag_settings: Settings, docs_dir: Path) -> Iterator[KnowledgeBase]:
    with KnowledgeBase.create("docs", settings=_rag_settings) as k:
        report = k.add(docs_dir)
        assert report.ok and report.documents_added == 5, report.skipped
        yield k


@pytest.fixture()
def kb(_kb: KnowledgeBase, rag_settings: Settings) -> KnowledgeBase:
    """The shared knowledge base (read-only in tests), in :func:`rag_settings`' app
    directory."""
    return _kb


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
    upstream: UpstreamServer, rag_settings: Settings
) -> Iterator[Callable[..., Gateway]]:
    """A gateway whose endpoint ``fake`` (any model name) is the fake upstream."""
    made: list[Gateway] = []

    def build(**models: Any) -> Gateway:
        cfg: dict[str, Any] = {
            "endpoints": {"fake": {"base_url": upstream.url}},
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "cooldown": 0.0,
            "retries": 0,
            **models,
        }
        gw = Gateway(load_settings(home=rag_settings.home, models=cfg))
        made.append(gw)
        return gw

    yield build
    for gw in made:
        gw.close()


def sse(pieces: list[str], model: str = "fake-chat") -> Reply:
    """A streamed OpenAI chat completion whose text arrives in these pieces."""
    import json

    head = {"id": "chatcmpl-rag", "object": "chat.completion.chunk", "created": 1, "model": model}
    events = [
        "data: " + json.dumps({**head, "choices": [{"index": 0, "delta": {"content": p}}]})
        for p in pieces
    ]
    events.append(
        "data: "
        + json.dumps({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    usage = {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140}
    events.append("data: " + json.dumps({**head, "choices": [], "usage": usage}))
    events.append("data: [DONE]")
    return Reply(sse=events)


def chat_json(text: str, model: str = "fake-chat") -> Reply:
    """A non-streamed OpenAI chat completion."""
    return Reply(
        json={
            "id": "chatcmpl-rag",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
        }
    )

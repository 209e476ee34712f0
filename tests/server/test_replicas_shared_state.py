"""Two real servers — each with its own HANLIN_HOME, as on two machines — sharing one PostgreSQL
database act as one service: a key made through one works on the other, a revocation on one is
refused by the other within the stated delay, a budget spent through one is enforced by the
other, and a conversation saved on one is listed by the other."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin.access.apikeys_postgres import REFRESH_SECONDS
from hanlin.access.auth import open_apikeys
from hanlin.config import Settings, load_settings
from hanlin.models.pricing import WRITE_INTERVAL
from hanlin.server.app import create_app
from hanlin.testing.upstream import UpstreamServer
from tests.server.conftest import MODEL, LiveServer

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def _replica(home: Path, upstream: str, pg_url: str, **budgets: Any) -> Settings:
    return load_settings(
        home=home,
        database_url=pg_url,
        models={
            "endpoints": {"fake": {"base_url": upstream}},
            "retries": 0,
            "cooldown": 0.0,
            # 29 tokens at $1000 / 1M tokens: one call costs $0.029
            "prices": {MODEL: {"input": 1000.0, "output": 1000.0}},
            "budgets": budgets,
        },
        server={"require_keys": True},
    )


@pytest.fixture()
def two_replicas(
    pg_url: str, tmp_path: Path, upstream: UpstreamServer
) -> Iterator[tuple[Settings, Settings, str, str, str]]:
    """Settings of replicas A and B (per-key budget $0.02), a key made through A's store,
    and the servers' URLs."""
    bootstrap = _replica(tmp_path / "a", upstream.url, pg_url)
    record, plain = open_apikeys(bootstrap).create(["chat"], name="team")
    budgets = {"per_key_daily_usd": {record.id: 0.02}}
    a = _replica(tmp_path / "a", upstream.url, pg_url, **budgets)
    b = _replica(tmp_path / "b", upstream.url, pg_url, **budgets)
    servers = [LiveServer(create_app(a)), LiveServer(create_app(b))]
    yield a, b, plain, servers[0].url, servers[1].url
    for s in servers:
        s.stop()


def _client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_keys_budgets_and_conversations_are_shared(
    two_replicas: tuple[Settings, Settings, str, str, str],
) -> None:
    a_settings, _, key, a_url, b_url = two_replicas
    with _client(a_url, key) as a, _client(b_url, key) as b:
        # a key created through A authenticates on B
        assert b.get("/v1/models").status_code == 200
        assert b.get("/v1/models", headers={"Authorization": "Bearer hk-wrong"}).status_code == 401

        # a conversation made on A is listed (and readable) on B, for the same key only
        made = a.post("/api/conversations", json={"title": "shared plans"})
        assert made.status_code == 201, made.text
        listed = b.get("/api/conversations").json()
        assert [c["id"] for c in listed["data"]] == [made.json()["id"]]
        said = b.post(
            f"/api/conversations/{made.json()['id']}/messages",
            json={"role": "user", "content": "from B"},
        )
        assert said.status_code == 201, said.text
        got = a.get(f"/api/conversations/{made.json()['id']}").json()
        assert [m["content"] for m in got["messages"]] == ["from B"]

        # the key's daily budget ($0.02) spent through A ($0.029) is enforced by B
        assert a.post("/v1/chat/completions", json=CHAT).status_code == 200
        started = time.monotonic()
        while True:
            resp = b.post("/v1/chat/completions", json=CHAT)
            if resp.status_code == 402:
                break
            assert resp.status_code == 200, resp.text
            assert time.monotonic() - started < 4 * WRITE_INTERVAL + 1.0, "B kept spending"
            time.sleep(0.02)
        assert resp.json()["error"]["code"] == "budget_exceeded"
        assert a.post("/v1/chat/completions", json=CHAT).status_code == 402

        # revoked through A's store (any machine's CLI), refused by B within the delay
        open_apikeys(a_settings).revoke("team")
        revoked = time.monotonic()
        while b.get("/v1/models").status_code != 401:
            assert time.monotonic() - revoked < REFRESH_SECONDS + 0.5, "B still accepts it"
            time.sleep(0.02)
        # A's server holds its own copy of the keys: refused there within the delay too
        time.sleep(max(0.0, REFRESH_SECONDS - (time.monotonic() - revoked)))
        assert a.get("/v1/models").status_code == 401

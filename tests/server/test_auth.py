"""API keys: none needed on loopback; required elsewhere; scopes, per-knowledge-base access,
revocation, hashed storage, the caller's id reaching the gateway, and the CLI."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hanlin.access.apikeys import APIKeyStore
from hanlin.access.auth import open_apikeys
from hanlin.cli.main import main
from hanlin.config import Settings
from hanlin.errors import ConfigError
from hanlin.server.app import create_app
from hanlin.testing.upstream import UpstreamServer
from tests.server.conftest import MODEL, build_kb

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_loopback_needs_no_key(client: TestClient) -> None:
    assert client.get("/api/kb").status_code == 200
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_refuses_to_start_without_keys_when_they_are_required(
    fresh_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(ConfigError) as public:
        create_app(fresh_settings(host="0.0.0.0"))
    assert "binds 0.0.0.0" in public.value.message
    assert "hanlin apikeys create" in (public.value.hint or "")
    with pytest.raises(ConfigError, match="require_keys"):
        create_app(fresh_settings(require_keys=True))


def test_scopes_knowledge_bases_and_revocation(
    fresh_settings: Callable[..., Settings], upstream: UpstreamServer
) -> None:
    settings = fresh_settings(require_keys=True)
    build_kb(settings, "a").close()
    build_kb(settings, "b").close()
    store = open_apikeys(settings)
    chat_rec, chat = store.create(["chat"], name="bot")
    _, reader_a = store.create(["kb:read", "chat"], kbs=["a"])
    _, writer = store.create(["kb:write"])
    _, admin = store.create(["admin"])

    with TestClient(create_app(settings)) as client:
        anonymous = client.get("/api/kb")
        err = anonymous.json()["error"]
        assert anonymous.status_code == 401 and err["code"] == "missing_api_key"
        assert "hanlin apikeys create" in err["hint"]
        assert anonymous.headers["www-authenticate"] == "Bearer"
        wrong = client.get("/api/kb", headers=_bearer("hk-" + "x" * 32))
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        assert client.get("/api/health").status_code == 200  # liveness stays open

        # chat scope: chat yes, knowledge-base routes no
        assert (
            client.post("/v1/chat/completions", json=CHAT, headers=_bearer(chat)).status_code == 200
        )
        denied = client.get("/api/kb", headers=_bearer(chat))
        assert denied.status_code == 403 and "kb:read" in denied.json()["error"]["message"]
        assert denied.json()["error"]["hint"]

        # a key limited to knowledge base "a"
        listed = client.get("/api/kb", headers=_bearer(reader_a)).json()["data"]
        assert [k["name"] for k in listed] == ["a"]
        ok = client.post("/api/kb/a/search", json={"query": "tea"}, headers=_bearer(reader_a))
        assert ok.status_code == 200
        other = client.post("/api/kb/b/search", json={"query": "tea"}, headers=_bearer(reader_a))
        assert other.status_code == 403 and other.json()["error"]["code"] == "kb_not_allowed"
        kb_chat = {"model": "kb:b", "messages": [{"role": "user", "content": "tea?"}]}
        assert (
            client.post("/v1/chat/completions", json=kb_chat, headers=_bearer(reader_a)).status_code
            == 403
        )
        models = client.get("/v1/models", headers=_bearer(reader_a)).json()["data"]
        assert {"kb:a"} == {m["id"] for m in models if m["id"].startswith("kb:")}
        upload = client.post(
            "/api/kb/a/files",
            files=[("files", ("x.txt", b"text", "text/plain"))],
            headers=_bearer(reader_a),
        )
        assert upload.status_code == 403

        # kb:write includes reading, but deleting a knowledge base needs admin
        assert client.get("/api/kb/b/documents", headers=_bearer(writer)).status_code == 200
        assert client.delete("/api/kb/b", headers=_bearer(writer)).status_code == 403
        assert client.delete("/api/kb/b", headers=_bearer(admin)).status_code == 204

        # the key's id reaches the gateway as the caller, whatever the body says
        client.post(
            "/v1/chat/completions", json=CHAT | {"user": "someone-else"}, headers=_bearer(chat)
        )
        assert upstream.app.requests[-1][2]["user"] == chat_rec.id

        # revoking takes effect on the running server
        store.revoke(chat_rec.id)
        # a shared database's keys are re-read at most every `refresh` seconds
        time.sleep(getattr(client.app.state.hanlin.auth.store, "refresh", 0.0))
        gone = client.post("/v1/chat/completions", json=CHAT, headers=_bearer(chat))
        assert gone.status_code == 401


def test_keys_are_stored_hashed_and_shown_once(
    hanlin_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hanlin.knowledge.kb import KnowledgeBase

    if os.environ.get("HANLIN_DATABASE_URL"):
        pytest.skip("the key file; tests/test_apikey_stores.py checks PostgreSQL's hashes")
    KnowledgeBase.create("docs").close()  # a key is limited to knowledge bases that exist
    main(["apikeys", "create", "--scope", "chat,kb:read", "--kb", "docs", "--name", "ui"])
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith("hk-") and len(key) == 35
    assert "only time the key is shown" in out.err
    path = hanlin_home / "apikeys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for file in hanlin_home.rglob("*"):
        if file.is_file():
            assert key[3:].encode() not in file.read_bytes(), file
    main(["apikeys", "ls", "--json"])
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["scopes"] == ["chat", "kb:read"] and listed[0]["kbs"] == ["docs"]
    assert "hash" not in listed[0] and key not in json.dumps(listed)
    record = APIKeyStore(path).verify(key)
    assert record is not None and record.name == "ui"
    main(["apikeys", "revoke", "ui"])
    assert APIKeyStore(path).verify(key) is None
    main(["apikeys", "ls", "--json"])
    assert json.loads(capsys.readouterr().out) == []
    with pytest.raises(SystemExit) as bad:
        main(["apikeys", "create", "--scope", "root"])
    assert (
        bad.value.code == 2
        and "scopes are chat, kb:read, kb:write, agents, workflows, admin"
        in capsys.readouterr().err
    )

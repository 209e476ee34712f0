"""The admin's connections API against a real server: provider keys saved and never returned,
an OpenAI-compatible endpoint (a real local HTTP server standing in for Ollama / vLLM, replaying
recorded model lists) usable in /v1/models and chat without a restart, the admin scope, and the
SSRF rule for endpoint addresses."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Callable, Iterator

import httpx
import pytest

from hanlin.access.auth import open_apikeys
from hanlin.config import Settings
from hanlin.server.app import create_app
from hanlin.testing.recordings import model_list, openai_error, openai_text
from hanlin.testing.upstream import UpstreamServer
from tests.server.conftest import LiveServer

KEY = "sk-proj-Zx81mQ0aP4vLr2TtY7cN9wKd5fGh3abcd"
BASE = "/api/settings/connections"


@pytest.fixture()
def provider() -> Iterator[UpstreamServer]:
    """A second fake upstream: the endpoint an admin connects from the settings page."""
    with UpstreamServer() as server:
        yield server


@pytest.fixture()
def live_fresh(fresh_settings: Callable[..., Settings]) -> Iterator[tuple[LiveServer, Settings]]:
    settings = fresh_settings()
    server = LiveServer(create_app(settings))
    yield server, settings
    server.stop()


def _model_ids(http: httpx.Client, all: bool = False) -> set[str]:
    resp = http.get("/v1/models", params={"all": "true"} if all else None)
    assert resp.status_code == 200
    return {m["id"] for m in resp.json()["data"]}


def test_provider_key_is_saved_masked_and_never_returned(
    live_fresh: tuple[LiveServer, Settings],
) -> None:
    live, settings = live_fresh
    with httpx.Client(base_url=live.url, timeout=30) as http:
        listing = http.get(BASE).json()["data"]
        names = {row["name"]: row for row in listing}
        # the providers the gateway supports, the local servers, no in-process models
        assert {"openai", "deepseek", "anthropic", "qwen", "ollama", "vllm"} <= set(names)
        assert "local" not in names
        assert names["openai"]["kind"] == "provider" and names["openai"]["key"] is None
        assert names["ollama"]["kind"] == "local"
        assert "openai/gpt-4o-mini" not in _model_ids(http)

        saved = http.put(f"{BASE}/openai", json={"api_key": KEY})
        assert saved.status_code == 200, saved.text
        assert saved.json()["key"]["masked"] == "sk-…abcd"
        assert saved.json()["available"] is True
        # usable at once, no restart
        assert "openai/gpt-4o-mini" in _model_ids(http)

        everything = [
            saved.text,
            http.get(BASE).text,
            http.get("/v1/models?all=true").text,
            http.get("/openapi.json").text,
        ]
        for text in everything:
            assert KEY not in text and KEY[-12:] not in text

    keys = settings.home / "keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert json.loads(keys.read_text())["openai"] == KEY

    with httpx.Client(base_url=live.url, timeout=30) as http:
        assert http.delete(f"{BASE}/openai").status_code == 204
        assert "openai" not in json.loads(keys.read_text())
        assert "openai/gpt-4o-mini" not in _model_ids(http)
        again = http.delete(f"{BASE}/openai")
        error = again.json()["error"]
        assert again.status_code == 404 and error["code"] == "connection_not_found"
        assert error["params"] == {"name": "openai"}


def test_added_endpoint_is_usable_without_restart(
    live_fresh: tuple[LiveServer, Settings], provider: UpstreamServer
) -> None:
    live, settings = live_fresh
    base_url = provider.url
    provider.app.script("/v1/models", model_list("ollama", ["qwen2.5:7b", "llama3.2:3b"]))
    with httpx.Client(base_url=live.url, timeout=30) as http:
        tested = http.post(f"{BASE}/test", json={"base_url": base_url, "api_key": KEY})
        assert tested.status_code == 200, tested.text
        assert tested.json()["models"] == ["llama3.2:3b", "qwen2.5:7b"]
        path, headers, _ = provider.app.requests[-1]
        assert path == "/v1/models" and headers["authorization"] == f"Bearer {KEY}"

        put = http.put(
            f"{BASE}/lab", json={"base_url": base_url, "api_key": KEY, "models": ["qwen2.5:7b"]}
        )
        assert put.status_code == 200, put.text
        row = put.json()
        assert row["kind"] == "custom" and row["models"] == ["qwen2.5:7b"]
        assert row["key"]["masked"] == "sk-…abcd" and KEY not in put.text
        assert stat.S_IMODE((settings.home / "connections.json").stat().st_mode) == 0o600
        assert KEY not in (settings.home / "connections.json").read_text()

        assert "lab/qwen2.5:7b" in _model_ids(http)
        provider.app.script("/v1/chat/completions", openai_text("openai", "来自本地模型的回答"))
        chat = http.post(
            "/v1/chat/completions",
            json={"model": "lab/qwen2.5:7b", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert chat.status_code == 200, chat.text
        assert chat.json()["choices"][0]["message"]["content"] == "来自本地模型的回答"
        path, headers, body = provider.app.requests[-1]
        assert path == "/v1/chat/completions" and body["model"] == "qwen2.5:7b"
        assert headers["authorization"] == f"Bearer {KEY}"

        # a saved connection is tested by name, with its stored key
        provider.app.script("/v1/models", model_list("vllm", ["Qwen/Qwen2.5-7B-Instruct"]))
        by_name = http.post(f"{BASE}/test", json={"name": "lab"})
        assert by_name.json()["models"] == ["Qwen/Qwen2.5-7B-Instruct"]
        assert provider.app.requests[-1][1]["authorization"] == f"Bearer {KEY}"

        http.put(f"{BASE}/lab", json={"models": ["qwen2.5:7b", "llama3.2:3b"]})
        assert {"lab/qwen2.5:7b", "lab/llama3.2:3b"} <= _model_ids(http)

        assert http.delete(f"{BASE}/lab").status_code == 204
        assert not any(m.startswith("lab/") for m in _model_ids(http, all=True))
        gone = http.post(
            "/v1/chat/completions",
            json={"model": "lab/qwen2.5:7b", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"
        assert gone.json()["error"]["params"]["model"] == "lab/qwen2.5:7b"


def test_test_connection_reports_what_went_wrong(
    live_fresh: tuple[LiveServer, Settings], provider: UpstreamServer
) -> None:
    live, _ = live_fresh
    with socket.socket() as sock:  # a loopback port where nothing listens
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    provider.app.script("/v1/models", openai_error(401, "invalid_api_key", "Incorrect API key"))
    with httpx.Client(base_url=live.url, timeout=30) as http:
        down = http.post(f"{BASE}/test", json={"base_url": closed})
        assert down.status_code == 400 and down.json()["error"]["code"] == "connection_failed"
        refused = http.post(f"{BASE}/test", json={"base_url": provider.url})
        error = refused.json()["error"]
        assert error["code"] == "connection_auth_failed" and error["params"]["status"] == 401
        provider.app.script("/v1/models", openai_text("openai"))
        odd = http.post(f"{BASE}/test", json={"base_url": provider.url})
        assert odd.json()["error"]["code"] == "connection_bad_response"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:169.254.169.254]/v1",
        "http://100.100.100.200/v1",
        "http://0.0.0.0:11434/v1",
        "file:///etc/passwd",
    ],
)
def test_endpoint_addresses_go_through_the_ssrf_guard(
    live_fresh: tuple[LiveServer, Settings], url: str
) -> None:
    live, settings = live_fresh
    with httpx.Client(base_url=live.url, timeout=30) as http:
        put = http.put(f"{BASE}/evil", json={"base_url": url})
        assert put.status_code == 400 and put.json()["error"]["code"] == "endpoint_blocked"
        assert put.json()["error"]["param"] == "base_url"
        test = http.post(f"{BASE}/test", json={"base_url": url})
        assert test.status_code == 400 and test.json()["error"]["code"] == "endpoint_blocked"
        assert "evil" not in {row["name"] for row in http.get(BASE).json()["data"]}
    assert not (settings.home / "connections.json").exists()


def test_only_admins_manage_connections(
    fresh_settings: Callable[..., Settings], provider: UpstreamServer
) -> None:
    settings = fresh_settings(require_keys=True)
    store = open_apikeys(settings)
    _, chat = store.create(["chat", "kb:write"])
    _, admin = store.create(["admin"])
    live = LiveServer(create_app(settings))
    try:
        with httpx.Client(base_url=live.url, timeout=30) as http:
            as_chat = {"Authorization": f"Bearer {chat}"}
            for method, path, body in [
                ("GET", BASE, None),
                ("PUT", f"{BASE}/openai", {"api_key": KEY}),
                ("DELETE", f"{BASE}/openai", None),
                ("POST", f"{BASE}/test", {"base_url": provider.url}),
            ]:
                resp = http.request(method, path, json=body, headers=as_chat)
                error = resp.json()["error"]
                assert resp.status_code == 403 and error["code"] == "insufficient_scope"
                assert error["params"] == {"scope": "admin"}
            assert not (settings.home / "keys.json").exists()
            assert provider.app.requests == []
            assert http.get(BASE).status_code == 401
            as_admin = {"Authorization": f"Bearer {admin}"}
            ok = http.put(f"{BASE}/openai", json={"api_key": KEY}, headers=as_admin)
            assert ok.status_code == 200 and KEY not in ok.text
    finally:
        live.stop()

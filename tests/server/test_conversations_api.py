"""``/api/conversations`` on a real server: a chat saved by one client is there for the next
(and after a restart), rename / settings / search / regenerate / edit-and-resend / delete do what
the web UI relies on, one API key never sees another's conversations, and bad input is refused
with the field at fault."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from hanlin.access.auth import open_apikeys
from hanlin.config import Settings
from hanlin.server.app import create_app
from tests.server.conftest import LiveServer

API = "/api/conversations"


@pytest.fixture()
def serve(fresh_settings: Callable[..., Settings]) -> Iterator[Callable[..., httpx.Client]]:
    """An HTTP client for a real server over this test's app directory (started on first use;
    ``settings`` given again restarts it)."""
    servers: list[LiveServer] = []
    clients: list[httpx.Client] = []

    def start(settings: Settings | None = None, key: str | None = None) -> httpx.Client:
        if servers and settings is not None:
            servers[-1].stop()  # a restart over the same app directory
        if not servers or settings is not None:
            servers.append(LiveServer(create_app(settings or fresh_settings())))
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        client = httpx.Client(base_url=servers[-1].url, headers=headers, timeout=30)
        clients.append(client)
        return client

    yield start
    for c in clients:
        c.close()
    for s in servers:
        s.stop()


def _new(client: httpx.Client, **body: Any) -> dict[str, Any]:
    resp = client.post(API, json=body)
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


def _say(client: httpx.Client, cid: str, role: str, content: str, **meta: Any) -> None:
    resp = client.post(
        f"{API}/{cid}/messages", json={"role": role, "content": content, "meta": meta}
    )
    assert resp.status_code == 201, resp.text


def _texts(client: httpx.Client, cid: str) -> list[str]:
    return [m["content"] for m in client.get(f"{API}/{cid}").json()["messages"]]


def test_a_chat_is_kept_edited_searched_and_deleted(
    serve: Callable[..., httpx.Client], fresh_settings: Callable[..., Settings]
) -> None:
    laptop = serve()
    tea = _new(laptop, title="Oolong notes", settings={"system_prompt": "Be brief.", "model": "m"})
    _say(laptop, tea["id"], "user", "How hot should oolong be brewed?")
    cites = [{"n": 1, "title": "tea.md"}]
    _say(laptop, tea["id"], "assistant", "At 90 degrees [1].", citations=cites, mode="generative")
    river = _new(laptop, title="")
    _say(laptop, river["id"], "user", "长江有多长？折扣 100% 真的吗")
    _say(laptop, river["id"], "assistant", "约六千三百公里。")

    # another client (a second device) sees the same chats, newest first, with everything kept
    phone = httpx.Client(base_url=str(laptop.base_url))
    listed = phone.get(API).json()
    assert [c["id"] for c in listed["data"]] == [river["id"], tea["id"]] and listed["total"] == 2
    assert listed["data"][1]["message_count"] == 2
    full = phone.get(f"{API}/{tea['id']}").json()
    assert full["settings"] == {
        "model": "m",
        "system_prompt": "Be brief.",
        "temperature": None,
        "max_tokens": None,
    }
    assert [(m["index"], m["role"]) for m in full["messages"]] == [(0, "user"), (1, "assistant")]
    assert full["messages"][1]["meta"] == {"citations": cites, "mode": "generative"}
    page = phone.get(API, params={"limit": 1, "offset": 1}).json()
    assert [c["id"] for c in page["data"]] == [tea["id"]] and page["total"] == 2
    phone.close()

    # rename and per-chat settings (only the fields given change; null resets one)
    renamed = laptop.patch(f"{API}/{river['id']}", json={"title": "Yangtze\n length"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Yangtze length"
    changed = laptop.patch(
        f"{API}/{tea['id']}", json={"settings": {"temperature": 0.2, "max_tokens": 64}}
    ).json()["settings"]
    assert changed == {
        "model": "m",
        "system_prompt": "Be brief.",
        "temperature": 0.2,
        "max_tokens": 64,
    }
    reset = laptop.patch(f"{API}/{tea['id']}", json={"settings": {"system_prompt": None}})
    assert reset.json()["settings"]["system_prompt"] is None
    assert reset.json()["settings"]["temperature"] == 0.2

    # search: titles and message text, any case, CJK, and % taken literally
    def found(q: str) -> list[str]:
        return [c["id"] for c in laptop.get(API, params={"q": q}).json()["data"]]

    assert found("YANGTZE") == [river["id"]]
    assert found("oolong") == [tea["id"]]  # title and text
    assert found("90 degrees") == [tea["id"]]  # only in an answer
    assert found("六千三百") == [river["id"]]
    assert found("100%") == [river["id"]] and found("0%3") == [] and found("%") == [river["id"]]
    assert found("nothing like this") == []

    # regenerate: the last answer replaced; edit and resend: the question and all after it
    regen = laptop.put(
        f"{API}/{tea['id']}/messages",
        json={"start": 1, "messages": [{"role": "assistant", "content": "About 90 °C."}]},
    )
    assert regen.status_code == 200 and regen.json()["message_count"] == 2
    assert _texts(laptop, tea["id"]) == ["How hot should oolong be brewed?", "About 90 °C."]
    edit = {"start": 0, "messages": [{"role": "user", "content": "And green tea?"}]}
    assert laptop.put(f"{API}/{tea['id']}/messages", json=edit).json()["message_count"] == 1
    _say(laptop, tea["id"], "assistant", "80 degrees.")
    assert _texts(laptop, tea["id"]) == ["And green tea?", "80 degrees."]

    # kept across a restart of the server
    laptop.close()
    again = serve(fresh_settings())
    assert {c["id"] for c in again.get(API).json()["data"]} == {tea["id"], river["id"]}
    assert _texts(again, tea["id"]) == ["And green tea?", "80 degrees."]

    # delete: gone from the list, then a 404
    assert again.delete(f"{API}/{tea['id']}").status_code == 204
    assert [c["id"] for c in again.get(API).json()["data"]] == [river["id"]]
    assert again.get(f"{API}/{tea['id']}").status_code == 404
    assert again.delete(f"{API}/{tea['id']}").status_code == 404


def test_an_import_runs_once(serve: Callable[..., httpx.Client]) -> None:
    client = serve()
    old = {
        "title": "From the browser",
        "import_key": "c1abc",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        "updated_at": 1_700_000_000.0,
    }
    first = _new(client, **old)
    newer = _new(client, title="made today")
    second = _new(client, **old)  # the page was reloaded half-way through an import
    assert second["id"] == first["id"] and second["message_count"] == 2
    assert first["updated_at"] == first["created_at"] == 1_700_000_000.0
    listed = client.get(API).json()
    assert [c["id"] for c in listed["data"]] == [newer["id"], first["id"]]


def test_each_key_sees_only_its_own_conversations(
    serve: Callable[..., httpx.Client], fresh_settings: Callable[..., Settings]
) -> None:
    settings = fresh_settings(require_keys=True)
    keys = open_apikeys(settings)
    _, alice_key = keys.create(["chat"], name="alice")
    _, bob_key = keys.create(["chat"], name="bob")
    _, admin_key = keys.create(["admin"], name="ops")
    _, reader_key = keys.create(["kb:read"], name="reader")
    alice = serve(settings, alice_key)
    bob, admin = serve(key=bob_key), serve(key=admin_key)
    nobody, reader = serve(), serve(key=reader_key)

    mine = _new(alice, title="alice's secret plan")
    _say(alice, mine["id"], "user", "the code is 4471")
    theirs = _new(bob, title="bob's notes")

    assert [c["id"] for c in alice.get(API).json()["data"]] == [mine["id"]]
    assert [c["id"] for c in bob.get(API).json()["data"]] == [theirs["id"]]
    assert bob.get(API, params={"q": "4471"}).json() == {"data": [], "total": 0}
    # admins see only their own too: a conversation is private to the key that holds it
    assert admin.get(API).json()["total"] == 0
    url = f"{API}/{mine['id']}"
    for other in (bob, admin):
        for resp in (
            other.get(url),
            other.patch(url, json={"title": "mine now"}),
            other.post(f"{url}/messages", json={"role": "user", "content": "x"}),
            other.put(f"{url}/messages", json={"start": 0, "messages": []}),
            other.delete(url),
        ):
            assert resp.status_code == 404, resp.text
            assert resp.json()["error"]["message"] == f"no conversation '{mine['id']}'"
    assert alice.get(url).json()["title"] == "alice's secret plan"
    assert _texts(alice, mine["id"]) == ["the code is 4471"]

    assert nobody.get(API).status_code == 401
    denied = reader.get(API)
    assert denied.status_code == 403 and "'chat'" in denied.json()["error"]["message"]


def test_bad_input_names_the_field(serve: Callable[..., httpx.Client]) -> None:
    client = serve()
    missing = client.get(f"{API}/c_0000000000000000")
    assert missing.status_code == 404
    assert "GET /api/conversations" in missing.json()["error"]["hint"]
    assert client.patch(f"{API}/nope", json={"title": "x"}).status_code == 404
    assert (
        client.post(f"{API}/nope/messages", json={"role": "user", "content": "x"}).status_code
        == 404
    )

    def refused(resp: httpx.Response, status: int, param: str) -> None:
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["param"] == param
        assert resp.json()["error"]["hint"]

    refused(client.post(API, json={"title": "x", "colour": "red"}), 422, "colour")
    refused(client.post(API, json={"settings": {"temperature": 5}}), 422, "settings.temperature")
    refused(client.post(API, json={"settings": {"top_k": 5}}), 422, "settings.top_k")
    refused(client.post(API, json={"title": "t" * 201}), 422, "title")
    chat = _new(client, title="ok")
    url = f"{API}/{chat['id']}"
    refused(client.patch(url, json={"settings": {"max_tokens": 0}}), 422, "settings.max_tokens")
    refused(client.post(f"{url}/messages", json={"role": "system", "content": "x"}), 422, "role")
    refused(client.post(f"{url}/messages", json={"role": "user"}), 422, "content")
    refused(client.put(f"{url}/messages", json={"start": 3, "messages": []}), 400, "start")
    refused(client.put(f"{url}/messages", json={"start": -1, "messages": []}), 422, "start")
    refused(client.get(API, params={"limit": 0}), 422, "query.limit")
    lone = b'{"role": "user", "content": "bad \\ud800 text"}'
    sent = client.post(
        f"{url}/messages", content=lone, headers={"Content-Type": "application/json"}
    )
    refused(sent, 422, "content")
    # a page on another site cannot write or delete them (no CSRF through a browser)
    plain = client.post(
        API, content=b'{"title": "planted"}', headers={"Content-Type": "text/plain"}
    )
    assert plain.status_code == 415
    evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert client.delete(url, headers=evil).status_code == 403
    # nothing was stored (or deleted) by the refused requests
    assert client.get(url).json()["messages"] == []
    assert [c["title"] for c in client.get(API).json()["data"]] == ["ok"]

"""Saving workflows over HTTP (the web editor's Save) and the node palette: a saved definition
is checked first and nothing is written when it is refused (bad YAML, an unknown node type, a
name that is a path), an unedited definition leaves the file as it was, the canvas layout goes
to a sidecar the engine never reads, and only admins save — from the browser only same-site."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hanlin.config import Settings
from hanlin.server.app import create_app
from tests.server.test_workflows_api import ECHO, _auth, _keys, write_workflows

COMMENTED = "# kept as written\n" + ECHO
NEW = {
    "description": "made in the editor",
    "nodes": [
        {"id": "start", "type": "start", "inputs": {"q": "string"}},
        {"id": "shout", "type": "template", "template": "{{ start.q | upper }}!"},
        {"id": "out", "type": "answer", "answer": "{{shout.output}}"},
    ],
    "edges": ["start -> shout", "shout -> out"],
}


@pytest.fixture()
def settings(fresh_settings: Callable[..., Settings]) -> Settings:
    s = fresh_settings()
    write_workflows(s, echo=COMMENTED)
    return s


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def files(settings: Settings) -> dict[str, str]:
    folder = settings.home / "workflows"
    return {p.name: p.read_text("utf-8") for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_palette_lists_every_registered_type_with_its_settings(client: TestClient) -> None:
    listed = {t["type"]: t for t in client.get("/v1/workflows/nodes").json()["data"]}
    assert {"start", "answer", "template", "if_else", "llm", "human_input"} <= set(listed)
    template = {f["name"]: f for f in listed["template"]["fields"]}
    assert template["template"]["kind"] == "string" and template["template"]["required"]
    kinds = {f["name"]: f for f in listed["human_input"]["fields"]}
    assert kinds["kind"]["kind"] == "enum" and "approve" in kinds["kind"]["enum"]
    assert kinds["form_schema"]["kind"] == "json"  # named as YAML writes it (the alias)
    assert listed["if_else"]["branching"] and not listed["template"]["branching"]
    assert listed["http_request"]["side_effects"]


def test_validate_reports_each_nodes_ports_even_when_the_graph_is_invalid(
    client: TestClient,
) -> None:
    draft = {
        "name": "draft",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "check", "type": "if_else", "cases": [{"id": "big", "when": "1 > 0"}]},
            {"id": "bad", "type": "nosuch"},
        ],
        "edges": ["start -> check"],
    }
    found = client.post("/v1/workflows/validate", json={"yaml": json.dumps(draft)}).json()
    assert not found["valid"]
    assert found["ports"]["check"]["handles"] == ["big", "else"]
    assert found["ports"]["start"]["handles"] is None and "bad" not in found["ports"]
    assert any(p["node"] == "bad" and "nosuch" in p["message"] for p in found["problems"])


def test_saving_creates_a_workflow_that_runs_and_shows_its_layout(
    client: TestClient, settings: Settings
) -> None:
    layout = {"nodes": {"start": {"x": 40, "y": 80}, "out": {"x": 600.26, "y": 80}, "gone": {}}}
    bad_layout = client.put("/v1/workflows/shout", json={"definition": NEW, "layout": layout})
    assert bad_layout.status_code == 400  # a point needs x and y
    layout["nodes"].pop("gone")
    layout["nodes"]["ghost"] = {"x": 1, "y": 1}  # no such node: not kept
    saved = client.put("/v1/workflows/shout", json={"definition": NEW, "layout": layout})
    assert saved.status_code == 201, saved.text
    assert saved.json()["created"] and saved.json()["changed"]
    assert saved.json()["inputs"]["required"] == ["q"]
    written = files(settings)
    assert "name: shout" in written["shout.yaml"] and "ui" not in written["shout.yaml"]
    assert json.loads(written["shout.layout.json"]) == {
        "nodes": {"start": {"x": 40.0, "y": 80.0}, "out": {"x": 600.3, "y": 80.0}}
    }
    shown = client.get("/v1/workflows/shout").json()
    assert shown["definition"] == {"name": "shout", **NEW}
    assert shown["layout"]["nodes"]["out"] == {"x": 600.3, "y": 80.0}
    run = client.post("/v1/workflows/shout/runs", json={"inputs": {"q": "hi"}}).json()
    assert run["status"] == "done" and run["outputs"] == {"answer": "HI!"}
    # the sidecar is no workflow: the list holds shout and echo only
    assert sorted(w["name"] for w in client.get("/v1/workflows").json()["data"]) == [
        "echo",
        "shout",
    ]

    again = client.put("/v1/workflows/shout", json={"definition": {**NEW, "description": "v2"}})
    assert again.status_code == 200 and again.json()["changed"] and not again.json()["created"]
    assert "description: v2" in files(settings)["shout.yaml"]


def test_an_unedited_definition_leaves_the_file_as_written(
    client: TestClient, settings: Settings
) -> None:
    shown = client.get("/v1/workflows/echo").json()
    before = files(settings)["echo.yaml"]
    saved = client.put(
        "/v1/workflows/echo",
        json={"definition": shown["definition"], "layout": {"nodes": {"out": {"x": 5, "y": 6}}}},
    )
    assert saved.status_code == 200 and not saved.json()["changed"]
    assert files(settings)["echo.yaml"] == before  # comment and formatting kept
    assert client.get("/v1/workflows/echo").json()["definition"] == shown["definition"]
    # YAML text is written as given (comments included) once it checks
    text = "# mine\n" + ECHO.replace("says it back", "says it twice")
    assert client.put("/v1/workflows/echo", json={"yaml": text}).json()["changed"]
    assert files(settings)["echo.yaml"] == text


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"yaml": "nodes: [unclosed"}, "workflow_invalid"),
        ({"yaml": "a: &a [x]\nb: [*a, *a]\nnodes: []\n"}, "workflow_invalid"),
        ({"definition": {"nodes": [{"id": "start", "type": "strat"}]}}, "workflow_invalid"),
        ({"definition": {**NEW, "name": "other"}}, "workflow_name_mismatch"),
        ({"definition": NEW, "yaml": ECHO}, None),
        ({}, None),
        ({"definition": NEW, "extra": 1}, None),
    ],
)
def test_a_refused_definition_writes_nothing(
    client: TestClient, settings: Settings, body: dict[str, object], code: str | None
) -> None:
    before = files(settings)
    refused = client.put("/v1/workflows/fresh", json=body)
    assert refused.status_code == 400, refused.text
    if code:
        error = refused.json()["error"]
        assert error["code"] == code and error["hint"], error
    assert files(settings) == before


def test_an_unknown_node_type_names_the_node_and_the_closest_type(client: TestClient) -> None:
    nodes = [*NEW["nodes"][:2], {"id": "out", "type": "answr", "answer": "x"}]  # type: ignore[misc]
    refused = client.put("/v1/workflows/fresh", json={"definition": {**NEW, "nodes": nodes}})
    problems = refused.json()["error"]["params"]["problems"]
    assert problems[0][0] == "out" and "answer" in problems[0][2]


@pytest.mark.parametrize(
    "name", ["..%2Fx", "..", ".hidden", "x.yaml", "runs", "nodes", "a%5Cb", "%2Fetc%2Fpasswd"]
)
def test_a_name_that_is_a_path_is_refused(
    client: TestClient, settings: Settings, tmp_path: Path, name: str
) -> None:
    before = files(settings)
    refused = client.put(f"/v1/workflows/{name}", json={"definition": NEW})
    assert 400 <= refused.status_code < 500, (name, refused.text)
    if refused.status_code == 400:
        assert refused.json()["error"]["code"] == "workflow_bad_name"
    assert files(settings) == before
    assert not (settings.home / "x.yaml").exists() and not (settings.home / "x").exists()


def test_saving_needs_an_admin_key_and_a_same_site_page(
    fresh_settings: Callable[..., Settings],
) -> None:
    s = fresh_settings(require_keys=True)
    write_workflows(s, echo=ECHO)
    keys = _keys(s, flows=["workflows"], chatty=["chat"], boss=["admin"])
    with TestClient(create_app(s)) as c:
        url = "/v1/workflows/shout"
        assert c.put(url, json={"definition": NEW}).status_code == 401
        for key in ("flows", "chatty"):
            refused = c.put(url, json={"definition": NEW}, headers=_auth(keys[key]))
            assert refused.status_code == 403, key
            assert refused.json()["error"]["code"] == "insufficient_scope"
        assert c.get("/v1/workflows/nodes", headers=_auth(keys["flows"])).status_code == 200
        assert c.get("/v1/workflows/nodes", headers=_auth(keys["chatty"])).status_code == 403
        assert not (s.home / "workflows" / "shout.yaml").exists()
        ok = c.put(url, json={"definition": NEW}, headers=_auth(keys["boss"]))
        assert ok.status_code == 201


def test_a_cross_site_page_cannot_save_on_the_keyless_server(
    client: TestClient, settings: Settings
) -> None:
    before = files(settings)
    url = "/v1/workflows/echo"
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = client.put(url, json={"yaml": ECHO.replace("says", "pwned")}, headers=headers)
        assert (
            refused.status_code == 403 and refused.json()["error"]["code"] == "cross_site_request"
        )
    simple = client.put(
        url, content=json.dumps({"yaml": ECHO}).encode(), headers={"Content-Type": "text/plain"}
    )
    assert simple.status_code == 415
    assert files(settings) == before


def test_an_invalid_workflow_opens_as_a_draft_with_its_problems(
    client: TestClient, settings: Settings
) -> None:
    write_workflows(settings, broken=ECHO.replace("{{start.q", "{{ghost.q"))
    refused = client.get("/v1/workflows/broken")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "workflow_invalid"
    draft = client.get("/v1/workflows/broken", params={"draft": "true"}).json()
    assert draft["valid"] is False
    assert [p["node"] for p in draft["problems"]] == ["out"]
    assert draft["definition"]["nodes"][1]["answer"] == "{{ghost.q * start.times}}"
    assert client.get("/v1/workflows/echo", params={"draft": "true"}).json()["valid"] is True
    missing = client.get("/v1/workflows/nope", params={"draft": "true"})
    assert missing.status_code == 404

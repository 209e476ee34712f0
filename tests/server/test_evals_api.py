"""``/api/evals`` against a real app (keys required) and a real knowledge base (the bundled
embedder, extractive answers): a dataset uploaded with bad rows that are reported and kept with
the version, runs in the background with their aggregates and per-example results, a second run
answered by another generator compared against the first, the HTML report; a run stopped and
resumed; a dataset built from a rated trace; and the attacks — a key without ``admin``, a
cross-site page, uploads that are no dataset."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hanlin.access.auth import open_apikeys
from hanlin.config import Settings
from hanlin.server.app import create_app
from hanlin.testing.upstream import Reply, UpstreamServer
from hanlin.tracing import setup as tracing
from tests.conftest import home_database, lasting_home, use_home
from tests.server.conftest import MODEL, build_kb, make_settings

XSS = '<img src=x onerror="window.__xss=1"> How long is oolong brewed?'
ROWS = [
    {"id": "tea-where", "question": "Where is most oolong tea grown?", "answers": ["Fujian"]},
    {
        "id": "tea-temp",
        "question": "At what temperature is oolong brewed?",
        "answers": ["90 degrees"],
    },
    {"id": "river", "question": "长江最后注入哪里？", "answers": ["东海"]},
    {"id": "tomato", "question": "What do tomatoes need?", "answers": ["full sun"]},
    {"id": "xss", "question": XSS, "answers": ["three minutes"]},
    {"id": "cup", "question": "Who won the 1998 football World Cup?", "should_refuse": True},
]


def completion(text: str) -> dict[str, Any]:
    """A non-streamed OpenAI chat completion saying ``text``."""
    return {
        "id": "chatcmpl-eval",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-test",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
    }


def jsonl(rows: list[dict[str, Any]], *extra: str) -> bytes:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows] + list(extra)
    return ("\n".join(lines) + "\n").encode()


@dataclass
class World:
    client: TestClient
    keys: dict[str, str]
    settings: Settings
    upstream: UpstreamServer

    def headers(self, who: str = "admin", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}

    def get(self, path: str, who: str = "admin", **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers(who))

    def post(self, path: str, body: Any = None, who: str = "admin", **kw: Any) -> Any:
        return self.client.post(path, json=body, headers=self.headers(who), **kw)

    def upload(self, filename: str, data: bytes, who: str = "admin", **params: Any) -> Any:
        files = {"file": (filename, data, "application/octet-stream")}
        return self.client.post(
            "/api/evals/datasets", files=files, params=params, headers=self.headers(who)
        )

    def wait(self, run: str, timeout: float = 60) -> dict[str, Any]:
        """Poll a run until this server no longer executes it."""
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = self.get(f"/api/evals/runs/{run}").json()
            if body["live"] is None and body["status"] != "running":
                return body
            assert time.monotonic() < deadline, f"run still going after {timeout} s: {body}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, upstream_server: UpstreamServer) -> Iterator[World]:
    """A server that requires keys, with the knowledge base ``docs`` (oolong tea, the Yangtze,
    tomatoes), an admin key and a chat + kb:read key; uploads up to 1 MB."""
    home = lasting_home(request, "evals-api")
    with home_database(home):
        settings = make_settings(home, upstream_server.url, require_keys=True, max_upload_mb=1)
    build_kb(settings).close()
    store = open_apikeys(settings)
    keys = {
        "admin": store.create(["admin"], name="admin")[1],
        "reader": store.create(["chat", "kb:read"], name="reader")[1],
    }
    with TestClient(create_app(settings)) as client:
        yield World(client, keys, settings, upstream_server)


@pytest.fixture(autouse=True)
def _home(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    use_home(monkeypatch, world.settings.home)
    world.upstream.app.reset()
    yield
    world.upstream.app.reset()


def test_upload_run_read_compare_and_report(world: World) -> None:
    # --- a dataset with bad rows: the good ones are stored, each bad one reported by its line
    body = jsonl(ROWS, "{bad json", json.dumps({"answers": ["x"]}), json.dumps(ROWS[0]))
    r = world.upload("qa.jsonl", body)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["created"] and made["dataset"]["ref"] == "qa@1"
    assert made["dataset"]["count"] == len(ROWS)
    assert made["dataset"]["source"] == "upload:qa.jsonl"  # never the server's path
    assert made["report"]["skipped"] == 3
    assert made["report"]["problems"] == [
        "qa.jsonl:7: not JSON (Expecting property name enclosed in double quotes)",
        "qa.jsonl:8: no question (a non-empty 'question' field)",
        "qa.jsonl:9: duplicate id 'tea-where'",
    ]
    again = world.upload("qa.jsonl", body)
    assert again.status_code == 200 and not again.json()["created"]
    assert again.json()["dataset"]["ref"] == "qa@1"

    # listed with its versions and counts; shown with its examples and the stored report
    listed = world.get("/api/evals/datasets").json()["data"]
    (qa,) = [d for d in listed if d["name"] == "qa"]
    assert [(v["ref"], v["count"], v["report"]["skipped"]) for v in qa["versions"]] == [
        ("qa@1", len(ROWS), 3)
    ]
    assert "problems" not in qa["versions"][0]["report"]
    shown = world.get("/api/evals/datasets/qa@1", limit=2, offset=1).json()
    assert shown["total"] == len(ROWS) and shown["dataset"]["report"] == made["report"]
    assert [e["id"] for e in shown["examples"]] == ["tea-temp", "river"]

    # --- a run of the knowledge base in the background, followed to its end
    r = world.post("/api/evals/runs", {"dataset": "qa", "target": "kb:docs", "name": "extractive"})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "running" and r.json()["total"] == len(ROWS)
    a = world.wait(r.json()["id"])
    assert a["status"] == "done" and a["done"] == len(ROWS) and a["dataset"] == "qa@1"
    results = world.get(f"/api/evals/runs/{a['id']}/results", limit=100).json()
    assert results["total"] == len(ROWS)
    rows = {x["example_id"]: x for x in results["data"]}
    assert rows["xss"]["question"] == XSS and rows["tomato"]["answers"] == ["full sun"]
    assert "Fujian" in rows["tea-where"]["output"] and rows["tea-where"]["outcome"] == "answered"
    assert rows["cup"]["outcome"] == "refused" and rows["cup"]["should_refuse"]
    # the aggregates are the means of the per-example scores, with an interval around them
    for metric in ("contains", "f1", "ndcg@10", "refusal_accuracy"):
        scores = [x["scores"][metric] for x in rows.values() if x["scores"][metric] is not None]
        agg = a["aggregates"]["metrics"][metric]
        assert agg["mean"] == pytest.approx(sum(scores) / len(scores))
        assert agg["n"] == len(scores) and agg["lo"] <= agg["mean"] <= agg["hi"]
    assert a["aggregates"]["metrics"]["contains"]["mean"] > 0.5
    hist = a["latency_histogram"]
    assert len(hist) == 20 and sum(b["count"] for b in hist) == len(ROWS)
    assert a["config"]["not_run"]["citation_recall"].startswith("needs --judge")

    # filters: the misses of a metric, text, the refusals
    misses = world.get(f"/api/evals/runs/{a['id']}/results", metric="contains", below=1).json()
    assert all(x["scores"]["contains"] < 1 for x in misses["data"])
    assert misses["total"] == sum(x["scores"]["contains"] == 0 for x in rows.values())
    found = world.get(f"/api/evals/runs/{a['id']}/results", q="TOMATOES").json()
    assert [x["example_id"] for x in found["data"]] == ["tomato"]
    refused = world.get(f"/api/evals/runs/{a['id']}/results", outcome="refused").json()
    assert {x["example_id"] for x in refused["data"]} >= {"cup"}
    assert world.get(f"/api/evals/runs/{a['id']}/results", below=1).status_code == 400

    # --- the same dataset answered by another generator (the fake model: "Hello! …")
    r = world.post(
        "/api/evals/runs",
        {"dataset": "qa@1", "target": "kb:docs", "model": MODEL, "name": "generative"},
    )
    assert r.status_code == 202, r.text
    b = world.wait(r.json()["id"])
    assert b["status"] == "done"
    assert world.get("/api/evals/runs/generative").json()["id"] == b["id"]  # by name too
    listed_runs = world.get("/api/evals/runs").json()["data"]
    assert [x["id"] for x in listed_runs][:2] == [b["id"], a["id"]]

    cmp = world.get("/api/evals/compare", a=a["id"], b=b["id"]).json()
    assert cmp["paired"] == len(ROWS) and cmp["run_a"]["id"] == a["id"]
    by_name = {m["name"]: m for m in cmp["metrics"]}
    contains = by_name["contains"]
    assert contains["a"] == pytest.approx(a["aggregates"]["metrics"]["contains"]["mean"])
    assert contains["b"] == 0.0 and contains["delta"] == pytest.approx(-contains["a"])
    assert contains["hi"] < 0 and contains["verdict"] == "worse"
    assert by_name["ndcg@10"]["verdict"] == "same"  # retrieval did not change
    assert by_name["latency_ms"]["higher_is_better"] is False
    tomato = next(c for c in cmp["changed"] if c["example_id"] == "tomato")
    assert tomato["direction"] == "regressed" and tomato["answers"] == ["full sun"]
    assert "full sun" in tomato["output_a"] and tomato["output_b"].startswith("Hello!")
    assert tomato["deltas"]["contains"] == -1.0

    # --- the HTML report of the pair: no script, the question escaped, a strict policy
    page = world.get("/api/evals/report", a=a["id"], b=b["id"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert (
        f'filename="eval-report-{a["id"]}-vs-{b["id"]}.html"' in page.headers["content-disposition"]
    )
    assert "Examples that changed most" in page.text and "<script" not in page.text
    one = world.get("/api/evals/report", a=a["id"], download="true")
    assert one.headers["content-disposition"].startswith("attachment;")
    assert "Lowest-scoring examples" in one.text and "<img" not in one.text
    assert "&lt;img src=x onerror=" in one.text


def test_bad_input_gets_4xx_with_a_hint(world: World) -> None:
    r = world.upload("notes.txt", b"question,answers\nq,a\n")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_file_type"
    assert ".jsonl" in r.json()["error"]["message"]
    r = world.upload("all-bad.jsonl", b"[1, 2]\n{nope\n")
    err = r.json()["error"]
    assert r.status_code == 400 and err["code"] == "no_usable_examples"
    assert err["params"]["problems"] == [
        "all-bad.jsonl:1: not a JSON object",
        "all-bad.jsonl:2: not JSON (Expecting property name enclosed in double quotes)",
    ]
    r = world.upload("cols.csv", b"query_text,answers\nq,a\n")
    assert r.status_code == 400 and "cols.csv has no 'question' column" in r.text
    assert "up_" not in r.text  # the stored name is never shown
    # a CSV with a bad row keeps the good ones; the name given wins over the file's
    csv = 'question,answers\nWhere is oolong grown?,Fujian|Taiwan\nbad,"[1,"\n,empty\n'
    r = world.upload("support.csv", csv.encode(), name="support")
    assert r.status_code == 201, r.text
    assert r.json()["dataset"]["ref"] == "support@1" and r.json()["dataset"]["count"] == 1
    assert r.json()["report"]["problems"] == [
        "support.csv:3: 'answers' is not valid JSON",
        "support.csv:4: no question (a non-empty 'question' field)",
    ]
    assert world.upload("x.jsonl", jsonl(ROWS), name="has space").status_code == 400
    r = world.upload("big.jsonl", b"x" * (1 << 20) + b"x")
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    r = world.client.post(
        "/api/evals/datasets", content=b"{}", headers=world.headers(**{"Content-Type": "text/csv"})
    )
    assert r.status_code == 415

    # runs: unknown dataset, version, knowledge base, agent file, metric; bad fields
    cases = [
        ({"dataset": "nope", "target": "kb:docs"}, 404, "not_found"),
        ({"dataset": "support@9", "target": "kb:docs"}, 404, "not_found"),
        ({"dataset": "support@x", "target": "kb:docs"}, 400, "invalid_input"),
        ({"dataset": "support", "target": "kb:nope"}, 404, "kb_not_found"),
        ({"dataset": "support", "target": "agent:../../etc/passwd.yaml"}, 404, "not_found"),
        ({"dataset": "support", "target": "no/such-model"}, 404, "model_not_found"),
        ({"dataset": "support", "target": "kb:docs", "metrics": ["bleu"]}, 400, "invalid_input"),
        ({"dataset": "support", "target": MODEL, "metrics": ["ndcg@10"]}, 400, "invalid_input"),
        ({"dataset": "support", "target": "kb:docs", "limit": 0}, 422, "invalid_request"),
        ({"dataset": "support", "target": "kb:docs", "fusion": "rrf"}, 422, "invalid_request"),
    ]
    before = len(world.get("/api/evals/runs").json()["data"])
    for body, status, code in cases:
        r = world.post("/api/evals/runs", body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
        assert r.json()["error"]["hint"], body
    assert len(world.get("/api/evals/runs").json()["data"]) == before  # nothing recorded
    assert "stored versions: support@1" in world.get("/api/evals/datasets/support@9").text
    assert world.get("/api/evals/runs/r-00000000").status_code == 404
    assert world.get("/api/evals/compare", a="r-00000000", b="r-00000001").status_code == 404
    assert world.get("/api/evals/report", a="r-00000000").status_code == 404


def test_only_admin_keys_and_no_cross_site_page(world: World) -> None:
    """Datasets and results hold prompts and answers: a chat + kb:read key is refused on every
    route, a missing key is 401, and a page on another origin gets nothing even with the
    browser's admin key — nothing is stored."""
    routes = [
        ("GET", "/api/evals/datasets", None),
        ("GET", "/api/evals/datasets/qa", None),
        ("GET", "/api/evals/metrics", None),
        ("GET", "/api/evals/runs", None),
        ("POST", "/api/evals/runs", {"dataset": "support", "target": "kb:docs"}),
        ("GET", "/api/evals/runs/r-00000000", None),
        ("GET", "/api/evals/runs/r-00000000/results", None),
        ("POST", "/api/evals/runs/r-00000000/cancel", None),
        ("POST", "/api/evals/runs/r-00000000/resume", None),
        ("DELETE", "/api/evals/runs/r-00000000", None),
        ("GET", "/api/evals/compare?a=x&b=y", None),
        ("GET", "/api/evals/report?a=x", None),
        ("POST", "/api/evals/datasets/from-traces", {"name": "stolen"}),
    ]
    for method, path, body in routes:
        r = world.client.request(method, path, json=body, headers=world.headers("reader"))
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["params"] == {"scope": "admin"}
        assert world.client.request(method, path, json=body).status_code == 401
    r = world.upload("planted.jsonl", jsonl(ROWS), who="reader", name="planted")
    assert r.status_code == 403

    before = world.get("/api/evals/datasets").json()
    runs = len(world.get("/api/evals/runs").json()["data"])
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, evil):
        files = {"file": ("planted.jsonl", jsonl(ROWS), "application/jsonl")}
        r = world.client.post(
            "/api/evals/datasets",
            files=files,
            params={"name": "planted"},
            headers=world.headers(**headers),
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site_request"
        r = world.client.post(
            "/api/evals/runs",
            json={"dataset": "support", "target": "kb:docs"},
            headers=world.headers(**headers),
        )
        assert r.status_code == 403
        r = world.client.get("/api/evals/runs", headers=world.headers(**headers))
        assert r.status_code == 403  # not readable either
    # a form post a page can send without a preflight: 415 before anything is parsed
    r = world.client.post(
        "/api/evals/runs",
        content=b'{"dataset": "support", "target": "kb:docs"}',
        headers=world.headers(**{"Content-Type": "text/plain"}),
    )
    assert r.status_code == 415
    assert world.get("/api/evals/datasets").json() == before
    assert len(world.get("/api/evals/runs").json()["data"]) == runs


def test_stop_resume_and_delete_a_run(world: World) -> None:
    """A run on a slow model stops after the example in hand and resumes where it stopped;
    a running run cannot be deleted or resumed, a stopped one cannot be stopped."""
    rows = [
        {"id": f"q{i}", "question": f"What is {i} + {i}?", "answers": [str(2 * i)]}
        for i in range(12)
    ]
    assert world.upload("sums.jsonl", jsonl(rows)).status_code == 201
    slow = Reply(json=completion("no idea"), first_byte_delay=0.15)
    world.upstream.app.script("/v1/chat/completions", *[slow] * 12)
    r = world.post("/api/evals/runs", {"dataset": "sums", "target": MODEL, "metrics": ["answer"]})
    assert r.status_code == 202, r.text
    run = r.json()["id"]
    deadline = time.monotonic() + 20
    while world.get(f"/api/evals/runs/{run}").json()["done"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert world.client.delete(f"/api/evals/runs/{run}", headers=world.headers()).status_code == 409
    r = world.post(f"/api/evals/runs/{run}/resume")
    assert r.status_code == 409 and r.json()["error"]["code"] == "run_running"
    r = world.post(f"/api/evals/runs/{run}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "interrupted"
    stopped = world.wait(run)
    assert stopped["status"] == "interrupted" and 2 <= stopped["done"] < 12
    r = world.post(f"/api/evals/runs/{run}/cancel")
    assert r.status_code == 409 and r.json()["error"]["code"] == "run_not_running"

    world.upstream.app.reset()  # now it answers at once
    r = world.post(f"/api/evals/runs/{run}/resume")
    assert r.status_code == 202, r.text
    done = world.wait(run)
    assert done["status"] == "done" and done["done"] == 12
    results = world.get(f"/api/evals/runs/{run}/results", limit=100).json()["data"]
    outputs = [x["output"] for x in results]
    assert outputs[: stopped["done"]] == ["no idea"] * stopped["done"]  # kept, not redone
    assert all(o.startswith("Hello!") for o in outputs[stopped["done"] :])
    assert world.client.delete(f"/api/evals/runs/{run}", headers=world.headers()).status_code == 204
    assert world.get(f"/api/evals/runs/{run}").status_code == 404


def test_a_dataset_from_a_rated_trace(world: World) -> None:
    tracing.configure(world.settings)
    try:
        r = world.post(
            "/v1/chat/completions",
            {
                "model": "kb:docs",
                "messages": [{"role": "user", "content": "What do tomatoes need?"}],
            },
        )
        assert r.status_code == 200, r.text
        answer = r.json()["choices"][0]["message"]["content"]
        trace = r.headers["X-Trace-Id"]
        assert tracing.flush(10)
        assert world.post(f"/api/traces/{trace}/rating", {"rating": 1}).status_code == 200
        r = world.post("/api/evals/datasets/from-traces", {"name": "rated", "rated": "up"})
        assert r.status_code == 201, r.text
        assert r.json()["dataset"]["source"] == "traces"
        (example,) = world.get("/api/evals/datasets/rated").json()["examples"]
        assert example["question"] == "What do tomatoes need?" and example["id"] == trace
        assert example["answers"] and example["answers"][0] in answer
        r = world.post("/api/evals/datasets/from-traces", {"name": "none", "model": "nothing"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "no_usable_examples"
    finally:
        tracing.shutdown()

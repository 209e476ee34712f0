"""An evaluation run survives its server: `hanlin serve` killed with kill -9 mid-run leaves the
run ``running``; the next `hanlin serve` on the same app directory (and database, on
PostgreSQL) takes it over on start. Stopped gracefully mid-run, that one hands the run back,
and a third finishes it — answering only what was not scored."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from hanlin.config import load_settings
from hanlin.evals import open_eval_store
from hanlin.evals.base import Example
from hanlin.testing.upstream import FakeUpstream, Reply, UpstreamServer
from tests.server.test_evals_api import completion

pytestmark = pytest.mark.slow
TOTAL = 10


class Server:
    """`hanlin serve` in a subprocess of its own on the app directory of the test."""

    def __init__(self, home: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.log = (home / "serve.log").open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hanlin", "serve", "--port", str(port)],
            env={**os.environ, "HANLIN_HOME": str(home)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(self.base + "/api/health", timeout=2)
                return
            except httpx.HTTPError:
                assert self.proc.poll() is None, (home / "serve.log").read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)

    def run(self, run_id: str) -> dict[str, Any]:
        r = httpx.get(f"{self.base}/api/evals/runs/{run_id}", timeout=30)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def test_a_run_killed_with_its_server_is_finished_by_the_next_one(hanlin_home: Path) -> None:
    asked: Counter[str] = Counter()

    def slow(body: dict[str, Any]) -> Reply:
        asked[body["messages"][-1]["content"]] += 1
        return Reply(json=completion("no idea"), first_byte_delay=0.25)

    with UpstreamServer(FakeUpstream(slow)) as upstream:
        (hanlin_home / "hanlin.toml").write_text(
            f'[models]\nretries = 0\n[models.endpoints.fake]\nbase_url = "{upstream.url}"\n'
        )
        rows = [
            Example(id=f"q{i}", question=f"What is {i} + {i}?", answers=[str(2 * i)])
            for i in range(TOTAL)
        ]
        store = open_eval_store(load_settings())
        store.put_dataset("sums", rows, "sums.jsonl")
        store.close()

        first = Server(hanlin_home)
        try:
            r = httpx.post(
                first.base + "/api/evals/runs",
                json={"dataset": "sums", "target": "fake/gpt-test", "metrics": ["answer"]},
                timeout=30,
            )
            assert r.status_code == 202, r.text
            run_id = r.json()["id"]
            deadline = time.monotonic() + 60
            while first.run(run_id)["done"] < 3:
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.05)
        finally:
            first.stop(signal.SIGKILL)

        second = Server(hanlin_home)  # takes the run over, then stops gracefully mid-run
        try:
            assert second.run(run_id)["done"] >= 3
            deadline = time.monotonic() + 60
            while (body := second.run(run_id))["done"] < 6:
                assert body["status"] == "running", body
                assert time.monotonic() < deadline, f"the run was not taken over: {body}"
                time.sleep(0.05)
        finally:
            second.stop()
        # the server is gone: read the store
        store = open_eval_store(load_settings())
        left = store.run(run_id)
        store.close()
        assert left.status == "running" and left.config["owner"] == "released", left

        third = Server(hanlin_home)  # a graceful stop hands the run to the next server
        try:
            deadline = time.monotonic() + 60
            while (body := third.run(run_id))["status"] == "running":
                assert time.monotonic() < deadline, f"the run was not finished: {body}"
                time.sleep(0.1)
            assert body["status"] == "done" and body["done"] == TOTAL, body
            r = httpx.get(f"{third.base}/api/evals/runs/{run_id}/results?limit=100", timeout=30)
            results = r.json()["data"]
            assert sorted(x["example_id"] for x in results) == sorted(e.id for e in rows)
        finally:
            third.stop()
    # every example was answered once, but the one in hand when the first server was killed
    assert set(asked) == {e.question for e in rows}
    assert sum(asked.values()) <= TOTAL + 1, json.dumps(asked)

"""Our ``openai_compat`` provider against a real OpenAI-compatible server.

``python -m llama_cpp.server`` (from llama-cpp-python) serves the bundled Gemma 3 270M GGUF on
127.0.0.1; the gateway talks to it through the ``llamacpp-server`` preset: chat, streaming,
JSON-schema output (the preset's dialect rewrites the format the way that server expects) and
embeddings.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from hanlin.config import load_settings
from hanlin.models.gateway import Gateway
from tests.bundled import require_bundled_model

pytestmark = pytest.mark.slow

llama_cpp, gguf_pkg = require_bundled_model()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = gguf_pkg.assemble()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "1",
            "--embedding",
            "true",
            "--chat_format",
            "chatml",
            "--model_alias",
            "gemma",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),  # verbose: a pipe would fill up and block the server
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start within 60 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture()
def gw(server_url: str) -> Iterator[Gateway]:
    gateway = Gateway(
        load_settings(models={"endpoints": {"llamacpp-server": {"base_url": server_url}}})
    )
    yield gateway
    gateway.close()


MODEL = "llamacpp-server/gemma"


def test_chat_answers_with_usage(gw: Gateway) -> None:
    resp = gw.chat("What is the capital of France?", MODEL, max_tokens=16, temperature=0, seed=1)
    assert resp.text.strip()
    assert resp.usage.prompt_tokens > 5 and 0 < resp.usage.completion_tokens <= 16
    assert resp.finish_reason in ("stop", "length")


def test_streaming_matches_the_whole_answer(gw: Gateway) -> None:
    kw = {"max_tokens": 16, "temperature": 0.0, "seed": 7}
    whole = gw.chat("Count: one, two, three,", MODEL, **kw)
    stream = gw.stream("Count: one, two, three,", MODEL, **kw)
    pieces = [e.text for e in stream if e.type == "text"]
    assert len(pieces) > 1, "tokens arrive one by one"
    assert "".join(pieces) == whole.text


def test_json_schema_output_is_valid(gw: Gateway) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    resp = gw.chat(
        "Describe Paris as JSON.",
        MODEL,
        max_tokens=60,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": schema},
    )
    data = json.loads(resp.text)
    assert isinstance(data["city"], str) and isinstance(data["population"], int)


def test_embeddings(gw: Gateway) -> None:
    vectors = gw.embed(["hello world", "你好，世界"], MODEL)
    assert len(vectors) == 2
    assert len(vectors[0]) == 640  # Gemma 3 270M hidden size
    assert vectors[0] != vectors[1]

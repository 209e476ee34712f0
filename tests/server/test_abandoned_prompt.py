"""A client that leaves while the local model is still reading a long prompt frees the model
within about one prompt batch, not after the whole prompt: the prompt is evaluated ``n_batch``
tokens at a time with the cancel flag checked between batches. A real server, the bundled
model, a client that times out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hanlin.config import load_settings
from hanlin.models.providers.llamacpp import bundled_model_path, unload_models
from hanlin.server.app import create_app
from tests.bundled import require_bundled_model
from tests.conftest import home_database, lasting_home

from .conftest import LiveServer

require_bundled_model()

pytestmark = pytest.mark.slow

MODEL = "local/gemma3-270m"
N_BATCH = 64
WORDS = [
    "river",
    "stone",
    "lantern",
    "orchard",
    "meadow",
    "harbor",
    "violet",
    "copper",
    "thunder",
    "willow",
]


def long_prompt(seed: int, words: int = 1500) -> str:
    """About ``words`` tokens of text that no other prompt shares (nothing is cached)."""
    return f"Note {seed}. " + " ".join(WORDS[(seed + i * 7) % len(WORDS)] for i in range(words))


def ask(prompt: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 1,
        "temperature": 0,
    } | extra


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    home = lasting_home(request, "home")
    gguf = bundled_model_path(tmp_path_factory.mktemp("models-home"))
    options = {"model_path": str(gguf), "n_ctx": 4096, "n_batch": N_BATCH, "n_threads": 1}
    with home_database(home):
        settings = load_settings(
            home=home,
            models={
                "endpoints": {"local": {"provider": "llamacpp", "options": options}},
                "retries": 0,
            },
        )
    live = LiveServer(create_app(settings))
    yield live
    live.stop()
    unload_models()


def running(url: str) -> int:
    return int(httpx.get(url + "/api/health", timeout=5).json()["local_models"][MODEL]["running"])


def test_leaving_during_a_long_prompt_frees_the_model_within_a_batch(server: LiveServer) -> None:
    url = server.url + "/v1/chat/completions"
    httpx.post(url, json=ask("Hi"), timeout=120).raise_for_status()  # loads the model
    started = time.perf_counter()
    full = httpx.post(url, json=ask(long_prompt(1)), timeout=300)
    whole = time.perf_counter() - started  # the whole prompt, read to the end
    full.raise_for_status()
    n_prompt = full.json()["usage"]["prompt_tokens"]
    batch = whole / (n_prompt / N_BATCH)  # about one batch's time
    assert n_prompt > 20 * N_BATCH, n_prompt

    # a client that gives up a third of the way into a prompt as long
    with pytest.raises(httpx.TimeoutException):
        httpx.post(url, json=ask(long_prompt(2)), timeout=whole / 3)
    left = time.perf_counter()
    while running(server.url) and time.perf_counter() - left < whole * 2:
        time.sleep(0.02)
    freed = time.perf_counter() - left
    print(
        f"prompt {n_prompt} tokens: {whole:.2f} s whole, {batch:.3f} s per batch; "
        f"freed {freed:.2f} s after the client left"
    )
    # reading the rest would take about 2/3 of ``whole``; one batch is 1/(n_prompt/N_BATCH)
    assert freed < whole / 3, f"freed after {freed:.2f} s; the whole prompt takes {whole:.2f} s"
    assert freed < 5 * batch + 0.5, f"freed after {freed:.2f} s; one batch takes {batch:.3f} s"

    # the model's cache is consistent after a prompt cut off half-way: the next call answers
    again = httpx.post(url, json=ask(long_prompt(2), max_tokens=3), timeout=300)
    assert again.status_code == 200 and again.json()["usage"]["completion_tokens"] >= 1

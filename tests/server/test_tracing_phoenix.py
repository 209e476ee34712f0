"""The OTLP export proved against a real collector: Arize Phoenix's server (from PyPI, in its
own environment) receives what a served ``kb:`` answer and a gateway call made with the official
``openai`` SDK produce — the same trace ids, span tree, GenAI attributes and token counts that
Hanlin's own trace store shows at ``/api/traces``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hanlin.config import Settings
from hanlin.server.app import create_app
from hanlin.testing.upstream import UpstreamServer
from hanlin.tracing import setup as tracing
from tests.phoenix_receiver import PhoenixUnavailable, phoenix_server, spans_in
from tests.server.conftest import MODEL, LiveServer, build_kb, make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        with phoenix_server(tmp_path_factory.mktemp("phoenix")) as url:
            yield url
    except PhoenixUnavailable as exc:
        pytest.skip(f"no real OTLP receiver here: {exc}")


def _phoenix_spans(url: str, trace_ids: set[str], want: int) -> list[dict[str, Any]]:
    """Phoenix ingests asynchronously: poll until it holds ``want`` spans of these traces."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = [s for s in spans_in(url) if s["context"]["trace_id"] in trace_ids]  # type: ignore[index]
        if len(got) >= want:
            return got
        time.sleep(0.5)
    return got


def test_a_real_collector_receives_the_same_traces_as_the_local_store(
    hanlin_home: Path, upstream: UpstreamServer, phoenix: str
) -> None:
    settings: Settings = make_settings(hanlin_home, upstream.url)
    settings.tracing.otlp_endpoint = phoenix + "/v1/traces"
    build_kb(settings).close()
    live = LiveServer(create_app(settings))
    try:
        sdk = openai.OpenAI(base_url=live.url + "/v1", api_key="not-needed", max_retries=0)
        chat = sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hello"}]
        )
        answer = sdk.chat.completions.create(
            model="kb:docs", messages=[{"role": "user", "content": "Where is oolong tea grown?"}]
        )
        assert chat.usage is not None and answer.choices[0].message.content
        assert tracing.flush(20)
        assert tracing.counters()["collector"].failed == 0
        local = httpx.get(live.url + "/api/traces", timeout=10).json()["traces"]
        local_spans = {
            t["trace_id"]: httpx.get(f"{live.url}/api/traces/{t['trace_id']}").json()["spans"]
            for t in local
        }
    finally:
        live.stop()
        tracing.shutdown()

    want = sum(len(s) for s in local_spans.values())
    received = _phoenix_spans(phoenix, set(local_spans), want)
    # every span of Hanlin's store reached the collector, under the same ids and parents
    assert {(s["context"]["span_id"], s["parent_id"]) for s in received} == {
        (s["span_id"], s["parent_id"]) for spans in local_spans.values() for s in spans
    }
    by_name = {s["name"]: s for s in received}
    chat_span = by_name[f"chat {MODEL}"]
    attrs = chat_span["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == MODEL
    assert attrs["gen_ai.usage.input_tokens"] == chat.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == chat.usage.completion_tokens
    assert chat_span["span_kind"] == "LLM"  # Phoenix read the GenAI conventions
    assert chat_span["status_code"] == "OK"
    # the kb: answer arrives as its tree of steps: the search under the answer
    assert by_name["search docs"]["parent_id"] == by_name["answer docs"]["context"]["span_id"]
    assert by_name["answer docs"]["attributes"]["hanlin.kb"] == "docs"

"""The gateway end to end against a real local HTTP upstream: routing, failover, retries,
timeouts, keys, cost, budgets, cache, embeddings and rerank."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
from collections.abc import Callable

import pytest

from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.models.errors import (
    BadRequestError,
    BudgetExceededError,
    MissingKeyError,
    ModelTimeoutError,
    UpstreamUnavailableError,
)
from hanlin.models.gateway import Gateway
from hanlin.models.keys import KeyStore, Secret
from hanlin.models.providers.openai_compat import POOL_SHARDS
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import Reply, UpstreamServer

CHAT = "/v1/chat/completions"
Make = Callable[..., Gateway]


def _models_called(upstream: UpstreamServer) -> list[str]:
    return [body["model"] for path, _, body in upstream.app.requests if path == CHAT]


def test_fallback_chain_answers_from_the_next_deployment(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    gw = make_gateway(
        ("a", "b"), retries=1, routes={"smart": {"deployments": ["a/first", "b/second"]}}
    )
    down = rec.openai_error(503, None, "upstream overloaded")
    upstream.app.script(CHAT, down, down, rec.openai_text("openai"))
    resp = gw.chat("hi", "smart")
    assert resp.text == rec.TEXT
    assert resp.served_by == "b/second"
    assert _models_called(upstream) == ["first", "first", "second"]


def test_bad_request_is_not_retried_or_failed_over(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    gw = make_gateway(("a", "b"), routes={"smart": {"deployments": ["a/x", "b/y"]}})
    upstream.app.script(CHAT, rec.openai_error(400, "invalid_value", "temperature too high"))
    with pytest.raises(BadRequestError, match="temperature too high"):
        gw.chat("hi", "smart")
    assert len(upstream.app.requests) == 1


def test_long_retry_after_fails_over_at_once(make_gateway: Make, upstream: UpstreamServer) -> None:
    gw = make_gateway(("a", "b"), routes={"r": {"deployments": ["a/x", "b/y"]}}, max_retry_after=5)
    upstream.app.script(
        CHAT, rec.openai_error(429, "rate_limit_exceeded", "slow down", **{"retry-after": "60"})
    )
    started = time.monotonic()
    assert gw.chat("hi", "r").served_by == "b/y"
    assert time.monotonic() - started < 2


def test_retry_waits_what_retry_after_says(make_gateway: Make, upstream: UpstreamServer) -> None:
    gw = make_gateway(retries=2)
    upstream.app.script(
        CHAT,
        rec.openai_error(429, "rate_limit_exceeded", "slow down", **{"retry-after": "0.4"}),
        rec.openai_text("openai"),
    )
    started = time.monotonic()
    assert gw.chat("hi", "fake/m").text == rec.TEXT
    assert 0.4 <= time.monotonic() - started < 2.0


def test_backoff_grows_exponentially_with_jitter(make_gateway: Make) -> None:
    gw = make_gateway(backoff_base=0.5, backoff_max=8.0)
    err = UpstreamUnavailableError("down")
    waits = [[gw.router.backoff(n, err) for _ in range(200)] for n in range(6)]
    for n, sample in enumerate(waits):
        ceiling = min(8.0, 0.5 * 2**n)
        assert all(w is not None and ceiling / 2 <= w <= ceiling for w in sample)
        assert len(set(sample)) > 100, "jitter spreads retries"


def test_round_robin_spreads_calls(make_gateway: Make, upstream: UpstreamServer) -> None:
    gw = make_gateway(
        ("a", "b"), routes={"rr": {"deployments": ["a/one", "b/two"], "strategy": "round_robin"}}
    )
    for _ in range(6):
        gw.chat("hi", "rr")
    assert sorted(_models_called(upstream)) == ["one"] * 3 + ["two"] * 3


def test_least_busy_avoids_the_deployment_with_calls_in_flight(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    gw = make_gateway(
        ("a", "b"), routes={"lb": {"deployments": ["a/slow", "b/fast"], "strategy": "least_busy"}}
    )
    slow = rec.openai_text("openai")
    slow.first_byte_delay = 0.6
    upstream.app.script(CHAT, slow)

    async def run() -> list[str]:
        first = asyncio.create_task(gw.achat("hi", "lb"))
        await asyncio.sleep(0.2)  # the first call is now in flight on one deployment
        others = [await gw.achat("hi", "lb") for _ in range(3)]
        return [(await first).served_by] + [r.served_by for r in others]

    served = asyncio.run(run())
    assert served[1:] == [d for d in served[1:] if d != served[0]], served


def test_slow_first_byte_times_out_and_fails_over(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    gw = make_gateway(("a", "b"), retries=0, routes={"r": {"deployments": ["a/x", "b/y"]}})
    stalled = rec.openai_text_stream("openai")
    stalled.first_byte_delay = 5
    upstream.app.script(CHAT, stalled)
    started = time.monotonic()
    events = list(gw.stream("hi", "r", timeout=0.5))
    assert "".join(e.text for e in events if e.type == "text") == rec.TEXT
    assert time.monotonic() - started < 3


def test_timeout_without_fallback_is_typed(make_gateway: Make, upstream: UpstreamServer) -> None:
    gw = make_gateway(retries=0)
    stalled = rec.openai_text("openai")
    stalled.first_byte_delay = 5
    upstream.app.script(CHAT, stalled)
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError):
        gw.chat("hi", "fake/m", timeout=0.4)
    assert time.monotonic() - started < 2


def test_stream_fails_over_before_the_first_token(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    gw = make_gateway(("a", "b"), retries=0, routes={"r": {"deployments": ["a/x", "b/y"]}})
    upstream.app.script(CHAT, rec.openai_error(500, None, "boom"), rec.openai_text_stream("qwen"))
    stream = gw.stream("hi", "r")
    assert "".join(e.text for e in stream if e.type == "text") == rec.TEXT
    assert stream.response is not None and stream.served_by == "b/y"


def test_every_deployment_failing_reports_all_attempts(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    gw = make_gateway(("a", "b"), retries=1, routes={"r": {"deployments": ["a/x", "b/y"]}})
    down = rec.openai_error(502, None, "bad gateway")
    upstream.app.script(CHAT, down, down, down, down)
    with pytest.raises(UpstreamUnavailableError, match="after 4 attempts on 2 deployment"):
        gw.chat("hi", "r")


def test_streamed_calls_reuse_the_connection(make_gateway: Make, upstream: UpstreamServer) -> None:
    gw = make_gateway()
    for _ in range(2 * POOL_SHARDS):
        assert "".join(e.text for e in gw.stream("hi", "fake/m") if e.type == "text")
        gw.chat("hi", "fake/m")
    # one keep-alive connection per pool shard, whatever the number of calls
    assert len(upstream.app.connections) <= POOL_SHARDS


def test_unknown_option_and_model_are_clear_errors(make_gateway: Make) -> None:
    gw = make_gateway()
    with pytest.raises(InvalidInputError, match="temprature"):
        gw.chat("hi", "fake/m", temprature=0.2)
    with pytest.raises(NotFoundError) as info:
        gw.chat("hi", "deepsek/deepseek-chat")
    assert "deepseek" in (info.value.hint or "")
    with pytest.raises(NotFoundError, match="no model"):
        gw.chat("hi", "deepseek/deepseek-chatt")


def test_missing_key_names_the_command_and_variable(
    make_gateway: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    gw = make_gateway(())
    with pytest.raises(MissingKeyError) as info:
        gw.chat("hi", "deepseek/deepseek-chat")
    assert "hanlin keys set deepseek" in str(info.value)
    assert "DEEPSEEK_API_KEY" in str(info.value)


def test_stored_keys_are_private_and_never_printed(
    make_gateway: Make, upstream: UpstreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-stored-9f8e7d6c5b4a39281706"
    store = KeyStore()
    store.set("deepseek", secret)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert secret not in repr(store.get("deepseek")) and secret not in str(store.get("deepseek"))
    with pytest.raises(TypeError):
        json.dumps({"k": Secret(secret)})
    gw = make_gateway(("deepseek",))
    upstream.app.script(CHAT, rec.openai_error(401, "invalid_api_key", "bad key"))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception) as info:
        gw.chat("hi", "deepseek/deepseek-chat")
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert secret not in caplog.text
    assert upstream.app.requests[-1][1]["authorization"] == f"Bearer {secret}"


def test_a_key_echoed_by_the_upstream_is_redacted(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    secret = "sk-echoed-0123456789abcdefghij"
    gw = make_gateway(("deepseek",), keys={"DEEPSEEK_API_KEY": secret}, retries=0)
    echo = rec.openai_error(401, "invalid_api_key", f"Incorrect API key provided: {secret}")
    upstream.app.script(CHAT, echo, echo)
    with pytest.raises(Exception) as info:
        gw.chat("hi", "deepseek/deepseek-chat")
    assert secret not in str(info.value) and "***" in str(info.value)
    with pytest.raises(Exception) as streamed:
        list(gw.stream("hi", "deepseek/deepseek-chat"))
    assert secret not in str(streamed.value)


def test_cost_uses_cached_prices_and_both_currencies(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    gw = make_gateway(
        ("deepseek",),
        keys={"DEEPSEEK_API_KEY": "sk-x"},
        usd_to_cny=7.0,
    )
    body = rec.openai_text("deepseek").json
    body["usage"].update(
        prompt_tokens=1_000_000, completion_tokens=500_000, prompt_cache_hit_tokens=400_000
    )
    upstream.app.script(CHAT, Reply(json=body))
    resp = gw.chat("hi", "deepseek/deepseek-chat")
    # deepseek-chat: ¥2 / 1M input, ¥0.2 / 1M cached input, ¥3 / 1M output
    assert resp.usage.cached_tokens == 400_000
    assert resp.cost is not None
    assert resp.cost.cny == pytest.approx(0.6 * 2 + 0.4 * 0.2 + 0.5 * 3)
    assert resp.cost.usd == pytest.approx(resp.cost.cny / 7.0)
    rows = gw.ledger.rows()
    assert rows[-1]["deployment"] == "deepseek/deepseek-chat"
    assert rows[-1]["cny"] == pytest.approx(resp.cost.cny)


def test_daily_budget_refuses_calls_once_spent(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    gw = make_gateway(
        prices={"fake/m": {"input": 1000.0, "output": 1000.0}},
        budgets={"daily_usd": 0.05, "per_key_daily_usd": {"alice": 0.01}},
    )
    gw.chat("hi", "fake/m", user="alice")  # 29 tokens at $1000/1M = $0.029
    with pytest.raises(BudgetExceededError, match="alice"):
        gw.chat("hi", "fake/m", user="alice")
    gw.chat("hi", "fake/m", user="bob")
    with pytest.raises(BudgetExceededError, match=r"today.s budget of \$0.05"):
        gw.chat("hi", "fake/m", user="bob")
    assert len(upstream.app.requests) == 2, "refused calls never reach the provider"
    # the ledger survives a restart: a new gateway still refuses
    gw.ledger.flush()
    again = make_gateway(
        prices={"fake/m": {"input": 1000.0, "output": 1000.0}}, budgets={"daily_usd": 0.05}
    )
    with pytest.raises(BudgetExceededError):
        again.chat("hi", "fake/m")


def test_a_call_that_would_pass_the_budget_is_refused_before_it_is_made(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    gw = make_gateway(
        prices={"fake/m": {"input": 1.0, "output": 10.0}}, budgets={"daily_usd": 0.01}
    )
    # 2,000 output tokens at $10/1M = $0.02: over the $0.01 budget whatever the prompt
    with pytest.raises(BudgetExceededError):
        gw.chat("hi", "fake/m", max_tokens=2000)
    assert gw.chat("hi", "fake/m", max_tokens=100).text == rec.TEXT
    assert len(upstream.app.requests) == 1


def test_cache_is_opt_in_and_keyed_on_the_request(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    plain = make_gateway()
    plain.chat("hi", "fake/m")
    plain.chat("hi", "fake/m")
    assert len(upstream.app.requests) == 2

    gw = make_gateway(cache=True)
    first = gw.chat("what is 2+2?", "fake/m", temperature=0)
    again = gw.chat("what is 2+2?", "fake/m", temperature=0)
    assert (first.cached, again.cached) == (False, True)
    assert again.text == first.text and again.usage == first.usage
    assert len(upstream.app.requests) == 3
    gw.chat("what is 2+2?", "fake/m", temperature=0.7)
    assert len(upstream.app.requests) == 4, "other options, other answer"
    streamed = gw.stream("what is 2+2?", "fake/m", temperature=0)
    assert "".join(e.text for e in streamed if e.type == "text") == first.text
    assert len(upstream.app.requests) == 4


def test_embeddings_and_rerank_through_openai_compat(
    make_gateway: Make, upstream: UpstreamServer
) -> None:
    gw = make_gateway()
    upstream.app.script("/v1/embeddings", rec.openai_embeddings(3, dim=8))
    vectors = gw.embed(["a", "b", "c"], "fake/text-embedding-3-small")
    assert len(vectors) == 3 and all(len(v) == 8 for v in vectors)
    upstream.app.script("/v1/rerank", rec.rerank_results([0.1, 0.9, 0.5]))
    ranked = gw.rerank("q", ["x", "y", "z"], "fake/bge-reranker-v2-m3", top_n=2)
    assert ranked == [(1, 0.9), (2, 0.5)]
    sent = upstream.app.requests[-1][2]
    assert sent == {
        "model": "bge-reranker-v2-m3",
        "query": "q",
        "documents": ["x", "y", "z"],
        "top_n": 2,
    }


def test_local_embedding_models_behind_the_same_protocol(make_gateway: Make) -> None:
    gw = make_gateway()
    vectors = gw.embed(["你好，世界", "hello world"], "local-embed/fast-use")
    assert len(vectors) == 2 and len(vectors[0]) == 512
    norm = sum(x * x for x in vectors[0]) ** 0.5
    assert norm == pytest.approx(1.0, abs=1e-3)


def test_token_count_is_an_estimate_for_remote_models(make_gateway: Make) -> None:
    gw = make_gateway()
    count = gw.count_tokens("你好世界 hello", "fake/m")
    assert count.exact is False and count.tokens == 4 + 1  # 4 Han characters, one short word

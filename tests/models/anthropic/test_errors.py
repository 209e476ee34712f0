"""AnthropicProvider against a real local HTTP server: HTTP errors, broken and malformed
streams, timeouts, and keys that never leak."""

from __future__ import annotations

import dataclasses
import logging
import time
from importlib.metadata import entry_points

import pytest

from hanlin.models.base import PROVIDER_GROUP
from hanlin.models.errors import (
    AuthenticationError,
    BadRequestError,
    MissingKeyError,
    ModelError,
    ModelTimeoutError,
    RateLimitError,
    UnsupportedFeatureError,
    UpstreamUnavailableError,
)
from hanlin.models.providers.anthropic import AnthropicProvider
from hanlin.models.types import (
    ChatOptions,
    StreamEvent,
    TextDelta,
)
from hanlin.testing import recordings as rec
from hanlin.testing.upstream import FakeUpstream, Reply, UpstreamServer
from tests.models.anthropic.support import (
    HI,
    KEY,
    MESSAGE_START,
    MODEL,
    MODES,
    PATH,
    block_delta,
    call,
    collect,
)

# --- errors -------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            rec.anthropic_error(401, "authentication_error", "invalid x-api-key"),
            AuthenticationError,
        ),
        (rec.anthropic_error(400, "invalid_request_error", "max_tokens: too big"), BadRequestError),
        (rec.anthropic_error(529, "overloaded_error", "Overloaded"), UpstreamUnavailableError),
        (rec.anthropic_error(500, "api_error", "Internal server error"), UpstreamUnavailableError),
    ],
    ids=["401", "400", "529", "500"],
)
async def test_http_errors(
    provider: AnthropicProvider,
    upstream: FakeUpstream,
    mode: str,
    reply: Reply,
    error: type[ModelError],
) -> None:
    upstream.script(PATH, reply)
    with pytest.raises(error) as caught:
        await call(provider, mode, HI)
    assert caught.value.status == reply.status
    assert caught.value.provider == f"anthropic/{MODEL}"
    assert reply.json["error"]["message"] in str(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_rate_limit_carries_retry_after(
    provider: AnthropicProvider, upstream: FakeUpstream, mode: str
) -> None:
    upstream.script(
        PATH, rec.anthropic_error(429, "rate_limit_error", "Rate limited", **{"retry-after": "7"})
    )
    with pytest.raises(RateLimitError) as caught:
        await call(provider, mode, HI)
    assert caught.value.retry_after == 7
    assert caught.value.retryable


@pytest.mark.anyio
async def test_error_event_mid_stream(provider: AnthropicProvider, upstream: FakeUpstream) -> None:
    upstream.script(PATH, rec.anthropic_overloaded_mid_stream())
    got: list[StreamEvent] = []
    with pytest.raises(UpstreamUnavailableError, match="Overloaded"):
        async for e in provider.stream(MODEL, HI, ChatOptions()):
            got.append(e)
    assert got == [TextDelta("Hel")]


@pytest.mark.anyio
async def test_connection_reset_mid_stream(
    provider: AnthropicProvider, upstream: FakeUpstream
) -> None:
    # message_start, content_block_start, ping, "Hello", "!" — then the connection drops
    upstream.script(PATH, Reply(sse=rec.anthropic_text_stream().sse, reset_after=5))
    got: list[StreamEvent] = []
    with pytest.raises(UpstreamUnavailableError, match="mid-stream"):
        async for e in provider.stream(MODEL, HI, ChatOptions()):
            got.append(e)
    assert got == [TextDelta("Hello"), TextDelta("!")]


@pytest.mark.anyio
async def test_reset_before_any_event(provider: AnthropicProvider, upstream: FakeUpstream) -> None:
    upstream.script(PATH, Reply(sse=rec.anthropic_text_stream().sse, reset_after=3))
    with pytest.raises(UpstreamUnavailableError):
        await collect(provider, HI)


@pytest.mark.anyio
async def test_stream_cut_short_without_message_stop(
    provider: AnthropicProvider, upstream: FakeUpstream
) -> None:
    upstream.script(PATH, Reply(sse=(rec.anthropic_text_stream().sse or [])[:5]))
    with pytest.raises(UpstreamUnavailableError, match="ended before message_stop"):
        await collect(provider, HI)


@pytest.mark.anyio
async def test_malformed_json_body(provider: AnthropicProvider, upstream: FakeUpstream) -> None:
    upstream.script(PATH, Reply(raw=b"{not json"))
    with pytest.raises(UpstreamUnavailableError, match="malformed JSON"):
        await provider.complete(MODEL, HI, ChatOptions())


@pytest.mark.anyio
async def test_malformed_json_event(provider: AnthropicProvider, upstream: FakeUpstream) -> None:
    sse = [MESSAGE_START, "event: content_block_delta\ndata: {not json"]
    upstream.script(PATH, Reply(sse=sse))
    with pytest.raises(UpstreamUnavailableError, match="malformed JSON"):
        await collect(provider, HI)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_slow_first_byte_times_out(
    provider: AnthropicProvider, upstream: FakeUpstream, mode: str
) -> None:
    reply = rec.anthropic_text() if mode == "complete" else rec.anthropic_text_stream()
    reply.first_byte_delay = 2
    upstream.script(PATH, reply)
    start = time.monotonic()
    with pytest.raises(ModelTimeoutError, match=r"0\.3 s"):
        await call(provider, mode, HI, ChatOptions(timeout=0.3))
    assert time.monotonic() - start < 1.0


@pytest.mark.anyio
async def test_slow_first_token_after_headers_times_out(
    provider: AnthropicProvider, upstream: FakeUpstream
) -> None:
    # the status line and headers come at once; the events do not
    sse = [MESSAGE_START, block_delta(0, {"type": "text_delta", "text": "late"})]
    upstream.script(PATH, Reply(sse=sse, chunk_delay=1.0))
    start = time.monotonic()
    with pytest.raises(ModelTimeoutError, match="no first token"):
        await collect(provider, HI, ChatOptions(timeout=0.3))
    assert time.monotonic() - start < 0.9


@pytest.mark.anyio
async def test_stream_timeout_bounds_only_the_first_token(
    provider: AnthropicProvider, upstream: FakeUpstream
) -> None:
    # first token after ~0.3 s, whole stream ~1.1 s: a 0.6 s first-token timeout lets it finish
    reply = rec.anthropic_text_stream()
    reply.chunk_delay = 0.075
    upstream.script(PATH, reply)
    response = await call(provider, "stream", HI, ChatOptions(timeout=0.6))
    assert response.text == rec.TEXT


# --- keys, capabilities, registry ---------------------------------------------------------------


@pytest.mark.anyio
async def test_key_never_leaks(
    provider: AnthropicProvider, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert KEY not in repr(provider) and KEY not in str(provider)
    upstream.script(PATH, rec.anthropic_text(), rec.anthropic_text_stream())
    await call(provider, "complete", HI)
    await call(provider, "stream", HI)
    errors: list[BaseException] = []
    for reply in (
        rec.anthropic_error(401, "authentication_error", f"invalid x-api-key {KEY}"),
        Reply(sse=rec.anthropic_text_stream().sse, reset_after=5),
        Reply(raw=b"{not json"),
    ):
        for mode in MODES:
            upstream.script(PATH, dataclasses.replace(reply))
            with pytest.raises(ModelError) as caught:
                await call(provider, mode, HI)
            errors.append(caught.value)
    for exc in errors:
        assert KEY not in str(exc) and KEY not in repr(exc)
        assert exc.__cause__ is None or KEY not in str(exc.__cause__)
    assert caplog.records  # httpx/httpcore did log at DEBUG
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in repr(record.__dict__)


@pytest.mark.anyio
async def test_missing_key(server: UpstreamServer, upstream: FakeUpstream) -> None:
    endpoint = dataclasses.replace(AnthropicProvider.presets()[0], base_url=server.url)
    p = AnthropicProvider(endpoint, None)
    with pytest.raises(MissingKeyError, match="ANTHROPIC_API_KEY") as caught:
        await p.complete(MODEL, HI, ChatOptions())
    assert "hanlin keys set anthropic" in str(caught.value)
    with pytest.raises(MissingKeyError):
        await collect(p, HI)
    assert upstream.requests == []


@pytest.mark.anyio
async def test_no_embeddings_or_rerank(provider: AnthropicProvider) -> None:
    with pytest.raises(UnsupportedFeatureError, match="embeddings"):
        await provider.embed(MODEL, ["a"])
    with pytest.raises(UnsupportedFeatureError, match="rerank"):
        await provider.rerank(MODEL, "q", ["a", "b"])
    assert not AnthropicProvider.supports_embeddings and not AnthropicProvider.supports_rerank


def test_registered_with_presets() -> None:
    # loaded on its own, so a sibling provider's import error cannot fail this test
    (entry,) = entry_points(group=PROVIDER_GROUP, name="anthropic")
    assert entry.load() is AnthropicProvider
    (endpoint,) = AnthropicProvider.presets()
    assert (endpoint.name, endpoint.provider, endpoint.dialect) == (
        "anthropic",
        "anthropic",
        "anthropic",
    )
    assert endpoint.base_url == "https://api.anthropic.com/v1"
    assert endpoint.key_env == "ANTHROPIC_API_KEY"
    sonnet = endpoint.model("claude-sonnet-4-5")
    assert sonnet is not None and sonnet.price is not None
    assert (sonnet.price.input, sonnet.price.output, sonnet.price.cached_input) == (3.0, 15.0, 0.3)
    assert all(m.supports_images and m.context == 200_000 for m in endpoint.models)

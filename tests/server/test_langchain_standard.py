"""LangChain's standard test suites (``langchain-tests``), written once for every chat-model and
embeddings integration, run through ``ChatOpenAI`` and ``OpenAIEmbeddings`` against a real
server: for a gateway model whose upstream behaves like a capable provider
(:mod:`hanlin.testing.capable_model`), for the bundled local base model, and for the local
embedding model. A test that fails for want of the model's ability is an xfail naming that
ability; every other failure is the server's (docs/server.md has the table)."""

from __future__ import annotations

import functools
import inspect
import io
import struct
import wave
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langchain_tests.integration_tests import (
    ChatModelIntegrationTests,
    EmbeddingsIntegrationTests,
    chat_models,
)

from hanlin.server.app import create_app
from hanlin.testing.capable_model import capable_reply
from hanlin.testing.upstream import FakeUpstream, UpstreamServer
from tests.conftest import home_database, lasting_home
from tests.server.conftest import LiveServer, make_settings

Suite = ChatModelIntegrationTests


@pytest.fixture(scope="module")
def capable_upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer(FakeUpstream(responder=capable_reply)) as server:
        yield server


@pytest.fixture(scope="module")
def standard_live(
    request: pytest.FixtureRequest, capable_upstream: UpstreamServer
) -> Iterator[LiveServer]:
    """``hanlin serve`` whose ``fake`` endpoint is the capable upstream (no keys: loopback)."""
    home = lasting_home(request, "standard")
    with home_database(home):
        settings = make_settings(home, capable_upstream.url)
    server = LiveServer(create_app(settings))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", autouse=True)
async def _one_event_loop(anyio_backend: str) -> AsyncIterator[None]:
    """Keeps one event loop for the module: ChatOpenAI shares one async HTTP client per
    process, and a client whose loop has closed cannot be used again."""
    yield


def expected_failure(
    test: Callable[..., Any], reason: str, *, run: bool = True
) -> Callable[..., Any]:
    """A standard test, expected to fail for ``reason`` (an ability the model lacks); its own
    marks (parametrisation) are kept and the base class is left untouched. ``run=False``
    for one that would only time out."""
    wrapper: Any
    if inspect.iscoroutinefunction(test):

        @functools.wraps(test)
        async def wrapper(*args: Any, **kwargs: Any) -> None:
            await test(*args, **kwargs)

    else:

        @functools.wraps(test)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            test(*args, **kwargs)

    expected = pytest.mark.xfail(reason=reason, run=run)
    wrapper.pytestmark = [*getattr(test, "pytestmark", []), expected.mark]
    return wrapper


def _png() -> bytes:
    """A 1×1 PNG."""
    row = b"\x00\xff\x80\x00"
    chunks = [
        (b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)),
        (b"IDAT", zlib.compress(row)),
    ]
    out = b"\x89PNG\r\n\x1a\n"
    for kind, data in [*chunks, (b"IEND", b"")]:
        out += struct.pack(">I", len(data)) + kind + data
        out += struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return out


def _wav() -> bytes:
    """A tenth of a second of silence."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 800)
    return buf.getvalue()


_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture()
def offline_media(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite downloads its sample image, PDF and sound from the web; these tests may not
    reach it, so the same kinds of file are served from here."""
    files = {".png": _png(), ".pdf": _PDF, ".wav": _wav()}

    def get(url: str, **_: Any) -> SimpleNamespace:
        return SimpleNamespace(content=files[url[url.rindex(".") :]])

    monkeypatch.setattr(chat_models, "httpx", SimpleNamespace(get=get))


class _Served:
    """Points a suite at the module's server; async tests run on anyio's asyncio loop."""

    pytestmark = pytest.mark.anyio
    base_url = ""

    @pytest.fixture(autouse=True)
    def _served(self, standard_live: LiveServer) -> None:
        self.base_url = standard_live.url + "/v1"

    def _client(self, model: str) -> dict[str, Any]:
        return {
            "model": model,
            "base_url": self.base_url,
            "api_key": "not-needed",
            "max_retries": 0,
            # ChatOpenAI asks for streamed usage only from api.openai.com unless told to
            "stream_usage": True,
        }


class TestGatewayModel(_Served, ChatModelIntegrationTests):
    """A gateway model: every request and answer passes through Hanlin's translation both ways
    (tools, tool_choice, response_format, stop, usage, tool-call deltas)."""

    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return self._client("fake/gpt-4o-mini")

    @pytest.fixture(autouse=True)
    def _media(self, offline_media: None) -> None:
        pass

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def supports_pdf_inputs(self) -> bool:
        return True

    @property
    def supports_pdf_tool_message(self) -> bool:
        return True

    @property
    def supports_audio_inputs(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "fake/gpt-4o"


_BASE = "gemma3-270m is a base model: it continues text and does not follow instructions"
_VALUES = f"{_BASE}, so it fills tool arguments with made-up values, not the prompt's"
_SLOW = (
    "grammar-constrained generation over gemma's 262k-token vocabulary takes over 90 s for "
    "this test on 2 cores: not run (the shape of local JSON and tool calls is tested in "
    "tests/models/test_llamacpp.py)"
)


@pytest.mark.slow
class TestLocalBaseModel(_Served, ChatModelIntegrationTests):
    """The bundled local model (gemma3-270m, llama.cpp). Tool calls and JSON are constrained
    by a grammar, so their shape is always right; what it cannot do is pick the right values."""

    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # a base model continues until its context is full: bound every answer, as a client
        # of a small local model would
        return {**self._client("local/gemma3-270m"), "max_tokens": 160}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False  # one local chat model: nothing to switch to

    test_tool_calling = expected_failure(Suite.test_tool_calling, _VALUES)
    test_tool_calling_async = expected_failure(Suite.test_tool_calling_async, _VALUES)
    test_unicode_tool_call_integration = expected_failure(
        Suite.test_unicode_tool_call_integration, _VALUES
    )
    test_agent_loop = expected_failure(
        Suite.test_agent_loop, f"{_BASE}, so it answers in words where a tool was wanted"
    )
    test_json_mode = expected_failure(
        Suite.test_json_mode, f"{_BASE}, so its JSON object lacks the keys the prompt asks for"
    )
    test_tool_message_error_status = expected_failure(
        Suite.test_tool_message_error_status, _SLOW, run=False
    )

    @pytest.mark.xfail(reason=f"typeddict only: {_SLOW}")
    @pytest.mark.parametrize("schema_type", ["pydantic", "typeddict", "json_schema"])
    def test_structured_output(self, model: Any, schema_type: Any) -> None:
        if schema_type == "typeddict":
            pytest.xfail(_SLOW)  # pydantic and json_schema run, and pass (XPASS)
        super().test_structured_output(model, schema_type)

    test_structured_output_async = expected_failure(
        Suite.test_structured_output_async,
        f"{_BASE}, so its grammar-constrained JSON may run on past max_tokens (160) with "
        "made-up values; when it stops in time it passes (XPASS)",
    )
    test_bind_runnables_as_tools = expected_failure(
        Suite.test_bind_runnables_as_tools,
        f"{_BASE}, so its grammar-constrained tool call may run on past max_tokens (160) "
        "and come back empty, depending on what llama.cpp's prompt cache holds from earlier "
        "tests; when it stops in time it passes (XPASS)",
    )
    test_structured_output_pydantic_2_v1 = expected_failure(
        Suite.test_structured_output_pydantic_2_v1, _SLOW, run=False
    )
    test_structured_output_optional_param = expected_failure(
        Suite.test_structured_output_optional_param, _SLOW, run=False
    )


class TestLocalEmbeddings(_Served, EmbeddingsIntegrationTests):
    """The bundled embedding model. ``check_embedding_ctx_length=False`` sends text, not
    tiktoken ids (which mean nothing to a model other than OpenAI's); LangChain's documented
    setting for every OpenAI-compatible server."""

    @property
    def embeddings_class(self) -> type[OpenAIEmbeddings]:
        return OpenAIEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {
            "model": "local-embed/fast-use",
            "base_url": self.base_url,
            "api_key": "not-needed",
            "max_retries": 0,
            "check_embedding_ctx_length": False,
        }

"""The clients ``gateway_overhead.py`` compares: bare httpx (the floor), Hanlin's gateway, LiteLLM
and (optionally) bare aiohttp, each sending the same short chat to the fake upstream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any, Protocol

MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say hello in one short sentence."},
]


# -- the three clients -------------------------------------------------------------------------


class Client(Protocol):
    name: str

    async def call(self, stream: bool) -> None: ...

    async def settle(self) -> None:
        """Let background work the calls caused (ledger, logging) finish, inside the CPU window."""
        ...

    async def aclose(self) -> None: ...


class Direct:
    """The floor: one pooled httpx client, the body serialized and the answer parsed per call."""

    name = "direct"

    def __init__(self, base_url: str) -> None:
        import httpx

        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
        self.client = httpx.AsyncClient(limits=limits, timeout=60, trust_env=False)
        self.url = base_url + "/chat/completions"
        self.headers = {"Content-Type": "application/json", "Authorization": "Bearer x"}

    async def call(self, stream: bool) -> None:
        body: dict[str, Any] = {"model": "m", "messages": MESSAGES}
        if not stream:
            payload = json.dumps(body, ensure_ascii=False).encode()
            r = await self.client.post(self.url, content=payload, headers=self.headers)
            r.raise_for_status()
            if not json.loads(r.content)["choices"][0]["message"]["content"]:
                raise RuntimeError("empty answer")
            return
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        payload = json.dumps(body, ensure_ascii=False).encode()
        events = 0
        async with self.client.stream("POST", self.url, content=payload, headers=self.headers) as r:
            r.raise_for_status()
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    data = line[5:].strip()
                    if data != "[DONE]":
                        json.loads(data)
                        events += 1
        if not events:
            raise RuntimeError("empty stream")

    async def settle(self) -> None:
        return None

    async def aclose(self) -> None:
        await self.client.aclose()


class Hanlin:
    """``Gateway`` with one endpoint ``fake`` at the upstream; every call lands in the ledger."""

    name = "hanlin"

    def __init__(self, base_url: str) -> None:
        from hanlin.config import load_settings
        from hanlin.models.gateway import Gateway

        settings = load_settings(
            models={"endpoints": {"fake": {"base_url": base_url}}, "default": "fake/m"}
        )
        self.gw = Gateway(settings)

    async def call(self, stream: bool) -> None:
        if stream:
            s = self.gw.astream(MESSAGES, "fake/m")
            async for _ in s:
                pass
            if s.response is None or not s.response.text:
                raise RuntimeError("empty stream")
        else:
            r = await self.gw.achat(MESSAGES, "fake/m")
            if not r.text:
                raise RuntimeError("empty answer")

    async def settle(self) -> None:
        self.gw.ledger.flush()  # blocks briefly: no call is in flight here

    async def aclose(self) -> None:
        await self.gw.aclose()


class Aiohttp:
    """A second floor (not run by default): a bare ``aiohttp`` session, the transport LiteLLM
    uses, to tell the cost of httpx's connection pool from the gateway's own."""

    name = "aiohttp"

    def __init__(self, base_url: str) -> None:
        self.url = base_url + "/chat/completions"
        self.headers = {"Content-Type": "application/json", "Authorization": "Bearer x"}
        self.session: Any = None

    async def call(self, stream: bool) -> None:
        import aiohttp

        if self.session is None:
            connector = aiohttp.TCPConnector(limit=1000, limit_per_host=1000)
            self.session = aiohttp.ClientSession(connector=connector, trust_env=False)
        body: dict[str, Any] = {"model": "m", "messages": MESSAGES}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        payload = json.dumps(body, ensure_ascii=False).encode()
        async with self.session.post(self.url, data=payload, headers=self.headers) as r:
            r.raise_for_status()
            if not stream:
                if not json.loads(await r.read())["choices"][0]["message"]["content"]:
                    raise RuntimeError("empty answer")
                return
            events = 0
            async for raw in r.content:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    data = line[5:].strip()
                    if data != "[DONE]":
                        json.loads(data)
                        events += 1
            if not events:
                raise RuntimeError("empty stream")

    async def settle(self) -> None:
        return None

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


def import_litellm() -> Any:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no fetch of the price map
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    litellm.drop_params = True
    return litellm


class LiteLLM:
    """``litellm.acompletion`` as its README shows it, against the same upstream."""

    name = "litellm"

    def __init__(self, base_url: str) -> None:
        self.litellm = import_litellm()
        self.base_url = base_url
        try:
            from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
        except ImportError:  # other versions
            GLOBAL_LOGGING_WORKER = None
        self.worker = GLOBAL_LOGGING_WORKER

    async def call(self, stream: bool) -> None:
        kw: dict[str, Any] = {"stream_options": {"include_usage": True}} if stream else {}
        r = await self.litellm.acompletion(
            model="openai/m",
            messages=MESSAGES,
            api_base=self.base_url,
            api_key="x",
            stream=stream,
            **kw,
        )
        if stream:
            chunks = 0
            async for _ in r:
                chunks += 1
            if not chunks:
                raise RuntimeError("empty stream")
        elif not r.choices[0].message.content:
            raise RuntimeError("empty answer")

    async def settle(self) -> None:
        if self.worker is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.worker.flush(), 10)

    async def aclose(self) -> None:
        close = getattr(self.litellm, "close_litellm_async_clients", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


def make_client(name: str, base_url: str) -> Client:
    cls = {"direct": Direct, "hanlin": Hanlin, "litellm": LiteLLM, "aiohttp": Aiohttp}[name]
    client: Client = cls(base_url)
    return client

"""Sync code calling the gateway's async code: an event loop on a daemon thread (the
``Portal``), which runs each coroutine as the caller (access and trace context carried over),
and :class:`SyncChatStream`, a streamed answer iterated from sync code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Iterator
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context

from hanlin.access import caller as access
from hanlin.models.types import ChatResponse, StreamEvent

if TYPE_CHECKING:
    from hanlin.models.gateway import ChatStream

T = TypeVar("T")


class SyncChatStream:
    """A :class:`ChatStream` for sync code: iterate it; ``response`` is set when it ends."""

    def __init__(self, portal: Portal, stream: ChatStream) -> None:
        self._portal = portal
        self._stream = stream

    @property
    def response(self) -> ChatResponse | None:
        return self._stream.response

    @property
    def served_by(self) -> str:
        return self._stream.served_by

    def __iter__(self) -> Iterator[StreamEvent]:
        try:
            while True:
                try:
                    yield self._portal.run(self._stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._portal.run(self._stream.aclose())


class Portal:
    """An event loop on a daemon thread, for calling async code from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="gateway")
        self._thread.start()

    def run(self, coro: Any) -> Any:
        # the loop's thread has its own context: hand it the caller's access
        future: Future[Any] = asyncio.run_coroutine_threadsafe(
            _as_current(access.current(), otel_context.get_current(), coro), self.loop
        )
        try:
            return future.result()
        except BaseException:
            # Ctrl-C (or any interruption here): cancel the task on the loop and let it unwind,
            # so the stream's cleanup can run afterwards.
            if not future.done():
                future.cancel()
                wait([future], timeout=5)
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


async def _as_current(who: access.Access, ctx: otel_context.Context, coro: Awaitable[T]) -> T:
    # ... and the caller's trace context, so spans opened here nest under the caller's
    token = otel_context.attach(ctx)
    try:
        with access.acting_as(who):
            return await coro
    finally:
        otel_context.detach(token)

"""Stop the work of a request whose client has gone (timed out, closed the connection).

A non-streamed response is sent only once its work is done, so nothing else notices a client
that left meanwhile: a local model would go on generating for nobody, and every request queued
behind it would wait. :func:`cancel_on_disconnect` runs the work as a task and watches the ASGI
``receive`` channel, which yields ``http.disconnect`` when the connection closes; the task is
then cancelled (a local model stops at its next token, or its call leaves the queue). Streamed
responses need no help: Starlette cancels the body when the client disconnects, and closing the
stream stops the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from hanlin.server.errors import ApiError

T = TypeVar("T")

#: "client closed request" (nginx's status): the client never reads it, the server log does
CLIENT_CLOSED = 499


async def _disconnected(request: Request) -> None:
    """Return when the client disconnects (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it if the client disconnects before it is done.

    Raises :class:`ApiError` (499) once the work has been cancelled for a client that left;
    the work's own errors propagate unchanged.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this request itself is cancelled (server shutdown)
        task.cancel()
        raise
    finally:
        if not watcher.done():
            watcher.cancel()
    left = watcher.done() and not watcher.cancelled() and watcher.exception() is None
    if task.done() or not left:  # finished, or the channel failed: nothing to cancel for
        return await task
    task.cancel()
    await asyncio.wait({task})  # let it unwind (a local model's call leaves its queue)
    if not task.cancelled():
        task.exception()  # retrieved: an error while unwinding is of no use to anyone
    raise ApiError(
        CLIENT_CLOSED,
        "the client closed the connection before the answer was ready",
        hint="raise the client's timeout for long answers, or stream them",
        code="client_closed_request",
    )

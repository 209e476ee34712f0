"""Big JSON request bodies are decoded, and validated against the route's model, on a worker
thread instead of the event loop, so one request of several MB does not stall every other
request (health checks included) while it is parsed.

Routers opt in with ``APIRouter(route_class=JSONRoute)``. Bodies under
:data:`OFFLOAD_BYTES` are left to FastAPI (a thread hop costs more than parsing them).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from hanlin.server.errors import ApiError

#: bodies larger than this are decoded on a worker thread
OFFLOAD_BYTES = 64 << 10
#: arrays and objects a body may hold: millions of tiny containers (``[[],[],…]``) cost
#: seconds of allocation wherever they are decoded; no API body needs a fraction of this
MAX_CONTAINERS = 100_000
#: one big body is decoded at a time: decoding holds the interpreter lock, and with one decoder
#: the event loop waits for at most one decode (tens of ms) each time it needs the lock back
_ONE_AT_A_TIME = threading.Lock()


class JSONRoute(APIRoute):
    """An API route that decodes a JSON body over :data:`OFFLOAD_BYTES` on a worker thread.

    When the route takes one pydantic model as its whole body, the model is validated there
    too and FastAPI receives the finished instance (it does not validate it again).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        model = _whole_body_model(self)

        async def route_handler(request: Request) -> Response:
            if _is_json(request):
                body = await request.body()  # cached: FastAPI reads the same bytes
                if len(body) > OFFLOAD_BYTES:
                    _check_shape(body)
                    request._json = await run_in_threadpool(decode, body, model)
            return await handler(request)

        return route_handler


def _check_shape(body: bytes) -> None:
    """Refuse a body of too many containers before decoding it (counting is C-speed: about a
    millisecond for 4 MB; brackets inside strings count too, so this over-estimates)."""
    containers = body.count(b"[") + body.count(b"{")
    if containers > MAX_CONTAINERS:
        raise ApiError(
            413,
            f"the JSON body holds about {containers:,} arrays and objects; at most "
            f"{MAX_CONTAINERS:,} are accepted",
            hint="send fewer, larger items (or split the request)",
            code="body_too_complex",
        )


def decode(body: bytes, model: type[BaseModel] | None = None) -> Any:
    """The JSON value of ``body`` (an instance of ``model`` when given).

    Raises RequestValidationError: the body is not JSON, or does not fit the model (the same
    error FastAPI raises, so clients see the usual 422).
    """
    with _ONE_AT_A_TIME:
        return _decode(body, model)


def _decode(body: bytes, model: type[BaseModel] | None) -> Any:
    if model is not None:
        try:  # one pass in pydantic-core: no intermediate Python objects to build and free
            return model.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in errors]
            ) from None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        pos = exc.pos if isinstance(exc, json.JSONDecodeError) else exc.start
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else exc.reason
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": reason},
                }
            ]
        ) from None


def _whole_body_model(route: APIRoute) -> type[BaseModel] | None:
    """The pydantic model that is the route's entire body, if there is exactly one."""
    params = route.dependant.body_params
    if len(params) != 1:
        return None
    info = params[0].field_info
    annotation = info.annotation
    if getattr(info, "embed", False) or not isinstance(annotation, type):
        return None
    return annotation if issubclass(annotation, BaseModel) else None


def _is_json(request: Request) -> bool:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return not ctype or ctype == "application/json" or ctype.endswith("+json")


__all__ = ["MAX_CONTAINERS", "OFFLOAD_BYTES", "JSONRoute", "decode"]

"""``/api/settings/connections``: provider keys and model endpoints an admin manages from the
web UI — the calls of :mod:`hanlin.models.connections`. Every route needs the ``admin`` scope
(the keyless loopback server's caller is the local admin). Keys are accepted, never returned."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from hanlin.access.auth import Principal
from hanlin.models.connections import (
    ConnectionUpdate,
    discover_models,
    list_connections,
    remove_connection,
    save_connection,
)
from hanlin.server.auth import scope
from hanlin.server.jsonbody import JSONRoute
from hanlin.server.state import ServerState, get_state

router = APIRouter(prefix="/api/settings/connections", tags=["settings"], route_class=JSONRoute)
Admin = Depends(scope("admin"))


class TestBody(BaseModel):
    """What to test: a saved connection by ``name``, or an address (with an optional key)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=40)
    base_url: str | None = Field(default=None, max_length=2000)
    api_key: str | None = Field(default=None, max_length=4000)


@router.get("", summary="Every model endpoint with its key status (masked) and models")
async def connections(
    state: ServerState = Depends(get_state), caller: Principal = Admin
) -> dict[str, Any]:
    return {"data": await asyncio.to_thread(list_connections, state.gateway)}


@router.put(
    "/{name}",
    summary="Add or change a connection (key, base URL, models); the gateway uses it at once",
)
async def put_connection(
    name: str,
    body: ConnectionUpdate,
    state: ServerState = Depends(get_state),
    caller: Principal = Admin,
) -> dict[str, Any]:
    return await asyncio.to_thread(save_connection, state.gateway, name, body)


@router.delete("/{name}", status_code=204, summary="Forget a saved connection and its stored key")
async def delete_connection(
    name: str, state: ServerState = Depends(get_state), caller: Principal = Admin
) -> Response:
    await asyncio.to_thread(remove_connection, state.gateway, name)
    return Response(status_code=204)


@router.post("/test", summary="List the models an endpoint serves (GET {base_url}/models)")
async def test_connection(
    body: TestBody, state: ServerState = Depends(get_state), caller: Principal = Admin
) -> dict[str, Any]:
    models = await discover_models(
        state.gateway, name=body.name, base_url=body.base_url, api_key=body.api_key
    )
    return {"ok": True, "models": models}

"""``/v1/workflows`` for editors: the node palette (``GET /nodes``, scope ``workflows``) and
saving a workflow (``PUT /{name}``). Saving needs an admin key: a saved workflow is what every
key with ``workflows`` runs (and its ``llm`` nodes choose the models they spend), so writing
one is an administrator's act, like moving a prompt label. Included before the workflow routes
so that ``/nodes`` is not read as a workflow's name."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hanlin.access.auth import Principal
from hanlin.flows.authoring import Layout, read_layout, save_workflow
from hanlin.flows.catalog import input_schema
from hanlin.flows.palette import node_types
from hanlin.server.auth import scope
from hanlin.server.jsonbody import JSONRoute
from hanlin.server.state import ServerState, get_state

router = APIRouter(prefix="/v1/workflows", tags=["workflows"], route_class=JSONRoute)


class SaveRequest(BaseModel):
    """The definition to save — as data (written as YAML) or as YAML text (written as given)
    — and, optionally, where the editor drew its nodes."""

    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any] | None = Field(
        None, description="the workflow in YAML's shape: nodes, edges, description"
    )
    yaml: str | None = Field(None, max_length=1_000_000, description="the workflow as YAML")
    layout: Layout | None = Field(None, description="node id → {x, y} on the editor's canvas")

    @model_validator(mode="after")
    def _one(self) -> SaveRequest:
        if (self.definition is None) == (self.yaml is None):
            raise ValueError("send exactly one of `definition` and `yaml`")
        return self


@router.get("/nodes", summary="The node types (built-in and plugins) with their settings")
async def list_node_types(caller: Principal = Depends(scope("workflows"))) -> dict[str, Any]:
    return {"object": "list", "data": await asyncio.to_thread(node_types)}


@router.put(
    "/{name}",
    summary="Save a workflow as HANLIN_HOME/workflows/NAME.yaml after checking it (admin); "
    "the editor's node positions go to NAME.layout.json",
    response_model=None,
)
async def put_workflow(
    name: str,
    body: SaveRequest,
    state: ServerState = Depends(get_state),
    caller: Principal = Depends(scope("admin")),
) -> JSONResponse:
    saved = await asyncio.to_thread(
        save_workflow,
        name,
        state.settings,
        definition=body.definition,
        text=body.yaml,
        layout=body.layout,
    )
    wf = saved.workflow
    return JSONResponse(
        {
            "name": wf.name,
            "created": saved.created,
            "changed": saved.changed,
            "nodes": len(wf.graph.order),
            "edges": len(wf.graph.edges),
            "inputs": input_schema(wf),
            "layout": await asyncio.to_thread(read_layout, name, state.settings),
        },
        status_code=201 if saved.created else 200,
    )

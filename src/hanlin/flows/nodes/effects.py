"""The nodes with side effects: ``code`` (the agents' Python sandbox), ``http_request`` (through
the SSRF guard) and ``tool`` (any Hanlin agent tool, or a configured MCP server's tool). Their
results are recorded before the run moves on, and a resumed run replays the record (see the
engine)."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from hanlin.access.caller import current
from hanlin.errors import HanlinError, InvalidInputError
from hanlin.flows.nodes.base import (
    FORBID,
    NodeContext,
    NodeOutput,
    NodeType,
    compatible,
    register,
    type_of,
)

_WRAPPER = """\
import json as _json, sys as _sys
_inputs = _json.loads({inputs!r})
{code}
_result = main(**_inputs)
if not isinstance(_result, dict):
    raise TypeError("main() must return a dict of outputs, not " + type(_result).__name__)
_sys.stdout.write("\\n{marker}" + _json.dumps(_result, ensure_ascii=False, default=str) + "\\n")
"""


class CodeConfig(BaseModel):
    model_config = FORBID

    #: Python defining ``def main(**inputs) -> dict``; the dict is the node's outputs
    code: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    #: output name → type; the returned dict must have exactly these
    outputs: dict[str, Literal["string", "number", "integer", "boolean", "object", "array", "any"]]
    wall_seconds: float = Field(default=10.0, gt=0, le=600)
    memory_mb: int = Field(default=512, ge=32)
    isolation: Literal["auto", "bwrap", "unshare", "hook"] = "auto"


@register
class Code(NodeType):
    name = "code"
    summary = "run Python (`def main(**inputs) -> dict`) in the sandbox"
    Config = CodeConfig
    side_effects = True

    def outputs(self, config: CodeConfig) -> dict[str, str]:
        return dict(config.outputs)

    def check(self, config: CodeConfig, settings: Any) -> list[tuple[str, str]]:
        if "def main" not in config.code:
            return [("the code defines no `main`", "write `def main(**inputs): return {...}`")]
        return []

    async def run(self, ctx: NodeContext, config: CodeConfig) -> NodeOutput:
        from hanlin.agents.tools.sandbox import SandboxLimits, run_python

        inputs = ctx.resolve(config.inputs)
        marker = f"@@hanlin-result-{secrets.token_hex(8)}@@"
        program = _WRAPPER.format(
            inputs=json.dumps(inputs, ensure_ascii=False, default=str),
            code=config.code,
            marker=marker,
        )
        # the process must not outlive the attempt: the engine's timeout cannot stop a thread
        wall = min(config.wall_seconds, ctx.node.timeout_s or config.wall_seconds)
        limits = SandboxLimits(
            wall_seconds=wall,
            cpu_seconds=max(1, int(wall) + 1),
            memory_mb=config.memory_mb,
            max_output_chars=1_000_000,
            isolation=config.isolation,
        )
        run = await asyncio.to_thread(run_python, program, limits)
        head, found, tail = run.stdout.rpartition(marker)
        if not run.ok or not found:
            detail = (run.stderr or head).strip()[-800:]
            raise InvalidInputError(
                f"the code failed ({run.reason or f'exit code {run.returncode}'}): {detail}",
                hint="fix the code, or raise its limits (wall_seconds, memory_mb)",
            )
        result = json.loads(tail.strip().splitlines()[0])
        missing = sorted(set(config.outputs) - set(result))
        if missing:
            raise InvalidInputError(
                f"main() returned no {missing[0]!r}", hint="return every declared output"
            )
        for key, kind in config.outputs.items():
            if not compatible(type_of(result[key]), kind):
                raise InvalidInputError(
                    f"output {key!r} must be {kind}, got {type_of(result[key])}",
                    hint="return the declared type, or declare it `any`",
                )
        outputs = {k: result[k] for k in config.outputs}
        if head.strip():
            outputs["stdout"] = head.strip()[-2000:]
        return NodeOutput(outputs)


class HttpConfig(BaseModel):
    model_config = FORBID

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    #: a mapping or list is sent as JSON, text as it is
    body: Any = None
    #: seconds the request may take, redirects and body included (the node's ``timeout_s``
    #: bounds the whole attempt)
    request_timeout_s: float = Field(default=30.0, gt=0, le=600)
    max_bytes: int = Field(default=4 << 20, ge=1)


@register
class HttpRequest(NodeType):
    name = "http_request"
    summary = "an HTTP request through the SSRF guard (sends an Idempotency-Key header)"
    Config = HttpConfig
    expects: ClassVar[dict[str, str]] = {"url": "string"}
    side_effects = True

    def outputs(self, config: HttpConfig) -> dict[str, str]:
        return {"status": "integer", "body": "string", "json": "any", "headers": "object"}

    async def run(self, ctx: NodeContext, config: HttpConfig) -> NodeOutput:
        from hanlin.net.ssrf import safe_fetch

        url = ctx.resolve(config.url)
        headers = {"Idempotency-Key": ctx.idempotency_key, **ctx.resolve(config.headers)}
        body = ctx.resolve(config.body)
        content: bytes | None = None
        if isinstance(body, dict | list):
            content = json.dumps(body, ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        elif body is not None:
            content = str(body).encode()
        wf = ctx.settings.workflows
        fetched = await asyncio.to_thread(
            safe_fetch,
            str(url),
            allow_private=wf.allow_private_urls,
            allowed_hosts=wf.allowed_hosts,
            max_bytes=config.max_bytes,
            timeout=config.request_timeout_s,
            headers=headers,
            method=config.method,
            content=content,
        )
        text = fetched.content.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            parsed = None
        return NodeOutput(
            {"status": fetched.status, "body": text, "json": parsed, "headers": fetched.headers}
        )


class ToolConfig(BaseModel):
    model_config = FORBID

    #: an agent tool's name (`hanlin agent tools` lists them), or with ``server`` the name of
    #: one of that MCP server's tools
    tool: str
    #: an MCP server configured under ``[mcpServers.<name>]`` in hanlin.toml (a workflow
    #: names servers, it does not start commands of its own)
    server: str | None = None
    #: the tool's options, as in an agent definition (``kb`` for kb_search …)
    options: dict[str, Any] = Field(default_factory=dict)
    arguments: dict[str, Any] = Field(default_factory=dict)


@register
class Tool(NodeType):
    name = "tool"
    summary = "call any Hanlin agent tool, or an MCP server's tool, by name"
    Config = ToolConfig
    side_effects = True

    def outputs(self, config: ToolConfig) -> dict[str, str]:
        return {"result": "string", "data": "any"}

    def check(self, config: ToolConfig, settings: Any) -> list[tuple[str, str]]:
        from hanlin.agents.tool_kinds import TOOLS

        if config.server is not None:
            return _mcp_problems(config, settings)
        try:
            TOOLS.lookup(config.tool)
        except HanlinError as exc:
            return [(exc.message, exc.hint or "")]
        return []

    async def run(self, ctx: NodeContext, config: ToolConfig) -> NodeOutput:
        from hanlin.agents.tool_kinds import TOOLS, BuildContext, ToolSpec

        if config.server is not None:
            result = await _call_mcp(ctx, config)
        else:
            options = ctx.resolve(config.options)
            # building a tool (its argument model, its checks) costs more than a quick call:
            # built tools are kept per engine, for the caller they were built for
            key = json.dumps(
                [ctx.node.id, config.tool, options, current()], sort_keys=True, default=repr
            )
            tool = ctx.services.tools.get(key)
            if tool is None:
                spec = ToolSpec(name=config.tool, options=options)
                build = BuildContext(
                    agent=f"workflow-{ctx.node.id}",
                    settings=ctx.settings,
                    workspace=None,
                    long_term=None,
                )
                tools = TOOLS.lookup(config.tool).build(spec, build)
                tool = next((t for t in tools if t.name == config.tool), tools[0])
                if len(ctx.services.tools) >= 256:
                    ctx.services.tools.clear()
                ctx.services.tools[key] = tool
            result = await tool.run(ctx.resolve(config.arguments))
        if result.is_error:
            raise InvalidInputError(
                f"tool {config.tool} failed: {result.content[:500]}",
                hint="check the tool's arguments (`hanlin agent tools`)",
            )
        return NodeOutput({"result": result.content, "data": result.data})


def _mcp_problems(config: ToolConfig, settings: Any) -> list[tuple[str, str]]:
    if config.options:
        return [("an MCP tool takes no `options`", "pass its inputs under `arguments`")]
    if settings is None:
        return []
    from hanlin.agents.mcp.config import configured_servers

    known = configured_servers(settings)
    if config.server not in known:
        return [
            (
                f"MCP server '{config.server}' is not configured",
                f"add [mcpServers.{config.server}] to hanlin.toml "
                f"(configured: {', '.join(known) or 'none'})",
            )
        ]
    return []


async def _call_mcp(ctx: NodeContext, config: ToolConfig) -> Any:
    """Call one tool of a configured MCP server (connected for this call, then closed)."""
    try:
        from hanlin.agents.mcp import McpToolset, configured_servers
    except ImportError as exc:
        raise InvalidInputError(
            f"node '{ctx.node.id}' calls an MCP tool, but the MCP client is not available ({exc})",
            hint="pip install 'hanlin[mcp]'",
        ) from None
    known = configured_servers(ctx.settings)
    server = str(config.server)
    if server not in known:
        problem = _mcp_problems(config, ctx.settings)[0]
        raise InvalidInputError(problem[0], hint=problem[1])
    async with McpToolset({server: known[server]}, strict=True) as toolset:
        tool = next(
            (t for t in toolset.tools if getattr(t, "remote_name", "") == config.tool), None
        )
        if tool is None:
            names = ", ".join(getattr(t, "remote_name", t.name) for t in toolset.tools)
            raise InvalidInputError(
                f"MCP server '{server}' has no tool '{config.tool}' (its tools: {names or 'none'})",
                hint="name one of its tools in `tool`",
            )
        return await tool.run(ctx.resolve(config.arguments))

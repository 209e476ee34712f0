"""Hanlin as an MCP client: one connection to an MCP server (stdio or streamable HTTP) with the
official SDK, and its tools as ordinary :class:`AgentTool` objects (:class:`McpTool`).
:class:`~hanlin.agents.mcp.toolset.McpToolset` holds several and adds resources and prompts.

Each connection lives in a task of its own, so a server that fails to start, crashes, hangs or
answers garbage never takes the agent down with it: startup and every call have a timeout, a
call to a dead server is an error result the model reads (with the tail of the server's
stderr), and the next call restarts it (at most ``max_restarts`` times).

    async with McpToolset(configured_servers()) as ts:
        agent = Agent(gateway, model, [*ts.tools, calculator()])
        result = await agent.arun("What time is it in Tokyo?")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar, cast

import mcp_types as mt
from mcp import Client, MCPError, StdioServerParameters
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ConfigDict

from hanlin.agents.mcp.config import McpServerConfig
from hanlin.agents.mcp.convert import (
    result_text,
    schema_errors,
)
from hanlin.agents.tools.base import AgentTool, ToolResult
from hanlin.errors import HanlinError
from hanlin.tracing import spans
from hanlin.tracing.records import TOOL_ARGUMENTS, TOOL_NAME, TOOL_RESULT

T = TypeVar("T")


class McpError(HanlinError):
    """An MCP server could not be reached or refused a request; the message names it."""


class AnyArgs(BaseModel):
    """Arguments of an MCP tool: checked against its JSON schema, not a pydantic model."""

    model_config = ConfigDict(extra="allow")


async def server_capabilities(client: Client) -> mt.ServerCapabilities:
    return client.server_capabilities


def _reason(exc: BaseException) -> str:
    """A short, readable cause, digging through anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.error.message
    if isinstance(exc, FileNotFoundError):
        return f"command not found ({exc.filename or exc})"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class McpConnection:
    """One server: started by :meth:`start`, restarted on demand, closed by :meth:`close`."""

    def __init__(self, name: str, config: McpServerConfig, *, max_restarts: int = 2) -> None:
        self.name = name
        self.config = config
        self.max_restarts = max_restarts
        self.restarts = 0
        self.tools: list[mt.Tool] = []
        self.error: str | None = None
        self.client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._stderr: TextIO | None = None
        self._lock: asyncio.Lock | None = None
        self._broken = self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def _target(self) -> StdioServerParameters | Any:
        cfg = self.config
        if cfg.command:
            return StdioServerParameters(
                command=cfg.command, args=cfg.args, env=cfg.resolved_env() or None, cwd=cfg.cwd
            )
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        http = create_mcp_http_client(headers=cfg.resolved_headers() or None)
        return _OwnedHttpTransport(streamable_http_client(str(cfg.url), http_client=http), http)

    async def _own(self, ready: asyncio.Future[None]) -> None:
        """The task that holds the connection open until :meth:`close` (or it breaks)."""
        assert self._stop is not None
        try:
            async with AsyncExitStack() as stack:
                target = self._target()
                if isinstance(target, StdioServerParameters):
                    from mcp.client.stdio import stdio_client

                    assert self._stderr is not None
                    target = stdio_client(target, errlog=self._stderr)
                elif isinstance(target, _OwnedHttpTransport):
                    stack.push_async_callback(target.http.aclose)
                    target = target.transport
                from hanlin import __version__

                client = Client(
                    target,
                    read_timeout_seconds=self.config.timeout,
                    client_info=mt.Implementation(name="hanlin", version=__version__),
                )
                await stack.enter_async_context(client)
                tools: list[mt.Tool] = []
                cursor: str | None = None
                for _ in range(100):  # a server that pages forever cannot hang us
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        break
                self.tools, self.client = tools, client
                if not ready.done():
                    ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:  # the connection's own task: report, never propagate
            why = _reason(exc)
            if not ready.done() and isinstance(exc, asyncio.CancelledError):
                ready.cancel()
            elif not ready.done():
                ready.set_exception(McpError(why))
            elif not isinstance(exc, asyncio.CancelledError):
                self.error = f"the connection broke: {why}"
        finally:
            self.client = None

    async def start(self) -> None:
        """Connect and list the tools; raises :class:`McpError` (with the reason) on failure."""
        self.error, self._broken, self._closed = None, False, False
        if self.config.command and self._stderr is None:
            # closed in close(); the server's stderr goes here so errors can quote its tail
            self._stderr = cast(
                TextIO,
                tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace"),  # noqa: SIM115
            )
        loop = self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._own(ready), name=f"mcp:{self.name}")
        try:
            await asyncio.wait_for(asyncio.shield(ready), self.config.startup_timeout)
        except TimeoutError:
            await self._halt()
            self.error = f"it did not start within {self.config.startup_timeout:g} s"
        except HanlinError as exc:
            await self._halt()
            self.error = exc.message
        except Exception as exc:  # e.g. ${VAR} unset raises ConfigError inside _target
            await self._halt()
            self.error = _reason(exc)
        if self.error is not None:
            raise McpError(
                f"MCP server '{self.name}' ({self.config.describe()}) is not available: "
                f"{self.error}{self.stderr_tail(' — its stderr: ')}",
                hint=f"check [mcpServers.{self.name}] in hanlin.toml and that "
                f"`{self.config.describe()}` works on its own",
            )

    async def _halt(self) -> None:
        """Stop the connection's task: politely, then by cancelling it."""
        task, self._task = self._task, None
        if self._stop is not None:
            self._stop.set()
        if task is None:
            return
        # a connection that never got going is stuck in the handshake: cancel it at once
        polite = 10.0 if self.client is not None else 0.0
        try:
            await asyncio.wait_for(asyncio.shield(task), polite)
        except asyncio.CancelledError:  # our caller is being cancelled: stop it, pass that on
            task.cancel()
            raise
        except Exception:  # TimeoutError: still closing (or stuck) — cancel it
            task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 5.0)
        self.client = None

    async def close(self) -> None:
        self._closed = True
        await self._halt()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @property
    def alive(self) -> bool:
        task = self._task
        return self.client is not None and not self._broken and task is not None and not task.done()

    def stderr_tail(self, prefix: str = "", limit: int = 600) -> str:
        """The last lines the server wrote to stderr (stdio servers), prefixed; '' if none."""
        if self._stderr is None or self._stderr.closed:
            return ""
        with contextlib.suppress(OSError, ValueError):
            fd = self._stderr.fileno()
            size = os.fstat(fd).st_size
            raw = os.pread(fd, limit, max(0, size - limit)).decode("utf-8", "replace").strip()
            return f"{prefix}{raw}" if raw else ""
        return ""

    async def session(self) -> Client:
        """The live client, restarting a dead server first (raises :class:`McpError`)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.alive:
                assert self.client is not None
                return self.client
            if self._closed:
                raise McpError(
                    f"the connection to MCP server '{self.name}' was closed",
                    hint="use the toolset's tools inside its `async with` block",
                )
            if self.restarts >= self.max_restarts:
                raise McpError(
                    f"MCP server '{self.name}' is not available: "
                    f"{self.error or 'it stopped'} (restarted {self.restarts} times already)"
                    f"{self.stderr_tail(' — its stderr: ')}",
                    hint=f"fix the server ({self.config.describe()}) and start the agent again",
                )
            self.restarts += 1
            await self._halt()
            await self.start()
            assert self.client is not None
            return self.client

    def _lost(self, why: str) -> None:
        self.error, self._broken = why, True
        if self._stop is not None:
            self._stop.set()  # its task ends; the next call restarts the server

    # -- requests -------------------------------------------------------------------------------
    async def _home(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Await ``coro`` on the loop that owns the connection (an agent may run on another
        one, e.g. the gateway's thread under ``Agent.run``); that loop must not be blocked."""
        home = self._loop
        if home is None or home is asyncio.get_running_loop():
            return await coro
        if home.is_closed() or not home.is_running():
            coro.close()
            raise McpError(
                f"the MCP toolset holding '{self.name}' is closed (its event loop ended)",
                hint="use the toolset's tools inside its `async with` block",
            )
        future = asyncio.run_coroutine_threadsafe(coro, home)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout + 10)
        finally:
            future.cancel()

    async def call_tool(self, tool: str, arguments: dict[str, Any], timeout: float) -> ToolResult:
        """Call a tool; every failure becomes an error :class:`ToolResult`, never an exception.
        The call is a client span (``tools/call {tool}``, by the MCP semantic conventions)."""
        attrs = {"mcp.method.name": "tools/call", TOOL_NAME: tool, "hanlin.mcp.server": self.name}
        with spans.span(f"tools/call {tool}", attrs=attrs, kind=SpanKind.CLIENT) as sp:
            spans.record(sp, TOOL_ARGUMENTS, arguments)
            try:
                result = await self._home(self._call_tool(tool, arguments, timeout), timeout)
            except (McpError, TimeoutError) as exc:
                why = exc.message if isinstance(exc, McpError) else "no answer"
                result = ToolResult(f"{tool} cannot run: {why}", True)
            spans.record(sp, TOOL_RESULT, result.content)
            if result.is_error:
                spans.fail(sp, RuntimeError(result.content[:500]))
            return result

    async def _call_tool(self, tool: str, arguments: dict[str, Any], timeout: float) -> ToolResult:
        label = f"MCP server '{self.name}'"
        try:
            client = await self.session()
        except McpError as exc:
            return ToolResult(f"{tool} cannot run: {exc.message}", True)
        try:
            result = await asyncio.wait_for(client.call_tool(tool, arguments), timeout)
        except TimeoutError:
            return ToolResult(
                f"{tool} timed out: {label} did not answer within {timeout:g} s", True
            )
        except MCPError as exc:
            if exc.code == mt.CONNECTION_CLOSED:
                self._lost("it closed the connection")
                return ToolResult(
                    f"{tool} failed: {label} closed the connection during the call (it stopped "
                    f"or crashed){self.stderr_tail('; its stderr: ')}. It is restarted on the "
                    "next call; the call may or may not have taken effect",
                    True,
                )
            return ToolResult(
                f"{tool} failed: {label} answered with an error: {_reason(exc)}", True
            )
        except Exception as exc:  # a malformed result, a broken transport
            if not self.alive:
                self._lost(_reason(exc))
            return ToolResult(f"{tool} failed: {label}: {_reason(exc)}", True)
        self.restarts = 0  # it works again: the restart budget is for failures in a row
        text = result_text(result)
        data = result.structured_content
        return ToolResult(text, result.is_error, data if data is not None else text)

    async def request(self, what: str, coro_fn: Any) -> Any:
        """Run ``coro_fn(client)`` with the timeout; failures raise :class:`McpError`."""
        try:
            return await self._home(self._request(what, coro_fn), self.config.timeout)
        except TimeoutError:
            raise McpError(f"MCP server '{self.name}' did not answer {what}") from None

    async def _request(self, what: str, coro_fn: Any) -> Any:
        client = await self.session()
        try:
            return await asyncio.wait_for(coro_fn(client), self.config.timeout)
        except TimeoutError:
            raise McpError(
                f"MCP server '{self.name}' did not answer {what} within {self.config.timeout:g} s",
                hint=f"raise timeout in [mcpServers.{self.name}], or check the server",
            ) from None
        except MCPError as exc:
            if exc.code == mt.CONNECTION_CLOSED:
                self._lost("it closed the connection")
            raise McpError(
                f"MCP server '{self.name}' refused {what}: {_reason(exc)}",
                hint="check the name or URI against the server's list",
            ) from None


@dataclass(slots=True)
class _OwnedHttpTransport:
    transport: Any
    http: Any


@dataclass(slots=True)
class McpTool(AgentTool):
    """An MCP server's tool as a Hanlin tool: arguments checked against its JSON schema."""

    server: str = ""
    remote_name: str = ""
    connection: McpConnection | None = field(default=None, repr=False)

    def _arguments(self, arguments: dict[str, Any] | str) -> dict[str, Any]:
        if isinstance(arguments, str):
            arguments = json.loads(arguments) if arguments.strip() else {}
        if not isinstance(arguments, dict):
            raise ValueError("arguments must be a JSON object")
        problem = schema_errors(self.parameters, arguments)
        if problem:
            raise ValueError(problem)
        return arguments

    def validate(self, arguments: dict[str, Any] | str) -> BaseModel:
        return self.args_model.model_validate(self._arguments(arguments))

    async def run(self, arguments: dict[str, Any] | str) -> ToolResult:
        try:
            args = self._arguments(arguments)
        except ValueError as exc:
            return ToolResult(f"invalid arguments for {self.name}: {exc}", True)
        assert self.connection is not None
        return await self.connection.call_tool(self.remote_name, args, self.timeout or 60.0)


__all__ = ["McpConnection", "McpError", "McpTool"]

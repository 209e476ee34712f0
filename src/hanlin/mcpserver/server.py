"""Hanlin as an MCP server (``hanlin mcp serve``): knowledge-base search / ask / ingest, the
registered agent tools and each valid workflow (``workflow_<name>``, :mod:`.workflows`) as
tools, knowledge-base documents as resources
(``hanlin://kb/<name>/doc/<id>``), and the RAG prompt templates as prompts.

The handlers are thin: they check the caller's scopes and call the same library functions as
the CLI and the HTTP API. Hanlin's own tools are typed functions made tools by
:func:`~hanlin.agents.tools.base.tool`, as agents' tools are: their signatures are the schema
MCP clients see. Over HTTP the caller is the API key that :mod:`.http` verified
(scopes as for ``hanlin serve``: ``kb:read`` to search, ask and read documents, ``kb:write`` to
ingest, ``workflows`` to run workflows, ``chat`` for the other tools); over stdio the caller is
the local user and may do everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import mcp_types as mt
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field

from hanlin import __version__
from hanlin.access.auth import Principal
from hanlin.access.caller import LOCAL, Access, acting_as, current
from hanlin.agents.mcp.convert import schema_errors
from hanlin.agents.tools.base import AgentTool, tool
from hanlin.config import Settings
from hanlin.errors import HanlinError
from hanlin.mcpserver.kb_service import KbService, doc_uri, dumps, parse_doc_uri
from hanlin.mcpserver.workflows import PREFIX, WorkflowTools
from hanlin.prompts import prompt_library
from hanlin.prompts.base import PRODUCTION, check_label
from hanlin.rag.templates import BundledTemplate, Language, Templates, bundled_templates

RESOURCE_NOT_FOUND = -32002
PAGE = 200


class UploadedFile(BaseModel):
    """A file sent by its content."""

    name: str = Field(description="file name with extension, e.g. a.md")
    content: str
    encoding: Literal["text", "base64"] = "text"


Items = Annotated[Sequence[str], Field(max_length=100)]
Files = Annotated[Sequence[UploadedFile], Field(max_length=100)]


@dataclass(slots=True)
class _Tool:
    """A tool as this server offers it: the MCP definition, the scope a caller needs and how
    a call runs (inside the caller's :func:`acting_as`)."""

    spec: mt.Tool
    scope: str | None
    run: Callable[[dict[str, Any]], Awaitable[str]]
    #: seconds before the caller gets an error result (the work itself may go on in a thread)
    timeout: float


def _principal(ctx: ServerRequestContext[Any, Any]) -> Principal | None:
    request = ctx.request
    scope = getattr(request, "scope", None)
    return scope.get("hanlin.principal") if isinstance(scope, dict) else None


def _access(caller: Principal | None) -> Access:
    """Over stdio there is no principal: the local user, who may do everything."""
    return LOCAL if caller is None else caller.access


def _allowed(caller: Principal | None, scope: str | None, kb: str | None = None) -> str | None:
    """Why ``caller`` may not do this (None when it may)."""
    if caller is None:
        return None
    if scope is not None and not caller.can(scope):
        return f"this API key lacks the scope '{scope}' (create one with --scope {scope})"
    if kb is not None and not caller.can_kb(kb):
        return f"this API key may not use the knowledge base '{kb}'"
    return None


class HanlinMcp:
    """The MCP server's state: knowledge bases, agent tools, prompts. :attr:`server` is the
    SDK's low-level :class:`~mcp.server.Server` to run on any transport."""

    def __init__(
        self,
        settings: Settings,
        *,
        tools: Sequence[AgentTool] = (),
        knowledge_bases: list[str] | None = None,
        allow_paths: bool = False,
        model: str | None = None,
    ) -> None:
        self.settings = settings
        self.kbs = KbService(settings, knowledge_bases, allow_paths=allow_paths)
        self.model = model
        self.tools: dict[str, _Tool] = {}
        self.workflows = WorkflowTools(settings)
        self._kb_tools()
        for t in tools:
            self._agent_tool(t)
        self.server: Server[Any] = Server(
            "hanlin",
            version=__version__,
            title="Hanlin",
            instructions="Search and ask Hanlin's knowledge bases (kb_list, kb_search, kb_ask), "
            "add documents (kb_add) and read them as hanlin://kb/<name>/doc/<id> resources; "
            "run workflows (workflow_<name>).",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_completion=self._complete,
            on_subscribe_resource=self._subscribe,
            on_unsubscribe_resource=self._unsubscribe,
        )
        # logging/setLevel is accepted (the server sends no log notifications to filter);
        # registered after construction, as the SDK warns about the deprecated constructor arg
        self.server.add_request_handler("logging/setLevel", mt.SetLevelRequestParams, self._level)
        self._subscribers: dict[str, list[Any]] = {}

    # -- tools ----------------------------------------------------------------------------------
    def _add(
        self,
        tool: AgentTool,
        scope: str | None,
        run: Callable[[dict[str, Any]], Awaitable[str]],
        *,
        read_only: bool = True,
        open_world: bool = False,
        timeout: float,
    ) -> None:
        hints = mt.ToolAnnotations(
            read_only_hint=read_only,
            destructive_hint=False if not read_only else None,
            open_world_hint=open_world,
        )
        schema = tool.parameters or {"type": "object", "properties": {}}
        spec = mt.Tool(
            name=tool.name, description=tool.description, input_schema=schema, annotations=hints
        )
        self.tools[tool.name] = _Tool(spec, scope, run, timeout)

    def _own(self, tool: AgentTool, scope: str) -> None:
        """Register one of Hanlin's own tools: its errors (:class:`HanlinError`) reach the
        caller with their hints, and its ``@tool`` timeout is the call's."""

        async def run(args: dict[str, Any]) -> str:
            try:
                parsed = tool.validate(args)
            except ValueError as exc:
                raise _ToolFailed(f"invalid arguments for {tool.name}: {exc}") from None
            text: str = await tool.fn(**{k: getattr(parsed, k) for k in type(parsed).model_fields})
            return text

        effects = tool.side_effects
        self._add(
            tool,
            scope,
            run,
            read_only="writes" not in effects,
            open_world="network" in effects,
            timeout=tool.timeout or 600.0,
        )

    def _kb_tools(self) -> None:
        kbs = self.kbs

        @tool(name="kb_list", timeout=120.0)
        async def kb_list() -> str:
            """List the knowledge bases this server serves."""
            return dumps([n for n in kbs.names() if current().can_kb(n)])

        @tool(name="kb_search", timeout=120.0)
        async def kb_search(
            kb: str,
            query: str,
            k: Annotated[int, Field(ge=1, le=50)] = 5,
            mode: Literal["hybrid", "dense", "keyword"] = "hybrid",
        ) -> str:
            """Search a knowledge base (hybrid keyword + vector search); returns the best
            passages with their sources.

            Args:
                kb: the knowledge base's name (see kb_list)
                query: what to look for
            """
            hits = await kbs.search(kb, query, k, mode)
            return dumps(hits) if hits else f"no results in '{kb}' for {query!r}"

        @tool(name="kb_ask", side_effects=("network",), timeout=600.0)
        async def kb_ask(
            kb: str,
            question: str,
            mode: Literal["auto", "generative", "extractive"] = "auto",
            model: str | None = None,
        ) -> str:
            """Answer a question from a knowledge base; the answer cites its sources as [n].

            Args:
                kb: the knowledge base's name (see kb_list)
                model: gateway model (optional)
            """
            who = current()  # choosing the model needs the chat scope (RAG checks)
            # the server's --model is the operator's choice: kb:read is enough for it
            with acting_as(who.granting("chat") if self.model and not model else who):
                answer = await kbs.ask(kb, question, model or self.model, mode)
            return dumps(answer)

        async def add(kb: str, urls: Items, files: Files, paths: Items) -> str:
            uploads = [f.model_dump() for f in files]
            out = await kbs.add(kb, list(urls), uploads, list(paths))
            await self._changed(kb)
            return dumps(out)

        @tool(name="kb_add", side_effects=("writes", "network"), timeout=3600.0)
        async def kb_add(kb: str, urls: Items = (), files: Files = ()) -> str:
            """Add documents to a knowledge base now: URLs (fetched through the SSRF guard)
            and file contents.

            Args:
                kb: the knowledge base's name (see kb_list)
            """
            return await add(kb, urls, files, ())

        @tool(name="kb_add", side_effects=("writes", "network"), timeout=3600.0)
        async def kb_add_local(
            kb: str, urls: Items = (), files: Files = (), paths: Sequence[str] = ()
        ) -> str:
            """Add documents to a knowledge base now: URLs (fetched through the SSRF guard)
            and file contents, or local paths.

            Args:
                kb: the knowledge base's name (see kb_list)
                paths: files, folders or globs on this machine
            """
            return await add(kb, urls, files, paths)

        for read in (kb_list, kb_search, kb_ask):
            self._own(read, "kb:read")
        self._own(kb_add_local if kbs.allow_paths else kb_add, "kb:write")

    def _agent_tool(self, tool: AgentTool) -> None:
        async def run(args: dict[str, Any]) -> str:
            result = await tool.run(args)
            if result.is_error:
                raise _ToolFailed(result.content)
            return result.content

        effects = tool.side_effects
        self._add(
            tool,
            "chat" if effects <= {"read_only"} else "admin",
            run,
            read_only=effects <= {"read_only"},
            open_world="network" in effects,
            timeout=(tool.timeout or 600.0) + 5,
        )

    async def _all_tools(self) -> dict[str, _Tool]:
        """The registered tools, then one per valid workflow (read afresh: files change)."""
        found = dict(self.tools)
        for name, flow in (await self.workflows.tools()).items():
            if name in found:
                continue

            async def run(args: dict[str, Any], workflow: str = flow.workflow) -> str:
                return await self.workflows.call(workflow, args)

            found[name] = _Tool(flow.spec, "workflows", run, self.workflows.timeout + 5)
        return found

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: mt.PaginatedRequestParams | None
    ) -> mt.ListToolsResult:
        caller = _principal(ctx)
        tools = await self._all_tools()
        return mt.ListToolsResult(
            tools=[t.spec for t in tools.values() if _allowed(caller, t.scope) is None]
        )

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: mt.CallToolRequestParams
    ) -> mt.CallToolResult:
        tool = self.tools.get(params.name)
        if tool is None and params.name.startswith(PREFIX):
            tool = (await self._all_tools()).get(params.name)
        if tool is None:
            raise MCPError(mt.INVALID_PARAMS, f"unknown tool '{params.name}'")
        args = dict(params.arguments or {})
        caller = _principal(ctx)
        kb = args.get("kb") if isinstance(args.get("kb"), str) else None
        problem = schema_errors(tool.spec.input_schema, args) or _allowed(caller, tool.scope, kb)
        if problem:
            return _error(f"{params.name}: {problem}")
        try:
            with acting_as(_access(caller)):  # the library checks the caller's access too
                text = await asyncio.wait_for(tool.run(args), tool.timeout)
        except TimeoutError:
            return _error(f"{params.name} did not finish within {tool.timeout:g} s")
        except _ToolFailed as exc:
            return _error(str(exc))
        except HanlinError as exc:
            return _error(exc.message + (f" ({exc.hint})" if exc.hint else ""))
        except Exception as exc:
            return _error(f"{params.name} failed: {type(exc).__name__}: {exc}")
        return mt.CallToolResult(content=[mt.TextContent(text=text)])

    # -- resources ------------------------------------------------------------------------------
    async def _list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: mt.PaginatedRequestParams | None
    ) -> mt.ListResourcesResult:
        caller = _principal(ctx)
        if _allowed(caller, "kb:read"):
            return mt.ListResourcesResult(resources=[])
        found: list[mt.Resource] = []
        for name in self.kbs.names():
            if caller is not None and not caller.can_kb(name):
                continue
            with acting_as(_access(caller)):
                docs = await self.kbs.documents(name)
            for d in docs:
                found.append(
                    mt.Resource(
                        uri=doc_uri(name, d["id"]),
                        name=f"{name}: {d['title'] or d['doc']}",
                        description=f"document {d['doc']} in knowledge base '{name}' "
                        f"(source: {d['source']})",
                        mime_type="text/plain",
                        size=d["chars"],
                    )
                )
        cursor = params.cursor if params else None
        start = int(cursor) if cursor and cursor.isdigit() else 0
        page = found[start : start + PAGE]
        more = str(start + PAGE) if start + PAGE < len(found) else None
        return mt.ListResourcesResult(resources=page, next_cursor=more)

    async def _list_templates(
        self, ctx: ServerRequestContext[Any, Any], params: mt.PaginatedRequestParams | None
    ) -> mt.ListResourceTemplatesResult:
        template = mt.ResourceTemplate(
            uri_template="hanlin://kb/{kb}/doc/{id}",
            name="knowledge-base document",
            description="the text of a document stored in a Hanlin knowledge base",
            mime_type="text/plain",
        )
        return mt.ListResourceTemplatesResult(resource_templates=[template])

    async def _read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: mt.ReadResourceRequestParams
    ) -> mt.ReadResourceResult:
        uri = str(params.uri)
        try:
            kb, doc_id = parse_doc_uri(uri)
            self.kbs.check(kb)
            problem = _allowed(_principal(ctx), "kb:read", kb)
            if problem:
                raise MCPError(mt.INVALID_REQUEST, problem)
            with acting_as(_access(_principal(ctx))):
                meta, text = await self.kbs.read(kb, doc_id)
        except HanlinError as exc:
            raise MCPError(RESOURCE_NOT_FOUND, exc.message, {"uri": uri}) from None
        return mt.ReadResourceResult(
            contents=[mt.TextResourceContents(uri=uri, mime_type="text/plain", text=text)],
            _meta={"hanlin/document": meta},
        )

    async def _subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: mt.SubscribeRequestParams
    ) -> mt.EmptyResult:
        """Subscribers hear ``notifications/resources/updated`` after kb_add changes the
        document's knowledge base."""
        sessions = self._subscribers.setdefault(str(params.uri), [])
        if ctx.session not in sessions:
            sessions.append(ctx.session)
        return mt.EmptyResult()

    async def _unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: mt.UnsubscribeRequestParams
    ) -> mt.EmptyResult:
        sessions = self._subscribers.get(str(params.uri), [])
        if ctx.session in sessions:
            sessions.remove(ctx.session)
        return mt.EmptyResult()

    async def _changed(self, kb: str) -> None:
        prefix = f"hanlin://kb/{kb}/"
        for uri, sessions in self._subscribers.items():
            if not uri.startswith(prefix):
                continue
            for session in list(sessions):
                try:
                    await session.send_resource_updated(uri)
                except Exception:  # the client went away: forget it
                    sessions.remove(session)

    async def _level(
        self, ctx: ServerRequestContext[Any, Any], params: mt.SetLevelRequestParams
    ) -> mt.EmptyResult:
        return mt.EmptyResult()

    # -- prompts --------------------------------------------------------------------------------
    @staticmethod
    def _prompts() -> dict[str, BundledTemplate]:
        """The RAG prompt templates, as prompts named ``rag_<template>``."""
        return {f"rag_{t.name}": t for t in bundled_templates()}

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: mt.PaginatedRequestParams | None
    ) -> mt.ListPromptsResult:
        prompts = []
        for name, found in self._prompts().items():
            args = [mt.PromptArgument(name=f, required=True) for f in found.fields]
            if found.languages:
                args.append(
                    mt.PromptArgument(
                        name="lang",
                        description=f"one of {', '.join(found.languages)} (default en)",
                    )
                )
            args.append(
                mt.PromptArgument(
                    name="label",
                    description="the prompt registry label to read (default production)",
                )
            )
            prompts.append(
                mt.Prompt(
                    name=name,
                    description=f"Hanlin's RAG prompt template '{found.name}', the version "
                    "its registry label points at (`hanlin prompt ls`)",
                    arguments=args,
                )
            )
        return mt.ListPromptsResult(prompts=prompts)

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: mt.GetPromptRequestParams
    ) -> mt.GetPromptResult:
        found = self._prompts().get(params.name)
        if found is None:
            raise MCPError(mt.INVALID_PARAMS, f"unknown prompt '{params.name}'")
        args = dict(params.arguments or {})
        missing = [f for f in found.fields if f not in args]
        if missing:
            raise MCPError(mt.INVALID_PARAMS, f"missing prompt arguments: {', '.join(missing)}")
        lang = args.get("lang", "en")
        if found.languages and lang not in (*found.languages, "zh-Hant"):
            raise MCPError(mt.INVALID_PARAMS, f"lang must be one of {', '.join(found.languages)}")
        label = args.get("label") or PRODUCTION
        try:
            check_label(label)
        except HanlinError as exc:
            raise MCPError(mt.INVALID_PARAMS, exc.message) from None
        values = {f: args[f] for f in found.fields}
        text = await asyncio.to_thread(self._prompt_text, found.name, lang, label, values)
        return mt.GetPromptResult(
            description=f"Hanlin RAG prompt '{found.name}'",
            messages=[mt.PromptMessage(role="user", content=mt.TextContent(text=text))],
        )

    def _prompt_text(self, name: str, lang: str, label: str, values: dict[str, str]) -> str:
        """A RAG template from the prompt registry at ``label``, filled, as an answer reads it
        (blocking: the registry may be read)."""
        library = prompt_library(self.settings)
        language: Language = lang if lang in ("zh", "zh-Hant") else "en"  # type: ignore[assignment]
        templates = Templates.read(library, language, label, self.settings.home)
        return templates.render(name, **values)

    async def _complete(
        self, ctx: ServerRequestContext[Any, Any], params: mt.CompleteRequestParams
    ) -> mt.CompleteResult:
        """Completions for prompt ``lang`` values and ``kb`` names."""
        value, arg = params.argument.value, params.argument.name
        options: Sequence[str] = []
        if isinstance(params.ref, mt.PromptReference) and arg == "lang":
            found = self._prompts().get(params.ref.name)
            options = found.languages if found else ()
        elif arg in ("kb", "name"):
            caller = _principal(ctx)
            options = [n for n in self.kbs.names() if caller is None or caller.can_kb(n)]
        hits = [o for o in options if o.startswith(value)]
        return mt.CompleteResult(
            completion=mt.Completion(values=hits[:100], total=len(hits), has_more=len(hits) > 100)
        )


class _ToolFailed(Exception):
    """A registered tool returned an error result."""


def _error(text: str) -> mt.CallToolResult:
    return mt.CallToolResult(content=[mt.TextContent(text=text)], is_error=True)


def build_server(
    settings: Settings | None = None,
    *,
    tools: Sequence[AgentTool] | None = None,
    knowledge_bases: list[str] | None = None,
    allow_paths: bool = False,
) -> HanlinMcp:
    """The MCP server over ``settings`` (``load_settings()``); ``tools`` defaults to the
    ``calculator`` and ``current_time`` built-ins."""
    from hanlin.agents.tools import calculator, current_time
    from hanlin.config import load_settings

    return HanlinMcp(
        settings or load_settings(),
        tools=[calculator(), current_time()] if tools is None else tools,
        knowledge_bases=knowledge_bases,
        allow_paths=allow_paths,
    )


__all__ = ["HanlinMcp", "build_server"]

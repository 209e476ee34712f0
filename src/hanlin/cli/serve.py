"""``hanlin serve``: the HTTP API (OpenAI-compatible + knowledge bases) and the web UI."""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from hanlin.config import load_settings
from hanlin.errors import ConfigError, NotFoundError, did_you_mean
from hanlin.knowledge.kb import KnowledgeBase

err = Console(stderr=True)


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="address to bind (default server.host, 127.0.0.1); others need keys"),
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default server.port, 8321)")] = None,
    kb: Annotated[
        list[str] | None,
        typer.Option("--kb", help="serve only this knowledge base (repeat for more)"),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
) -> None:
    """Serve the API and the web UI. Without configuration: http://127.0.0.1:8321, no keys."""
    import uvicorn

    from hanlin.access.auth import keys_required
    from hanlin.server.app import create_app

    settings = load_settings()
    server = settings.server.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    settings = settings.model_copy(update={"server": server})
    existing = KnowledgeBase.names(settings)
    for name in kb or []:
        if name not in existing:
            raise NotFoundError(
                f"no knowledge base named '{name}'",
                hint=did_you_mean(name, existing)
                + f"create it with `hanlin kb create {name}`; existing: "
                + (", ".join(existing) or "none"),
            )
    app = create_app(settings, knowledge_bases=kb or None)
    sock = bind(server.host, server.port)  # before the banner: a busy port is an error
    shown = "127.0.0.1" if server.host in ("0.0.0.0", "::") else server.host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{server.port}"
    served = kb or existing
    model = f"kb:{served[0]}" if served else settings.models.default
    auth = ' -H "Authorization: Bearer $HANLIN_API_KEY"'
    needs_key = keys_required(server.host, server.require_keys)
    err.print(f"[bold green]Hanlin[/] serving on [bold]{escape(url)}[/]  (web UI at /)")
    if server.host != shown:
        err.print(f"  listening on {escape(server.host)} (all interfaces): API keys required")
    elif needs_key:
        err.print("  API keys required (server.require_keys)")
    err.print(
        f"  try: curl {url}/v1/chat/completions{auth if needs_key else ''} "
        "-H 'Content-Type: application/json' "
        f"""-d '{{"model": "{model}", "messages": [{{"role": "user", "content": "hello"}}]}}'""",
        highlight=False,
        soft_wrap=True,
    )
    err.print("  stop with Ctrl-C", style="dim")
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=access_log,
        timeout_graceful_shutdown=3,  # open event streams (the UI's) end after this
    )
    uvicorn.Server(config).run(sockets=[sock])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a busy port or a bad address is a
    :class:`ConfigError` that says what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use (another `hanlin serve`?)",
                hint=f"stop the other server, or pick another port: `hanlin serve --port "
                f"{port + 1}`",
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="check server.host / --host (an address of this machine) and --port",
        ) from None
    sock.set_inheritable(True)
    return sock

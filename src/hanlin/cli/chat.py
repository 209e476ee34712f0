"""``hanlin chat``: one prompt to any model through the gateway, streamed to the terminal.

The answer goes to stdout as plain text (no markup, flushed as it arrives) so pipes get clean
text; the one-line footer with tokens and cost goes to stderr. ``--json`` prints one object for
scripts instead.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape

from hanlin.config import load_settings
from hanlin.errors import HanlinError, InvalidInputError
from hanlin.models.catalog import Route
from hanlin.models.gateway import Gateway
from hanlin.models.keys import Secret, resolve_key
from hanlin.models.types import ChatResponse, Cost, Message, TextDelta

err = Console(stderr=True)

StdinState = Literal["tty", "data", "none"]


def stdin_state() -> StdinState:
    """Whether stdin is a terminal, a pipe or file with data to read, or nothing usable.

    Only pipes and regular files count as data: a socket or device left open by a parent
    process would make ``read()`` wait forever.
    """
    stream = sys.stdin
    if stream is None:
        return "none"
    try:
        if stream.isatty():
            return "tty"
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):  # io.UnsupportedOperation is both: a stream without an fd
        return "data" if stream.readable() else "none"
    return "data" if stat.S_ISFIFO(mode) or stat.S_ISREG(mode) else "none"


def read_prompt(prompt: str | None) -> str:
    """The prompt from the argument and/or stdin.

    ``None`` or ``-`` reads the whole prompt from stdin (a terminal only with ``-``, ended by
    Ctrl-D). A prompt given with piped stdin gets the piped text appended as context after it.
    Raises :class:`InvalidInputError` when there is no prompt.
    """
    state = stdin_state()
    if prompt is None and state == "tty":
        raise InvalidInputError(
            "no prompt given",
            hint='pass one (`hanlin chat "your question"`), pipe one in '
            "(`echo question | hanlin chat`), or use `-` to type it and end with Ctrl-D",
        )
    if prompt is None or prompt == "-":
        if state == "tty":
            err.print("[dim]reading the prompt from the terminal; end it with Ctrl-D[/]")
        text = sys.stdin.read() if state != "none" else ""
    else:
        text = prompt
        piped = sys.stdin.read() if state == "data" else ""
        if piped.strip():
            text = f"{prompt}\n\n{piped}"
    if not text.strip():
        raise InvalidInputError("the prompt is empty", hint="give a prompt or pipe text in")
    return text


def money(amount: float) -> str:
    """An amount with about three significant digits, without exponent notation."""
    if amount == 0:
        return "0"
    if amount >= 0.01:
        return f"{amount:.4f}".rstrip("0").rstrip(".")
    digits = -math.floor(math.log10(amount)) + 2
    return f"{amount:.{digits}f}".rstrip("0")


def cost_dict(cost: Cost | None) -> dict[str, float] | None:
    return None if cost is None else {"usd": cost.usd, "cny": cost.cny}


def response_dict(resp: ChatResponse, model: str) -> dict[str, Any]:
    """What ``--json`` prints: the answer, who served it, usage, cost and latency."""
    u = resp.usage
    return {
        "text": resp.text,
        "model": model,
        "served_by": resp.served_by,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in resp.tool_calls
        ],
        "usage": {
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "cached_tokens": u.cached_tokens,
            "total_tokens": u.total_tokens,
        },
        "cost": cost_dict(resp.cost),
        "finish_reason": resp.finish_reason,
        "latency_ms": round(resp.latency_ms, 1),
    }


def footer(resp: ChatResponse, model: str) -> str:
    """``model · tokens · cost · seconds``, for stderr after an answer."""
    who = resp.served_by or model
    if model != who:
        who = f"{model} → {who}"
    u = resp.usage
    tokens = f"{u.prompt_tokens} in / {u.completion_tokens} out tokens"
    if u.cached_tokens:
        tokens += f" ({u.cached_tokens} cached)"
    cost = (
        "cost unknown (set [models.prices] in hanlin.toml)"
        if resp.cost is None
        else f"${money(resp.cost.usd)} / ¥{money(resp.cost.cny)}"
    )
    parts = [who, tokens, cost, f"{resp.latency_ms / 1000:.2f} s"]
    if resp.finish_reason not in ("stop", "tool_calls"):
        parts.append(f"finish: {resp.finish_reason}")
    if resp.cached:
        parts.append("from cache")
    return " · ".join(parts)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _print_tool_calls(resp: ChatResponse) -> None:
    for call in resp.tool_calls:
        _write(f"[tool call] {call.name}({call.arguments})\n")


def chat(
    prompt: Annotated[
        str | None,
        typer.Argument(help="the prompt; omit or '-' to read it from stdin", show_default=False),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="PROVIDER/MODEL or an alias (default: models.default)"),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="a system prompt")] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", "-t", help="0–2; lower is more focused")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="stop after this many tokens")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print one JSON object (no streaming)")
    ] = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="print the answer when it is complete")
    ] = False,
) -> None:
    """Ask a model. Streams the answer; piped stdin is appended to the prompt as context.

    Examples: hanlin chat "hi" · hanlin chat -m deepseek/deepseek-chat "…" ·
    git diff | hanlin chat "review this diff" · hanlin chat --json "…" | jq .text
    """
    text = read_prompt(prompt)
    messages = [Message.system(system)] if system else []
    messages.append(Message.user(text))
    options: dict[str, Any] = {}
    if temperature is not None:
        options["temperature"] = temperature
    if max_tokens is not None:
        options["max_tokens"] = max_tokens

    gateway = Gateway(load_settings())
    try:
        route = gateway.resolve(model)
        name = route.name
        _note_base_model(gateway, name)
        try:
            if as_json or no_stream:
                resp = gateway.chat(messages, name, **options)
            else:
                resp = _stream(gateway, messages, name, options)
        except HanlinError as exc:
            redact(exc, _keys_of(gateway, route))
            raise
        if as_json:
            print(json.dumps(response_dict(resp, name), ensure_ascii=False, indent=2))
            return
        if no_stream:
            _write(resp.text if resp.text.endswith("\n") or not resp.text else resp.text + "\n")
            _print_tool_calls(resp)
        err.print(f"[dim]{escape(footer(resp, name))}[/]", highlight=False, soft_wrap=True)
    finally:
        gateway.close()


def _note_base_model(gateway: Gateway, name: str) -> None:
    """Say once, on stderr, that a base model will not answer like a chat model."""
    from hanlin.models.base_models import base_model_notice

    notice = base_model_notice(gateway.settings, name, resolve=gateway.resolve)
    if notice:
        err.print(f"[yellow]note:[/] {escape(notice)}", highlight=False, soft_wrap=True)


def _keys_of(gateway: Gateway, route: Route) -> list[str]:
    keys: list[str] = []
    for dep in route.deployments:
        try:
            secret = resolve_key(dep.endpoint, gateway.keys)
        except HanlinError:
            continue
        if secret is not None:
            keys.append(secret.reveal())
    return keys


def redact(exc: HanlinError, keys: list[str]) -> HanlinError:
    """The error with any API key masked: upstream error bodies sometimes echo the request."""
    for key in keys:
        if len(key) < 6:  # too short to search for without masking innocent text
            continue
        mask = Secret(key).masked
        exc.message = exc.message.replace(key, mask)
        if exc.hint:
            exc.hint = exc.hint.replace(key, mask)
        exc.args = tuple(a.replace(key, mask) if isinstance(a, str) else a for a in exc.args)
    return exc


def _stream(
    gateway: Gateway, messages: list[Message], name: str, options: dict[str, Any]
) -> ChatResponse:
    stream = gateway.stream(messages, name, **options)
    last = "\n"
    try:
        for event in stream:
            if isinstance(event, TextDelta) and event.text:
                _write(event.text)
                last = event.text[-1]
    except RuntimeError as exc:
        # Ctrl-C while a chunk is awaited: SyncChatStream's cleanup then closes an async
        # generator that is still running and raises RuntimeError over the interrupt.
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise
    finally:
        if last != "\n":  # end the line, also before an error message
            _write("\n")
    resp = stream.response
    if resp is None:  # the stream ended without its final bookkeeping
        resp = ChatResponse(text="", model=name)
    _print_tool_calls(resp)
    return resp

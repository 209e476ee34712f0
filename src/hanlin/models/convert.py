"""Conversions between OpenAI's wire format (dicts) and the gateway's types.

Used wherever OpenAI-shaped data comes in: the Python API's dict messages and the server's
``/v1/chat/completions``. Bad shapes raise :class:`InvalidInputError` naming the field.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from hanlin.errors import InvalidInputError
from hanlin.models.types import (
    AudioPart,
    ContentPart,
    FilePart,
    ImagePart,
    Message,
    Role,
    TextPart,
    ToolCall,
)

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",  # OpenAI's newer name for system
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
_DETAIL: dict[str, Literal["auto", "low", "high"]] = {"auto": "auto", "low": "low", "high": "high"}


def _bad(where: str, what: str) -> InvalidInputError:
    return InvalidInputError(f"{where}: {what}", hint="messages follow OpenAI's chat format")


def _content(raw: Any, where: str) -> str | list[ContentPart] | None:
    if raw is None or isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise _bad(where, "content must be a string or a list of parts")
    parts: list[ContentPart] = []
    for j, part in enumerate(raw):
        if not isinstance(part, dict):
            raise _bad(f"{where}.content[{j}]", "a part must be an object")
        kind = part.get("type")
        if kind == "text":
            parts.append(TextPart(str(part.get("text", ""))))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise _bad(f"{where}.content[{j}]", "image_url needs a url")
            detail = image.get("detail", "auto") if isinstance(image, dict) else "auto"
            parts.append(ImagePart(url, _DETAIL.get(str(detail), "auto")))
        elif kind == "file":
            parts.append(_file_part(part.get("file"), f"{where}.content[{j}]"))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            data = audio.get("data") if isinstance(audio, dict) else None
            fmt = audio.get("format") if isinstance(audio, dict) else None
            if not isinstance(data, str) or not data or not isinstance(fmt, str) or not fmt:
                raise _bad(f"{where}.content[{j}]", "input_audio needs data (base64) and format")
            parts.append(AudioPart(data, fmt))
        else:
            raise _bad(f"{where}.content[{j}]", f"unsupported part type {kind!r}")
    return parts


def _file_part(raw: Any, where: str) -> FilePart:
    if not isinstance(raw, dict):
        raise _bad(where, "a file part needs file: {file_data} or {file_id}")
    data, file_id, name = raw.get("file_data"), raw.get("file_id"), raw.get("filename")
    if not (isinstance(data, str) and data) and not (isinstance(file_id, str) and file_id):
        raise _bad(where, "a file part needs file.file_data (a data: URL) or file.file_id")
    return FilePart(
        data if isinstance(data, str) and data else None,
        file_id if isinstance(file_id, str) and file_id else None,
        name if isinstance(name, str) and name else None,
    )


def message_from_openai(raw: dict[str, Any], index: int = 0) -> Message:
    """One OpenAI-format message dict as a :class:`Message`."""
    where = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise _bad(where, "a message must be an object")
    raw_role = raw.get("role")
    role = _ROLES.get(raw_role) if isinstance(raw_role, str) else None
    if role is None:
        raise _bad(where, f"role must be one of system, user, assistant, tool (got {raw_role!r})")
    calls = None
    if raw.get("tool_calls"):
        calls = []
        for k, c in enumerate(raw["tool_calls"]):
            fn = c.get("function") if isinstance(c, dict) else None
            if not isinstance(fn, dict) or not fn.get("name"):
                raise _bad(f"{where}.tool_calls[{k}]", "needs function.name")
            args = fn.get("arguments", "{}")
            if not isinstance(args, str):
                args = json.dumps(args, ensure_ascii=False)
            calls.append(ToolCall(str(c.get("id") or f"call_{k}"), str(fn["name"]), args))
    if role == "tool" and not raw.get("tool_call_id"):
        raise _bad(where, "a tool message needs tool_call_id")
    return Message(
        role,
        _content(raw.get("content"), where),
        tool_calls=calls,
        tool_call_id=raw.get("tool_call_id"),
        name=raw.get("name"),
    )

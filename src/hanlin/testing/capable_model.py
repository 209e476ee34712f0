"""A stand-in for an instruction-following chat model behind an OpenAI-compatible API.

It does what a capable model is asked to: calls the tool that ``tool_choice`` or the prompt
names (arguments drawn from the prompt, shaped by the tool's schema), answers in the JSON that a
``response_format`` asks for, answers in words after a tool result, and honours ``stop`` and
``max_tokens``. Replies have the shapes of OpenAI's recorded answers (:mod:`.recordings`): ids,
``system_fingerprint``, ``refusal`` and ``annotations``, usage details, tool-call deltas, and a
separate usage chunk only when ``stream_options.include_usage`` asks for one.

Client test suites written for real providers (LangChain's standard tests) run against
``hanlin serve`` offline through it: ``UpstreamServer(FakeUpstream(responder=capable_reply))``.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from hanlin.testing.recordings import CREATED, TEXT, USAGE, openai_error
from hanlin.testing.upstream import Reply

_ID = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
_CALL_ID = "call_62136354"
_FINGERPRINT = "fp_44709d6fcb"
_QUOTED = re.compile(r"""['"‘“「]([^'"’”」]+)['"’”」]""")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
#: a run of capitalised words that does not open a sentence ("San Francisco", "Pirate")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w-]*(?:\s[A-Z][\w-]*)*")


def capable_reply(body: dict[str, Any]) -> Reply:
    """The reply a capable model would send to a ``/chat/completions`` body; a body OpenAI
    would refuse gets OpenAI's 400, so a gateway that mangles a request is caught here."""
    problem = invalid(body)
    if problem is not None:
        return openai_error(400, None, problem)
    messages: list[dict[str, Any]] = body.get("messages") or []
    last = messages[-1] if messages else {"role": "user", "content": ""}
    prompt = _text(last.get("content")) if last.get("role") == "user" else ""
    tool = _chosen_tool(body, prompt, last.get("role") == "tool")
    if tool is not None:
        args = _arguments(tool.get("parameters") or {}, _Prompt(prompt))
        return _tool_reply(body, str(tool["name"]), json.dumps(args, ensure_ascii=False))
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = fmt["json_schema"]["schema"]
        text = json.dumps(_instance(schema, schema, "value"), ensure_ascii=False)
    elif fmt.get("type") == "json_object":  # the prompt names the keys it wants
        keys = _QUOTED.findall(prompt) or ["answer"]
        text = json.dumps({k: f"the {k}" for k in keys}, ensure_ascii=False)
    elif last.get("role") == "tool":
        text = f"The tool answered: {_text(last.get('content'))}"
    else:
        text = TEXT
    return _text_reply(body, text)


# -- what OpenAI refuses ---------------------------------------------------------------------

_PARTS = {"text": "text", "image_url": "url", "file": None, "input_audio": "data"}


def invalid(body: dict[str, Any]) -> str | None:
    """Why OpenAI would answer this body with a 400, or None (the checks a mangled request
    trips: tool-call pairing, part shapes, tool and response-format schemas)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    pending: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            return f"messages[{i}].role: invalid value {role!r}"
        if pending and role != "tool":
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'. Missing: {sorted(pending)}"
            )
        if role == "tool":
            if m.get("tool_call_id") not in pending:
                return (
                    f"messages[{i}]: messages with role 'tool' must be a response to a "
                    "preceding message with 'tool_calls'"
                )
            pending.discard(m["tool_call_id"])
        pending |= {c.get("id") for c in m.get("tool_calls") or []}
        for j, part in enumerate(m.get("content") if isinstance(m.get("content"), list) else []):
            kind = part.get("type")
            if kind not in _PARTS:
                return f"messages[{i}].content[{j}].type: invalid value {kind!r}"
            inner = part.get(kind)
            key = _PARTS[kind]
            if kind == "file" and not (inner.get("file_data") or inner.get("file_id")):
                return f"messages[{i}].content[{j}].file: needs file_data or file_id"
            if key and not (part.get(key) if kind == "text" else (inner or {}).get(key)):
                return f"messages[{i}].content[{j}].{kind}: missing {key}"
    for k, tool in enumerate(body.get("tools") or []):
        fn = tool.get("function") or {}
        if tool.get("type") != "function" or not fn.get("name"):
            return f"tools[{k}]: needs type 'function' and function.name"
        if fn.get("strict") and (problem := _not_strict(fn.get("parameters") or {})):
            return f"Invalid schema for function '{fn['name']}': {problem}"
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        if not spec.get("name") or not isinstance(spec.get("schema"), dict):
            return "response_format.json_schema needs name and schema"
        if spec.get("strict") and (problem := _not_strict(spec["schema"])):
            return f"Invalid schema for response_format '{spec['name']}': {problem}"
    if body.get("stream_options") and not body.get("stream"):
        return "stream_options is only allowed when stream is true"
    return None


def _not_strict(schema: dict[str, Any], where: str = "()") -> str | None:
    """What strict mode (structured outputs) refuses in a schema, as OpenAI words it."""
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return (
                f"In context={where}, 'additionalProperties' is required to be supplied "
                "and to be false."
            )
        props = schema.get("properties") or {}
        missing = sorted(set(props) - set(schema.get("required") or []))
        if missing:
            return (
                f"In context={where}, 'required' is required to include every property "
                f"(missing {', '.join(missing)})."
            )
    children = [
        *(schema.get("properties") or {}).values(),
        *(schema.get("$defs") or {}).values(),
        *(schema.get("anyOf") or []),
    ]
    if isinstance(schema.get("items"), dict):
        children.append(schema["items"])
    for child in children:
        if isinstance(child, dict) and (problem := _not_strict(child, where + ".")):
            return problem
    return None


# -- what to do ------------------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def _chosen_tool(body: dict[str, Any], prompt: str, after_tool: bool) -> dict[str, Any] | None:
    tools = [t["function"] for t in body.get("tools") or [] if t.get("type") == "function"]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        return next((t for t in tools if t["name"] == wanted), None)
    named = next((t for t in tools if _mentions(prompt, str(t["name"]))), None)
    if named is None and len(tools) == 1 and "tool" in prompt.lower():
        named = tools[0]
    if choice == "required":
        return named or tools[0]
    return None if after_tool else named


def _mentions(prompt: str, name: str) -> bool:
    """Whether the prompt asks for this tool: by name, or by a telling word of it (weather)."""
    lower = prompt.lower()
    return name.lower() in lower or any(
        len(word) >= 4 and word in lower for word in name.lower().split("_")
    )


class _Prompt:
    """The values a prompt offers for arguments, each used once, in order."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.numbers = [float(n) for n in _NUMBER.findall(text)]
        self.strings = _QUOTED.findall(text) + _NAME.findall(text)

    def number(self) -> float:
        return self.numbers.pop(0) if self.numbers else 0.0

    def string(self) -> str:
        return self.strings.pop(0) if self.strings else self.text or "value"


def _arguments(schema: dict[str, Any], prompt: _Prompt) -> dict[str, Any]:
    props: dict[str, Any] = schema.get("properties") or {}
    return {name: _argument(spec, prompt) for name, spec in props.items()}


def _argument(spec: dict[str, Any], prompt: _Prompt) -> Any:
    kind = _kind(spec)
    if kind == "integer":
        return int(prompt.number())
    if kind == "number":
        return prompt.number()
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return _arguments(spec, prompt)
    return prompt.string()


def _kind(spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None:
        options = spec.get("anyOf") or spec.get("oneOf") or []
        kind = next((_kind(o) for o in options if o.get("type") != "null"), "string")
    return str(kind)


def _instance(schema: dict[str, Any], root: dict[str, Any], name: str) -> Any:
    """A value that fits a JSON schema, its strings saying what they are for."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        return _instance(target, root, name)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return _instance(next(o for o in options if o.get("type") != "null"), root, name)
    if "enum" in schema:
        return schema["enum"][0]
    kind = _kind(schema)
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: _instance(v, root, k) for k, v in props.items()}
    if kind == "array":
        return [_instance(schema.get("items") or {}, root, name)]
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    return str(schema.get("description") or f"the {name}")


# -- OpenAI's shapes -------------------------------------------------------------------------


def _usage(body: dict[str, Any], completion: str) -> dict[str, Any]:
    usage = copy.deepcopy(USAGE["openai"])
    prompt = sum(len(_text(m.get("content")).split()) + 4 for m in body.get("messages") or [])
    done = max(1, len(completion.split()))
    usage.update(prompt_tokens=prompt, completion_tokens=done, total_tokens=prompt + done)
    return usage


def _limited(body: dict[str, Any], text: str) -> tuple[str, str]:
    """(the text cut at a stop sequence or at max_tokens words, the finish reason)."""
    stops = body.get("stop") or []
    for stop in [stops] if isinstance(stops, str) else stops:
        if stop and stop in text:
            text = text[: text.index(stop)]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    words = re.findall(r"\S+\s*", text)
    if limit and len(words) > limit:
        return "".join(words[:limit]).rstrip(), "length"
    return text, "stop"


def _completion(body: dict[str, Any], message: dict[str, Any], finish: str, out: str) -> Reply:
    return Reply(
        json={
            "id": _ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": body.get("model", "gpt-4o-mini-2024-07-18"),
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": _usage(body, out),
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }
    )


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> Any:
    chunk: dict[str, Any] = {
        "id": _ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": body.get("model", "gpt-4o-mini-2024-07-18"),
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if (body.get("stream_options") or {}).get("include_usage"):
        chunk["usage"] = None
    return chunk


def _stream(body: dict[str, Any], chunks: list[Any], out: str) -> Reply:
    if (body.get("stream_options") or {}).get("include_usage"):
        last = _chunk(body, {})
        last["choices"], last["usage"] = [], _usage(body, out)
        chunks.append(last)
    events = [f"data: {json.dumps(c, ensure_ascii=False)}" for c in chunks]
    return Reply(sse=[*events, "data: [DONE]"])


def _text_reply(body: dict[str, Any], text: str) -> Reply:
    text, finish = _limited(body, text)
    if not body.get("stream"):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text,
            "refusal": None,
            "annotations": [],
        }
        return _completion(body, message, finish, text)
    chunks = [_chunk(body, {"role": "assistant", "content": "", "refusal": None})]
    chunks += [_chunk(body, {"content": piece}) for piece in re.findall(r"\s*\S+", text)]
    chunks.append(_chunk(body, {}, finish))
    return _stream(body, chunks, text)


def _tool_reply(body: dict[str, Any], name: str, arguments: str) -> Reply:
    call = {"id": _CALL_ID, "type": "function", "function": {"name": name, "arguments": arguments}}
    if not body.get("stream"):
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [call],
            "refusal": None,
            "annotations": [],
        }
        return _completion(body, message, "tool_calls", arguments)
    head = {"index": 0, **call, "function": {"name": name, "arguments": ""}}
    chunks = [_chunk(body, {"role": "assistant", "content": None, "tool_calls": [head]})]
    pieces = [arguments[i : i + 8] for i in range(0, len(arguments), 8)]
    chunks += [
        _chunk(body, {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces
    ]
    chunks.append(_chunk(body, {}, "tool_calls"))
    return _stream(body, chunks, arguments)

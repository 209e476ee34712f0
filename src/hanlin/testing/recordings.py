"""Response shapes recorded from real providers, for the fake upstream to replay.

Each shape keeps the fields and quirks the real API sends: OpenAI's separate usage chunk with
empty ``choices``; DeepSeek's usage on the finishing chunk with ``prompt_cache_hit_tokens``;
Qwen's empty-string ``id`` on follow-up tool-call deltas; Moonshot's usage inside the choice;
Zhipu's whole tool call in one delta; Anthropic's typed event stream. Identifiers and texts are
shortened; structure is as received.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hanlin.testing.upstream import Reply

CREATED = 1_741_569_952


def _sse(payloads: list[Any], *, done: bool = True) -> list[str]:
    out = [f"data: {json.dumps(p, ensure_ascii=False)}" for p in payloads]
    if done:
        out.append("data: [DONE]")
    return out


def _chunk(vendor: str, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> Any:
    choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    body: dict[str, Any] = {
        "id": _ID[vendor],
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": _MODEL[vendor],
        "system_fingerprint": "fp_44709d6fcb" if vendor != "qwen" else None,
        "choices": [choice],
    }
    if "choice_usage" in extra:  # Moonshot puts usage inside the choice
        choice["usage"] = extra.pop("choice_usage")
    body.update(extra)
    return body


_ID = {
    "openai": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "deepseek": "930c60df-bf64-41c9-a88e-3ec75f81e00e",
    "qwen": "chatcmpl-f7b1a5c2-9c35-9a4e-b5a6-0f0f2c6d6a11",
    "moonshot": "chatcmpl-67e7b1c6e5f9a0c1d2e3f4a5",
    "zhipu": "20250310153512c4d7a9e1f2b3c44d1a",
}
_MODEL = {
    "openai": "gpt-4o-mini-2024-07-18",
    "deepseek": "deepseek-chat",
    "qwen": "qwen-plus",
    "moonshot": "moonshot-v1-8k",
    "zhipu": "glm-4-plus",
}

# The usage block each vendor sends for prompt 19 / completion 10 / cached 0.
USAGE: dict[str, dict[str, Any]] = {
    "openai": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "deepseek": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0},
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 19,
    },
    "qwen": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
    "moonshot": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
    "zhipu": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
}

OPENAI_VENDORS = ("openai", "deepseek", "qwen", "moonshot", "zhipu")
TEXT_PIECES = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]
TEXT = "".join(TEXT_PIECES)
TOOL_ARGS = '{"location": "杭州", "unit": "celsius"}'


def openai_text(vendor: str, text: str = TEXT) -> Reply:
    """A non-streamed chat completion."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if vendor == "openai":
        message.update({"refusal": None, "annotations": []})
    body = {
        "id": _ID[vendor],
        "object": "chat.completion",
        "created": CREATED,
        "model": _MODEL[vendor],
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": copy.deepcopy(USAGE[vendor]),
        "system_fingerprint": "fp_fc9f1d7035",
    }
    return Reply(json=body)


def openai_text_stream(vendor: str, pieces: list[str] = TEXT_PIECES) -> Reply:
    """A streamed chat completion as each vendor sends it."""
    chunks: list[Any] = [_chunk(vendor, {"role": "assistant", "content": ""})]
    chunks += [_chunk(vendor, {"content": p}) for p in pieces]
    usage = copy.deepcopy(USAGE[vendor])
    if vendor == "openai" or vendor == "qwen":
        chunks.append(_chunk(vendor, {}, "stop", usage=None))
        last = _chunk(vendor, {}, None, usage=usage)
        last["choices"] = []
        chunks.append(last)
    elif vendor == "moonshot":
        chunks.append(_chunk(vendor, {}, "stop", choice_usage=usage))
    else:  # deepseek, zhipu: usage on the finishing chunk
        chunks.append(_chunk(vendor, {"content": ""}, "stop", usage=usage))
    return Reply(sse=_sse(chunks))


def openai_tool_stream(vendor: str) -> Reply:
    """A streamed tool call (``get_weather`` with :data:`TOOL_ARGS`)."""
    call_id = "call_DdmO9pD3xa9XTPNJ32zg2hcA"
    head = {"index": 0, "id": call_id, "type": "function"}
    if vendor == "zhipu":  # the whole call arrives in one delta
        deltas = [{**head, "function": {"name": "get_weather", "arguments": TOOL_ARGS}}]
    else:
        cut = [TOOL_ARGS[:5], TOOL_ARGS[5:17], TOOL_ARGS[17:30], TOOL_ARGS[30:]]
        deltas = [{**head, "function": {"name": "get_weather", "arguments": ""}}]
        for part in cut:
            if vendor == "qwen":  # Qwen repeats an empty id and type on every delta
                deltas.append(
                    {"index": 0, "id": "", "type": "function", "function": {"arguments": part}}
                )
            else:
                deltas.append({"index": 0, "function": {"arguments": part}})
    chunks: list[Any] = [_chunk(vendor, {"role": "assistant", "content": None})]
    chunks += [_chunk(vendor, {"tool_calls": [d]}) for d in deltas]
    usage = copy.deepcopy(USAGE[vendor])
    if vendor in ("openai", "qwen"):
        chunks.append(_chunk(vendor, {}, "tool_calls"))
        last = _chunk(vendor, {}, None, usage=usage)
        last["choices"] = []
        chunks.append(last)
    elif vendor == "moonshot":
        chunks.append(_chunk(vendor, {}, "tool_calls", choice_usage=usage))
    else:
        chunks.append(_chunk(vendor, {}, "tool_calls", usage=usage))
    return Reply(sse=_sse(chunks))


def openai_tool_call(vendor: str) -> Reply:
    """A non-streamed tool call."""
    body = {
        "id": _ID[vendor],
        "object": "chat.completion",
        "created": CREATED,
        "model": _MODEL[vendor],
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None if vendor == "openai" else "",
                    "tool_calls": [
                        {
                            "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": TOOL_ARGS},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": copy.deepcopy(USAGE[vendor]),
    }
    return Reply(json=body)


def openai_error(status: int, code: str | None, message: str, **headers: str) -> Reply:
    """An OpenAI-style error body."""
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None}}
    body["error"]["code"] = code
    return Reply(status=status, json=body, headers=headers)


def openai_embeddings(n: int, dim: int = 8) -> Reply:
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": [((i + 1) * (j + 1)) % 7 / 7 for j in range(dim)],
        }
        for i in range(n)
    ]
    return Reply(
        json={
            "object": "list",
            "data": data,
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 5 * n, "total_tokens": 5 * n},
        }
    )


def _model_entry(vendor: str, model: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": model, "object": "model", "created": CREATED}
    if vendor == "openai":
        entry["owned_by"] = "system"
    elif vendor == "ollama":  # Ollama's /v1/models: the tag is part of the id
        entry["owned_by"] = "library"
    else:  # vLLM adds its own fields, and the permission list OpenAI dropped
        entry |= {
            "owned_by": "vllm",
            "root": model,
            "parent": None,
            "max_model_len": 32768,
            "permission": [
                {
                    "id": "modelperm-5f2b0e7c",
                    "object": "model_permission",
                    "created": CREATED,
                    "allow_create_engine": False,
                    "allow_sampling": True,
                    "allow_logprobs": True,
                    "allow_search_indices": False,
                    "allow_view": True,
                    "allow_fine_tuning": False,
                    "organization": "*",
                    "group": None,
                    "is_blocking": False,
                }
            ],
        }
    return entry


def model_list(vendor: str, models: list[str]) -> Reply:
    """``GET /v1/models`` as ``openai``, ``ollama`` (OpenAI-compatible route) or ``vllm``
    answer it."""
    return Reply(json={"object": "list", "data": [_model_entry(vendor, m) for m in models]})


def rerank_results(scores: list[float]) -> Reply:
    """A ``/rerank`` answer in the Jina/Cohere/SiliconFlow shape."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return Reply(
        json={
            "id": "0193e4a1-rerank",
            "results": [{"index": i, "relevance_score": scores[i]} for i in order],
            "meta": {"tokens": {"input_tokens": 42, "output_tokens": 0}},
        }
    )


# --- Anthropic Messages API -----------------------------------------------------------------------

ANTHROPIC_MODEL = "claude-sonnet-4-20250514"


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}"


def _message_start(input_tokens: int = 19, cached: int = 0) -> str:
    return _event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
                "type": "message",
                "role": "assistant",
                "model": ANTHROPIC_MODEL,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": cached,
                    "output_tokens": 1,
                    "service_tier": "standard",
                },
            },
        },
    )


def anthropic_text(text: str = TEXT) -> Reply:
    return Reply(
        json={
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": ANTHROPIC_MODEL,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 19,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 10,
                "service_tier": "standard",
            },
        }
    )


def anthropic_text_stream(pieces: list[str] = TEXT_PIECES) -> Reply:
    events = [
        _message_start(),
        _event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        _event("ping", {"type": "ping"}),
    ]
    events += [
        _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
        )
        for p in pieces
    ]
    events += [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 10},
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]
    return Reply(sse=events)


def anthropic_tool_stream() -> Reply:
    """Text, then a ``tool_use`` block whose input arrives as ``input_json_delta`` pieces."""
    cut = [TOOL_ARGS[:5], TOOL_ARGS[5:17], TOOL_ARGS[17:30], TOOL_ARGS[30:]]
    events = [
        _message_start(),
        _event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                    "name": "get_weather",
                    "input": {},
                },
            },
        ),
        _event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
        ),
    ]
    events += [
        _event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": part},
            },
        )
        for part in cut
    ]
    events += [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 10},
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]
    return Reply(sse=events)


def anthropic_tool_call() -> Reply:
    return Reply(
        json={
            "id": "msg_01Aq9w938a90dw8q",
            "type": "message",
            "role": "assistant",
            "model": ANTHROPIC_MODEL,
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                    "name": "get_weather",
                    "input": json.loads(TOOL_ARGS),
                }
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 19, "output_tokens": 10, "cache_read_input_tokens": 0},
        }
    )


def anthropic_error(status: int, error_type: str, message: str, **headers: str) -> Reply:
    return Reply(
        status=status,
        json={"type": "error", "error": {"type": error_type, "message": message}},
        headers=headers,
    )


def anthropic_overloaded_mid_stream() -> Reply:
    """A stream that starts, then reports ``overloaded_error`` as an SSE error event."""
    events = anthropic_text_stream(["Hel"]).sse or []
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    events = [*events[:4], _event("error", error)]
    return Reply(sse=events)

"""Adapters for the ways OpenAI-compatible endpoints deviate from OpenAI.

An endpoint preset names its dialect; the provider asks the dialect for auth headers, lets it
adjust the request body, and lets it read usage and error fields. New deviations become a new
small class here, registered in :data:`DIALECTS`, never an ``if`` on a provider name.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hanlin.errors import ConfigError, did_you_mean
from hanlin.models.errors import ModelError, error_for_status
from hanlin.models.types import ChatOptions, Usage
from hanlin.registry import Registry


class OpenAIDialect:
    """OpenAI itself: Bearer auth, usage in a final chunk with empty ``choices``."""

    name: ClassVar[str] = "openai"
    #: ask for usage in streams (``stream_options.include_usage``)
    stream_usage: ClassVar[bool] = True

    def headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def prepare(self, body: dict[str, Any], options: ChatOptions) -> dict[str, Any]:
        """Adjust the request body just before it is sent."""
        if body.get("stream") and self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        return body

    def usage(self, raw: dict[str, Any]) -> Usage:
        details = raw.get("prompt_tokens_details") or {}
        return Usage(
            int(raw.get("prompt_tokens") or 0),
            int(raw.get("completion_tokens") or 0),
            int(details.get("cached_tokens") or 0),
        )

    def body_error(self, body: dict[str, Any], provider: str) -> ModelError | None:
        """An error hidden inside a 200 response (some endpoints do that), else None."""
        err = body.get("error")
        if isinstance(err, dict) and err:
            code = err.get("code")
            return error_for_status(
                int(err.get("status") or 500) if not code else 400,
                str(err.get("message") or "the provider returned an error"),
                provider=provider,
                code=str(code) if code is not None else None,
            )
        return None


class DeepSeekDialect(OpenAIDialect):
    """DeepSeek: cache hits reported as ``prompt_cache_hit_tokens``; usage on the last chunk."""

    name = "deepseek"

    def usage(self, raw: dict[str, Any]) -> Usage:
        return Usage(
            int(raw.get("prompt_tokens") or 0),
            int(raw.get("completion_tokens") or 0),
            int(raw.get("prompt_cache_hit_tokens") or 0),
        )


class MoonshotDialect(OpenAIDialect):
    """Moonshot/Kimi: ``cached_tokens`` at the top of usage; in streams usage sits in the choice."""

    name = "moonshot"
    stream_usage = False

    def usage(self, raw: dict[str, Any]) -> Usage:
        cached = raw.get("cached_tokens")
        if cached is None:
            cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens")
        return Usage(
            int(raw.get("prompt_tokens") or 0),
            int(raw.get("completion_tokens") or 0),
            int(cached or 0),
        )


class NoStreamOptionsDialect(OpenAIDialect):
    """Endpoints that send usage on their own and reject or ignore ``stream_options``."""

    name = "no_stream_options"
    stream_usage = False


class MiniMaxDialect(OpenAIDialect):
    """MiniMax: errors may arrive as HTTP 200 with ``base_resp.status_code`` ≠ 0."""

    name = "minimax"

    # https://platform.minimaxi.com/document/error_code
    _STATUS: ClassVar[dict[int, int]] = {
        1001: 504,  # timeout
        1002: 429,  # rate limited
        1004: 401,  # authentication failed
        1008: 429,  # insufficient balance
        1013: 500,  # internal error
        1027: 400,  # output content violates policy (mapped to content filter below)
        1039: 429,  # token rate limit
        2013: 400,  # invalid parameters
    }

    def body_error(self, body: dict[str, Any], provider: str) -> ModelError | None:
        base = body.get("base_resp")
        if isinstance(base, dict) and base.get("status_code"):
            code = int(base["status_code"])
            message = str(base.get("status_msg") or f"MiniMax error {code}")
            if code == 1027:
                return error_for_status(400, message, provider=provider, code="content_filter")
            return error_for_status(self._STATUS.get(code, 500), message, provider=provider)
        return super().body_error(body, provider)


class LlamaCppServerDialect(OpenAIDialect):
    """llama-cpp-python's server: JSON schemas go in ``response_format.schema`` of a
    ``json_object`` format (it rejects OpenAI's ``json_schema`` type)."""

    name = "llamacpp_server"

    def prepare(self, body: dict[str, Any], options: ChatOptions) -> dict[str, Any]:
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            body["response_format"] = {
                "type": "json_object",
                "schema": (fmt.get("json_schema") or {}).get("schema"),
            }
        return super().prepare(body, options)


#: dialects by name; a package adds one through the ``hanlin.dialects`` entry-point group
DIALECTS: Registry[type[OpenAIDialect]] = Registry("OpenAI-compatible dialect", "hanlin.dialects")
for _cls in (
    LlamaCppServerDialect,
    OpenAIDialect,
    DeepSeekDialect,
    MoonshotDialect,
    NoStreamOptionsDialect,
    MiniMaxDialect,
):
    DIALECTS.register(_cls.name, _cls)


def get_dialect(name: str) -> OpenAIDialect:
    """The dialect registered under ``name``."""
    if name not in DIALECTS:
        raise ConfigError(
            f"unknown OpenAI-compatible dialect '{name}'",
            hint=did_you_mean(name, DIALECTS) + f"use one of: {', '.join(sorted(DIALECTS))}",
        )
    return DIALECTS[name]()

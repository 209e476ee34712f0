"""Typed model errors, mapped from HTTP status codes and SDK exception types — never from text.

``retryable`` errors may succeed on another try or another deployment (rate limits, 5xx,
timeouts); the router retries or fails over on those and surfaces the others at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hanlin.errors import HanlinError, NotFoundError


class ModelNotFoundError(NotFoundError):
    """A model name that resolves to no model; ``closest`` holds the nearest known names."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        closest: list[str],
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, hint=hint, params=params)
        self.closest = closest


class ModelError(HanlinError):
    """A model call failed. ``provider`` names the deployment (``deepseek/deepseek-chat``);
    ``param`` the request field the provider cannot honour, when one is at fault."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        provider: str = "",
        status: int | None = None,
        param: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, hint=hint, params=params)
        self.provider = provider
        self.status = status
        self.param = param

    def redact(self, secrets: list[str]) -> ModelError:
        """Replace any of ``secrets`` in the message and hint (upstreams echo requests)."""
        for secret in secrets:
            if len(secret) < 8:
                continue
            if secret in self.message or secret in (self.hint or ""):
                self.message = self.message.replace(secret, "***")
                self.hint = self.hint.replace(secret, "***") if self.hint else self.hint
                self.args = tuple(
                    a.replace(secret, "***") if isinstance(a, str) else a for a in self.args
                )
        return self


class AuthenticationError(ModelError):
    """The provider rejected the API key (401/403)."""


class MissingKeyError(AuthenticationError):
    """No API key is configured for a provider that needs one."""


class RateLimitError(ModelError):
    """Too many requests (429). ``retry_after`` is the provider's wait in seconds, if it said."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ModelBusyError(RateLimitError):
    """The deployment is at capacity (a local model's queue of waiting calls is full).

    Not retried on the same deployment: the router fails over at once, and the caller gets
    429 with ``Retry-After`` instead of an open-ended wait.
    """

    retryable = False


class ContextTooLongError(ModelError):
    """The prompt plus ``max_tokens`` does not fit the model's context window."""


class ContentFilteredError(ModelError):
    """The provider's content filter refused the request or the answer."""


class ModelTimeoutError(ModelError):
    """No answer (or no first token, when streaming) within the timeout."""

    retryable = True


class UpstreamUnavailableError(ModelError):
    """The provider is down, overloaded (5xx, 529) or the connection broke."""

    retryable = True


class GuardUnavailableError(ModelError):
    """The guard model (``guard.model``) could not classify the call, and the policy fails
    closed: the call was not made, or its answer not shown (503, ``guard_unavailable``)."""

    code = "guard_unavailable"


class BadRequestError(ModelError):
    """The provider says the request is invalid (400/404/422): fix the request, do not retry."""

    exit_code = 2


class BudgetExceededError(ModelError):
    """A configured spending limit would be passed; the call was not made."""


class UnsupportedFeatureError(ModelError):
    """The model or provider cannot do what the options ask (e.g. images on a text-only model)."""

    exit_code = 2


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    retry_after: float | None = None,
    code: str | None = None,
) -> ModelError:
    """The typed error for an HTTP status (and the provider's machine-readable error code)."""
    hint: str | None = None
    if code in _CODE_ERRORS:
        cls, hint = _CODE_ERRORS[code]
        if issubclass(cls, RateLimitError):
            return cls(
                message, hint=hint, provider=provider, status=status, retry_after=retry_after
            )
        return cls(message, hint=hint, provider=provider, status=status)
    if status in (401, 403):
        return AuthenticationError(
            message,
            hint=f"check the API key: hanlin keys set {provider.split('/')[0]}",
            provider=provider,
            status=status,
        )
    if status == 429:
        return RateLimitError(
            message,
            retry_after=retry_after,
            hint="slow down, raise the provider's rate limit, or add a fallback deployment",
            provider=provider,
            status=status,
        )
    if status == 413:
        return ContextTooLongError(
            message, hint="shorten the prompt or lower max_tokens", provider=provider, status=status
        )
    if status in (408, 504):
        return ModelTimeoutError(message, provider=provider, status=status)
    if status >= 500:
        return UpstreamUnavailableError(message, provider=provider, status=status)
    return BadRequestError(message, provider=provider, status=status)


# Machine-readable error codes that providers put in the error body (``error.code`` /
# ``error.type``). These are stable identifiers, unlike the messages next to them.
_CODE_ERRORS: dict[str, tuple[type[ModelError], str | None]] = {
    "context_length_exceeded": (ContextTooLongError, "shorten the prompt or lower max_tokens"),
    "string_above_max_length": (ContextTooLongError, "shorten the prompt or lower max_tokens"),
    "content_filter": (ContentFilteredError, None),
    "content_policy_violation": (ContentFilteredError, None),
    # Qwen / DashScope
    "data_inspection_failed": (ContentFilteredError, None),
    # Zhipu GLM: 1301 = unsafe content
    "1301": (ContentFilteredError, None),
    # Zhipu GLM: 1261 = prompt too long
    "1261": (ContextTooLongError, "shorten the prompt or lower max_tokens"),
    "invalid_api_key": (AuthenticationError, "check the API key with `hanlin keys set`"),
    "insufficient_quota": (RateLimitError, "the account is out of credit: top it up"),
    # Anthropic error types
    "authentication_error": (AuthenticationError, "check the API key with `hanlin keys set`"),
    "permission_error": (AuthenticationError, None),
    "rate_limit_error": (RateLimitError, None),
    "overloaded_error": (UpstreamUnavailableError, None),
    "api_error": (UpstreamUnavailableError, None),
    "request_too_large": (ContextTooLongError, "shorten the prompt"),
}

"""Errors as HTTP responses: OpenAI's error shape plus a ``hint`` saying what to do.

``{"error": {"message": str, "type": str, "param": str | null, "hint": str | null,
"code": str | null, "params": {…}}}``; ``param`` names the request field at fault, ``code`` is
stable and ``params`` holds the values the message is made of (``{"kb": "docs"}``), so a client
can word the error in its own language (the web UI does, in English and Chinese). Hanlin's
typed errors map to statuses by class (never by message text); model errors keep the meaning
of the provider's status (rate limits stay 429 with ``Retry-After``, timeouts 504, …).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hanlin.access.auth import AuthenticationError
from hanlin.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    ConfigError,
    ConflictError,
    DatabaseUnavailableError,
    EmbeddingModelMismatch,
    HanlinError,
    InvalidInputError,
    LoaderError,
    MissingDependencyError,
    NotFoundError,
    StoreCorruptError,
    StoreLockedError,
)
from hanlin.flows.base import FormAnswerError, RunFailedError
from hanlin.models import errors as model_errors
from hanlin.net.ssrf import BlockedURLError, FetchError

log = logging.getLogger("hanlin.server")


class ApiError(Exception):
    """An error raised by the HTTP layer itself (auth, limits, request shape)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        hint: str | None = None,
        type: str = "invalid_request_error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.type = type
        self.code = code
        self.headers = headers or {}
        self.params = params or {}


def error_body(
    message: str,
    type: str,
    hint: str | None = None,
    code: str | None = None,
    param: str | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": type,
            "param": param,
            "hint": hint,
            "code": code,
            "params": params or {},
        }
    }


# (class, status, type, code): the first matching class wins, so subclasses come first.
_TABLE: list[tuple[type[HanlinError], int, str, str | None]] = [
    (model_errors.ModelNotFoundError, 404, "invalid_request_error", "model_not_found"),
    (model_errors.RateLimitError, 429, "rate_limit_error", "rate_limit_exceeded"),
    (model_errors.BudgetExceededError, 402, "insufficient_quota", "budget_exceeded"),
    (model_errors.MissingKeyError, 401, "authentication_error", "missing_provider_key"),
    (model_errors.AuthenticationError, 401, "authentication_error", "provider_auth_failed"),
    (model_errors.ContextTooLongError, 400, "invalid_request_error", "context_length_exceeded"),
    (model_errors.ContentFilteredError, 400, "invalid_request_error", "content_filter"),
    (model_errors.ModelTimeoutError, 504, "timeout_error", "upstream_timeout"),
    (model_errors.UpstreamUnavailableError, 502, "upstream_error", "upstream_unavailable"),
    (model_errors.UnsupportedFeatureError, 400, "invalid_request_error", "unsupported"),
    (model_errors.BadRequestError, 400, "invalid_request_error", "upstream_bad_request"),
    (model_errors.GuardUnavailableError, 503, "server_error", "guard_unavailable"),
    (model_errors.ModelError, 502, "upstream_error", None),
    (BlockedURLError, 400, "invalid_request_error", "blocked_url"),
    (FetchError, 400, "invalid_request_error", "fetch_failed"),
    (AuthenticationError, 401, "authentication_error", None),
    (AccessDeniedError, 403, "permission_error", None),
    (NotFoundError, 404, "not_found_error", "not_found"),
    (AlreadyExistsError, 409, "conflict_error", "already_exists"),
    (ConflictError, 409, "conflict_error", "conflict"),
    (LoaderError, 422, "invalid_request_error", "unreadable_file"),
    (FormAnswerError, 422, "invalid_request_error", "workflow_bad_answer"),
    (RunFailedError, 422, "workflow_error", "workflow_run_failed"),
    (InvalidInputError, 400, "invalid_request_error", "invalid_input"),
    (StoreLockedError, 409, "conflict_error", "locked"),
    (DatabaseUnavailableError, 503, "server_error", "database_unavailable"),
    (EmbeddingModelMismatch, 409, "conflict_error", "embedding_model_mismatch"),
    (MissingDependencyError, 501, "server_error", "missing_dependency"),
    (StoreCorruptError, 500, "server_error", "store_corrupt"),
    (ConfigError, 500, "server_error", "config_error"),
]


def classify(exc: HanlinError) -> tuple[int, str, str | None, dict[str, str]]:
    """(status, type, code, extra headers) for a Hanlin error."""
    cause = getattr(exc, "cause", None)  # a StepError wraps the error of the failed step
    if isinstance(cause, HanlinError):
        return classify(cause)
    headers: dict[str, str] = {}
    for cls, status, kind, code in _TABLE:
        if isinstance(exc, cls):
            code = exc.code or code  # the raise site's own code is the more precise one
            if isinstance(exc, AuthenticationError):
                headers["WWW-Authenticate"] = "Bearer"
            if isinstance(exc, model_errors.RateLimitError) and exc.retry_after:
                headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
            if isinstance(exc, DatabaseUnavailableError):
                headers["Retry-After"] = "5"
            if isinstance(exc, model_errors.UpstreamUnavailableError) and exc.status in (503, 529):
                status = 503
            return status, kind, code, headers
    return 500, "server_error", None, headers


def param_of(exc: HanlinError) -> str | None:
    """The request field an error is about (``model`` for an unknown model), if any."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, HanlinError):
        return param_of(cause)
    if isinstance(exc, model_errors.ModelNotFoundError):
        return "model"
    param = getattr(exc, "param", None)
    return param if isinstance(param, str) else None


def params_of(exc: HanlinError) -> dict[str, Any]:
    """The values an error's message is made of, for clients that word it themselves: the
    raise site's ``params``, plus what every error of its kind knows (the model provider, the
    wait of a rate limit, the request field at fault, the closest model names)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, HanlinError):
        return params_of(cause)
    params: dict[str, Any] = {}
    if isinstance(exc, model_errors.ModelError) and exc.provider:
        params["provider"] = exc.provider
    if isinstance(exc, model_errors.RateLimitError) and exc.retry_after:
        params["retry_after"] = max(1, math.ceil(exc.retry_after))
    if isinstance(exc, model_errors.ModelNotFoundError) and exc.closest:
        params["closest"] = exc.closest
    param = param_of(exc)
    if param:
        params["param"] = param
    return params | exc.params


def hanlin_error_response(exc: HanlinError) -> JSONResponse:
    status, kind, code, headers = classify(exc)
    if status >= 500:
        log.error("%s: %s", type(exc).__name__, exc.message)
    return JSONResponse(
        error_body(exc.message, kind, exc.hint, code, param_of(exc), params_of(exc)),
        status_code=status,
        headers=headers,
    )


def error_event(exc: BaseException) -> dict[str, Any]:
    """The error object sent inside a stream that already started (OpenAI's ``data: {error}``)."""
    if isinstance(exc, HanlinError):
        status, kind, code, _ = classify(exc)
        body = error_body(exc.message, kind, exc.hint, code, param_of(exc), params_of(exc))
        return body | {"status": status}
    if isinstance(exc, ApiError):
        body = error_body(exc.message, exc.type, exc.hint, exc.code, params=exc.params)
        return body | {"status": exc.status}
    log.exception("error inside a stream", exc_info=exc)
    return error_body(
        "internal error while streaming", "server_error", "see the server log", None
    ) | {"status": 500}


_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def _where(err: Any) -> str:
    return ".".join(str(p) for p in err.get("loc", ()) if p != "body")


def _validation_message(exc: RequestValidationError) -> str:
    problems = [
        f"{_where(err) or 'request'}: {err.get('msg', 'invalid')}" for err in exc.errors()[:5]
    ]
    return "invalid request: " + "; ".join(problems)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON error shape."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(
            error_body(exc.message, exc.type, exc.hint, exc.code, params=exc.params),
            status_code=exc.status,
            headers=exc.headers,
        )

    async def on_hanlin_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HanlinError)
        return hanlin_error_response(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # /v1 answers as OpenAI does (400 naming the field); the native /api keeps 422
        openai = request.url.path.startswith("/v1/")
        errors = exc.errors()
        where = (_where(errors[0]) or None) if errors else None
        return JSONResponse(
            error_body(
                _validation_message(exc),
                "invalid_request_error",
                "see docs/server.md or /docs for the request shape",
                "invalid_request",
                where,
                {"param": where} if where else {},
            ),
            status_code=400 if openai else 422,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        hint = None
        if exc.status_code == 404:
            message = f"no such route: {request.method} {request.url.path}"
            hint = "see /docs for the routes this server has"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
            hint = "see /docs for the methods each route accepts"
        else:
            message = str(exc.detail)
        return JSONResponse(
            error_body(message, _STATUS_TYPES.get(exc.status_code, "server_error"), hint, None),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            error_body(
                f"internal error ({type(exc).__name__})",
                "server_error",
                "this is a bug: see the server log and report it",
            ),
            status_code=500,
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(HanlinError, on_hanlin_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)

"""The error hierarchy. Every message says what went wrong and what to do about it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


class HanlinError(Exception):
    """Base class of every error Hanlin raises on purpose.

    ``hint`` is the action the user should take; it is appended to the message. ``code`` is a
    stable machine-readable name (``kb_not_found``) and ``params`` the values its message is
    made of (``{"kb": "docs"}``): the server sends both, so a client can word the error in its
    own language and fall back to ``message`` for a code it does not know. A class's
    ``code`` is used when the raise site names none.
    """

    exit_code = 1
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code
        self.params: dict[str, Any] = dict(params or {})
        super().__init__(f"{message}\n  → {hint}" if hint else message)


class ConfigError(HanlinError):
    """Settings or a config file are invalid."""


class NotFoundError(HanlinError):
    """A named thing (knowledge base, document, model) does not exist."""

    exit_code = 2


class AlreadyExistsError(HanlinError):
    """Creating something that already exists."""


class ConflictError(HanlinError):
    """The request does not fit the current state: forgetting a file that did not fail."""

    exit_code = 2


class InvalidInputError(HanlinError):
    """The user gave input we cannot use (bad filter, bad path, bad option).

    ``param`` names the request field at fault, when there is one (OpenAI's ``error.param``).
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        param: str | None = None,
        code: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, hint=hint, code=code, params=params)
        self.param = param


class LoaderError(HanlinError):
    """A file could not be parsed; the batch goes on without it."""


class EmbeddingModelMismatch(HanlinError):
    """The knowledge base was embedded with another model than the one requested."""


class StoreLockedError(HanlinError):
    """Another process is writing the same knowledge base."""


class StoreCorruptError(HanlinError):
    """The on-disk store is damaged beyond automatic repair."""


class DatabaseUnavailableError(HanlinError):
    """The configured database (``database_url``) cannot be reached or used right now."""

    code = "database_unavailable"


class MissingDependencyError(HanlinError):
    """An optional dependency is not installed; the hint names the extra."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{module}', which is not installed",
            hint=f"pip install 'hanlin[{extra}]'",
        )
        self.module = module
        self.extra = extra


class StepError(HanlinError):
    """Step ``step`` of the pipeline ``pipeline`` (RAG, an agent run …) failed.

    Raised once, at the orchestration boundary. ``cause`` is the original error (a typed model
    error, for instance); its hint and exit code carry over, and the server answers with the
    cause's status. ``detail`` says more about the step, e.g. which model it called.
    """

    def __init__(
        self, pipeline: str, step: str | int, cause: BaseException, *, detail: str | None = None
    ) -> None:
        reason, hint = f"{type(cause).__name__}: {cause}", None
        if isinstance(cause, HanlinError):
            reason, hint = cause.message or reason, cause.hint
            self.exit_code = cause.exit_code
        shown = step if isinstance(step, int) else f"'{step}'"
        where = f" ({detail})" if detail else ""
        super().__init__(f"{pipeline} step {shown}{where} failed: {reason}", hint=hint)
        self.pipeline = pipeline
        self.step = step
        self.cause = cause
        self.__cause__ = cause


class AccessDeniedError(HanlinError):
    """The caller (an API key) lacks a scope or may not use a knowledge base.

    ``code`` is ``insufficient_scope`` or ``kb_not_allowed``.
    """

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: str,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, hint=hint, code=code, params=params)


class Reason(str):
    """A failure reason kept as text (a file's reason in a batch, an upload's rejection) that
    also carries the stable ``code`` and ``params`` of :class:`HanlinError`, so a client can
    word it in its own language. Compares and prints as its text."""

    code: str | None
    params: dict[str, Any]

    def __new__(
        cls, text: str, code: str | None = None, params: Mapping[str, Any] | None = None
    ) -> Reason:
        reason = super().__new__(cls, text)
        reason.code = code
        reason.params = dict(params or {})
        return reason

    @classmethod
    def of(cls, exc: HanlinError, text: str | None = None) -> Reason:
        """The reason an error gives (its message, or ``text``), with its code and params."""
        return cls(exc.message if text is None else text, exc.code, exc.params)


def reason_fields(reason: str | None) -> dict[str, Any]:
    """``{"reason_code", "reason_params"}`` of a reason: what a JSON answer carries beside it."""
    return {
        "reason_code": getattr(reason, "code", None),
        "reason_params": dict(getattr(reason, "params", None) or {}),
    }


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"did you mean 'sample'? "`` for the existing name closest to a typo, else ``""`` —
    the start of a hint, so a typo is caught instead of acted on."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'? " if match else ""

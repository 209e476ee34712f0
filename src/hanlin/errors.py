"""The error hierarchy. Every message says what went wrong and what to do about it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HanlinError(Exception):
    """Base class of every error Hanlin raises on purpose.

    ``hint`` is the action the user should take; it is appended to the message.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n  → {hint}" if hint else message)


class ConfigError(HanlinError):
    """Settings or a config file are invalid."""


class NotFoundError(HanlinError):
    """A named thing (knowledge base, document, model) does not exist."""

    exit_code = 2


class AlreadyExistsError(HanlinError):
    """Creating something that already exists."""


class InvalidInputError(HanlinError):
    """The user gave input we cannot use (bad filter, bad path, bad option).

    ``param`` names the request field at fault, when there is one (OpenAI's ``error.param``).
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None, param: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.param = param


class LoaderError(HanlinError):
    """A file could not be parsed; the batch goes on without it."""


class EmbeddingModelMismatch(HanlinError):
    """The knowledge base was embedded with another model than the one requested."""


class StoreLockedError(HanlinError):
    """Another process is writing the same knowledge base."""


class StoreCorruptError(HanlinError):
    """The on-disk store is damaged beyond automatic repair."""


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

    def __init__(self, message: str, *, hint: str | None = None, code: str) -> None:
        super().__init__(message, hint=hint)
        self.code = code


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"did you mean 'sample'? "`` for the existing name closest to a typo, else ``""`` —
    the start of a hint, so a typo is caught instead of acted on."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'? " if match else ""

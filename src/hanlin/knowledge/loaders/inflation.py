"""Bounded decompression: every byte a loader inflates (PDF streams, ZIP members) is counted
against one budget per file, and inflating stops at the limit instead of finishing a bomb.

The limit is ``LoaderOptions.max_inflated_bytes`` (setting ``knowledge.max_inflated_mb``). It
bounds each stream or member and the file's total, so a bomb split into many small parts is
caught as surely as one large part.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from hanlin.errors import LoaderError
from hanlin.knowledge.loaders.options import MiB

#: inflated in one step; small enough that a bomb never gets far past the limit
_STEP = 1 * MiB
_HINT = (
    "the file decompresses to far more data than a normal document (a decompression bomb, or a "
    "very unusual file); if you trust it, raise `knowledge.max_inflated_mb` (hanlin.toml, or "
    "HANLIN_KNOWLEDGE__MAX_INFLATED_MB), otherwise leave it out"
)


class InflateLimitError(LoaderError):
    """A file decompresses to more than its budget allows."""


class InflateBudget:
    """The bytes one file may still inflate, over all its streams or members."""

    def __init__(self, limit: int, what: str = "file") -> None:
        self.limit = limit
        self.used = 0
        self.what = what  # "PDF", "Word document": named in the error

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def take(self, n: int) -> None:
        """Count ``n`` inflated bytes; raises :class:`InflateLimitError` past the limit."""
        self.used += n
        if self.used > self.limit:
            raise self.exceeded()

    def exceeded(self) -> InflateLimitError:
        return InflateLimitError(
            f"{self.what} decompresses to more than the limit of {_mb(self.limit)} "
            "(knowledge.max_inflated_mb)",
            hint=_HINT,
            code="inflate_limit",
            params={"limit_mb": round(self.limit / MiB, 3)},
        )

    def inflate_zlib(self, data: bytes, *, lenient: bool = False) -> bytes:
        """``zlib.decompress(data)``, stopping at the budget.

        Strict (``lenient=False``): a truncated or damaged stream raises :class:`zlib.error`, as
        :func:`zlib.decompress` does. Lenient: the bytes inflated before the damage are returned
        (what PDF readers do with slightly broken streams).
        """
        inflater = zlib.decompressobj()
        parts: list[bytes] = []
        # Lenient: a slice at a time, so that damage costs only the current slice's output.
        step = 4096 if lenient else max(len(data), 1)
        try:
            for offset in range(0, len(data), step):
                pending = data[offset : offset + step]
                while True:
                    most = min(_STEP, self.remaining + 1)
                    out = inflater.decompress(pending, most)
                    self.take(len(out))
                    parts.append(out)
                    pending = inflater.unconsumed_tail
                    # a full `out` may leave output inside zlib even when the input is used up
                    if inflater.eof or (not pending and len(out) < most):
                        break
                if inflater.eof:
                    break
        except zlib.error:
            if lenient:
                return b"".join(parts)
            raise
        if not inflater.eof and not lenient:
            raise zlib.error("Error -5 while decompressing data: incomplete or truncated stream")
        return b"".join(parts)


_current: ContextVar[InflateBudget | None] = ContextVar("hanlin_inflate_budget", default=None)


@contextmanager
def inflate_budget(limit: int, what: str) -> Iterator[InflateBudget]:
    """Make a budget of ``limit`` bytes current for the code inside (see :func:`current_budget`)."""
    budget = InflateBudget(limit, what)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def current_budget() -> InflateBudget | None:
    """The budget of the file being loaded, for decompression code deep inside a parser."""
    return _current.get()


def _mb(n: int) -> str:
    return f"{n // MiB} MB" if n >= MiB else f"{n} bytes"

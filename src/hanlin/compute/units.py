"""Reading input the way people write it (``300B`` tokens, ``32k`` context, option values) and
printing FLOPs, bytes and durations the way people read them."""

from __future__ import annotations

import math
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from hanlin.errors import InvalidInputError

_M = TypeVar("_M", bound=BaseModel)

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12, "P": 10**15}
_COUNT = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)\s*([kKmMbBgGtTpP]?)\s*$")


def parse_count(text: str | int | float, *, what: str = "count", binary_k: bool = False) -> int:
    """``300B`` → 300_000_000_000; ``1.4T``, ``2e12``, ``32k``, ``1,024`` all work.

    With ``binary_k`` a ``k`` suffix is 1024 (context lengths: ``32k`` = 32,768 tokens).
    Raises :class:`InvalidInputError` for anything else, or for a negative or fractional count.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _COUNT.match(str(text))
        if not m:
            raise InvalidInputError(
                f"cannot read {what} {text!r}",
                hint="write a number with an optional K/M/B/T suffix, e.g. 300B, 1.4T, 32k, 2e12",
            )
        suffix = m.group(2).upper()
        scale = 1024 if (binary_k and suffix == "K") else _SUFFIX[suffix]
        value = float(m.group(1).replace("_", "").replace(",", "")) * scale
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{what} must be a positive number, got {text!r}")
    rounded = round(value)
    if abs(value - rounded) > 1e-6 * max(1.0, value):
        raise InvalidInputError(f"{what} must be a whole number, got {text!r}")
    return int(rounded)


def parse_context(text: str | int) -> int:
    """A context length: ``32k`` = 32,768 tokens, ``128K`` = 131,072, ``4096`` = 4,096."""
    n = parse_count(text, what="context length", binary_k=True)
    if n < 1:
        raise InvalidInputError("context length must be at least 1 token")
    return n


def validated(cls: type[_M], /, flags: dict[str, str] | None = None, **values: object) -> _M:
    """Build an options model; a bad value is an :class:`InvalidInputError` naming the flag.

    ``flags`` maps field names to the command-line spelling (``{"seq_len": "--seq"}``).
    """
    names = flags or {}
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{names.get(str(e['loc'][0]), '--' + str(e['loc'][0]).replace('_', '-'))}: "
            f"{e['msg']} (got {e.get('input')!r})"
            if e["loc"]
            else e["msg"]
            for e in exc.errors()
        )
        raise InvalidInputError(f"invalid options: {problems}", hint="see --help") from exc


def si(value: float, unit: str = "") -> str:
    """``1.2e11`` → ``120B``; from 10¹⁵ up, scientific notation (``3.14e23``)."""
    if value == 0:
        return f"0 {unit}".strip()
    if abs(value) >= 1e15:
        return f"{value:.3g} {unit}".strip().replace("e+", "e")
    for scale, name in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{name} {unit}".strip()
    return f"{value:.3g} {unit}".strip()


def gib(n_bytes: float) -> float:
    return n_bytes / 2**30


def fmt_bytes(n_bytes: float) -> str:
    """Bytes in binary units (GPU memory is sold in GiB even when labelled GB)."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n_bytes) >= scale:
            return f"{n_bytes / scale:,.2f} {unit}"
    return f"{n_bytes:,.0f} B"


def fmt_seconds(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:,.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:,.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:,.1f} min"
    if seconds >= 1:
        return f"{seconds:,.2f} s"
    return f"{seconds * 1000:,.1f} ms"


def fmt_value(value: float, unit: str) -> str:
    """Human text for a :class:`~hanlin.compute.architecture.Term` value in its unit."""
    if unit == "bytes":
        return fmt_bytes(value)
    if unit == "s":
        return fmt_seconds(value)
    if unit in ("USD", "CNY"):
        return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.2f} {unit}"
    if unit in ("params", "FLOPs", "FLOP/s", "tokens"):
        return si(value, unit)
    if unit in ("days", "h", "GPU-h", "GPU-days", "tok/s", "seqs"):
        return f"{value:,.1f} {unit}" if value < 1e6 else si(value, unit)
    if unit == "x":
        return f"{value:.3g}"
    return f"{value:.4g} {unit}"

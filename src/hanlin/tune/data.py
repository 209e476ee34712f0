"""Training data: load, validate, dedupe and split the four dataset formats.

* ``chat`` — JSONL, one ``{"messages": [{"role", "content"}, …]}`` per line (OpenAI format);
  roles ``system``/``user``/``assistant``, at least one assistant reply.
* ``instruction`` — JSONL in the Alpaca shape ``{"instruction", "input"?, "output", "system"?}``;
  becomes a one-turn chat (``instruction`` + a blank line + ``input`` as the user turn).
* ``text`` — raw text for continued pretraining: a ``.txt`` file (documents separated by blank
  lines) or JSONL ``{"text": …}``.
* ``preference`` — JSONL ``{"prompt", "chosen", "rejected"}`` for DPO; ``prompt`` is a string or a
  list of messages, ``chosen``/``rejected`` are strings (or one-message assistant lists).

Every bad line is reported with its line number and skipped; the rest is kept. Exact duplicates
are dropped and counted. The validation split is chosen by a seeded hash of each record, so it
is identical on every re-run and stable when records are added.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hanlin.errors import InvalidInputError, NotFoundError

Format = Literal["chat", "instruction", "text", "preference"]
FORMATS: tuple[str, ...] = ("chat", "instruction", "text", "preference")
ROLES = ("system", "user", "assistant")
Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad line: its 1-based number and what is wrong with it."""

    line: int
    message: str


@dataclass(slots=True)
class Dataset:
    """What a file held: its format, the good records (normalized) and the problems found."""

    path: Path
    format: Format
    records: list[Record] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # line number of each record
    problems: list[Problem] = field(default_factory=list)
    duplicates: int = 0
    total: int = 0  # non-blank lines (or documents) read
    seen: set[str] = field(default_factory=set, repr=False)


class BadRecord(ValueError):
    """A record that cannot be used; the message says why."""


def _str(obj: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise BadRecord(f"missing key '{key}'")
        return ""
    if not isinstance(value, str):
        raise BadRecord(f"'{key}' must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise BadRecord(f"'{key}' is empty")
    return value


def _messages(value: Any, where: str = "messages") -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise BadRecord(f"'{where}' must be a non-empty list of messages")
    out: list[dict[str, str]] = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise BadRecord(f"{where}[{i}] must be an object with 'role' and 'content'")
        role = m.get("role")
        if role not in ROLES:
            raise BadRecord(f"{where}[{i}].role must be one of {', '.join(ROLES)}, got {role!r}")
        content = m.get("content")
        if not isinstance(content, str):
            raise BadRecord(f"{where}[{i}].content must be a string")
        if not content.strip():
            raise BadRecord(f"{where}[{i}].content is empty")
        out.append({"role": role, "content": content})
    return out


def normalize(obj: Any, fmt: Format) -> Record:
    """One parsed JSON line as a record of ``fmt``; raises BadRecord saying what is wrong."""
    if not isinstance(obj, dict):
        raise BadRecord(f"expected a JSON object, got {type(obj).__name__}")
    if fmt == "chat":
        msgs = _messages(obj.get("messages"))
        if not any(m["role"] == "assistant" for m in msgs):
            raise BadRecord("no assistant message: nothing to learn from")
        if msgs[-1]["role"] != "assistant":
            raise BadRecord("the last message must be the assistant's reply")
        return {"messages": msgs}
    if fmt == "instruction":
        user = _str(obj, "instruction")
        extra = _str(obj, "input", required=False)
        msgs = [{"role": "system", "content": s} for s in [_str(obj, "system", required=False)]]
        msgs = [m for m in msgs if m["content"]]
        msgs.append({"role": "user", "content": f"{user}\n\n{extra}" if extra else user})
        msgs.append({"role": "assistant", "content": _str(obj, "output")})
        return {"messages": msgs}
    if fmt == "text":
        return {"text": _str(obj, "text")}
    prompt = obj.get("prompt")
    if isinstance(prompt, str):
        prompt_msgs = [{"role": "user", "content": _str(obj, "prompt")}]
    else:
        prompt_msgs = _messages(prompt, "prompt")
    pair = {}
    for key in ("chosen", "rejected"):
        value = obj.get(key)
        if isinstance(value, list):
            msgs = _messages(value, key)
            if len(msgs) != 1 or msgs[0]["role"] != "assistant":
                raise BadRecord(f"'{key}' must be one assistant message")
            pair[key] = msgs[0]["content"]
        else:
            pair[key] = _str(obj, key)
    if pair["chosen"] == pair["rejected"]:
        raise BadRecord("'chosen' and 'rejected' are the same text")
    return {"prompt": prompt_msgs, **pair}


def detect_format(obj: Any) -> Format | None:
    """The format a parsed JSON line looks like, or None."""
    if not isinstance(obj, dict):
        return None
    if "messages" in obj:
        return "chat"
    if "chosen" in obj or "rejected" in obj:
        return "preference"
    if "instruction" in obj or "output" in obj:
        return "instruction"
    if "text" in obj:
        return "text"
    return None


def _text_documents(path: Path) -> Iterator[tuple[int, str]]:
    start, buf = 0, []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            start = start or n
            buf.append(line)
        elif buf:
            yield start, "\n".join(buf)
            start, buf = 0, []
    if buf:
        yield start, "\n".join(buf)


def _json_lines(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    with path.open(encoding="utf-8", errors="strict") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield n, None, f"invalid JSON: {exc.msg} (column {exc.colno})"


def load_dataset(path: str | Path, fmt: str = "auto") -> Dataset:
    """Read a dataset file, reporting every bad line instead of stopping at the first.

    Raises NotFoundError for a missing file and InvalidInputError when the format cannot be
    told (or ``fmt`` is not one of :data:`FORMATS` / ``auto``).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise NotFoundError(f"no dataset file at {p}", hint="check the path (data: in the config)")
    if fmt != "auto" and fmt not in FORMATS:
        raise InvalidInputError(
            f"unknown dataset format '{fmt}'", hint=f"use auto or one of {', '.join(FORMATS)}"
        )
    if p.suffix.lower() in (".txt", ".md"):
        if fmt not in ("auto", "text"):
            raise InvalidInputError(f"{p.name} is plain text, which only fits format 'text'")
        ds = Dataset(p, "text")
        for n, doc in _text_documents(p):
            _add(ds, n, {"text": doc})
        return ds
    try:
        rows = list(_json_lines(p))
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{p} is not UTF-8 text ({exc.reason})") from exc
    chosen: str = fmt
    if fmt == "auto":
        found = next((f for _, obj, e in rows if e is None and (f := detect_format(obj))), None)
        if found is None:
            raise InvalidInputError(
                f"cannot tell the format of {p.name}: no line has 'messages', 'instruction', "
                "'text' or 'chosen'/'rejected'",
                hint="pass --format chat|instruction|text|preference",
            )
        chosen = found
    ds = Dataset(p, chosen)  # type: ignore[arg-type]
    for n, obj, error in rows:
        if error is not None:
            ds.total += 1
            ds.problems.append(Problem(n, error))
            continue
        try:
            record = normalize(obj, ds.format)
        except BadRecord as exc:
            ds.total += 1
            ds.problems.append(Problem(n, str(exc)))
            continue
        _add(ds, n, record)
    return ds


def _add(ds: Dataset, line: int, record: Record) -> None:
    ds.total += 1
    key = record_key(record)
    if key in ds.seen:
        ds.duplicates += 1
        return
    ds.seen.add(key)
    ds.records.append(record)
    ds.lines.append(line)


def record_key(record: Record) -> str:
    """A stable content hash of a normalized record."""
    raw = json.dumps(record, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def split(
    records: Sequence[Record], val_ratio: float, seed: int
) -> tuple[list[Record], list[Record]]:
    """A deterministic (train, validation) split: ``ceil(n · val_ratio)`` records by seeded hash.

    The same records and seed always give the same split, whatever their order; at least one
    record stays in training.
    """
    if not 0 <= val_ratio < 1:
        raise InvalidInputError(f"val_ratio must be in [0, 1), got {val_ratio}")
    n_val = min(math.ceil(len(records) * val_ratio), max(len(records) - 1, 0))
    ranked = sorted(
        range(len(records)),
        key=lambda i: hashlib.sha256(f"{seed}:{record_key(records[i])}".encode()).hexdigest(),
    )
    val_idx = set(ranked[:n_val])
    train = [r for i, r in enumerate(records) if i not in val_idx]
    val = [r for i, r in enumerate(records) if i in val_idx]
    return train, val


@dataclass(frozen=True, slots=True)
class LengthStats:
    """Token (or character) lengths of the records."""

    unit: str
    count: int
    min: int
    p50: int
    p95: int
    max: int
    over: int  # records longer than ``limit``
    limit: int


def length_stats(lengths: Sequence[int], limit: int, unit: str = "tokens") -> LengthStats:
    """min/p50/p95/max of ``lengths`` and how many exceed ``limit`` (nearest-rank percentiles)."""
    if not lengths:
        return LengthStats(unit, 0, 0, 0, 0, 0, 0, limit)
    s = sorted(lengths)

    def pct(q: float) -> int:
        return s[max(0, math.ceil(q * len(s)) - 1)]

    return LengthStats(
        unit, len(s), s[0], pct(0.5), pct(0.95), s[-1], sum(x > limit for x in s), limit
    )

"""``hanlin tune data check``: everything wrong with a dataset file, and what it would train on.

Bad lines (all of them, with line numbers), duplicates, the train/validation split and length
statistics — in tokens of the base model when one is given (against its context and
``max_len``), else in characters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hanlin.tune.data import Dataset, LengthStats, Problem, length_stats, load_dataset, split


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The result of checking one dataset file."""

    path: Path
    format: str
    total: int
    good: int
    problems: list[Problem]
    duplicates: int
    train: int
    validation: int
    lengths: LengthStats
    context: int | None  # the model's context length, when a model was given
    over_context: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "total": self.total,
            "good": self.good,
            "problems": [{"line": p.line, "message": p.message} for p in self.problems],
            "duplicates": self.duplicates,
            "split": {"train": self.train, "validation": self.validation},
            "lengths": {
                "unit": self.lengths.unit,
                "min": self.lengths.min,
                "p50": self.lengths.p50,
                "p95": self.lengths.p95,
                "max": self.lengths.max,
                "over_max_len": self.lengths.over,
                "max_len": self.lengths.limit,
            },
            "context": self.context,
            "over_context": self.over_context,
        }


def _context_of(hf_dir: Path) -> int | None:
    try:
        cfg = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cfg = cfg.get("text_config", cfg)
    value = cfg.get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None


def check_dataset(
    path: str | Path,
    *,
    fmt: str = "auto",
    model: str | None = None,
    template: str = "transcript",
    max_len: int = 512,
    val_ratio: float = 0.1,
    seed: int = 42,
) -> CheckReport:
    """Check ``path``; with ``model`` (a base spec) lengths are counted in its tokens. A GGUF
    model (``bundled`` included) is counted with its own tokenizer, read by llama.cpp in about
    a second, not converted for training."""
    ds: Dataset = load_dataset(path, fmt)
    train, val = split(ds.records, val_ratio, seed)
    context = None
    if model is None:
        lengths = [len(json.dumps(r, ensure_ascii=False)) for r in ds.records]
        stats = length_stats(lengths, max_len, "characters")
        over_context = 0
    else:
        from hanlin.tune.loading import gguf_of, load_tokenizer, resolve_base
        from hanlin.tune.prepare import token_lengths
        from hanlin.tune.templates import resolve_template

        gguf = gguf_of(model)
        if gguf is not None:  # its own tokenizer, read by llama.cpp: no conversion
            from hanlin.tune.gguf_tokenizer import GGUFTokenizer

            tokenizer: Any = GGUFTokenizer(gguf)
            context = tokenizer.context_length
        else:
            hf_dir = resolve_base(model).hf_dir
            tokenizer = load_tokenizer(hf_dir)
            context = _context_of(hf_dir)
        if ds.format == "preference":
            records = [
                {"messages": [*r["prompt"], {"role": "assistant", "content": r["chosen"]}]}
                for r in ds.records
            ]
        else:
            records = ds.records
        try:
            lengths = token_lengths(records, resolve_template(template, tokenizer), tokenizer)
        finally:
            if gguf is not None:
                tokenizer.close()
        stats = length_stats(lengths, max_len)
        over_context = sum(n > context for n in lengths) if context else 0
    return CheckReport(
        path=ds.path,
        format=ds.format,
        total=ds.total,
        good=len(ds.records),
        problems=ds.problems,
        duplicates=ds.duplicates,
        train=len(train),
        validation=len(val),
        lengths=stats,
        context=context,
        over_context=over_context,
    )

"""Evaluation of a causal LM on validation examples, before and after tuning.

Loss and perplexity are taken over the completion tokens only (the prompt is context). For
instruction / QA data the model also answers each prompt greedily and the answer is scored
against the reference with SQuAD's exact match and token F1, and "contains" (the normalised
reference appears in the normalised answer). Normalisation follows the SQuAD script —
lower case, punctuation and English articles removed, whitespace collapsed — extended for
Chinese: CJK punctuation counts as punctuation and every CJK character is its own token for F1
(as in the CMRC 2018 evaluation), since Chinese has no spaces between words. The scoring
itself is :mod:`hanlin.evals.scoring`, shared with evaluation runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hanlin.evals.scoring import (
    answer_tokens,
    contains_answer,
    exact_match,
    f1_score,
    normalize_answer,
)

__all__ = [
    "EvalExample",
    "EvalReport",
    "Sample",
    "answer_tokens",
    "contains_answer",
    "evaluate",
    "exact_match",
    "f1_score",
    "normalize_answer",
    "write_comparison",
]


@dataclass(frozen=True, slots=True)
class EvalExample:
    """One validation example: ``prompt`` is the templated text up to the answer."""

    prompt: str
    completion: str


@dataclass(slots=True)
class Sample:
    prompt: str
    reference: str
    output: str


@dataclass(slots=True)
class EvalReport:
    """Scores on ``n`` examples. EM / F1 / contains are None when nothing was generated."""

    loss: float
    perplexity: float
    n: int
    exact_match: float | None = None
    f1: float | None = None
    contains: float | None = None
    samples: list[Sample] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalReport:
        samples = [Sample(**s) for s in data.get("samples", [])]
        return cls(**{**data, "samples": samples})


def _cut(text: str, stops: Sequence[str]) -> str:
    for stop in stops:
        at = text.find(stop)
        if at >= 0:
            text = text[:at]
    return text.strip()


# --- the model side -------------------------------------------------------------------------


def _bos(tokenizer: Any) -> list[int]:
    """``[bos]`` when the tokenizer puts BOS in front of text, else ``[]``.

    Decided by encoding, not by ``add_bos_token``: transformers 5 tokenizers backed by a
    ``tokenizer.json`` add BOS through their post-processor and report ``add_bos_token=False``
    (the Gemma tokenizer read from a GGUF does). llama.cpp always puts BOS in front of Gemma's
    prompts; without it the model produces garbage.
    """
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return []
    ids = list(tokenizer("a")["input_ids"])
    return [bos] if ids and ids[0] == bos else []


def _encode(tokenizer: Any, example: EvalExample, add_eos: bool) -> tuple[list[int], list[int]]:
    """Ids and labels: BOS + prompt (no loss) + completion (+ EOS), tokenized apart as in
    training, so the boundary tokens are the ones the model learnt."""
    ids = _bos(tokenizer)
    if example.prompt:
        ids += list(tokenizer(example.prompt, add_special_tokens=False)["input_ids"])
    labels = [-100] * len(ids)
    answer = list(tokenizer(example.completion, add_special_tokens=False)["input_ids"])
    eos = getattr(tokenizer, "eos_token_id", None)
    if add_eos and eos is not None:
        answer.append(eos)
    return ids + answer, labels + answer


def _loss(
    model: Any, tokenizer: Any, examples: Sequence[EvalExample], batch: int, add_eos: bool
) -> tuple[float, int]:
    """Mean negative log-likelihood per completion token, and the number of tokens."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for start in range(0, len(examples), batch):
        rows = [_encode(tokenizer, ex, add_eos) for ex in examples[start : start + batch]]
        width = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (row_ids, row_labels) in enumerate(rows):
            ids[i, : len(row_ids)] = torch.tensor(row_ids)
            labels[i, : len(row_labels)] = torch.tensor(row_labels)
            mask[i, : len(row_ids)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        shift_logits = logits[:, :-1].float()
        shift_labels = labels[:, 1:].to(device)
        nll = torch.nn.functional.cross_entropy(
            shift_logits.reshape(-1, shift_logits.size(-1)),
            shift_labels.reshape(-1),
            ignore_index=-100,
            reduction="sum",
        )
        total += float(nll)
        count += int((shift_labels != -100).sum())
    return (total / count if count else float("nan")), count


def _generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int,
    batch: int,
    stop: Sequence[str] = (),
) -> list[str]:
    """Greedy continuations of ``prompts`` (left-padded batches), special tokens dropped.

    Generation of a batch ends once every row has produced EOS or a ``stop`` string.
    """
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    eos = tokenizer.eos_token_id
    device = next(model.parameters()).device
    out: list[str] = []
    for start in range(0, len(prompts), batch):
        rows: list[list[int]] = []
        for prompt in prompts[start : start + batch]:
            rows.append(
                _bos(tokenizer) + list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            )
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        with torch.no_grad():
            gen = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=eos,
                **({"stop_strings": list(stop), "tokenizer": tokenizer} if stop else {}),
            )
        for row in gen[:, width:].tolist():
            out.append(tokenizer.decode(row, skip_special_tokens=True))
    return out


def evaluate(
    model: Any,
    tokenizer: Any,
    examples: Sequence[EvalExample],
    *,
    generate: bool = True,
    max_new_tokens: int = 64,
    n_samples: int = 8,
    stop: Sequence[str] = ("\n",),
    add_eos: bool = True,
    batch_size: int = 8,
) -> EvalReport:
    """Loss / perplexity over completion tokens; with ``generate``, greedy answers scored by
    EM / F1 / contains against the completions. Answers are cut at the first ``stop`` string
    (the next turn of the template) before scoring. ``samples`` keeps the first ``n_samples``.
    """
    if not examples:
        return EvalReport(loss=float("nan"), perplexity=float("nan"), n=0)
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        loss, _ = _loss(model, tokenizer, examples, batch_size, add_eos)
        report = EvalReport(loss=loss, perplexity=math.exp(min(loss, 700.0)), n=len(examples))
        scored = [ex for ex in examples if ex.prompt]  # raw text has nothing to answer
        if generate and scored:
            prompts = [ex.prompt for ex in scored]
            raw = _generate(model, tokenizer, prompts, max_new_tokens, batch_size, stop)
            answers = [_cut(text, stop) for text in raw]
            refs = [_cut(ex.completion, stop) or ex.completion.strip() for ex in scored]
            n = len(scored)
            report.exact_match = sum(map(exact_match, answers, refs)) / n
            report.f1 = sum(map(f1_score, answers, refs)) / n
            report.contains = sum(map(contains_answer, answers, refs)) / n
            report.samples = [
                Sample(ex.prompt, ref, ans)
                for ex, ref, ans in list(zip(scored, refs, answers, strict=True))[:n_samples]
            ]
        else:
            report.samples = [Sample(ex.prompt, ex.completion, "") for ex in examples[:n_samples]]
    finally:
        if was_training:
            model.train()
    return report


# --- the comparison in the run directory ----------------------------------------------------


def _cell(text: str, limit: int = 300) -> str:
    text = text if len(text) <= limit else "…" + text[-limit:]
    return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>") or " "


def _fmt(value: float | None, pct: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.1f}%" if pct else f"{value:.4g}"


def comparison_markdown(before: EvalReport, after: EvalReport) -> str:
    """Metrics before vs after, then sample outputs side by side (base vs tuned)."""
    lines = [
        "# Evaluation: base vs tuned",
        "",
        f"{after.n} validation examples.",
        "",
        "| metric | base | tuned |",
        "|---|---|---|",
    ]
    for name, pct in (
        ("loss", False),
        ("perplexity", False),
        ("exact_match", True),
        ("f1", True),
        ("contains", True),
    ):
        lines.append(
            f"| {name} | {_fmt(getattr(before, name), pct)} | {_fmt(getattr(after, name), pct)} |"
        )
    lines += [
        "",
        "## Samples",
        "",
        "| # | prompt | reference | base | tuned |",
        "|---|---|---|---|---|",
    ]
    for i, (b, a) in enumerate(zip(before.samples, after.samples, strict=False), 1):
        lines.append(
            f"| {i} | {_cell(a.prompt)} | {_cell(a.reference)} | {_cell(b.output)} "
            f"| {_cell(a.output)} |"
        )
    return "\n".join(lines) + "\n"


def write_comparison(run_dir: Path, before: EvalReport, after: EvalReport) -> None:
    """Write ``eval.json`` ({"before", "after"}) and ``samples.md`` into ``run_dir``."""
    run_dir = Path(run_dir)
    data = {"before": before.to_dict(), "after": after.to_dict()}
    _atomic_write(run_dir / "eval.json", json.dumps(data, ensure_ascii=False, indent=2))
    _atomic_write(run_dir / "samples.md", comparison_markdown(before, after))


def read_comparison(run_dir: Path) -> tuple[EvalReport, EvalReport] | None:
    """The reports ``write_comparison`` left in ``run_dir``, or None when there are none."""
    try:
        data = json.loads((Path(run_dir) / "eval.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return EvalReport.from_dict(data["before"]), EvalReport.from_dict(data["after"])


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(path)


def evaluate_run(
    run_ref: str,
    *,
    n: int | None = None,
    generate: bool | None = None,
    max_new_tokens: int = 64,
) -> tuple[EvalReport, EvalReport]:
    """Evaluate a finished run's base and tuned model again on its validation split.

    Uses the run's own config (data, split, template); writes eval.json and samples.md.
    ``n`` caps the number of examples (default: the config's ``eval_examples``).
    """
    from hanlin.errors import InvalidInputError, NotFoundError
    from hanlin.tune import prepare as prep
    from hanlin.tune.config import load_config
    from hanlin.tune.loading import load_model
    from hanlin.tune.runs import get_run

    run = get_run(run_ref)
    info = run.info()
    config = load_config(run.path / "config.yaml")
    p = prep.prepare(config)
    pairs = prep.eval_pairs(p.val, p.template, n or config.eval_examples)
    if not pairs:
        raise InvalidInputError(
            f"run {run.id} has no validation examples",
            hint="set val_ratio above 0 or give a validation file in the config",
        )
    examples = [EvalExample(x.prompt, x.completion) for x in pairs]
    if generate is None:
        generate = config.eval_generate and config.method != "cpt"
    kwargs: dict[str, Any] = {"generate": generate, "max_new_tokens": max_new_tokens}
    if (run.path / "adapter" / "adapter_config.json").is_file():
        from peft import PeftModel

        model = PeftModel.from_pretrained(
            load_model(p.base.hf_dir, config), str(run.path / "adapter")
        )
        with model.disable_adapter():
            before = evaluate(model, p.tokenizer, examples, **kwargs)
        after = evaluate(model, p.tokenizer, examples, **kwargs)
    elif (run.path / "model" / "config.json").is_file():
        before = evaluate(load_model(p.base.hf_dir, config), p.tokenizer, examples, **kwargs)
        after = evaluate(load_model(run.path / "model", config), p.tokenizer, examples, **kwargs)
    else:
        raise NotFoundError(
            f"run {run.id} has no final weights (status: {info.get('status', '?')})",
            hint=f"finish it first (`hanlin tune resume {run.id}`)",
        )
    write_comparison(run.path, before, after)
    return before, after

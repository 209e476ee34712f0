"""Dataset records → what the trainers consume, per method.

* ``cpt``: documents (or whole conversations) tokenized with EOS between them, concatenated and
  cut into ``max_len`` blocks; loss on every token.
* ``sft``: conversations through the chat template; loss only on assistant tokens.
* ``dpo``: ``{"prompt", "chosen", "rejected"}`` texts for ``trl``'s DPOTrainer, the prompt
  rendered up to the generation prompt and the replies as the model should continue it.

:func:`prepare` is the step training and evaluation share: a config's data read, split and
turned into those features with the base model's tokenizer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hanlin.errors import ConfigError, InvalidInputError
from hanlin.tune.config import TuneConfig
from hanlin.tune.data import Record, load_dataset, split
from hanlin.tune.loading import BaseRef, load_tokenizer, resolve_base
from hanlin.tune.templates import (
    ChatTemplate,
    Segment,
    adds_bos,
    resolve_template,
    tokenize_segments,
)

Feature = dict[str, list[int]]


def _messages_of(record: Record) -> list[dict[str, str]] | None:
    if "messages" in record:
        return list(record["messages"])
    if "prompt" in record:  # a preference pair: SFT/CPT learn the chosen reply
        return [*record["prompt"], {"role": "assistant", "content": record["chosen"]}]
    return None


def cpt_features(
    records: Sequence[Record], template: ChatTemplate, tokenizer: Any, max_len: int
) -> list[Feature]:
    """Packed blocks of ``max_len`` tokens for continued pretraining."""
    stream: list[int] = []
    eos = tokenizer.eos_token_id
    bos = adds_bos(tokenizer)
    for record in records:
        msgs = _messages_of(record)
        if msgs is None:
            ids = list(tokenizer(record["text"], add_special_tokens=False)["input_ids"])
            stream += ([bos] if bos is not None else []) + ids + ([eos] if eos is not None else [])
        else:
            segs = [Segment(s.text, True) for s in template.segments(msgs)]
            ids, _ = tokenize_segments(segs, tokenizer, max_len=10**9)
            stream += ids
    blocks = [stream[i : i + max_len] for i in range(0, len(stream), max_len)]
    return [{"input_ids": b, "labels": list(b)} for b in blocks if len(b) > 1]


def sft_features(
    records: Sequence[Record],
    template: ChatTemplate,
    tokenizer: Any,
    max_len: int,
    *,
    add_eos: bool = True,
) -> list[Feature]:
    """One example per conversation; labels are -100 outside the assistant replies.

    Examples whose replies are cut away entirely by ``max_len`` are dropped (no loss to take).
    """
    out: list[Feature] = []
    for record in records:
        msgs = _messages_of(record)
        if msgs is None:
            raise ConfigError(
                "sft needs conversations (chat, instruction or preference data), "
                "but this dataset is raw text",
                hint="use method: cpt for raw text, or give a chat/instruction JSONL file",
            )
        ids, labels = tokenize_segments(
            template.segments(msgs), tokenizer, max_len=max_len, add_eos=add_eos
        )
        if any(label != -100 for label in labels):
            out.append({"input_ids": ids, "labels": labels})
    if not out:
        raise ConfigError(
            "no training example has a reply within max_len tokens",
            hint="raise max_len in the config",
        )
    return out


def dpo_rows(records: Sequence[Record], template: ChatTemplate) -> list[dict[str, str]]:
    """Prompt/chosen/rejected texts for ``trl.DPOTrainer``."""
    rows = []
    for record in records:
        if "chosen" not in record:
            raise ConfigError(
                "dpo needs preference pairs (prompt/chosen/rejected), but this dataset has none",
                hint="give a JSONL file with prompt, chosen and rejected on every line",
            )
        rows.append(
            {
                "prompt": template.prompt(record["prompt"]),
                "chosen": template.completion(record["chosen"]),
                "rejected": template.completion(record["rejected"]),
            }
        )
    return rows


@dataclass(frozen=True, slots=True)
class EvalPair:
    """A validation example as text: the templated prompt and the expected answer."""

    prompt: str
    completion: str


def eval_pairs(records: Sequence[Record], template: ChatTemplate, limit: int) -> list[EvalPair]:
    """Up to ``limit`` validation examples for before/after evaluation.

    Conversations give the prompt up to the last reply and that reply's text; raw text gives an
    empty prompt and the document (loss only).
    """
    out: list[EvalPair] = []
    for record in records[:limit]:
        msgs = _messages_of(record)
        if msgs is None:
            out.append(EvalPair("", record["text"]))
        else:
            out.append(EvalPair(template.prompt(msgs[:-1]), msgs[-1]["content"]))
    return out


def token_lengths(records: Sequence[Record], template: ChatTemplate, tokenizer: Any) -> list[int]:
    """The token length of every record as it would be trained (no truncation)."""
    lengths = []
    for record in records:
        msgs = _messages_of(record)
        if msgs is None:
            n = len(tokenizer(record["text"], add_special_tokens=False)["input_ids"]) + 2
        else:
            n = len(tokenize_segments(template.segments(msgs), tokenizer, max_len=10**9)[0])
        lengths.append(n)
    return lengths


@dataclass(slots=True)
class Prepared:
    """A run's inputs, loaded and checked before any weights are read."""

    config: TuneConfig
    base: BaseRef
    tokenizer: Any
    template: ChatTemplate
    data_format: str
    train: list[Record]
    val: list[Record]
    train_features: list[Any]
    val_features: list[Any]

    @property
    def steps(self) -> int:
        c = self.config
        if c.max_steps > 0:
            return c.max_steps
        per_epoch = math.ceil(len(self.train_features) / (c.batch_size * c.grad_accum))
        return max(1, math.ceil(per_epoch * c.epochs))

    @property
    def tokens(self) -> int:
        if self.config.method == "dpo":
            lengths = [
                len(self.tokenizer(r["prompt"] + r["chosen"])["input_ids"]) * 2
                for r in self.train_features[:64]
            ]
        else:
            lengths = [len(f["input_ids"]) for f in self.train_features[:256]]
        mean = sum(lengths) / max(len(lengths), 1)
        return int(mean * self.steps * self.config.batch_size * self.config.grad_accum)


def prepare(config: TuneConfig) -> Prepared:
    """Read the data, split it, load the tokenizer and build the training features."""
    ds = load_dataset(config.data, config.format)
    if not ds.records:
        raise InvalidInputError(
            f"{ds.path} has no usable records ({len(ds.problems)} bad lines)",
            hint=f"see them with `hanlin tune data check {ds.path}`",
        )
    if config.validation:
        train, val = ds.records, load_dataset(config.validation, ds.format).records
    else:
        train, val = split(ds.records, config.val_ratio, config.seed)
    base = resolve_base(config.base)
    tokenizer = load_tokenizer(base.hf_dir)
    template = resolve_template(config.template, tokenizer, with_examples=config.template_examples)
    feats: list[list[Any]] = []
    for records in (train, val):
        if config.method == "cpt":
            feats.append(cpt_features(records, template, tokenizer, config.max_len))
        elif config.method == "sft":
            feats.append(
                sft_features(records, template, tokenizer, config.max_len, add_eos=config.add_eos)
                if records
                else []
            )
        else:
            feats.append(dpo_rows(records, template))
    return Prepared(config, base, tokenizer, template, ds.format, train, val, *feats)

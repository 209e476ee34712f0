"""Chat templates for training: a conversation becomes text segments, each marked trained or not.

The default, ``transcript``, is the prompt format the gateway's ``llamacpp`` provider serves the
bundled (template-less) Gemma 3 base model with — ``User: …`` / ``Assistant: …`` lines — so a
tuned model sees at inference exactly the shape it was trained on. Any format of
:data:`hanlin.models.providers.llamacpp_prompt.PROMPT_FORMATS` (``transcript``, ``qa``,
``chatml``, ``gemma``) or a table of :class:`PromptFormat` fields may be named; ``tokenizer``
uses the tokenizer's own chat template and ``auto`` picks it when the tokenizer has one.

By default the format's preamble and few-shot examples are left out of training text (they
cost tokens and teach nothing); the run records the matching serving format in ``run.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from hanlin.errors import ConfigError
from hanlin.models.providers.llamacpp_prompt import PromptFormat

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of training text; loss is computed only on ``train`` segments."""

    text: str
    train: bool


class ChatTemplate(Protocol):
    """Renders conversations for training and for evaluation prompts."""

    @property
    def name(self) -> str:
        """The template's name as recorded in run.json."""
        ...

    def segments(self, messages: Sequence[Message]) -> list[Segment]:
        """The whole conversation; assistant replies are the trained segments."""
        ...

    def prompt(self, messages: Sequence[Message]) -> str:
        """The text up to where the model's next reply starts (the generation prompt)."""
        ...

    def completion(self, text: str) -> str:
        """An assistant reply as it follows :meth:`prompt` (what the model should generate)."""
        ...


def _fill(template: str, text: str, name: str = "") -> str:
    return template.replace("{name}", name).replace("{text}", text)


@dataclass(frozen=True, slots=True)
class FormatTemplate:
    """A template built from a gateway :class:`PromptFormat` (completion-style prompts)."""

    name: str
    fmt: PromptFormat

    def _context(self, messages: Sequence[Message]) -> list[Segment]:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        system = system or self.fmt.preamble
        out = [Segment(_fill(self.fmt.system, system), False)] if system else []
        for user, reply in self.fmt.examples:
            out.append(Segment(_fill(self.fmt.user, user), False))
            out.append(Segment(_fill(self.fmt.assistant, reply), False))
        return out

    def segments(self, messages: Sequence[Message]) -> list[Segment]:
        out = self._context(messages)
        for m in messages:
            if m["role"] == "user":
                out.append(Segment(_fill(self.fmt.user, m["content"]), False))
            elif m["role"] == "assistant":
                out.append(Segment(self.fmt.generation, False))
                out.append(Segment(self.completion(m["content"]), True))
        return out

    def prompt(self, messages: Sequence[Message]) -> str:
        parts = [s.text for s in self._context(messages)]
        for m in messages:
            if m["role"] == "user":
                parts.append(_fill(self.fmt.user, m["content"]))
            elif m["role"] == "assistant":
                parts.append(_fill(self.fmt.assistant, m["content"]))
        return "".join(parts) + self.fmt.generation

    def completion(self, text: str) -> str:
        full = _fill(self.fmt.assistant, text)
        gen = self.fmt.generation
        return full[len(gen) :] if full.startswith(gen) else full

    def serving_format(self) -> dict[str, Any]:
        """The ``prompt_format`` table that serves a model tuned with this template."""
        return {
            "system": self.fmt.system,
            "user": self.fmt.user,
            "assistant": self.fmt.assistant,
            "tool": self.fmt.tool,
            "generation": self.fmt.generation,
            "preamble": self.fmt.preamble,
            "examples": [list(e) for e in self.fmt.examples],
            "stop": list(self.fmt.stop),
            "special": list(self.fmt.special),
        }


@dataclass(frozen=True, slots=True)
class TokenizerTemplate:
    """The tokenizer's own Jinja chat template; replies are found by rendering prefixes."""

    tokenizer: Any
    name: str = "tokenizer"

    def _render(self, messages: Sequence[Message], generation: bool) -> str:
        text = self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=generation
        )
        return str(text)

    def segments(self, messages: Sequence[Message]) -> list[Segment]:
        out: list[Segment] = []
        done = ""
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            head = self._render(messages[:i], True)
            full = self._render(messages[: i + 1], False)
            if not head.startswith(done) or not full.startswith(head):
                raise ConfigError(
                    "the tokenizer's chat template does not render conversations as prefixes "
                    "of each other, so replies cannot be masked",
                    hint="set template: transcript (or another named format) in the config",
                )
            out.append(Segment(head[len(done) :], False))
            out.append(Segment(full[len(head) :], True))
            done = full
        return out

    def prompt(self, messages: Sequence[Message]) -> str:
        return self._render(messages, True)

    def completion(self, text: str) -> str:
        head = self._render([{"role": "user", "content": "x"}], True)
        full = self._render(
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": text}], False
        )
        return full[len(head) :] if full.startswith(head) else text


def resolve_template(
    spec: str | dict[str, Any], tokenizer: Any = None, *, with_examples: bool = False
) -> ChatTemplate:
    """The template named in a config: a prompt-format name or table, ``tokenizer`` or ``auto``.

    ``with_examples`` keeps the format's preamble and few-shot examples in every example, as the
    gateway shows them at inference with the stock format. Raises ConfigError for an unknown name.
    """
    has_own = tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))
    if spec == "tokenizer" or (spec == "auto" and has_own):
        if not has_own:
            raise ConfigError(
                "template 'tokenizer' was asked for, but this tokenizer has no chat template",
                hint="use template: transcript (the format the bundled model is served with)",
            )
        return TokenizerTemplate(tokenizer)
    name = "transcript" if spec == "auto" else spec
    fmt = PromptFormat.from_option(name)
    if not with_examples:
        fmt = replace(fmt, preamble="", examples=())
    label = name if isinstance(name, str) else "custom"
    return FormatTemplate(label, fmt)


def adds_bos(tokenizer: Any) -> int | None:
    """The BOS id when the tokenizer puts one before text (as llama.cpp does then), else None."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    first = tokenizer("a", add_special_tokens=True)["input_ids"][:1]
    return int(bos) if first == [bos] else None


def tokenize_segments(
    segments: Sequence[Segment], tokenizer: Any, *, max_len: int, add_eos: bool = True
) -> tuple[list[int], list[int]]:
    """Token ids and labels (``-100`` where no loss is taken), cut to ``max_len`` tokens.

    Neighbouring segments with the same flag are tokenized as one string, so the prompt is
    tokenized as the server tokenizes it. BOS is added when the tokenizer adds one; EOS closes
    the last trained segment when ``add_eos``.
    """
    merged: list[Segment] = []
    for seg in segments:
        if merged and merged[-1].train == seg.train:
            merged[-1] = Segment(merged[-1].text + seg.text, seg.train)
        elif seg.text:
            merged.append(seg)
    ids: list[int] = []
    labels: list[int] = []
    if (bos := adds_bos(tokenizer)) is not None:
        ids.append(bos)
        labels.append(-100)
    for seg in merged:
        piece = list(tokenizer(seg.text, add_special_tokens=False)["input_ids"])
        ids += piece
        labels += piece if seg.train else [-100] * len(piece)
    eos = getattr(tokenizer, "eos_token_id", None)
    if add_eos and eos is not None and merged and merged[-1].train:
        ids.append(eos)
        labels.append(eos)
    return ids[:max_len], labels[:max_len]

"""Instruction variants for the prompt optimiser (:mod:`hanlin.evals.optimize`): a few built-in
rewrites of a prompt's instruction for short-answer tasks, in English or Chinese, and the
request that asks a model to propose one — DSPy's grounded proposer in miniature: the model is
shown the current instruction and a few real inputs with their gold answers, and a different
tip each time (be concise, copy the words, …) so the proposals differ.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

from hanlin.text import is_cjk

Lang = Literal["en", "zh"]
#: the longest instruction a proposal may be (characters); longer replies are cut at a sentence
MAX_INSTRUCTION = 600

_REWRITES: dict[Lang, tuple[str, ...]] = {
    "en": (
        "{base}Answer with the shortest phrase from the context that answers the question. "
        "Do not explain.",
        "Read the context and the question, then reply with the answer only: a few words "
        "copied exactly from the context.",
        "You extract answers. Copy the exact words of the context that answer the question; "
        "write nothing else.",
    ),
    "zh": (
        "{base}请直接用上下文中的原文回答，答案尽量简短，不要解释。",
        "阅读上下文和问题，只写出答案：从上下文中原样摘取的几个词。",
        "你负责抽取答案。从上下文中原样复制能回答问题的最短词语，不写任何其他内容。",
    ),
}

_TIPS: dict[Lang, tuple[str, ...]] = {
    "en": (
        "Keep it short and direct.",
        "Say that the answer must be copied word for word from the input.",
        "Say how long a good answer is, judging by the examples.",
        "Describe the task step by step in one or two sentences.",
    ),
    "zh": (
        "简短直接。",
        "说明答案必须从输入中逐字摘取。",
        "根据示例说明好答案的长度。",
        "用一两句话分步骤描述任务。",
    ),
}


def language_of(texts: Sequence[str]) -> Lang:
    """``zh`` when at least a fifth of the letters in ``texts`` are CJK characters."""
    letters = [ch for text in texts for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    return "zh" if sum(is_cjk(ch) for ch in letters) * 5 >= len(letters) else "en"


def builtin_rewrites(
    instruction: str, lang: Lang, literal: Callable[[str], str] = lambda text: text
) -> list[str]:
    """The built-in instruction variants: the first extends ``instruction`` (the prompt's
    own, kept as it is: it may be template text), the others replace it. ``literal`` is
    applied to the rewrites' own words (the optimiser doubles their braces)."""
    base = instruction.strip()
    if base and not base.endswith((".", "!", "?", "。", "！", "？")):
        base += "." if lang == "en" else "。"
    if base and lang == "en":
        base += " "
    out = []
    for template in _REWRITES[lang]:
        head, found, tail = template.partition("{base}")
        out.append(base + literal(tail) if found else literal(head))
    return out


def proposal_messages(
    instruction: str, examples: Sequence[tuple[str, str]], lang: Lang, n: int
) -> list[dict[str, str]]:
    """The request for the ``n``-th proposed instruction: the current one, a few (input, gold
    answer) pairs of the task, and the ``n``-th tip (they cycle)."""
    tips = _TIPS[lang]
    tip = tips[n % len(tips)]
    shown = "\n\n".join(
        f"Input:\n{text.strip()}\nAnswer: {answer.strip()}" for text, answer in examples
    )
    language = "Chinese" if lang == "zh" else "English"
    current = instruction.strip() or "(none)"
    return [
        {
            "role": "system",
            "content": "You write instructions for a language model. Reply with the instruction "
            "only, no preamble and no quotes.",
        },
        {
            "role": "user",
            "content": f"The current instruction is: {current}\n\n"
            f"The model receives inputs like these and must reply exactly with the answer "
            f"shown:\n\n{shown}\n\n"
            f"Write one better instruction for this task, in {language}, at most 60 words. "
            f"{tip}",
        },
    ]


_LEAD = re.compile(r"^(?:(?:new |better |improved )?instruction|指令|说明)\s*[:：]\s*", re.I)
_QUOTES = "\"'“”‘’「」`"


def clean_proposal(text: str) -> str | None:
    """A proposal as an instruction: its first paragraph, without a label (``Instruction:``)
    or quotes, cut to :data:`MAX_INSTRUCTION` characters; None when nothing is left."""
    text = text.strip().strip("`").strip()
    first = next((p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()), "")
    first = _LEAD.sub("", first).strip().strip(_QUOTES).strip()
    if len(first) > MAX_INSTRUCTION:
        cut = max(first.rfind(p, 0, MAX_INSTRUCTION) for p in ".。!！?？")
        first = first[: cut + 1] if cut > 0 else first[:MAX_INSTRUCTION]
    return first or None

"""What a safety classifier said, and what the policy does about it: the two output formats
guard models are served with, parsed into one :class:`Verdict`, and its labels and categories
mapped to ``block``, ``flag`` or ``allow`` by ``guard.model_categories``.

- **Llama Guard** (3 and 4): ``safe``, or ``unsafe`` and a line of categories ``S1,S10``.
- **Qwen3Guard** (Gen): ``Safety: Safe|Unsafe|Controversial``, ``Categories: Violent, PII``
  (``None`` when safe) and, when an answer was classified, ``Refusal: Yes|No``.

An answer in neither format is :class:`UnreadableVerdict`: the model is not a classifier, or
not one this module reads — treated like a guard model that is down.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_QWEN_SAFETY = re.compile(r"^\s*Safety\s*:\s*(safe|unsafe|controversial)\b", re.I | re.M)
_QWEN_CATEGORIES = re.compile(r"^\s*Categories\s*:\s*(.*)$", re.I | re.M)
_LLAMA = re.compile(r"^\s*(safe|unsafe)\s*$", re.I)
_LLAMA_CATEGORY = re.compile(r"\bS\d{1,2}\b", re.I)

#: what a label does when neither it nor a category is in ``guard.model_categories``
DEFAULT_ACTIONS = {"Safe": "allow", "Unsafe": "block", "Controversial": "flag"}
_STRENGTH = {"allow": 0, "flag": 1, "block": 2}


class UnreadableVerdict(ValueError):
    """The guard model's answer is in no format this module reads."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A classifier's answer: ``label`` is Safe, Unsafe or Controversial; ``categories`` as the
    model named them (``S1``, ``Violent``)."""

    label: str
    categories: tuple[str, ...] = ()
    #: Qwen3Guard's ``Refusal`` line on an answer: True, False, or None when absent
    refusal: bool | None = None


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the policy does: ``action`` (block, flag, allow) and the rule ids that decided it
    (``GUARD:S1``, ``GUARD:Unsafe``)."""

    action: str
    rules: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rule(self) -> str:
        return self.rules[0] if self.rules else ""


def parse(text: str) -> Verdict:
    """The verdict in a guard model's answer (either format). Raises :class:`UnreadableVerdict`."""
    safety = _QWEN_SAFETY.search(text)
    if safety is not None:
        label = safety.group(1).capitalize()
        cats: list[str] = []
        found = _QWEN_CATEGORIES.search(text)
        if found is not None:
            for part in re.split(r"[,，;；]", found.group(1)):
                name = part.strip()
                if name and name.lower() != "none":
                    cats.append(name)
        refusal = re.search(r"^\s*Refusal\s*:\s*(yes|no)\b", text, re.I | re.M)
        said = None if refusal is None else refusal.group(1).lower() == "yes"
        return Verdict(label, tuple(cats), said)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if lines and _LLAMA.match(lines[0]):
        label = lines[0].strip().capitalize()
        cats = []
        for line in lines[1:]:
            cats += [c.upper() for c in _LLAMA_CATEGORY.findall(line)]
        return Verdict(label, tuple(cats))
    raise UnreadableVerdict(f"not a guard model's answer: {text[:80]!r}")


def judge(verdict: Verdict, categories: Mapping[str, str]) -> Judgement:
    """The action for ``verdict``: the strongest action among its categories, each as listed
    in ``categories`` or else as its label (listed, or :data:`DEFAULT_ACTIONS`). A safe
    verdict is allowed whatever its categories."""
    if verdict.label == "Safe":
        return Judgement("allow")
    default = categories.get(verdict.label, DEFAULT_ACTIONS.get(verdict.label, "block"))
    named = [(categories.get(c, default), c) for c in verdict.categories or (verdict.label,)]
    action = max((a for a, _ in named), key=_STRENGTH.__getitem__)
    return Judgement(action, tuple(f"GUARD:{c}" for a, c in named if a == action))

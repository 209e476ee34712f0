"""How the prompt optimiser reads and writes a prompt: the instruction and the input template of
a version, the values an evaluation example gives its variables, and a candidate's text — the
instruction as the ``system`` turn, each few-shot example as a ``user`` turn (the input filled
with its values) and an ``assistant`` turn (its gold answer), then the input template
(:mod:`hanlin.prompts.messages`). Example text is written as a literal: a brace or a line
reading ``user:`` in a context can neither become a field nor start a turn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hanlin.errors import InvalidInputError
from hanlin.evals.base import Example
from hanlin.prompts.base import Variable
from hanlin.prompts.messages import Role, compose, is_conversation, turns
from hanlin.prompts.template import fields, fill

_ROLE_LINE = re.compile(r"^(system|user|assistant):[ \t]*$", re.M)


@dataclass(frozen=True, slots=True)
class Parts:
    """A prompt split into its instruction (template text, may be empty) and the input
    template every example fills."""

    instruction: str
    input: str

    def shown(self, values: Mapping[str, Any]) -> str:
        """The input as an example fills it."""
        return fill(self.input, values)


def split_prompt(text: str) -> Parts:
    """A conversation: its system turn and its last user turn (earlier turns are examples,
    replaced by the search). Plain text: the leading paragraphs without a field are the
    instruction, the rest is the input. Raises :class:`InvalidInputError` for a prompt with
    no input to fill."""
    if is_conversation(text):
        parts = turns(text)
        system = "\n\n".join(t for role, t in parts if role == "system")
        users = [t for role, t in parts if role == "user"]
        if not users:
            raise InvalidInputError(
                "the prompt has no user turn for the examples' input",
                hint="end it with a 'user:' turn holding the fields, e.g. {question}",
            )
        return Parts(system, users[-1])
    paragraphs = re.split(r"\n[ \t]*\n", text)
    first = next((i for i, p in enumerate(paragraphs) if fields(p)), None)
    if first is None:
        raise InvalidInputError(
            "the prompt has no variables for the dataset's examples",
            hint="write the input as fields the examples fill, e.g. 上下文：{context}\\n"
            "问题：{question}",
        )
    return Parts("\n\n".join(paragraphs[:first]).strip(), "\n\n".join(paragraphs[first:]))


def literal(text: str) -> str:
    """Text as a template literal: braces doubled, and a line that would start a turn
    (``user:``) indented so it stays text."""
    text = text.replace("{", "{{").replace("}", "}}")
    return _ROLE_LINE.sub(lambda m: " " + m.group(0), text)


def values_of(example: Example, variables: Sequence[Variable]) -> dict[str, Any]:
    """The values an example gives a version's variables: ``question``, ``context`` and the
    example's metadata fields, by name."""
    known: dict[str, Any] = {"question": example.question, "context": example.context or ""}
    for key, value in example.meta.items():
        if isinstance(value, str | int | float | bool | list):
            known.setdefault(key, value)
    return {v.name: known[v.name] for v in variables if v.name in known}


def example_turns(
    parts: Parts,
    instruction: str,
    shots: Sequence[Example],
    variables: Sequence[Variable],
    blank: Mapping[str, Any],
) -> str:
    """A candidate's template: ``instruction`` (template text) as the system turn, each shot
    as a user turn and its first gold answer as the assistant's, then the input. ``blank``
    fills the variables the examples have no value for."""
    out: list[tuple[Role, str]] = []
    if instruction.strip():
        out.append(("system", instruction.strip()))
    for ex in shots:
        shown = parts.shown(values_of(ex, variables) | dict(blank))
        out += [("user", literal(shown)), ("assistant", literal(ex.answers[0]))]
    out.append(("user", parts.input))
    return compose(out)

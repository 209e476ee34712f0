"""A prompt version as the chat messages a model is sent (the playground and the optimiser).

A plain template is one user message. A template that starts with a role line — ``system:``,
``user:`` or ``assistant:`` alone on a line, as in Microsoft's Prompty files — is a
conversation: each role line starts a turn, so a version can hold an instruction and few-shot
examples as real turns (what a base model follows best)::

    system:
    Answer with a short phrase copied from the context.

    user:
    Context: The Yangtze flows into the East China Sea.
    Question: Where does the Yangtze end?

    assistant:
    the East China Sea

    user:
    Context: {context}
    Question: {question}

The turns are split *before* the values are filled in, so a value that holds ``user:`` on a
line of its own stays text inside its turn and can never start a turn of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from hanlin.prompts.base import PromptVersion
from hanlin.prompts.template import check_values, fill

Role = Literal["system", "user", "assistant"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")
_ROLE_LINE = re.compile(r"^(system|user|assistant):[ \t]*$")


def turns(text: str) -> list[tuple[Role, str]]:
    """The turns of a template: ``[(role, text), …]``; a plain template is one user turn.

    A turn's text is stripped of the blank lines around it; empty turns are dropped."""
    lines = text.split("\n")
    first = next((line for line in lines if line.strip()), "")
    if not _ROLE_LINE.match(first):
        return [("user", text)]
    out: list[tuple[Role, str]] = []
    role: Role | None = None
    body: list[str] = []

    def close() -> None:
        if role is not None:
            content = "\n".join(body).strip("\n")
            if content.strip():
                out.append((role, content))

    for line in lines:
        found = _ROLE_LINE.match(line)
        if found:
            close()
            role = found.group(1)  # type: ignore[assignment]  # the pattern allows only ROLES
            body = []
        else:
            body.append(line)
    close()
    return out


def compose(parts: Sequence[tuple[Role, str]]) -> str:
    """The template text of these turns (the inverse of :func:`turns`)."""
    return "\n\n".join(f"{role}:\n{text}" for role, text in parts)


def is_conversation(text: str) -> bool:
    """Whether the template is written as turns (starts with a role line)."""
    first = next((line for line in text.split("\n") if line.strip()), "")
    return bool(_ROLE_LINE.match(first))


def render_messages(
    version: PromptVersion, values: Mapping[str, Any], *, user_input: str | None = None
) -> list[dict[str, str]]:
    """The chat messages of ``version`` with ``values`` filled in (checked strictly, as
    :meth:`~hanlin.prompts.library.PromptLibrary.render` does).

    ``user_input`` is a user message sent after the prompt: a plain template then becomes the
    system message (the way to try a system prompt), a conversation gets it as its last turn.
    Raises :class:`~hanlin.errors.InvalidInputError` naming a missing or mistyped variable."""
    checked = check_values(f"{version.name}@{version.version}", version.variables, values)
    parts = turns(version.text)
    if user_input is not None and not is_conversation(version.text):
        parts = [("system", version.text)]
    messages = [{"role": role, "content": fill(text, checked)} for role, text in parts]
    if user_input is not None:
        messages.append({"role": "user", "content": user_input})
    return messages

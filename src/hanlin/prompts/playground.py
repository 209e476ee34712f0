"""What a prompt run sends — the playground's ``POST /api/prompts/{name}/run`` and the optimiser:
a stored version (or an unsaved draft of one) rendered as chat messages, the model to call and
the call's options (the request's, else the version's config). The model call itself is the
caller's: this module sits below the gateway and never calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.prompts.base import PRODUCTION, NewVersion, PromptVersion, Variable
from hanlin.prompts.library import PromptLibrary
from hanlin.prompts.messages import render_messages
from hanlin.prompts.template import declare

#: model names a prompt cannot run against: knowledge bases and agents bring their own prompts
_NOT_GATEWAY = ("kb:", "agent:", "hanlin:")


@dataclass(slots=True)
class PromptCall:
    """A rendered prompt ready for ``Gateway.achat(messages, model, **options)``."""

    version: PromptVersion
    messages: list[dict[str, str]]
    model: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``greet@2``, or ``greet (draft)`` for unsaved text."""
        v = self.version
        return f"{v.name}@{v.version}" if v.version else f"{v.name} (draft)"


def draft(
    library: PromptLibrary, name: str, text: str, variables: Sequence[Variable] = ()
) -> PromptVersion:
    """An unsaved version of ``name`` (number 0): ``text`` checked like a new version, fields
    not in ``variables`` declared as the prompt's latest version declares them (else required
    strings). Raises :class:`InvalidInputError` for a bad template."""
    try:
        earlier = library.get(name).variables
    except NotFoundError:
        earlier = []
    new = declare(NewVersion(text=text, variables=list(variables)), earlier)
    return PromptVersion(
        name=name,
        version=0,
        text=new.text,
        variables=new.variables,
        config=None,
        message="",
        author="",
        created_at=0.0,
        hash=new.content_hash(),
    )


def prepare_call(
    library: PromptLibrary,
    name: str,
    values: Mapping[str, Any],
    *,
    default_model: str,
    version: int | None = None,
    label: str | None = None,
    text: str | None = None,
    variables: Sequence[Variable] = (),
    model: str | None = None,
    user_input: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> PromptCall:
    """The call for a version (by number, else ``label``, else ``production``) or for a draft
    ``text``: its messages with ``values`` filled in, the model (``model``, else the version's
    config, else ``default_model``) and options (given ones over the version's config).

    Raises :class:`NotFoundError` for an unknown prompt, version or label and
    :class:`InvalidInputError` for a bad value, a draft next to a version, or a model that is
    not a gateway model."""
    if text is not None:
        if version is not None or label is not None:
            raise InvalidInputError(
                "give a draft text or a stored version, not both",
                hint="leave out version and label to run the text",
                param="text",
            )
        found = draft(library, name, text, variables)
    else:
        if version is None and label is None:
            label = PRODUCTION
        found = library.get(name, version=version, label=None if version else label)
    messages = render_messages(found, values, user_input=user_input)
    config = found.config
    chosen = model or (config.model if config else None) or default_model
    if chosen.startswith(_NOT_GATEWAY):
        raise InvalidInputError(
            f"a prompt runs against a gateway model, not '{chosen}'",
            hint="pick a chat model (GET /v1/models or `hanlin models ls`); knowledge bases "
            "and agents have prompts of their own",
            param="model",
        )
    options: dict[str, Any] = {}
    if config is not None:
        options = config.model_dump(include={"temperature", "max_tokens"}, exclude_none=True)
    if temperature is not None:
        options["temperature"] = temperature
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    return PromptCall(found, messages, chosen, options)

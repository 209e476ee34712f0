"""An LLM judge through the gateway, for the metrics that need one: whether a passage supports
a claim (citation precision/recall) and whether an answer is correct against gold answers.

Each judgement is one call at temperature 0, asking for a one-key JSON verdict, with a prompt
from the prompt registry (``eval.judge.support`` and ``eval.judge.correct``, read at a label,
``production`` by default): a new version can be tried on a run and promoted by moving the
label. The judge reads its prompts once, when it is made, and the run records the versions it
used (``eval.judge.support@2``), so a resumed run keeps them and scores from different prompts
are never compared unknowingly. A reply that is not a clear verdict — or a failed call — is
*no verdict* (``None``): the example is marked unjudged and left out of the judged means,
never counted as a pass.
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING

from hanlin.errors import HanlinError, InvalidInputError
from hanlin.models.base_models import is_base_model
from hanlin.prompts import prompt_library
from hanlin.prompts.base import PRODUCTION
from hanlin.prompts.builtin import bundled_text
from hanlin.prompts.template import fill

if TYPE_CHECKING:
    from hanlin.models.gateway import Gateway

#: the judge's prompts: what :class:`Judge` calls them → their name in the registry
PROMPTS = {"support": "eval.judge.support", "correct": "eval.judge.correct"}
#: how runs recorded before the registry named their (bundled, version 1) prompts
_LEGACY = {"support-v1", "correct-v1"}

_OBJECT = re.compile(r"\{[^{}]*\}")
_WORDS = {"yes": True, "true": True, "no": False, "false": False}


def parse_verdict(reply: str, key: str) -> bool | None:
    """The boolean ``key`` of the first JSON object in ``reply``, or a reply that is just
    yes/no/true/false; None for anything else."""
    for match in _OBJECT.finditer(reply or ""):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and isinstance(data.get(key), bool):
            return bool(data[key])
    word = (reply or "").strip().strip(".!。").strip().lower()
    return _WORDS.get(word)


class Judge:
    """Judgements by ``model`` through ``gateway`` (thread-safe; repeated questions are asked
    once per judge). Raises :class:`InvalidInputError` for a base model, which cannot
    follow the instructions."""

    def __init__(
        self,
        gateway: Gateway,
        model: str,
        *,
        label: str = PRODUCTION,
        versions: dict[str, str] | None = None,
    ) -> None:
        if is_base_model(gateway.settings, model, resolve=gateway.resolve):
            raise InvalidInputError(
                f"the judge {model} is a base model: it cannot follow a grading instruction",
                hint="give --judge an instruction-following chat model (a configured provider "
                "or endpoint); without --judge, citation metrics use the lexical proxy",
            )
        self.gateway = gateway
        self.model = model
        self.calls = 0
        self.failures = 0
        self._memo: dict[tuple[str, str], bool | None] = {}
        self._lock = threading.Lock()
        #: prompt → (the version's reference, its text)
        self._prompts = {
            key: _prompt(gateway, name, label, (versions or {}).get(key))
            for key, name in PROMPTS.items()
        }

    @property
    def versions(self) -> dict[str, str]:
        """The prompt versions used, e.g. ``{"support": "eval.judge.support@1", …}``."""
        return {key: ref for key, (ref, _) in self._prompts.items()}

    def describe(self) -> str:
        return f"{self.model} (prompts {', '.join(self.versions.values())})"

    def supports(self, premise: str, claim: str) -> bool | None:
        """Does ``premise`` support ``claim``? None when the judge gave no clear verdict."""
        return self._ask("support", "supported", premise=premise, claim=claim)

    def correct(self, question: str, gold: list[str], answer: str) -> bool | None:
        """Is ``answer`` correct given the ``gold`` answers? None without a clear verdict."""
        return self._ask(
            "correct",
            "correct",
            question=question,
            gold=json.dumps(gold, ensure_ascii=False),
            answer=answer,
        )

    def _ask(self, prompt: str, key: str, **values: str) -> bool | None:
        try:
            # a version that uses a field the judge does not fill cannot be labelled (the
            # registry refuses): only one pinned by hand fails here, as no verdict
            text = fill(self._prompts[prompt][1], values)
        except InvalidInputError:
            return None
        memo_key = (prompt, text)
        with self._lock:
            if memo_key in self._memo:
                return self._memo[memo_key]
        try:
            reply = self.gateway.chat(
                [{"role": "user", "content": text}], self.model, temperature=0.0, max_tokens=64
            ).text
            verdict = parse_verdict(reply, key)
        except HanlinError:
            verdict = None
        with self._lock:
            self.calls += 1
            self.failures += verdict is None
            self._memo[memo_key] = verdict
        return verdict


def _prompt(gateway: Gateway, name: str, label: str, pinned: str | None) -> tuple[str, str]:
    """``(reference, text)`` of the judge prompt ``name``: the version ``pinned`` names (a
    resumed run's), else the one ``label`` points at (the bundled text when the registry
    cannot be read). Raises :class:`~hanlin.errors.NotFoundError` for a pinned version that
    no longer exists."""
    if pinned in _LEGACY:
        return f"{name}@1", bundled_text(name)
    library = prompt_library(gateway.settings)
    if pinned is not None and "@" in pinned:
        version = library.get(name, version=int(pinned.rpartition("@")[2]))
        return pinned, version.text
    found = library.resolve(name, label)
    return found.ref, found.text

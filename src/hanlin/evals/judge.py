"""An LLM judge through the gateway, for the metrics that need one: whether a passage supports
a claim (citation precision/recall) and whether an answer is correct against gold answers.

Each judgement is one call with a versioned prompt (:data:`PROMPTS`; the run records the
versions it used, so scores from different prompts are never compared unknowingly) at
temperature 0, asking for a one-key JSON verdict. A reply that is not a clear verdict — or a
failed call — is *no verdict* (``None``): the example is marked unjudged and left out of the
judged means, never counted as a pass.
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING

from hanlin.errors import HanlinError, InvalidInputError
from hanlin.models.base_models import is_base_model

if TYPE_CHECKING:
    from hanlin.models.gateway import Gateway

#: name → (version, template); change the text only together with the version
PROMPTS: dict[str, tuple[str, str]] = {
    "support": (
        "support-v1",
        "You check whether a passage supports a claim.\n\n"
        'Passage:\n"""\n{premise}\n"""\n\n'
        'Claim:\n"""\n{claim}\n"""\n\n'
        "Does the passage support the claim — does it state the claim or directly imply it? "
        "Background knowledge does not count; only the passage. "
        'Reply with JSON only: {{"supported": true}} or {{"supported": false}}.',
    ),
    "correct": (
        "correct-v1",
        "You grade an answer to a question against the gold answers.\n\n"
        "Question: {question}\n"
        "Gold answers: {gold}\n"
        'Answer:\n"""\n{answer}\n"""\n\n'
        "Is the answer correct: does it give the information of one of the gold answers "
        "without contradicting it? Extra correct detail is fine. "
        'Reply with JSON only: {{"correct": true}} or {{"correct": false}}.',
    ),
}

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

    def __init__(self, gateway: Gateway, model: str) -> None:
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

    @property
    def versions(self) -> dict[str, str]:
        return {name: version for name, (version, _) in PROMPTS.items()}

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
        text = PROMPTS[prompt][1].format(**values)
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

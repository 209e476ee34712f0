"""Retrieved chunks screened for injection before a model reads them (``guard.injection``):
flagged, stripped of the offending text, or dropped from the evidence — recorded on the span by
rule id and chunk id, never by text."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from hanlin.config import GuardSettings
from hanlin.guard.injection import screen
from hanlin.guard.policy import injection_mode
from hanlin.rag.retrieval import Retrieved


@dataclass(slots=True)
class Screening:
    """What the scanner did to one answer's evidence."""

    mode: str
    #: chunk id → the ids of the rules that fired on it
    flagged: dict[int, list[str]] = field(default_factory=dict)
    dropped: list[int] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        if not self.flagged:
            return []
        rules = sorted({r for found in self.flagged.values() for r in found})
        what = {"flag": "flagged", "strip": "stripped", "drop": "dropped"}.get(self.mode, "flagged")
        return [
            f"the guard {what} {len(self.flagged)} source(s) holding injected instructions "
            f"({', '.join(rules)})"
        ]

    def notice(self) -> dict[str, Any]:
        """``{"injection": {"mode", "sources", "rules"}}`` for the answer's guard notice."""
        if not self.flagged:
            return {}
        rules = sorted({r for found in self.flagged.values() for r in found})
        return {"injection": {"mode": self.mode, "sources": len(self.flagged), "rules": rules}}

    def record(self, sp: Any) -> None:
        if not self.flagged:
            return
        sp.set_attribute("hanlin.guard.injection", len(self.flagged))
        sp.set_attribute("hanlin.guard.injection.mode", self.mode)
        sp.set_attribute(
            "hanlin.guard.injection.rules",
            sorted({r for found in self.flagged.values() for r in found}),
        )
        for chunk, rules in self.flagged.items():
            sp.add_event(
                f"hanlin.guard.{self.mode}",
                {"hanlin.guard.rule": rules, "hanlin.rag.chunk_id": chunk},
            )


def screen_retrieved(
    found: Retrieved, settings: GuardSettings, kb: str | None, key: str | None = None
) -> tuple[Retrieved, Screening]:
    """``found`` with the policy applied to each chunk's text (dropped chunks removed)."""
    mode = injection_mode(settings, kb=kb, key=key)
    screening = Screening(mode)
    if mode == "off":
        return found, screening
    kept = []
    for result in found.results:
        checked = screen(result.chunk.text, mode, settings.allowed_link_hosts)
        if not checked.findings:
            kept.append(result)
            continue
        screening.flagged[result.chunk.id] = checked.rules
        if checked.dropped:
            screening.dropped.append(result.chunk.id)
        elif checked.text != result.chunk.text:
            kept.append(replace(result, chunk=replace(result.chunk, text=checked.text)))
        else:
            kept.append(result)
    if len(kept) == len(found.results) and mode != "strip":
        return found, screening
    return replace(found, results=kept), screening

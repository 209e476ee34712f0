"""What the guard would do to a text — ``hanlin guard scan``: the personal data it would mask,
the injection patterns it would flag and the term-bank hits, each with its rule and position,
never the value."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from hanlin.config import GuardSettings
from hanlin.guard.detect import detector
from hanlin.guard.injection import screen
from hanlin.guard.masking import Masker
from hanlin.guard.output import output_policy


@dataclass(frozen=True, slots=True)
class Item:
    """One finding: ``kind`` is pii, injection, term or link; ``rule`` the type or rule id."""

    kind: str
    rule: str
    start: int
    end: int
    action: str


@dataclass(slots=True)
class ScanReport:
    chars: int
    items: list[Item] = field(default_factory=list)
    #: the text as a remote model would get it (personal data masked)
    masked: str = ""
    #: the text as an answer would be shown (terms masked, links neutralised; or the refusal)
    shown: str = ""
    blocked: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "chars": self.chars,
            "blocked": self.blocked,
            "items": [asdict(i) for i in self.items],
        }


def scan_text(text: str, settings: GuardSettings) -> ScanReport:
    """Everything the policy of ``settings`` finds in ``text`` (as input, retrieved content and
    answer alike)."""
    report = ScanReport(len(text))
    found = detector(tuple(settings.recognizers), tuple(settings.entities))
    entities = found.find(text)
    report.items += [Item("pii", e.kind, e.start, e.end, "mask") for e in entities]
    masker = Masker(found)
    masker.reserve([text])
    report.masked = masker.mask(text, entities)
    mode = settings.injection if settings.injection != "off" else "flag"
    for f in screen(text, mode, settings.allowed_link_hosts).findings:
        report.items.append(Item("injection", f.rule, f.start, f.end, mode))
    policy = output_policy(settings)
    if policy.terms is not None:
        for h in policy.terms.find(text):
            report.items.append(Item("term", h.rule, h.start, h.end, h.action))
    checked = policy.check(text)
    report.blocked = checked.blocked
    report.shown = checked.text
    report.items += [
        Item("link", h.rule, -1, -1, h.action) for h in checked.hits if h.rule.startswith("LINK")
    ]
    report.items.sort(key=lambda i: (i.start, i.kind))
    return report

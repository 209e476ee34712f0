"""The output policy: what a model's answer may say and link to, applied before it leaves the
gateway — term banks (block, mask, flag) and, for answers a person reads, links and images to
hosts outside ``guard.allowed_link_hosts`` neutralised.

A streamed answer goes through :class:`OutputStream`, which holds back the end of the text only
while it could still grow into a term (at most the longest term, normalised) or a link (an
unclosed ``[…](…`` or an unfinished URL), so a term or link split over any number of deltas is
judged whole and other text is not delayed. A ``block`` term ends the stream: the text before it
has already been shown, so the refusal text follows it and the finish reason is
``content_filter``; a non-streamed answer is replaced by the refusal text entirely.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from hanlin.config import GuardSettings
from hanlin.guard import links as _links
from hanlin.guard.terms import TermHit, TermMatcher, mask

#: held text past this many characters is judged as it is (a link that long is not one)
MAX_HOLD = 4096


@dataclass(frozen=True, slots=True)
class OutputHit:
    """One rule that fired on an answer: its id (``TERM:gambling``, ``LINK-IMAGE``) and action."""

    rule: str
    action: str


@dataclass(slots=True)
class Checked:
    """An answer after the policy: its text, what fired, whether it was blocked."""

    text: str
    hits: list[OutputHit] = field(default_factory=list)
    blocked: bool = False


class OutputPolicy:
    """Term banks and the link allow-list, ready to apply."""

    def __init__(
        self, terms: TermMatcher | None, allowed_hosts: Sequence[str], refusal: str
    ) -> None:
        self.terms = terms if terms else None
        self.allowed_hosts = tuple(allowed_hosts)
        self.refusal = refusal

    def active(self, links: bool) -> bool:
        """Whether applying the policy can change anything."""
        return self.terms is not None or (links and "*" not in self.allowed_hosts)

    def _apply(self, text: str, links: bool, before: str = "") -> Checked:
        hits: list[TermHit] = self.terms.find(text, before) if self.terms is not None else []
        out = Checked(text, [OutputHit(h.rule, h.action) for h in hits])
        if any(h.action == "block" for h in hits):
            out.blocked = True
            return out
        masked = [h for h in hits if h.action == "mask"]
        if masked:
            out.text = mask(text, masked)
        if links:
            out.text, rules = _links.neutralize(out.text, self.allowed_hosts)
            out.hits += [OutputHit(r, "neutralize") for r in rules]
        return out

    def check(self, text: str, *, links: bool = True) -> Checked:
        """A whole answer: blocked (``text`` is then the refusal), masked, links neutralised."""
        out = self._apply(text, links)
        if out.blocked:
            out.text = self.refusal
        return out

    def stream(self, *, links: bool = True) -> OutputStream:
        return OutputStream(self, links)


class OutputStream:
    """Applies the policy to an answer delta by delta (see the module's docstring)."""

    def __init__(self, policy: OutputPolicy, links: bool) -> None:
        self.policy = policy
        self.links = links
        self.held = ""
        self.before = ""
        self.hits: list[OutputHit] = []
        self.blocked = False

    def _cut(self, text: str) -> int:
        cut = len(text)
        if self.policy.terms is not None:
            cut = self.policy.terms.prefix_start(text)
        if self.links:
            cut = min(cut, _links.hold_from(text))
        if len(text) - cut > MAX_HOLD:
            cut = len(text) - MAX_HOLD
        return cut

    def feed(self, delta: str) -> str:
        """What can be shown now; after a block, the refusal (``blocked`` is then true)."""
        if self.blocked:
            return ""
        text = self.held + delta
        cut = self._cut(text)
        if self.policy.terms is not None:
            # a term that began before the cut and is complete: release it judged, or hold
            # it whole when it is still growing
            for h in self.policy.terms.find(text, self.before):
                if h.start < cut < h.end:
                    cut = h.start
        return self._release(text, cut)

    def _release(self, text: str, cut: int) -> str:
        now, self.held = text[:cut], text[cut:]
        if not now:
            return ""
        out = self.policy._apply(now, self.links, self.before)
        self.hits += out.hits
        if out.blocked:
            self.blocked = True
            self.held = ""
            return ("\n\n" if self.before else "") + self.policy.refusal
        self.before = now[-1]
        return out.text

    def flush(self) -> str:
        """The rest, judged as it is (the answer ended)."""
        if self.blocked:
            return ""
        text, self.held = self.held, ""
        return self._release(text, len(text))


@functools.lru_cache(maxsize=8)
def _policy(banks: tuple[str, ...], hosts: tuple[str, ...], refusal: str) -> OutputPolicy:
    matcher = TermMatcher.from_specs(banks) if banks else None
    return OutputPolicy(matcher, hosts, refusal)


def output_policy(settings: GuardSettings) -> OutputPolicy:
    """The policy of ``[guard]`` (banks read once per process and setting)."""
    return _policy(
        tuple(settings.term_banks), tuple(settings.allowed_link_hosts), settings.refusal_text
    )

"""Citation markers in generated text: keep valid ``[n]``, renumber them, drop the rest.

A model sees sources numbered 1..N. In its answer, a marker such as ``[2]``, ``[2, 5]``,
``[2][5]`` or ``【2】`` is rewritten so that sources are numbered in order of first citation
(the first source cited becomes ``[1]``), numbers outside 1..N are removed (with the spaces
before them), and a marker left empty disappears. :class:`CitationFilter` does this on a
stream: it holds back only a possibly unfinished marker and trailing whitespace, so the text
it emits, joined, is exactly the final answer text.
"""

from __future__ import annotations

import re

# one marker: [1] [1, 2] [1,2] [1、2] 【1】 — with optional horizontal space before it
_MARKER_RE = re.compile(r"([ \t]*)[\[【]\s*(\d{1,4}(?:\s*[,，、;；]\s*\d{1,4})*)\s*[\]】]")
# something that may still become a marker when more text arrives
_OPEN_RE = re.compile(r"[\[【][\d\s,，、;；]{0,24}$")
_TRAIL_WS_RE = re.compile(r"\s+$")


class CitationFilter:
    """Rewrites citation markers of a streamed answer; see the module docstring.

    ``valid`` is the number of sources the model was given. After :meth:`finish`, ``order``
    lists the original source numbers in their new order (``order[0]`` became ``[1]``).
    """

    def __init__(self, valid: int) -> None:
        self.valid = valid
        self.order: list[int] = []
        self._new: dict[int, int] = {}
        self._pending = ""
        self._started = False  # leading whitespace of the answer is dropped
        self.dropped: list[int] = []

    def _number(self, old: int) -> int | None:
        if not 1 <= old <= self.valid:
            self.dropped.append(old)
            return None
        new = self._new.get(old)
        if new is None:
            self.order.append(old)
            new = self._new[old] = len(self.order)
        return new

    def _rewrite(self, m: re.Match[str]) -> str:
        space = m.group(1)
        numbers: list[int] = []
        for part in re.split(r"[,，、;；]", m.group(2)):
            new = self._number(int(part.strip()))
            if new is not None and new not in numbers:
                numbers.append(new)
        if not numbers:
            return ""
        return space + "[" + ", ".join(str(n) for n in numbers) + "]"

    def feed(self, text: str) -> str:
        """Take more model text; return the cleaned text that is safe to show now."""
        buf = self._pending + text
        hold = len(buf)
        open_m = _OPEN_RE.search(buf)
        if open_m is not None:
            hold = open_m.start()
        ws = _TRAIL_WS_RE.search(buf, 0, hold)
        if ws is not None and ws.end() == hold:
            hold = ws.start()
        ready, self._pending = buf[:hold], buf[hold:]
        return self._clean(ready)

    def finish(self) -> str:
        """The rest of the text at the end of the stream (trailing whitespace dropped)."""
        rest, self._pending = self._pending, ""
        return self._clean(rest.rstrip())

    def _clean(self, text: str) -> str:
        if not text:
            return ""
        out = _MARKER_RE.sub(self._rewrite, text)
        if not self._started:
            out = out.lstrip()
            self._started = bool(out)
        return out


def clean_citations(text: str, valid: int) -> tuple[str, list[int]]:
    """Rewrite the markers of a whole text; returns the text and the old numbers in new order."""
    f = CitationFilter(valid)
    out = f.feed(text) + f.finish()
    return out, f.order


def cited_numbers(text: str) -> list[int]:
    """The numbers cited in a text, in order of first appearance."""
    seen: list[int] = []
    for m in _MARKER_RE.finditer(text):
        for part in re.split(r"[,，、;；]", m.group(2)):
            n = int(part.strip())
            if n not in seen:
                seen.append(n)
    return seen

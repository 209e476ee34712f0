"""Masking personal data with placeholders, and putting the values back into the answer.

A :class:`Masker` lives for one request (or one conversation): the same value always gets the
same placeholder (``<PHONE_1>``, ``<ID_CARD_2>``), numbered per type in order of appearance, and
the mapping stays in this object — in process memory, never written anywhere. Placeholders
already in the text (a user typing ``<PHONE_1>``, chunks masked at ingest) are never reused, and
only placeholders this masker made are restored.

:class:`StreamRestorer` restores a streamed answer chunk by chunk: it holds back the end of a
chunk only while it could still be the start of one of its placeholders, so a placeholder
split over any number of chunks is restored, and nothing else is delayed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable

from hanlin.guard.base import Entity
from hanlin.guard.detect import Detector

#: what a numbered placeholder looks like (also one masked at ingest)
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*?)_([1-9][0-9]*)>")


class Masker:
    """Masks texts with numbered placeholders and restores them; one per request.

    ``numbered=False`` gives every value of a type the same bare ``<PHONE>`` — for embeddings
    and ingest, where nothing is restored and numbering would only link values across texts.
    """

    def __init__(self, detector: Detector, *, numbered: bool = True) -> None:
        self.detector = detector
        self.numbered = numbered
        self.by_value: dict[tuple[str, str], str] = {}
        #: placeholder → the original value (only placeholders this masker made)
        self.values: dict[str, str] = {}
        #: entities masked per type (each occurrence counts)
        self.counts: Counter[str] = Counter()
        self._next: Counter[str] = Counter()
        self._reserved: set[str] = set()
        self._prefixes: set[str] = set()

    def reserve(self, texts: Iterable[str]) -> None:
        """Keep placeholders already present in ``texts`` from being handed out: call it with
        every text of a request before masking any of them."""
        for text in texts:
            if "<" in text:
                self._reserved.update(m.group(0) for m in PLACEHOLDER.finditer(text))

    def placeholder(self, kind: str, value: str) -> str:
        """The placeholder for ``value`` of type ``kind``, made on first sight."""
        if not self.numbered:
            return f"<{kind}>"
        key = (kind, value)
        found = self.by_value.get(key)
        if found is None:
            while True:
                self._next[kind] += 1
                found = f"<{kind}_{self._next[kind]}>"
                if found not in self._reserved:
                    break
            self.by_value[key] = found
            self.values[found] = value
            self._prefixes.update(found[:i] for i in range(1, len(found)))
        return found

    def mask(self, text: str, entities: list[Entity] | None = None) -> str:
        """``text`` with every entity the detector finds (or ``entities``) replaced."""
        found = self.detector.find(text) if entities is None else entities
        if not found:
            return text
        parts: list[str] = []
        last = 0
        for e in found:
            parts.append(text[last : e.start])
            parts.append(self.placeholder(e.kind, e.value))
            self.counts[e.kind] += 1
            last = e.end
        parts.append(text[last:])
        return "".join(parts)

    def restore(self, text: str, *, json_string: bool = False) -> str:
        """``text`` with this masker's placeholders replaced by their values; other
        placeholder-shaped text is left alone. ``json_string``: the text is (part of) JSON, so
        values are escaped as inside a JSON string (tool-call arguments)."""
        if not self.values or "<" not in text:
            return text

        def value(m: re.Match[str]) -> str:
            v = self.values.get(m.group(0))
            if v is None:
                return m.group(0)
            return json.dumps(v, ensure_ascii=False)[1:-1] if json_string else v

        return PLACEHOLDER.sub(value, text)

    def is_prefix(self, text: str) -> bool:
        """Whether ``text`` is a proper prefix of one of this masker's placeholders."""
        return text in self._prefixes

    @property
    def longest(self) -> int:
        return max((len(p) for p in self.values), default=0)

    def stream_restorer(self, *, json_string: bool = False) -> StreamRestorer:
        return StreamRestorer(self, json_string=json_string)


class StreamRestorer:
    """Restores placeholders in a stream of text chunks.

    ``feed(chunk)`` returns what can be shown now; ``flush()`` what is left at the end. What is
    held back is always a proper prefix of one of the masker's placeholders — at most one
    character shorter than the longest — so text that cannot become one is never delayed.
    """

    def __init__(self, masker: Masker, *, json_string: bool = False) -> None:
        self.masker = masker
        self.json_string = json_string
        self.held = ""

    def feed(self, chunk: str) -> str:
        text = self.held + chunk
        self.held = ""
        if not self.masker.values:
            return text
        cut = text.rfind("<")
        if cut != -1 and self.masker.is_prefix(text[cut:]):
            text, self.held = text[:cut], text[cut:]
        return self.masker.restore(text, json_string=self.json_string)

    def flush(self) -> str:
        text, self.held = self.held, ""
        return text


def mask_text(detector: Detector, text: str) -> tuple[str, Counter[str]]:
    """``text`` masked for good (nothing kept to restore it), numbered within this text so that
    two mentions of one value still read as one; and the counts per type."""
    masker = Masker(detector)
    masker.reserve([text])
    return masker.mask(text), masker.counts

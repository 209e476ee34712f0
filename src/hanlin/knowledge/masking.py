"""Masking personal data at ingest (``kb add --mask-pii``, ``guard.kbs.<name>.mask_ingest``):
documents are masked after parsing and before chunking, so no chunk, keyword token, title or
metadata value stored holds a raw value, and nothing is kept that could restore one.

Placeholders are numbered per document (``<PHONE_1>`` is the same number everywhere in that
document, and another document's ``<PHONE_1>`` is another number): the text still says that two
mentions are one person's phone, without linking documents to each other.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Any

from hanlin.guard.detect import Detector
from hanlin.guard.masking import Masker
from hanlin.knowledge.base import LoadedDocument


def mask_document(detector: Detector, doc: LoadedDocument) -> LoadedDocument:
    """``doc`` with personal data in its text, blocks, title and string metadata masked; block
    offsets are moved so that ``text[block.start:block.end] == block.text`` still holds."""
    masker = Masker(detector)
    masker.reserve([doc.title, doc.text])
    entities = detector.find(doc.text)
    title = masker.mask(doc.title)
    metadata = _mask_values(masker, doc.metadata)
    if not entities:
        if title == doc.title and metadata == doc.metadata:
            return doc
        return dataclasses.replace(doc, title=title, metadata=metadata)
    text = masker.mask(doc.text, entities)
    # where each entity was and where its placeholder is: old (start, end) → new (start, end)
    old_starts = [e.start for e in entities]
    spans: list[tuple[int, int, int, int]] = []
    shift = 0
    for e in entities:
        placeholder = masker.placeholder(e.kind, e.value)
        spans.append((e.start, e.end, e.start + shift, e.start + shift + len(placeholder)))
        shift += len(placeholder) - (e.end - e.start)

    def moved(offset: int, *, is_end: bool) -> int:
        i = bisect.bisect_right(old_starts, offset) - 1
        if i < 0:
            return offset
        start, end, new_start, new_end = spans[i]
        if offset >= end:
            return offset + (new_end - end)
        if offset == start:
            return new_start
        return new_end if is_end else new_start  # inside an entity: the whole placeholder

    blocks = []
    for b in doc.blocks:
        start, end = moved(b.start, is_end=False), moved(b.end, is_end=True)
        blocks.append(dataclasses.replace(b, text=text[start:end], start=start, end=end))
    return dataclasses.replace(doc, title=title, text=text, blocks=blocks, metadata=metadata)


def _mask_values(masker: Masker, value: Any) -> Any:
    if isinstance(value, str):
        return masker.mask(value)
    if isinstance(value, list):
        return [_mask_values(masker, v) for v in value]
    if isinstance(value, dict):
        return {k: _mask_values(masker, v) for k, v in value.items()}
    return value

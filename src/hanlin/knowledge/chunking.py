"""Split a loaded document into chunks sized for embedding and exact citation.

Chunks follow the document's structure (a heading starts a chunk, tables and code stay whole
when they fit) and are exact spans of ``doc.text``, so a citation can point at the source.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from hanlin.errors import InvalidInputError
from hanlin.knowledge.base import Block, BlockKind, Chunk, LoadedDocument
from hanlin.text import CJK, LATIN_CHARS_PER_TOKEN, WORD_CHAR, count_tokens

__all__ = ["chunk_document"]

# Where a sentence ends: CJK terminators (。！？；… full- and half-width, then closing quotes or
# brackets), English . ! ? followed by whitespace (! ? also before a CJK character), newlines.
_SENTENCE_END_RE = re.compile(
    r"(?:[。！？；｡]|…+|\.{3,})[」』”’\"'）)\]】》〉]*"
    rf"|[.!?]+[”’\"')\]]*(?=\s)"
    rf"|[!?]+(?=[{CJK}])"
    r"|\n"
)
# Units that count_tokens counts: one CJK character, one letters/digits run, one other character.
_UNIT_RE = re.compile(rf"([{CJK}])|({WORD_CHAR}+)|(\S)")
# Good places for a hard cut inside an over-long sentence: after a clause mark.
_SOFT_BREAK = frozenset("，、,：:；;）)」』”")
_MD_TABLE_DELIMITER_RE = re.compile(r"\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*")
_HEADING_MARKS_RE = re.compile(r"^#+\s*")


@dataclass(slots=True)
class _Seg:
    """An atomic span to pack: a whole block, or a sentence / table row / code line of one."""

    start: int
    end: int
    tokens: int
    kind: BlockKind
    page: int | None
    block: int  # index of the source block
    sticky: bool = False  # a heading or table header: never the last segment of a chunk
    split: bool = False  # a sentence of a split paragraph/list: overlap applies across chunks
    atomic: bool = False  # cannot be broken at structure (sentence/row/line) boundaries
    prefix: str | None = None  # table header repeated when this row starts a chunk
    prefix_tokens: int = 0


def chunk_document(doc: LoadedDocument, *, max_tokens: int = 320, overlap: int = 48) -> list[Chunk]:
    """Chunk ``doc`` into pieces of at most ``max_tokens`` (by :func:`count_tokens`).

    - A heading starts a chunk and goes with the text below it; ``heading_path`` is the stack of
      enclosing headings (an H2 under an H1 gives ``["H1", "H2"]``).
    - Paragraphs are packed together; a table or code block stays whole when it fits, else it is
      split at row / line boundaries, and every piece of a split table after the first repeats
      the header row(s). A long paragraph is split at sentence ends (CJK and English), and a
      single over-long sentence at a clause mark or, failing that, at the token limit.
    - Consecutive chunks of one split paragraph share whole trailing sentences, as many as fit
      in ``overlap`` tokens (none when the last sentence alone is longer), never across a
      heading.
    - A trailing fragment under ``max_tokens // 8`` is merged into (or rebalanced with) the
      previous chunk of the same section, as far as the limit allows.

    Offsets: ``doc.text[c.char_start:c.char_end] == c.text`` for every chunk, except a table piece
    that repeats its header, whose text is ``header + "\\n" + doc.text[c.char_start:c.char_end]``.
    ``c.n_tokens <= max_tokens`` always holds: even a run of letters with no break is cut at
    ``6 * max_tokens`` characters (:data:`LATIN_CHARS_PER_TOKEN`). A document without non-blank
    blocks gives no chunks (when ``doc.blocks`` is empty, the whole text is treated as one
    paragraph).

    Raises :class:`InvalidInputError` when ``max_tokens < 8`` or ``overlap`` is not in
    ``[0, max_tokens)``.
    """
    if max_tokens < 8:
        raise InvalidInputError(
            f"max_tokens must be at least 8, got {max_tokens}", hint="use e.g. 320"
        )
    if not 0 <= overlap < max_tokens:
        raise InvalidInputError(
            f"overlap must be in [0, max_tokens={max_tokens}), got {overlap}",
            hint="use an overlap of about 15% of max_tokens, e.g. 48 for 320",
        )
    return _Chunker(doc, max_tokens, overlap).run()


class _Chunker:
    def __init__(self, doc: LoadedDocument, max_tokens: int, overlap: int) -> None:
        self.doc = doc
        self.text = doc.text
        self.max = max_tokens
        self.overlap = overlap
        self.chunks: list[Chunk] = []

    # --- sections ---------------------------------------------------------------------------

    def run(self) -> list[Chunk]:
        stack: list[tuple[int, str]] = []  # (level, heading text)
        path: list[str] = []
        segs: list[_Seg] = []
        has_body = False
        for i, block in enumerate(self._blocks()):
            start, end = block.start, block.end
            tokens = count_tokens(self.text[start:end])
            if block.kind == "heading":
                if has_body:
                    self._pack_section(path, segs)
                    segs, has_body = [], False
                level = max(block.level, 1)
                while stack and stack[-1][0] >= level:
                    stack.pop()
                title = _HEADING_MARKS_RE.sub("", " ".join(self.text[start:end].split()))
                stack.append((level, title[:300]))
                path = [t for _, t in stack]
                if tokens <= self.max // 2:
                    segs.append(_Seg(start, end, tokens, "heading", block.page, i, sticky=True))
                    continue
                # An absurdly long "heading" is split like a paragraph and is not sticky.
            has_body = True
            seg = _Seg(start, end, tokens, block.kind, block.page, i)
            if tokens <= self.max:
                segs.append(seg)
            else:
                segs.extend(self._explode(seg, self.max))
        if segs:
            self._pack_section(path, segs)
        return self.chunks

    def _blocks(self) -> list[Block]:
        """Blocks in document order, trimmed of surrounding whitespace, blank ones dropped."""
        blocks = sorted(self.doc.blocks, key=lambda b: b.start)
        if not blocks and self.text.strip():
            blocks = [Block("paragraph", self.text, 0, len(self.text))]
        out: list[Block] = []
        prev_end = 0
        for b in blocks:
            start, end = _trim(self.text, max(b.start, prev_end), min(b.end, len(self.text)))
            if start >= end:
                continue
            out.append(Block(b.kind, "", start, end, b.level, b.page, b.language))
            prev_end = end
        return out

    # --- breaking a block into finer segments ---------------------------------------------

    def _explode(self, seg: _Seg, budget: int) -> list[_Seg]:
        """Break ``seg`` at structure boundaries into segments of at most ``budget`` tokens."""
        if seg.atomic:
            return self._hard_split(seg, budget)
        if seg.kind == "table":
            return self._table_rows(seg, budget)
        if seg.kind == "code":
            spans = _lines(self.text, seg.start, seg.end, keep_indent=True)
        else:
            spans = _sentences(self.text, seg.start, seg.end)
        split = seg.kind in ("paragraph", "list", "heading")
        out: list[_Seg] = []
        for s, e in spans:
            piece = _Seg(
                s,
                e,
                count_tokens(self.text[s:e]),
                seg.kind,
                seg.page,
                seg.block,
                split=split,
                atomic=True,
            )
            out.extend([piece] if piece.tokens <= budget else self._hard_split(piece, budget))
        return out

    def _table_rows(self, seg: _Seg, budget: int) -> list[_Seg]:
        rows = _lines(self.text, seg.start, seg.end, keep_indent=False)
        n_header = 1
        if len(rows) > 1 and _MD_TABLE_DELIMITER_RE.fullmatch(self.text[rows[1][0] : rows[1][1]]):
            n_header = 2
        h_start, h_end = rows[0][0], rows[n_header - 1][1]
        header = self.text[h_start:h_end]
        h_tokens = count_tokens(header)
        out: list[_Seg] = []
        prefix: str | None = None
        if h_tokens <= budget // 2 and len(rows) > n_header:
            out.append(_Seg(h_start, h_end, h_tokens, "table", seg.page, seg.block, sticky=True))
            rows = rows[n_header:]
            prefix = header
        row_budget = budget - (h_tokens if prefix else 0)
        for s, e in rows:
            row = _Seg(
                s,
                e,
                count_tokens(self.text[s:e]),
                "table",
                seg.page,
                seg.block,
                atomic=True,
                prefix=prefix,
                prefix_tokens=h_tokens if prefix else 0,
            )
            out.extend([row] if row.tokens <= row_budget else self._hard_split(row, row_budget))
        return out

    def _hard_split(self, seg: _Seg, budget: int) -> list[_Seg]:
        out = []
        start = seg.start
        while start < seg.end:
            cut = _cut(self.text, start, seg.end, budget)
            s, e = _trim(self.text, start, cut)
            if s < e:
                out.append(
                    _Seg(
                        s,
                        e,
                        count_tokens(self.text[s:e]),
                        seg.kind,
                        seg.page,
                        seg.block,
                        split=seg.split,
                        atomic=True,
                        prefix=seg.prefix,
                        prefix_tokens=seg.prefix_tokens,
                    )
                )
            start = cut
        return out

    # --- packing one section -------------------------------------------------------------------

    def _gap(self, segs: list[_Seg], i: int) -> int:
        """Tokens between segment ``i - 1`` and segment ``i`` (markup the loader left out)."""
        gap = self.text[segs[i - 1].end : segs[i].start]
        return count_tokens(gap) if gap and not gap.isspace() else 0

    def _tokens(self, segs: list[_Seg], a: int, b: int) -> int:
        """An upper bound on count_tokens of the chunk made of segments ``a..b-1``."""
        total = segs[a].tokens + segs[a].prefix_tokens
        for i in range(a + 1, b):
            total += self._gap(segs, i) + segs[i].tokens
        return total

    def _pack_section(self, path: list[str], segs: list[_Seg]) -> None:
        ranges: list[tuple[int, int]] = []
        all_sticky = all(s.sticky for s in segs)
        a = 0
        while a < len(segs):
            total = segs[a].tokens + segs[a].prefix_tokens
            b = a + 1
            while b < len(segs):
                add = self._gap(segs, b) + segs[b].tokens
                if total + add > self.max:
                    break
                total += add
                b += 1
            if b < len(segs) and not all_sticky and segs[b - 1].sticky:
                # A heading (or table header) would end this chunk: end before the sticky run,
                # or, when the chunk is nothing but that run, break the next segment to fit.
                first_sticky = b - 1
                while first_sticky > a and segs[first_sticky - 1].sticky:
                    first_sticky -= 1
                room = self.max - total - self._gap(segs, b)
                if first_sticky > a:
                    b = first_sticky
                elif room >= 1:
                    nxt = segs[b]
                    if nxt.atomic:
                        head, *rest = self._hard_split(nxt, room)
                        segs[b : b + 1] = [head, *(p for r in rest for p in self._refit(r))]
                    else:
                        segs[b : b + 1] = self._explode(nxt, self.max)
                    continue  # pack again from ``a`` with the finer segments
                # else: headings fill the whole budget (pathological); let one end the chunk.
            ranges.append((a, b))
            a = self._next_start(segs, a, b)
        self._merge_tail(segs, ranges)
        for a, b in ranges:
            self._emit(path, segs, a, b)

    def _refit(self, seg: _Seg) -> list[_Seg]:
        budget = self.max - seg.prefix_tokens
        return [seg] if seg.tokens <= budget else self._hard_split(seg, budget)

    def _next_start(self, segs: list[_Seg], a: int, b: int) -> int:
        """Where the chunk after ``a..b-1`` starts: ``b``, or earlier to overlap sentences."""
        if self.overlap == 0 or b >= len(segs):
            return b
        nxt = segs[b]
        if not (nxt.split and segs[b - 1].split and segs[b - 1].block == nxt.block):
            return b
        # Whole trailing sentences, as many as fit in ``overlap`` tokens (the parameter is a
        # ceiling, as in other splitters) and in what the next chunk leaves under the limit.
        room = self.max - nxt.tokens - self._gap(segs, b)
        start, ov = b, 0
        while (
            ov < self.overlap
            and start - 1 > a
            and segs[start - 1].split
            and segs[start - 1].block == nxt.block
        ):
            add = segs[start - 1].tokens + (self._gap(segs, start) if start < b else 0)
            if ov + add > self.overlap or ov + add > room:
                break
            ov += add
            start -= 1
        return start

    def _merge_tail(self, segs: list[_Seg], ranges: list[tuple[int, int]]) -> None:
        """Merge a tiny last chunk into the previous one, or move segments to it when it fits."""
        if len(ranges) < 2:
            return
        tiny = self.max // 8
        (pa, pb), (la, lb) = ranges[-2], ranges[-1]
        if self._tokens(segs, la, lb) >= tiny:
            return
        if self._tokens(segs, pa, lb) <= self.max:
            ranges[-2:] = [(pa, lb)]
            return
        overlapping = la < pb
        while self._tokens(segs, la, lb) < tiny:
            c = la - 1  # candidate to move into the last chunk
            if c <= pa or segs[c - 1].sticky or self._tokens(segs, c, lb) > self.max:
                break
            if not overlapping and self._tokens(segs, pa, c) < tiny:
                break
            la = c
        ranges[-2:] = [(pa, pb if overlapping else la), (la, lb)]

    def _emit(self, path: list[str], segs: list[_Seg], a: int, b: int) -> None:
        first, covered = segs[a], segs[a:b]
        start, end = first.start, segs[b - 1].end
        text = self.text[start:end]
        if first.prefix is not None:
            text = f"{first.prefix}\n{text}"
        weight: Counter[BlockKind] = Counter()
        for s in covered:
            if s.kind != "heading":
                weight[s.kind] += s.tokens or 1
        kind: BlockKind = max(weight, key=weight.__getitem__) if weight else "heading"
        pages = [s.page for s in covered if s.page is not None]
        self.chunks.append(
            Chunk(
                text=text,
                ord=len(self.chunks),
                char_start=start,
                char_end=end,
                n_tokens=count_tokens(text),
                heading_path=list(path),
                page=min(pages) if pages else None,
                page_end=max(pages) if pages else None,
                kind=kind,
            )
        )


# --- spans ------------------------------------------------------------------------------------


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink ``start..end`` to exclude surrounding whitespace."""
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return start, start
    lead = len(piece) - len(piece.lstrip())
    return start + lead, start + lead + len(stripped)


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]`` (trimmed, non-empty)."""
    spans = []
    pos = start
    for m in _SENTENCE_END_RE.finditer(text, start, end):
        s, e = _trim(text, pos, m.end())
        if s < e:
            spans.append((s, e))
        pos = m.end()
    s, e = _trim(text, pos, end)
    if s < e:
        spans.append((s, e))
    return spans


def _lines(text: str, start: int, end: int, *, keep_indent: bool) -> list[tuple[int, int]]:
    """Non-blank line spans of ``text[start:end]``; code keeps its leading indentation."""
    spans = []
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        stop = end if nl < 0 else nl
        s, e = _trim(text, pos, stop)
        if s < e:
            spans.append((pos if keep_indent and pos < s else s, e))
        pos = stop + 1
    return spans


def _cut(text: str, start: int, end: int, limit: int) -> int:
    """The end of the longest prefix of ``text[start:end]`` within ``limit`` tokens, preferring
    to cut after a clause mark or space in the last 30% of it. Always makes progress."""
    total = 0
    soft, soft_total = -1, 0
    for m in _UNIT_RE.finditer(text, start, end):
        word, other = m.group(2), m.group(3)
        n = -(-len(word) // LATIN_CHARS_PER_TOKEN) if word else 1
        if total + n > limit:
            if total == 0:  # a single word longer than the limit: cut it where it reaches limit
                return m.start() + LATIN_CHARS_PER_TOKEN * limit
            if soft > start and soft_total >= 0.7 * total:
                return soft
            return m.start()
        total += n
        if (other is not None and other in _SOFT_BREAK) or (
            m.end() < end and text[m.end()].isspace()
        ):
            soft, soft_total = m.end(), total
    return end

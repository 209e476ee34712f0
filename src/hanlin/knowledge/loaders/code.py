"""Source code and config files: blocks split at top-level definitions, else every ~60 lines.

Splitting is a cheap line scan: a definition is a line at column 0 that starts with a keyword
such as ``def``, ``class``, ``func`` or ``fn`` (per language). Decorators and comments directly
above a definition stay with it. No parser, so it is fast and never fails on odd syntax.
"""

from __future__ import annotations

import itertools
import re
from pathlib import PurePath

from hanlin.knowledge.base import LoadedDocument
from hanlin.knowledge.loaders.builder import DocBuilder, make_document
from hanlin.knowledge.loaders.encoding import decode_text
from hanlin.knowledge.loaders.registry import LoadRequest, register_loader

WINDOW_LINES = 60  # block size where no definitions split the file
MAX_BLOCK_LINES = 2 * WINDOW_LINES  # longer definitions are cut into windows too

LANGUAGES: dict[str, str] = {
    ".py": "python", ".js": "javascript", ".jsx": "javascript", ".ts": "typescript",
    ".tsx": "typescript", ".java": "java", ".go": "go", ".rs": "rust", ".c": "c", ".h": "c",
    ".cpp": "cpp", ".hpp": "cpp", ".cs": "csharp", ".rb": "ruby", ".php": "php",
    ".swift": "swift", ".kt": "kotlin", ".scala": "scala", ".sh": "shell", ".sql": "sql",
    ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".ini": "ini", ".cfg": "ini",
}  # fmt: skip

_JS = (
    r"(?:export\s+(?:default\s+)?)?(?:async\s+)?(?:function\*?|class|interface|type|enum)\s"
    r"|export\s+const\s"
)
_JVM = (
    r"(?:@\w+\s+)*"
    r"(?:(?:public|private|protected|internal|abstract|final|sealed|static|data|open|case)\s+)*"
    r"(?:class|interface|enum|record|object|trait|fun|def|val)\s"
)
_C_FAMILY = (  # a function signature, or a type definition
    r"(?:static|inline|extern|const|unsigned|struct|enum|union|typedef|class|namespace|template"
    r"|void|int|char|long|double|float|bool|auto)\b[^;]*?\("
    r"|(?:struct|class|enum|union|namespace|typedef)\s"
)
_RUST = r"(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:unsafe\s+)?(?:fn|struct|enum|trait|impl|mod)\b"
DEFINITIONS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "python": r"(?:async\s+def|def|class)\s",
        "javascript": _JS,
        "typescript": _JS,
        "go": r"(?:func|type)\s",
        "rust": _RUST,
        "ruby": r"(?:def|class|module)\s",
        "php": r"(?:(?:abstract|final)\s+)?(?:function|class|interface|trait)\s",
        "shell": r"(?:function\s+\w+|\w+\s*\(\)\s*\{)",
        "sql": r"(?i:create|alter|insert|with|select|update|delete|drop)\b",
        "toml": r"\[",
        "ini": r"\[",
        "java": _JVM, "kotlin": _JVM, "scala": _JVM, "csharp": _JVM, "swift": _JVM,
        "c": _C_FAMILY, "cpp": _C_FAMILY,
    }.items()
}  # fmt: skip
_PREAMBLE = re.compile(r"^(?:@|#(?!include|define|if|pragma)|//|/\*|\*|--)")


@register_loader(list(LANGUAGES), "code")
def load_code(request: LoadRequest) -> list[LoadedDocument]:
    """One document; every block is ``kind="code"`` with the language set. Title: file name."""
    decoded = decode_text(request.data, declared=request.charset)
    language = LANGUAGES.get(PurePath(request.name).suffix.lower(), "text")
    builder = DocBuilder()
    lines = decoded.text.split("\n")
    for start, end in split_points(lines, DEFINITIONS.get(language)):
        builder.add("code", "\n".join(lines[start:end]), language=language)
    title = PurePath(request.name).name or request.source
    doc = make_document(
        request,
        builder,
        format="code",
        title=title,
        metadata={"encoding": decoded.encoding, "language": language},
    )
    return [doc]


def split_points(lines: list[str], definition: re.Pattern[str] | None) -> list[tuple[int, int]]:
    """Line ranges ``[start, end)`` covering ``lines``: cut before each definition (and its
    decorators/comments), then long ranges cut every :data:`WINDOW_LINES` lines."""
    starts = {0}
    if definition is not None:
        for i, line in enumerate(lines):
            if definition.match(line):
                starts.add(_with_preamble(lines, i))
    bounds = [*sorted(starts), len(lines)]
    ranges: list[tuple[int, int]] = []
    for start, end in itertools.pairwise(bounds):
        step = WINDOW_LINES if end - start > MAX_BLOCK_LINES or definition is None else end - start
        ranges += [(s, min(s + step, end)) for s in range(start, end, max(step, 1))]
    return ranges


def _with_preamble(lines: list[str], i: int) -> int:
    while i > 0 and _PREAMBLE.match(lines[i - 1]):
        i -= 1
    return i

"""``document_extractor``: files as text, parsed by the knowledge bases' loaders in their worker
processes (the parser and limits ingest uses). A file is a path under one of the folders of
``[workflows] file_roots``, or bytes given in the run's inputs (``{name, content}`` with the
content base64, or ``{name, text}``)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from hanlin.errors import HanlinError, InvalidInputError
from hanlin.flows.nodes.base import FORBID, NodeContext, NodeOutput, NodeType, register

_ROOTS_HINT = (
    "add the folder to `file_roots` under [workflows] in hanlin.toml, or pass the file's "
    "bytes as an input ({name, content: <base64>})"
)


class DocumentExtractorConfig(BaseModel):
    model_config = FORBID

    #: one file or a list: a path (under ``[workflows] file_roots``), or ``{name, content}``
    #: (base64 bytes) / ``{name, text}`` given as inputs; usually a reference
    files: Any
    #: a file that cannot be read or parsed: ``fail`` the node naming it, or ``skip`` it
    #: (listed in ``skipped``) and go on with the others
    on_bad_file: Literal["fail", "skip"] = "fail"
    #: cut each file's text after this many characters (none: the whole text)
    max_chars: int | None = Field(default=None, ge=1)


class _BadFile(Exception):
    def __init__(self, name: str, error: HanlinError) -> None:
        super().__init__(name)
        self.name, self.error = name, error


def _allowed(path: Path, roots: list[str]) -> Path:
    """The real path of a file inside one of ``roots``; raises InvalidInputError otherwise."""
    if not roots:
        raise InvalidInputError(
            f"reading files by path is off (no file_roots), so {path} cannot be read",
            hint=_ROOTS_HINT,
        )
    real = path.expanduser().resolve()
    for root in roots:
        if real.is_relative_to(Path(root).expanduser().resolve()):
            return real
    raise InvalidInputError(
        f"{path} is outside the folders workflows may read ({', '.join(roots)})",
        hint=_ROOTS_HINT,
    )


def _load(ctx: NodeContext, item: Any) -> tuple[str, list[Any]]:
    """``(name, documents)`` of one file (call from a worker thread)."""
    from hanlin.knowledge.loaders import LoaderOptions
    from hanlin.knowledge.loaders.options import MiB

    settings = ctx.settings
    options = LoaderOptions(max_file_bytes=settings.knowledge.max_file_mb * MiB)
    if isinstance(item, str):
        name = item
        try:
            path = _allowed(Path(item), settings.workflows.file_roots)
            if not path.is_file():
                raise InvalidInputError(f"no such file: {item}", hint="check the path")
            if path.stat().st_size > options.max_file_bytes:  # checked before it is read
                raise InvalidInputError(
                    f"the file is over {settings.knowledge.max_file_mb} MB",
                    hint="raise `knowledge.max_file_mb` in hanlin.toml, or split the file",
                )
            data = path.read_bytes()
            return name, ctx.services.parser.parse(
                data, source=str(path), name=path.name, options=options
            )
        except HanlinError as exc:
            raise _BadFile(name, exc) from None
        except OSError as exc:
            raise _BadFile(name, InvalidInputError(f"cannot read {item}: {exc}")) from None
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise _BadFile(
            str(item)[:60],
            InvalidInputError(
                "a file is a path or {name, content (base64)} / {name, text}",
                hint="pass files in one of those shapes",
            ),
        )
    name = item["name"]
    try:
        if isinstance(item.get("text"), str):
            data = item["text"].encode("utf-8")
        else:
            data = base64.b64decode(str(item.get("content") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise _BadFile(
            name,
            InvalidInputError(
                "its content is not base64", hint="encode the file's bytes as base64"
            ),
        ) from None
    try:
        return name, ctx.services.parser.parse(
            data,
            source=name,
            name=name,
            options=options,
            content_type=item.get("content_type"),
        )
    except HanlinError as exc:
        raise _BadFile(name, exc) from None


@register
class DocumentExtractor(NodeType):
    name = "document_extractor"
    summary = "files (paths under file_roots, or uploaded bytes) as text, by the KB loaders"
    Config = DocumentExtractorConfig

    def outputs(self, config: DocumentExtractorConfig) -> dict[str, str]:
        return {
            "text": "string",
            "texts": "array[string]",
            "documents": "array[object]",
            "skipped": "array[object]",
        }

    async def run(self, ctx: NodeContext, config: DocumentExtractorConfig) -> NodeOutput:
        given = ctx.resolve(config.files)
        files = given if isinstance(given, list) else [given]
        if not files or any(f is None or f == "" for f in files):
            raise InvalidInputError(
                "document_extractor got no file", hint="check the `files` reference"
            )
        documents: list[dict[str, Any]] = []
        texts: list[str] = []
        skipped: list[dict[str, str]] = []
        for item in files:
            try:
                name, docs = await asyncio.to_thread(_load, ctx, item)
            except _BadFile as bad:
                message = bad.error.message
                if config.on_bad_file == "fail":
                    raise InvalidInputError(
                        f"cannot extract text from {bad.name}: {message}",
                        hint=bad.error.hint or "check the file",
                    ) from None
                skipped.append({"name": bad.name, "error": message})
                continue
            text = "\n\n".join(d.text for d in docs)
            if config.max_chars is not None:
                text = text[: config.max_chars]
            texts.append(text)
            documents.append(
                {
                    "name": name,
                    "title": docs[0].title if docs else name,
                    "format": docs[0].format if docs else "",
                    "text": text,
                    "chars": len(text),
                }
            )
        return NodeOutput(
            {
                "text": "\n\n".join(texts),
                "texts": texts,
                "documents": documents,
                "skipped": skipped,
            }
        )

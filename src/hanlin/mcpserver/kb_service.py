"""What the MCP server does with knowledge bases: search, ask, ingest (URLs, uploaded file
contents and — for local stdio clients only — paths), and the documents it serves as resources.

Blocking work runs in worker threads on instances from the server's pool
(:class:`hanlin.knowledge.pool.KnowledgeBases`), which share one loaded embedding model.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
from pathlib import PurePosixPath
from typing import Any

from hanlin.config import Settings
from hanlin.errors import InvalidInputError, NotFoundError
from hanlin.knowledge.kb import KnowledgeBase
from hanlin.knowledge.pool import KnowledgeBases
from hanlin.knowledge.uploads import content_problem, display_name, type_problem, upload_dir
from hanlin.rag import engine as rag

#: characters of one document a resource read returns at most
MAX_DOC_CHARS = 2_000_000
SNIPPET = 600


def _snippet(text: str, limit: int = SNIPPET) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def doc_uri(kb: str, doc_id: int) -> str:
    return f"hanlin://kb/{kb}/doc/{doc_id}"


def parse_doc_uri(uri: str) -> tuple[str, int]:
    """``hanlin://kb/<name>/doc/<id>`` → (name, id); raises :class:`InvalidInputError`."""
    prefix = "hanlin://kb/"
    parts = uri[len(prefix) :].split("/") if uri.startswith(prefix) else []
    if len(parts) != 3 or parts[1] != "doc" or not parts[2].isdigit() or not parts[0]:
        raise InvalidInputError(
            f"not a Hanlin document URI: {uri!r}",
            hint="document URIs look like hanlin://kb/<name>/doc/<id> (see resources/list)",
        )
    return parts[0], int(parts[2])


def document_text(kb: KnowledgeBase, doc_id: int) -> tuple[dict[str, Any], str]:
    """A stored document's record and text, rebuilt from its chunks (overlaps removed)."""
    key = kb.store.document_key(doc_id)
    record = kb.store.get_document(key) if key is not None else None
    if key is None or record is None:
        raise NotFoundError(
            f"no document {doc_id} in knowledge base '{kb.name}'",
            hint="list the documents with resources/list",
        )
    chunks = sorted(kb.store.document_chunks(key), key=lambda c: (c.char_start, c.ord))
    text, end = "", 0
    for c in chunks:
        if c.char_end <= end:
            continue
        piece = c.text[end - c.char_start :] if c.char_start < end else c.text
        sep = "" if not text or c.char_start <= end else "\n"
        text += sep + piece
        end = c.char_end
        if len(text) > MAX_DOC_CHARS:
            text = text[:MAX_DOC_CHARS] + "\n[truncated]"
            break
    return record.to_dict(kb.public_names()), text


class KbService:
    """Knowledge-base operations for the MCP server, on a shared pool of open instances."""

    def __init__(
        self,
        settings: Settings,
        knowledge_bases: list[str] | None = None,
        *,
        allow_paths: bool = False,
        allow_private_urls: bool | None = None,
    ) -> None:
        self.settings = settings
        self.pool = KnowledgeBases(settings, knowledge_bases)
        self.allow_paths = allow_paths
        private = (
            settings.server.allow_private_urls if allow_private_urls is None else allow_private_urls
        )
        knowledge = settings.knowledge.model_copy(update={"allow_private_urls": private})
        self._write_settings = settings.model_copy(update={"knowledge": knowledge})

    def names(self) -> list[str]:
        return self.pool.names()

    def check(self, name: str) -> None:
        """Raise :class:`NotFoundError` unless ``name`` exists and is served."""
        if name not in self.pool.names():
            raise NotFoundError(
                f"no knowledge base named '{name}'",
                hint=f"these exist: {', '.join(self.pool.names()) or 'none'} (kb_list)",
            )

    async def search(self, name: str, query: str, k: int, mode: str) -> list[dict[str, Any]]:
        self.check(name)
        k = max(1, min(int(k), 50))

        def run(kb: KnowledgeBase) -> list[dict[str, Any]]:
            results = kb.search(query, k=k, mode=mode)  # type: ignore[arg-type]
            kb.public_names().apply(results)
            # the library's result dict, its text shortened for a model's context
            return [r.to_dict() | {"text": _snippet(r.chunk.text)} for r in results]

        return await self.pool.run(name, run)

    async def ask(self, name: str, question: str, model: str | None, mode: str) -> dict[str, Any]:
        self.check(name)

        def run(kb: KnowledgeBase) -> dict[str, Any]:
            answer = rag.ask(kb, question, model=model, mode=mode)  # type: ignore[arg-type]
            return {
                "answer": answer.text,
                "mode": answer.mode,
                "citations": [
                    {"n": c.n, "source": c.source, "title": c.title, "page": c.page}
                    | {"snippet": _snippet(c.snippet, 300)}
                    for c in answer.citations
                ],
            }

        return await self.pool.run(name, run)

    def _store_upload(self, kb: str, name: str, content: str, encoding: str) -> tuple[str, str]:
        """Write an uploaded file under ``HANLIN_HOME/uploads/<kb>/``; (path, display name)."""
        shown, reason = display_name(name)
        reason = reason or type_problem(shown)
        if reason:
            raise InvalidInputError(f"{shown}: {reason}")
        try:
            data = base64.b64decode(content, validate=True) if encoding == "base64" else None
        except (binascii.Error, ValueError):
            raise InvalidInputError(f"{shown}: the content is not valid base64") from None
        data = content.encode("utf-8") if data is None else data
        limit = self.settings.server.max_upload_mb << 20
        if len(data) > limit:
            raise InvalidInputError(f"{shown}: larger than the upload limit of {limit >> 20} MB")
        suffix = PurePosixPath(shown).suffix.lower()
        problem = content_problem(data[:4096], suffix)
        if problem:
            raise InvalidInputError(f"{shown}: {problem}")
        folder = upload_dir(self.settings, kb)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"up_{secrets.token_hex(8)}{suffix}"
        path.write_bytes(data)
        return str(path.resolve()), shown

    async def add(
        self,
        name: str,
        urls: list[str],
        files: list[dict[str, str]],
        paths: list[str],
    ) -> dict[str, Any]:
        """Ingest now; one bad item is reported and the others go on."""
        from hanlin.knowledge.loaders import LoaderOptions
        from hanlin.net.ssrf import BlockedURLError, FetchError, check_url

        self.check(name)
        if paths and not self.allow_paths:
            raise InvalidInputError(
                "this server does not read paths on its own machine for clients",
                hint="send the file contents in `files` ({name, content, encoding}) or `urls`",
            )
        failed: list[dict[str, str]] = []
        items: list[tuple[str, str | None]] = []  # (what to add, display name)
        private = self._write_settings.knowledge.allow_private_urls
        for url in dict.fromkeys(u.strip() for u in urls):
            try:
                await asyncio.to_thread(check_url, url, allow_private=private)
                items.append((url, None))
            except (BlockedURLError, FetchError) as exc:
                failed.append({"item": url, "reason": exc.message})
        for f in files:
            try:
                items.append(
                    self._store_upload(
                        name, f.get("name", ""), f.get("content", ""), f.get("encoding", "text")
                    )
                )
            except InvalidInputError as exc:
                failed.append({"item": f.get("name", ""), "reason": exc.message})
        items.extend((p, None) for p in paths)

        def run() -> dict[str, Any]:
            totals = {"documents_added": 0, "documents_updated": 0, "chunks_written": 0}
            with KnowledgeBase(name, self._write_settings, embedders=self.pool.embedder) as kb:
                for item, shown in items:
                    options = LoaderOptions(display_name=shown) if shown else None
                    report = kb.add(item, loader_options=options)
                    for key in totals:
                        totals[key] += getattr(report, key)
                    failed.extend(
                        {"item": shown or s.path, "reason": s.reason} for s in report.skipped
                    )
            return totals

        totals = await asyncio.to_thread(run) if items else {}
        self.pool.invalidate(name)
        return {"knowledge_base": name, **totals, "failed": failed}

    async def documents(self, name: str) -> list[dict[str, Any]]:
        self.check(name)

        def run(kb: KnowledgeBase) -> list[dict[str, Any]]:
            names = kb.public_names()
            return [d.to_dict(names) for d in kb.documents()]

        return await self.pool.run(name, run)

    async def read(self, name: str, doc_id: int) -> tuple[dict[str, Any], str]:
        return await self.pool.run(name, lambda kb: document_text(kb, doc_id))

    def close(self) -> None:
        close = getattr(self.pool, "close", None)
        if callable(close):
            close()


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)


__all__ = ["KbService", "doc_uri", "document_text", "dumps", "parse_doc_uri"]

"""Forgetting a file that failed to ingest: its failure record and, since the file was added by
itself (an upload, a URL, one file), its source — so no later sync tries it again — and, for an
upload, the bytes kept in ``HANLIN_HOME/uploads/<kb>/`` (in the shared database with
``database_url``). A failed file inside a folder or glob source cannot be forgotten alone (the
next sync would find it again): that is a conflict whose hint says what to do instead."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hanlin.access import caller as access
from hanlin.errors import ConflictError, InvalidInputError, NotFoundError
from hanlin.knowledge.display import SourceNames
from hanlin.knowledge.uploads import drop_upload, stored_upload_id, upload_dir

if TYPE_CHECKING:
    from hanlin.knowledge.kb import KnowledgeBase
    from hanlin.knowledge.stores.base import FileRecord


@dataclass(slots=True)
class ForgottenFile:
    """What :func:`forget_failed` removed. ``path`` is as stored (server-side), ``name`` public."""

    path: str
    name: str
    upload_deleted: bool


def public_id(path: str, names: SourceNames, uploads: Path) -> str:
    """The name API clients use for a failed file: an upload's id (``up_…``, unique even when
    two uploads share a file name), otherwise its public name (:mod:`hanlin.knowledge.display`)."""
    return stored_upload_id(path, uploads) or names.source(path)


def forget_failed(kb: KnowledgeBase, key: str) -> ForgottenFile:
    """Forget the failed file ``key`` (its stored path, public name or upload id).

    Raises NotFoundError when no file by that name failed, ConflictError when it did not fail
    (it is stored) or failed inside a folder or glob source, InvalidInputError when the name
    fits several failed files."""
    access.require("kb:write", kb=kb.name)
    store = kb.store
    uploads = upload_dir(kb.settings, kb.name)
    with store.locked():
        sources = store.list_sources()
        names = SourceNames(sources)
        record = _find(kb, key, names, uploads)
        shown = names.source(record.path)
        if record.path not in {s.uri for s in sources}:
            root = next((s.uri for s in sources if s.id == record.source_id), "")
            raise ConflictError(
                f"'{shown}' failed inside the source '{names.source(root)}', which a sync "
                "reads again; it cannot be forgotten alone",
                hint="fix or remove the file in that folder and sync, or fix its reason",
                code="failed_in_folder",
                params={"file": shown, "source": names.source(root)},
            )
        store.remove_source(record.path)
        deleted = stored_upload_id(record.path, uploads) is not None
        if deleted:
            drop_upload(kb.settings, kb.name, record.path)
        store.flush()
    return ForgottenFile(record.path, shown, deleted)


def _find(kb: KnowledgeBase, key: str, names: SourceNames, uploads: Path) -> FileRecord:
    files = kb.store.list_files()

    def named(f: FileRecord) -> bool:
        return key in (f.path, public_id(f.path, names, uploads), names.source(f.path))

    failed = [f for f in files if f.status == "failed" and named(f)]
    exact = [f for f in failed if key in (f.path, public_id(f.path, names, uploads))]
    if len(exact) == 1 or len(failed) == 1:
        return (exact or failed)[0]
    if failed:
        raise InvalidInputError(
            f"{len(failed)} failed files are named '{key}'",
            hint="name one by its upload id (up_…), as GET /api/kb/{name}/documents lists it",
            code="ambiguous_file",
            params={"file": key, "count": len(failed)},
        )
    if any(named(f) for f in files) or kb.store.get_document(key) is not None:
        raise ConflictError(
            f"'{key}' did not fail: it is stored in '{kb.name}'",
            hint=f"delete it as a document (`hanlin kb delete-doc {kb.name} …` or "
            "DELETE /api/kb/{name}/documents?doc=…)",
            code="file_not_failed",
            params={"file": key, "kb": kb.name},
        )
    raise NotFoundError(
        f"no failed file '{key}' in '{kb.name}'",
        hint="the failed files are listed by GET /api/kb/{name} (failures) and "
        f"`hanlin kb show {kb.name}`",
        code="failed_file_not_found",
        params={"file": key, "kb": kb.name},
    )

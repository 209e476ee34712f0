"""Plain text: paragraphs separated by blank lines."""

from __future__ import annotations

from hanlin.knowledge.base import LoadedDocument
from hanlin.knowledge.loaders.builder import DocBuilder, make_document
from hanlin.knowledge.loaders.encoding import decode_text
from hanlin.knowledge.loaders.registry import LoadRequest, register_loader


@register_loader([".txt", ".text", ".log", ".rst"], "txt", content_types=["text/plain"])
def load_text(request: LoadRequest) -> list[LoadedDocument]:
    """One document; each blank-line separated paragraph is a block. Title: the file stem."""
    decoded = decode_text(request.data, declared=request.charset)
    builder = DocBuilder()
    builder.add_paragraphs(decoded.text)
    doc = make_document(
        request,
        builder,
        format="txt",
        title=request.stem,
        metadata={"encoding": decoded.encoding},
    )
    return [doc]

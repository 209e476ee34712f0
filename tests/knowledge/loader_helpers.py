"""Shared helpers for the loader tests: load a file and check the offset invariants."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hanlin.errors import LoaderError
from hanlin.knowledge.base import LoadedDocument
from hanlin.knowledge.loaders import LoaderOptions, load_file

MiB = 1024 * 1024
OPTS = LoaderOptions()


def check(docs: list[LoadedDocument]) -> list[LoadedDocument]:
    """The invariants every loader promises, for every document."""
    assert docs
    for doc in docs:
        assert doc.blocks, doc.key
        for block in doc.blocks:
            assert doc.text[block.start : block.end] == block.text
            assert block.text and block.text == block.text.rstrip()
        for before, after in zip(doc.blocks, doc.blocks[1:], strict=False):
            assert before.end <= after.start
        assert doc.text == "\n\n".join(b.text for b in doc.blocks)
        assert doc.metadata["format"] == doc.format
        assert doc.metadata["source"] == doc.source
        json.dumps(doc.metadata)
    assert len({d.key for d in docs}) == len(docs)
    return docs


def load(path: Path, **options: object) -> list[LoadedDocument]:
    return check(load_file(path, LoaderOptions.model_validate(options)))


def write(tmp_path: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def raises(fn: Callable[[], object], message: str, hint: str) -> LoaderError:
    with pytest.raises(LoaderError) as info:
        fn()
    assert message in info.value.message
    assert info.value.hint and hint in info.value.hint
    return info.value

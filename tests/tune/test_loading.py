"""Base model resolution: folders, GGUF paths and cached names, with errors that say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from hanlin.errors import NotFoundError
from hanlin.tune.loading import resolve_base


def test_a_model_folder_is_used_as_is(tiny_model: Path) -> None:
    ref = resolve_base(str(tiny_model))
    assert ref.hf_dir == tiny_model.resolve() and ref.gguf is None


def test_unresolvable_bases_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no config\.json") as exc:
        resolve_base(str(tmp_path))
    assert "config.json" in (exc.value.hint or "")
    with pytest.raises(NotFoundError, match="no GGUF file"):
        resolve_base(str(tmp_path / "missing.gguf"))
    with pytest.raises(NotFoundError, match="local Hugging Face cache") as exc:
        resolve_base("some-org/not-downloaded-model")
    assert "bundled" in (exc.value.hint or "")

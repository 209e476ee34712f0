"""Fixtures: a tiny model folder shared by the tests, and dataset files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tune.tiny import build_tiny_model, chat_rows, preference_rows, write_jsonl


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def chat_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "chat.jsonl", chat_rows())


@pytest.fixture
def pref_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "pref.jsonl", preference_rows())

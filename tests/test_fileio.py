"""Crash-safe writes (:mod:`hanlin.fileio`): the old file or the new one, never half of one,
no temporary files left behind, and the permissions each caller asks for."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hanlin.fileio import atomic_dir, atomic_path, atomic_write_bytes, atomic_write_text
from hanlin.models.keys import KeyStore


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_write_replaces_the_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "新的")
    assert target.read_text("utf-8") == "新的"
    assert os.listdir(target.parent) == ["state.json"]


def test_modes_are_exact_when_asked_and_follow_the_umask_otherwise(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "secret", b"k", mode=0o600)
        atomic_write_bytes(tmp_path / "plain", b"p")
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "secret") == 0o600
    assert mode_of(tmp_path / "plain") == 0o644


def test_the_key_file_stays_0600(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    store.set("openai", "sk-test-000000000000")
    store.set("deepseek", "sk-test-111111111111")
    assert mode_of(tmp_path / "keys.json") == 0o600 and store.names() == ["deepseek", "openai"]


def test_a_failed_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "index.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["index.bin"]
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["index.bin"]


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "export"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("crash")
    assert os.listdir(target) == ["a.txt"] and os.listdir(tmp_path) == ["export"]
    with atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("3")
    assert os.listdir(target) == ["c.txt"]

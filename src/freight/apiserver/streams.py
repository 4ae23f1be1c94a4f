"""Byte streams a handler sees: a request body and a hijacked connection.

`BodyStream` is the request body, read incrementally (an image import is
gigabytes; nothing buffers it unless the handler asks with `read()`):

    async for chunk in request.body:
        ingest.write(chunk)

`HijackedStream` is the duplex connection of attach/exec after the HTTP
exchange is over (see `HijackResponse`): `read()` returns what the client
sends (stdin) and b"" once the client half-closes its write side; `write()`
keeps working after that, because `docker exec -i` closes stdin first and
still waits for the output. Writes to a client that went away raise
ConnectionError (BrokenPipeError / ConnectionResetError), which a handler
may catch to stop copying.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable

from freight import errors

READ_SIZE = 64 * 1024


class BodyStream:
    """An async iterator over the chunks of one request body.

    `source` returns the next chunk, or b"" at the end of the body; None
    means the request has no body. `finished` is set once the end was seen,
    which tells the server it may watch the socket for a disconnect.
    """

    def __init__(self, source: Callable[[], Awaitable[bytes]] | None) -> None:
        self._source = source
        self.finished = asyncio.Event()
        self.bytes_read = 0
        if source is None:
            self.finished.set()

    def __aiter__(self) -> "BodyStream":
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read_chunk()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def read_chunk(self) -> bytes:
        """The next non-empty chunk, or b"" at the end of the body."""
        if self.finished.is_set() or self._source is None:
            return b""
        chunk = await self._source()
        if not chunk:
            self.finished.set()
        self.bytes_read += len(chunk)
        return chunk

    async def read(self, limit: int | None = None) -> bytes:
        """The whole (rest of the) body; InvalidArgument if it exceeds `limit` bytes."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self:
            size += len(chunk)
            if limit is not None and size > limit:
                raise errors.InvalidArgument(f"request body exceeds {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def discard(self, limit: int) -> bool:
        """Read and drop the rest of the body; False if more than `limit` bytes remained."""
        dropped = 0
        async for chunk in self:
            dropped += len(chunk)
            if dropped > limit:
                return False
        return True


class HijackedStream:
    """The raw duplex connection handed to a HijackResponse handler."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        buffered: bytes = b"",
        eof: bool = False,
    ) -> None:
        self._reader = reader
        self._writer = writer
        # Bytes the client pipelined right behind its request (h11 read them
        # already) come before anything still in the socket.
        self._buffered = buffered
        self._eof = eof

    async def read(self, n: int = READ_SIZE) -> bytes:
        """Up to `n` bytes from the client; b"" once it half-closed (or went away)."""
        if self._buffered:
            chunk, self._buffered = self._buffered[:n], self._buffered[n:]
            return chunk
        if self._eof:
            return b""
        try:
            chunk = await self._reader.read(n)
        except ConnectionError:
            chunk = b""
        if not chunk:
            self._eof = True
        return chunk

    def __aiter__(self) -> "HijackedStream":
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    @property
    def at_eof(self) -> bool:
        """True once the client closed its write side and the buffer is empty."""
        return self._eof and not self._buffered

    async def write(self, data: bytes) -> None:
        """Send bytes at once; raises ConnectionError if the client is gone."""
        if self._writer.is_closing():
            raise BrokenPipeError("client closed the connection")
        self._writer.write(data)
        await self._writer.drain()

    async def close_write(self) -> None:
        """Half-close our side: the client reads EOF, we may still read its stdin."""
        if self._writer.can_write_eof() and not self._writer.is_closing():
            try:
                await self._writer.drain()
                self._writer.write_eof()
            except (ConnectionError, OSError):
                pass


class BodyPipe:
    """Feeds a request body (async) to a blocking reader in a worker thread.

    `pump()` runs on the loop; `reader` is a file a thread reads (tar
    extraction, layer import). The reader stopping early (bad input) ends
    the pump quietly: the error is the reader's to report.
    """

    def __init__(self, body: BodyStream) -> None:
        read_fd, write_fd = os.pipe()
        self.reader = os.fdopen(read_fd, "rb")
        self._write_fd = write_fd
        self._body = body

    async def pump(self) -> None:
        try:
            async for chunk in self._body:
                await asyncio.to_thread(_write_all, self._write_fd, chunk)
        except OSError:
            pass
        finally:
            os.close(self._write_fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]

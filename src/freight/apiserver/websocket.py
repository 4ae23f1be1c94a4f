"""The websocket variant of attach (`GET /containers/{id}/attach/ws`).

The opening handshake (RFC 6455 §4.2) is answered here from the request h11
already parsed; the frames after it are wsproto's (the h11 authors' sans-IO
codec). What the attach session sees is the same byte-stream interface as a
hijacked connection (`read`, `write`, `close_write`), so one session serves
both: each client message is stdin bytes, each output chunk one binary
message (moby sends binary frames from API 1.28 on, and raw output: never the
8-byte multiplexing).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from freight import errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from freight.apiserver.http import Headers

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's fixed key suffix
READ_SIZE = 1 << 16


def accept_key(client_key: str) -> str:
    """Sec-WebSocket-Accept for the client's Sec-WebSocket-Key."""
    digest = hashlib.sha1(client_key.strip().encode() + _GUID).digest()
    return base64.b64encode(digest).decode()


def handshake_lines(headers: Headers) -> list[str]:
    """The 101 response's lines; InvalidArgument names what is missing from the request."""
    if "websocket" not in headers.tokens("upgrade"):
        raise errors.InvalidArgument('a websocket attach needs "Upgrade: websocket"')
    if "upgrade" not in headers.tokens("connection"):
        raise errors.InvalidArgument('a websocket attach needs "Connection: Upgrade"')
    if (headers.get("sec-websocket-version") or "").strip() != "13":
        raise errors.InvalidArgument('a websocket attach needs "Sec-WebSocket-Version: 13"')
    key = headers.get("sec-websocket-key") or ""
    try:
        valid = len(base64.b64decode(key.strip(), validate=True)) == 16
    except ValueError:
        valid = False
    if not valid:
        raise errors.InvalidArgument(f"invalid Sec-WebSocket-Key {key!r}")
    return [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
    ]


class WebSocketStream:
    """Messages in and out as bytes, shaped like `streams.HijackedStream`."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, buffered: bytes = b""
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._ws = Connection(ConnectionType.SERVER, trailing_data=buffered)
        self._pending: list[bytes] = []
        self._closed = False
        self._fill(None)  # what came with the request is in `trailing_data`

    def _fill(self, data: bytes | None) -> None:
        """Feed received bytes (None: nothing new) and sort out the events."""
        if data is not None:
            try:
                self._ws.receive_data(data or None)
            except RemoteProtocolError:
                self._closed = True
                return
        for event in self._ws.events():
            if isinstance(event, BytesMessage):
                self._pending.append(bytes(event.data))
            elif isinstance(event, TextMessage):
                self._pending.append(event.data.encode())
            elif isinstance(event, Ping):
                self._writer.write(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self._closed = True
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    self._writer.write(self._ws.send(event.response()))

    async def read(self, n: int = READ_SIZE) -> bytes:
        """The next message's bytes (for stdin); b"" once the client closed."""
        while not self._pending:
            if self._closed:
                return b""
            try:
                data = await self._reader.read(READ_SIZE)
            except ConnectionError:
                data = b""
            self._fill(data)
            if not data:
                self._closed = True
        chunk = self._pending.pop(0)
        if len(chunk) > n:
            self._pending.insert(0, chunk[n:])
            chunk = chunk[:n]
        return chunk

    @property
    def at_eof(self) -> bool:
        return self._closed and not self._pending

    async def write(self, data: bytes) -> None:
        """One binary message; ConnectionError if the client is gone."""
        if self._writer.is_closing() or self._ws.state is not ConnectionState.OPEN:
            raise BrokenPipeError("client closed the websocket")
        self._writer.write(self._ws.send(BytesMessage(data=data)))
        await self._writer.drain()

    async def close_write(self) -> None:
        """The closing handshake from our side (output is over)."""
        try:
            if self._ws.state is ConnectionState.OPEN:
                self._writer.write(self._ws.send(CloseConnection(code=1000)))
                await self._writer.drain()
        except (LocalProtocolError, ConnectionError, OSError):
            pass

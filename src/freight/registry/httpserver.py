"""The registry's HTTP/1.1 server: h11 over asyncio streams, keep-alive, sendfile for blobs.

An application is `async def app(request: Request) -> Response`. Bodies are read
incrementally (`async for chunk in request.body()`), so a 1 GiB layer never sits in
memory; a response whose body is a `FileBody` is sent with `loop.sendfile`
(os.sendfile on plain TCP, a read/write loop under TLS).

A body the handler did not read is drained (up to DRAIN_LIMIT) to keep the connection;
past that the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import os
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import h11

READ_SIZE = 256 * 1024
MAX_HEADER_BYTES = 64 * 1024
DRAIN_LIMIT = 1024 * 1024
IDLE_TIMEOUT = 120.0

_log = logging.getLogger(__name__)


class ClientGone(Exception):
    """The client closed the connection before the request body ended."""


@dataclass(frozen=True, slots=True)
class FileBody:
    """`length` bytes of the file at `path` from `offset`, sent with sendfile."""

    path: str
    offset: int
    length: int


@dataclass
class StreamBody:
    """`length` bytes from an async iterator (a blob read from object storage)."""

    length: int
    chunks: AsyncIterator[bytes]


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | FileBody | StreamBody = b""


class Request:
    """One request: method, decoded path, query, headers (lower-case names), its body."""

    def __init__(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        conn: _Connection,
        remote: str,
    ) -> None:
        self.method = method
        raw_path, _, query = target.partition("?")
        self.raw_path = raw_path
        self.path = urllib.parse.unquote(raw_path)
        self.query = urllib.parse.parse_qs(query, keep_blank_values=True)
        self.headers: dict[str, str] = {}
        for name, value in headers:
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text
        self.remote = remote
        self._conn = conn
        self.body_done = False

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    async def body(self) -> AsyncIterator[bytes]:
        """The request body in chunks; raises ClientGone if the client leaves mid-body."""
        if self._conn.h11.they_are_waiting_for_100_continue:
            self._conn.writer.write(
                self._conn.h11.send(h11.InformationalResponse(status_code=100, headers=[]))
            )
        while not self.body_done:
            event = await self._conn.next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.body_done = True
            elif event is None or isinstance(event, h11.ConnectionClosed):
                raise ClientGone("client closed the connection mid-body")

    async def read(self, limit: int) -> bytes:
        """The whole body; ValueError past `limit` bytes."""
        parts, size = [], 0
        async for chunk in self.body():
            size += len(chunk)
            if size > limit:
                raise ValueError(f"request body larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)


App = Callable[[Request], Awaitable[Response]]


class _SendfileMarker:
    """Stands in for file data in h11's passthrough framing."""

    def __init__(self, body: FileBody) -> None:
        self.body = body

    def __len__(self) -> int:
        return self.body.length


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)

    async def next_event(self) -> h11.Event | None:
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self.reader.read(READ_SIZE)
                except (ConnectionError, OSError):
                    data = b""
                self.h11.receive_data(data)
                continue
            if event is h11.PAUSED:
                return None
            return event

    async def send(self, response: Response, head_only: bool) -> None:
        body = response.body
        length = body.length if isinstance(body, FileBody | StreamBody) else len(body)
        headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(length)))
        out = self.h11.send(
            h11.Response(
                status_code=response.status, headers=headers, reason=_reason(response.status)
            )
        )
        if head_only or length == 0 or response.status in (204, 304):
            self.writer.write(out + self.h11.send(h11.EndOfMessage()))
        elif isinstance(body, FileBody):
            self.writer.write(out)
            for part in self.h11.send_with_data_passthrough(h11.Data(data=_SendfileMarker(body))):
                if not isinstance(part, _SendfileMarker):
                    self.writer.write(part)
            await self.writer.drain()
            await _sendfile(self.writer, body)
            self.writer.write(self.h11.send(h11.EndOfMessage()))
        elif isinstance(body, StreamBody):
            self.writer.write(out)
            async for chunk in body.chunks:
                self.writer.write(self.h11.send(h11.Data(data=chunk)))
                await self.writer.drain()
            self.writer.write(self.h11.send(h11.EndOfMessage()))
        else:
            self.writer.write(
                out + self.h11.send(h11.Data(data=body)) + self.h11.send(h11.EndOfMessage())
            )
        await self.writer.drain()


async def _sendfile(writer: asyncio.StreamWriter, body: FileBody) -> None:
    loop = asyncio.get_running_loop()
    with open(body.path, "rb") as f:
        await loop.sendfile(writer.transport, f, body.offset, body.length)


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _error_response(status: int, text: str) -> Response:
    return Response(status, [("Content-Type", "text/plain")], text.encode())


class HttpServer:
    """Listens on one TCP address and runs `app` for each request."""

    def __init__(self, app: App, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.host, self.port, self.tls = host, port, tls
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, ssl=self.tls, limit=READ_SIZE, backlog=512
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        remote = f"{peer[0]}:{peer[1]}" if peer else "?"
        conn = _Connection(reader, writer)
        try:
            await self._serve(conn, remote)
        except (ConnectionError, ClientGone, asyncio.CancelledError, OSError):
            pass
        except Exception:  # a bug must not take the listener down
            _log.exception("registry connection failed")
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, conn: _Connection, remote: str) -> None:
        while True:
            try:
                event = await asyncio.wait_for(conn.next_event(), IDLE_TIMEOUT)
            except TimeoutError:
                return
            except h11.RemoteProtocolError as exc:
                with contextlib.suppress(Exception):
                    await conn.send(_error_response(exc.error_status_hint, str(exc)), False)
                return
            if not isinstance(event, h11.Request):
                return
            request = Request(
                event.method.decode(),
                event.target.decode("latin-1"),
                list(event.headers),
                conn,
                remote,
            )
            response = await self.app(request)
            if not request.body_done and not await _drain(request):
                response.headers.append(("Connection", "close"))
            await conn.send(response, request.method == "HEAD")
            if conn.h11.our_state is h11.MUST_CLOSE or not request.body_done:
                return
            conn.h11.start_next_cycle()


async def _drain(request: Request) -> bool:
    size = 0
    try:
        async for chunk in request.body():
            size += len(chunk)
            if size > DRAIN_LIMIT:
                return False
    except ClientGone:
        return False
    return True


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.expanduser(cert), os.path.expanduser(key))
    return ctx

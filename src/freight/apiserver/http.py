"""The HTTP/1.1 server under the Engine API: requests, responses, listeners, connections.

Built on h11 over asyncio streams, because attach and exec take the raw socket
over after the HTTP exchange ("hijack"), which needs full control of the
connection.

An application is any `async def app(request: Request) -> AnyResponse`
(normally a `freight.apiserver.router.Router`):

    server = ApiServer(router, ["unix:///run/freight/freight.sock", "tcp://127.0.0.1:2375"])
    await server.start()
    ...
    await server.close()

Responses:

- `json_response(obj, status=200)`: Content-Type exactly application/json, body
  as Go's json.Encoder writes it (compact, trailing newline).
- `text_response(text)`, `empty_response(204)`.
- `StreamingResponse(body=async_iterable_of_bytes, content_type=...)`: headers
  go out at once, then every chunk is flushed as it is produced (chunked
  framing). Used by `logs -f`, `/events`, `/containers/{id}/wait`, pulls.
  A client that goes away cancels the producer (CancelledError at its await,
  or GeneratorExit at its yield): clean up in `finally`.
- `HijackResponse(handler, multiplexed=False)`: attach/exec. When the request
  carries an `Upgrade` header the answer is `HTTP/1.1 101 UPGRADED` with
  `Connection: Upgrade`, `Upgrade: tcp`; otherwise `200 OK` with no framing.
  Either way `await handler(stream: HijackedStream)` then owns the socket and
  the connection is closed when it returns.

Connections: keep-alive and pipelining (h11 buffers the next request); bodies
by Content-Length or chunked, read incrementally (`request.body`); a body the
handler did not read is drained (up to DRAIN_LIMIT) to keep the connection.
Once a request's body is read, the server watches the socket: if the client
disconnects, the handler's task is cancelled, as Go's net/http cancels the
request context. Hijack requests are exempt, since a half-close there only
means "stdin is done".

Listeners: `unix:///path`, `tcp://host:port` (TLS when an ssl_context is
given) and `fd://N`, a socket inherited already listening (systemd socket
activation; daemon.listeners turns `fd://` into these). TLS connections keep
writing after the client's close_notify (`_HalfCloseTls`): that alert is how
a TLS client half-closes (docker's CloseWrite), e.g. at the end of
`run -i`'s stdin, and the output still has to reach it.

Shutdown (`close`): stop accepting, close idle connections, cancel streaming
and hijacked exchanges, give ordinary requests `shutdown_grace` seconds, then
cancel what is left and remove unix socket files.
"""

import asyncio
import contextlib
import email.utils
import http
import json
import logging
import os
import re
import socket
import ssl
import stat
import urllib.parse
from asyncio import sslproto
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import h11

from freight import errors
from freight.apiserver.streams import READ_SIZE, BodyStream, HijackedStream
from freight.dockerapi import versions

JSON_CONTENT_TYPE = "application/json"
RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"

MAX_HEADER_BYTES = 1024 * 1024  # X-Registry-Auth / X-Registry-Config can be large
# A request's head must arrive within this (dockerd's ReadHeaderTimeout): a client that
# connects and dribbles bytes (or idles between requests) can't hold a connection forever.
HEADER_TIMEOUT_S = 300.0
# Request line + headers together, as Go's http.Server (DefaultMaxHeaderBytes, 1 MiB);
# that bounds the URL too. Tar bodies (build contexts, loads, cp) are streams with
# their own size limits; a JSON body is read whole, so it has one of its own.
MAX_JSON_BODY = 16 * 1024 * 1024
MAX_JSON_DEPTH = 100
DRAIN_LIMIT = 1024 * 1024
PIPELINE_LIMIT = 1024 * 1024
UNIX_SOCKET_MODE = 0o660

_log = logging.getLogger(__name__)


class Headers:
    """Request headers, looked up case-insensitively; repeated names are kept."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = [(name.lower(), value) for name, value in items]

    @classmethod
    def from_h11(cls, raw: Iterable[tuple[bytes, bytes]]) -> "Headers":
        return cls((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((value for key, value in self._items if key == name), default)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def tokens(self, name: str) -> set[str]:
        """Comma-separated values of a header, lowercased (Connection, Upgrade)."""
        return {
            token.strip().lower()
            for value in self.get_all(name)
            for token in value.split(",")
            if token.strip()
        }

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(key == name.lower() for key, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)


class Query:
    """Query parameters with Docker's parsing rules.

    `bool`: absent → default; present → false only for "", "0", "no",
    "false", "none" (any case), true for anything else (moby's BoolValue).
    `int`: absent or empty → default; garbage → InvalidArgument (400).
    `filters`: the JSON `filters` parameter → {"name": ["v1", "v2"]}, from
    either the current shape {"status": {"running": true}} or the legacy
    {"status": ["running"]} that docker-py sends.
    """

    _FALSE = frozenset({"", "0", "no", "false", "none"})

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs = list(pairs)

    @classmethod
    def parse(cls, query_string: str) -> "Query":
        return cls(urllib.parse.parse_qsl(query_string, keep_blank_values=True))

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of `key` (Go's FormValue)."""
        return next((value for name, value in self._pairs if name == key), default)

    def get_all(self, key: str) -> list[str]:
        return [value for name, value in self._pairs if name == key]

    def __contains__(self, key: object) -> bool:
        return any(name == key for name, _ in self._pairs)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        if value is None:
            return default
        return value.strip().lower() not in self._FALSE

    def int(self, key: str, default: int = 0) -> int:
        value = self.get(key)
        if value is None or value == "":
            return default
        try:
            return int(value.strip(), 10)
        except ValueError:
            raise errors.InvalidArgument(
                f'invalid value for {key}: strconv.ParseInt: parsing "{value}": invalid syntax'
            ) from None

    def filters(self, key: str = "filters") -> dict[str, list[str]]:
        return parse_filters(self.get(key) or "")


class BodyTooLarge(errors.InvalidArgument):
    """A request body over its limit: answered 413."""


def _depth(obj: Any) -> int:
    """How deeply `obj` nests lists and dicts (iterative: the value may be deep)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in value if isinstance(v, dict | list))
    return deepest


def decode_json(data: bytes | str, what: str = "invalid JSON") -> Any:
    """json.loads, with every failure (also a nesting deeper than MAX_JSON_DEPTH,
    which would otherwise end in RecursionError) an InvalidArgument."""
    too_deep = errors.InvalidArgument(f"{what}: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(data)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise errors.InvalidArgument(f"{what}: {exc}") from None
    if isinstance(value, dict | list) and _depth(value) > MAX_JSON_DEPTH:
        raise too_deep
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _SURROGATE_ESCAPE.search(raw):
        value = _replace_surrogates(value)
    return value


# A \uD800-\uDFFF escape: json.loads keeps an unpaired one as a lone surrogate, which
# no UTF-8 encoder accepts later (a 500 far from here); Go decodes it as U+FFFD.
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


def parse_filters(raw: str) -> dict[str, list[str]]:
    """Decode Docker's JSON filters parameter; both wire shapes, 400 on garbage."""
    if not raw.strip():
        return {}
    decoded = decode_json(raw, "invalid filter")
    if not isinstance(decoded, dict):
        raise errors.InvalidArgument("invalid filter: filters must be a JSON object")
    result: dict[str, list[str]] = {}
    for name, values in decoded.items():
        if isinstance(values, dict):
            # Current shape: {"label": {"a=b": true}}; moby keeps every key.
            result[name] = [str(v) for v in values]
        elif isinstance(values, list):
            result[name] = [str(v) for v in values]
        else:
            raise errors.InvalidArgument(f"invalid filter: bad value for {name!r}")
    return result


@dataclass
class Request:
    """One HTTP request as a handler sees it.

    `path` is percent-decoded; the router strips a /vX.Y prefix from it and
    sets `api_version` and `params` (the values of {placeholders}).
    """

    method: str
    target: str
    path: str
    query: Query
    headers: Headers
    body: BodyStream = field(default_factory=lambda: BodyStream(None))
    http_version: str = "1.1"
    api_version: str = versions.API_VERSION
    params: dict[str, str] = field(default_factory=dict)
    is_unix: bool = False  # came over a unix socket: the client is on this machine

    @property
    def wants_upgrade(self) -> bool:
        """The client asked to take the connection over (attach/exec): moby checks Upgrade only."""
        return "upgrade" in self.headers

    async def read(self, limit: int | None = None) -> bytes:
        return await self.body.read(limit)

    async def json(self, default: Any = None) -> Any:
        """The body decoded as JSON, `default` when empty; InvalidArgument when malformed.

        Like moby's ReadJSON: a Content-Type other than application/json is
        refused, an empty body is not an error.
        """
        content_type = (self.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type and content_type != JSON_CONTENT_TYPE:
            raise errors.InvalidArgument(
                f"unsupported Content-Type header ({content_type}): must be 'application/json'"
            )
        data = await self._read_json_body()
        if not data.strip():
            return default
        return decode_json(data)

    async def _read_json_body(self) -> bytes:
        too_large = BodyTooLarge(
            f"request body is larger than the limit for JSON bodies "
            f"({MAX_JSON_BODY // (1024 * 1024)} MiB, {MAX_JSON_BODY} bytes)"
        )
        length = self.headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > MAX_JSON_BODY:
            raise too_large
        parts: list[bytes] = []
        size = 0
        async for chunk in self.body:
            size += len(chunk)
            if size > MAX_JSON_BODY:
                raise too_large
            parts.append(chunk)
        return b"".join(parts)


HeaderList = list[tuple[str, str]]


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: HeaderList = field(default_factory=list)


@dataclass
class StreamingResponse:
    """Headers now, body as it is produced; each chunk is flushed at once."""

    body: AsyncIterable[bytes]
    content_type: str = JSON_CONTENT_TYPE
    status: int = 200
    headers: HeaderList = field(default_factory=list)


@dataclass
class HijackResponse:
    """Hand the raw connection to `handler` (attach, exec start)."""

    handler: Callable[[HijackedStream], Awaitable[None]]
    multiplexed: bool = False
    headers: HeaderList = field(default_factory=list)
    # A websocket instead (attach/ws): the 101 lines of its handshake; the handler
    # then gets a `websocket.WebSocketStream` with the same interface.
    websocket_handshake: list[str] | None = None

    @property
    def content_type(self) -> str:
        return MULTIPLEXED_STREAM if self.multiplexed else RAW_STREAM


AnyResponse = Response | StreamingResponse | HijackResponse
App = Callable[[Request], Awaitable[AnyResponse]]


def encode_json(obj: Any) -> bytes:
    """JSON as moby writes it: compact, UTF-8, no HTML escaping, trailing newline."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def json_response(obj: Any, status: int = 200, headers: HeaderList | None = None) -> Response:
    return Response(status, encode_json(obj), JSON_CONTENT_TYPE, list(headers or []))


def text_response(
    text: str,
    status: int = 200,
    content_type: str = "text/plain; charset=utf-8",
    headers: HeaderList | None = None,
) -> Response:
    return Response(status, text.encode(), content_type, list(headers or []))


def empty_response(status: int = 204, headers: HeaderList | None = None) -> Response:
    return Response(status, b"", None, list(headers or []))


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _has_body(status: int) -> bool:
    return not (100 <= status < 200 or status in (204, 304))


class _Connection:
    """One client connection: the request loop, responses, hijack, disconnect watching."""

    IDLE, BUSY, STREAMING = "idle", "busy", "streaming"

    def __init__(
        self, server: "ApiServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._server = server
        self._reader = reader
        self._writer = writer
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._watcher: asyncio.Task[None] | None = None
        self.state = self.IDLE
        sock = writer.get_extra_info("socket")
        self._is_unix = sock is not None and sock.family == socket.AF_UNIX

    # -- socket and h11 plumbing --------------------------------------------

    async def _receive(self) -> None:
        try:
            data = await self._reader.read(READ_SIZE)
        except ConnectionError:
            data = b""
        self._h11.receive_data(data)

    async def _next_event(self) -> Any:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            await self._receive()

    async def _send(self, event: Any) -> None:
        data = self._h11.send(event)
        if data:
            self._writer.write(data)
            await self._writer.drain()

    # -- the request loop ---------------------------------------------------

    async def serve(self) -> None:
        try:
            while not self._server.closing:
                self.state = self.IDLE
                event = await asyncio.wait_for(self._next_event(), self._server.header_timeout)
                if not isinstance(event, h11.Request):
                    return  # ConnectionClosed (or PAUSED after a close)
                self.state = self.BUSY
                if not await self._exchange(event):
                    return
                if self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
                    return
                self._h11.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            await self._reject(exc)
        except (ConnectionError, TimeoutError):
            pass  # the client went away; nothing to answer
        finally:
            self._writer.close()

    async def _reject(self, exc: h11.RemoteProtocolError) -> None:
        """Answer a malformed request with 4xx when h11 still lets us speak."""
        if self._h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        message = str(exc) or "bad request"
        if exc.error_status_hint == 431:
            message = (
                f"request line and headers are larger than the limit "
                f"({MAX_HEADER_BYTES // 1024} KiB, {MAX_HEADER_BYTES} bytes)"
            )
        body = encode_json({"message": message})
        headers = [("Content-Type", JSON_CONTENT_TYPE), ("Content-Length", str(len(body)))]
        with contextlib.suppress(Exception):
            await self._send(h11.Response(status_code=exc.error_status_hint, headers=headers))
            await self._send(h11.Data(data=body))
            await self._send(h11.EndOfMessage())

    async def _exchange(self, event: h11.Request) -> bool:
        """Run one request to completion; True if the connection may be reused."""
        request = await self._make_request(event)
        task = asyncio.create_task(self._respond(request))
        self._watcher = asyncio.create_task(self._watch_disconnect(request, task))
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # server shutdown
            return False  # the watcher saw the client leave
        except ConnectionError:
            return False
        finally:
            await self._stop_watcher()

    async def _make_request(self, event: h11.Request) -> Request:
        target = event.target.decode("latin-1")
        raw_path, _, query_string = target.partition("?")
        headers = Headers.from_h11(event.headers)
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        if not has_body:
            # Consume the EndOfMessage now so the disconnect watcher can start.
            await self._next_event()
        return Request(
            method=event.method.decode("ascii"),
            target=target,
            path=urllib.parse.unquote(raw_path),
            query=Query.parse(query_string),
            headers=headers,
            body=BodyStream(self._read_body_chunk if has_body else None),
            http_version=event.http_version.decode("ascii"),
            is_unix=self._is_unix,
        )

    async def _read_body_chunk(self) -> bytes:
        if self._h11.they_are_waiting_for_100_continue:
            await self._send(h11.InformationalResponse(status_code=100, headers=[]))
        while True:
            try:
                event = await self._next_event()
            except h11.RemoteProtocolError:
                raise ConnectionResetError("client closed the connection mid-body") from None
            if isinstance(event, h11.Data):
                if event.data:
                    return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return b""
            else:
                raise ConnectionResetError("client closed the connection mid-body")

    async def _watch_disconnect(self, request: Request, task: asyncio.Task[bool]) -> None:
        """After the body, read ahead: EOF means the client left (cancel), data is pipelined."""
        await request.body.finished.wait()
        while len(self._h11.trailing_data[0]) < PIPELINE_LIMIT:
            try:
                data = await self._reader.read(READ_SIZE)
            except ConnectionError:
                data = b""
            self._h11.receive_data(data)
            if not data:
                if not request.wants_upgrade:
                    task.cancel()
                return

    async def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    # -- responding ---------------------------------------------------------

    async def _respond(self, request: Request) -> bool:
        try:
            response = await self._server.app(request)
        except ConnectionError:
            raise  # the client left while the handler read its body
        except Exception:
            _log.exception("unhandled error in %s %s", request.method, request.path)
            response = json_response({"message": "internal server error"}, 500)
        if self._server.closing and not isinstance(response, HijackResponse):
            response.headers.append(("Connection", "close"))
        self._server.log_request(request, response)
        if isinstance(response, HijackResponse):
            await self._hijack(request, response)
            return False
        if isinstance(response, StreamingResponse):
            sent = await self._send_stream(request, response)
        else:
            await self._send_response(request, response)
            sent = True
        return sent and await self._finish_body(request)

    async def _finish_body(self, request: Request) -> bool:
        """Drop an unread body so the next request can be parsed; give up when large."""
        if request.body.finished.is_set():
            return True
        if self._h11.they_are_waiting_for_100_continue:
            return False  # the client never sent the body; don't wait for it
        await self._stop_watcher()
        return await request.body.discard(DRAIN_LIMIT)

    def _headers(self, response: AnyResponse, content_type: str | None) -> HeaderList:
        headers = [("Date", email.utils.formatdate(usegmt=True))]
        if content_type:
            headers.append(("Content-Type", content_type))
        return headers + response.headers

    async def _send_response(self, request: Request, response: Response) -> None:
        headers = self._headers(response, response.content_type)
        if _has_body(response.status):
            headers.append(("Content-Length", str(len(response.body))))
        await self._send(
            h11.Response(
                status_code=response.status, headers=headers, reason=_reason(response.status)
            )
        )
        if response.body and request.method != "HEAD" and _has_body(response.status):
            await self._send(h11.Data(data=response.body))
        await self._send(h11.EndOfMessage())

    async def _send_stream(self, request: Request, response: StreamingResponse) -> bool:
        """Headers first, then each chunk flushed; False if the producer failed mid-way."""
        self.state = self.STREAMING
        head = h11.Response(
            status_code=response.status,
            headers=self._headers(response, response.content_type),
            reason=_reason(response.status),
        )
        body = response.body
        try:
            await self._send(head)
            if request.method != "HEAD":
                async for chunk in body:
                    if chunk:
                        await self._send(h11.Data(data=chunk))
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            # Headers are out: the only honest signal left is to cut the
            # connection without the final chunk, so the client sees an error.
            _log.exception("stream of %s %s failed", request.method, request.path)
            return False
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        await self._send(h11.EndOfMessage())
        return True

    async def _hijack(self, request: Request, response: HijackResponse) -> None:
        if not await request.body.discard(DRAIN_LIMIT):
            return
        await self._stop_watcher()
        self.state = self.STREAMING
        if response.websocket_handshake is not None:
            await self._websocket(request, response, response.websocket_handshake)
            return
        if request.wants_upgrade:
            lines = [
                "HTTP/1.1 101 UPGRADED",
                f"Content-Type: {response.content_type}",
                "Connection: Upgrade",
                "Upgrade: tcp",
            ]
        else:
            lines = ["HTTP/1.1 200 OK", f"Content-Type: {response.content_type}"]
        lines += [f"{name}: {value}" for name, value in response.headers]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self._writer.drain()
        buffered, eof = self._h11.trailing_data
        stream = HijackedStream(self._reader, self._writer, bytes(buffered), eof)
        try:
            await response.handler(stream)
        except ConnectionError:
            pass  # the client left while the handler was copying
        except Exception:
            _log.exception("hijacked %s %s failed", request.method, request.path)
        finally:
            await stream.close_write()

    async def _websocket(
        self, request: Request, response: HijackResponse, lines: list[str]
    ) -> None:
        from freight.apiserver.websocket import WebSocketStream

        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self._writer.drain()
        buffered, _ = self._h11.trailing_data
        stream = WebSocketStream(self._reader, self._writer, bytes(buffered))
        try:
            await response.handler(stream)  # type: ignore[arg-type]
        except ConnectionError:
            pass
        except Exception:
            _log.exception("websocket %s %s failed", request.method, request.path)
        finally:
            await stream.close_write()


class _HalfCloseTls(sslproto.SSLProtocol):
    """asyncio's server-side TLS, except that the client's close_notify is EOF only.

    asyncio answers a close_notify by closing the whole connection, which would
    cut the output of an attach whose client just ended stdin. Here the read
    path still reports EOF to the stream, but the shutdown it would start is
    skipped: the connection closes when the server closes it (or on the
    client's TCP FIN), and our own close_notify goes out then.
    """

    _in_read = False

    def _do_read(self) -> None:
        self._in_read = True
        try:
            super()._do_read()
        finally:
            self._in_read = False

    def _start_shutdown(self) -> None:
        if self._in_read:
            return  # the peer's close_notify: half-closed, we keep writing
        super()._start_shutdown()

    def _on_handshake_complete(self, handshake_exc: BaseException | None) -> None:
        if handshake_exc is not None:
            # Send OpenSSL's alert (a refused client certificate) before the
            # connection is dropped, so the client can tell why.
            with contextlib.suppress(Exception):
                self._process_outgoing()
        super()._on_handshake_complete(handshake_exc)


@dataclass
class _Listener:
    url: str
    server: asyncio.Server
    unix_path: str | None = None
    unix_inode: int | None = None


class ApiServer:
    """Serves an `App` on any number of `unix:///path` and `tcp://host:port` listeners."""

    def __init__(
        self,
        app: App,
        listeners: Iterable[str],
        logger: logging.Logger | None = None,
        shutdown_grace: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        unix_gid: int | None = None,
        header_timeout: float = HEADER_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.header_timeout = header_timeout
        self._ssl = ssl_context  # for tcp:// listeners only, as dockerd
        self._unix_gid = unix_gid
        self._urls = list(listeners)
        self._log = logger or _log
        self._grace = shutdown_grace
        self._listeners: list[_Listener] = []
        self._connections: dict[_Connection, asyncio.Task[Any]] = {}
        self.closing = False

    @property
    def addresses(self) -> list[str]:
        """The bound listener URLs (tcp ports resolved, so port 0 shows the real one)."""
        return [listener.url for listener in self._listeners]

    async def start(self) -> None:
        try:
            for url in self._urls:
                self._listeners.append(await self._listen(url))
        except BaseException:
            await self.close()
            raise

    async def __aenter__(self) -> "ApiServer":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _listen(self, url: str) -> _Listener:
        scheme, sep, rest = url.partition("://")
        if sep and scheme == "unix":
            return await self._listen_unix(rest)
        if sep and scheme == "tcp":
            return await self._listen_tcp(rest)
        if sep and scheme == "fd" and rest.isdigit():
            return await self._listen_fd(int(rest))
        raise errors.InvalidArgument(
            f"unsupported listener {url!r}: want unix:///path, tcp://host:port or fd://N"
        )

    async def _listen_unix(self, path: str) -> _Listener:
        _remove_stale_socket(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        server = await asyncio.start_unix_server(self._on_connect, path=path)
        # chmod after bind rather than umask: umask is process-wide and the
        # daemon is threaded. The window is a few microseconds on a root-owned dir.
        os.chmod(path, UNIX_SOCKET_MODE)
        if self._unix_gid is not None:
            os.chown(path, -1, self._unix_gid)
        return _Listener(f"unix://{path}", server, path, os.stat(path).st_ino)

    async def _listen_tcp(self, hostport: str) -> _Listener:
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise errors.InvalidArgument(f"invalid tcp listener address {hostport!r}")
        server = await self._start_inet_server(host=host.strip("[]"), port=int(port))
        bound_host, bound_port = server.sockets[0].getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        return _Listener(f"tcp://{shown}:{bound_port}", server)

    async def _listen_fd(self, fd: int) -> _Listener:
        """A listening socket we inherited (its file, if unix, is its owner's to remove)."""
        sock = socket.socket(fileno=fd)
        if sock.family == socket.AF_UNIX:
            server = await asyncio.start_unix_server(self._on_connect, sock=sock)
        else:
            server = await self._start_inet_server(sock=sock)
        return _Listener(f"fd://{fd}", server)

    async def _start_inet_server(self, **where: Any) -> asyncio.Server:
        if self._ssl is None:
            return await asyncio.start_server(self._on_connect, **where)
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.BaseProtocol:
            reader = asyncio.StreamReader(loop=loop)
            app = asyncio.StreamReaderProtocol(reader, self._on_connect, loop=loop)
            return _HalfCloseTls(loop, app, self._ssl, None, server_side=True)

        return await loop.create_server(protocol, **where)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.closing:
            writer.close()
            return
        conn = _Connection(self, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._connections[conn] = task
        try:
            await conn.serve()
        except asyncio.CancelledError:
            pass  # shutdown; the socket is closed in serve()
        except Exception:
            self._log.exception("connection handling failed")
        finally:
            self._connections.pop(conn, None)

    def log_request(self, request: Request, response: AnyResponse) -> None:
        status = 101 if isinstance(response, HijackResponse) else response.status
        self._log.debug("%s %s -> %d", request.method, request.target, status)

    async def close(self) -> None:
        """Stop accepting, end connections (see module docstring), remove socket files."""
        self.closing = True
        for listener in self._listeners:
            listener.server.close()
        await self._end_connections()
        for listener in self._listeners:
            with contextlib.suppress(Exception):
                await listener.server.wait_closed()
            _remove_own_socket(listener)
        self._listeners.clear()

    async def _end_connections(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._grace
        cancelled: set[asyncio.Task[Any]] = set()
        while self._connections:
            for conn, task in list(self._connections.items()):
                # Cancel once only: a second cancel would interrupt the cleanup
                # the first one started.
                if task not in cancelled and (
                    conn.state != _Connection.BUSY or loop.time() >= deadline
                ):
                    task.cancel()
                    cancelled.add(task)
            await asyncio.wait(list(self._connections.values()), timeout=0.05)


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a previous daemon is replaced; anything else is an error."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise errors.AlreadyExists(f"{path} exists and is not a socket")
    os.unlink(path)


def _remove_own_socket(listener: _Listener) -> None:
    """Unlink the socket file unless another process has replaced it since."""
    if listener.unix_path is None:
        return
    with contextlib.suppress(FileNotFoundError):
        if os.lstat(listener.unix_path).st_ino == listener.unix_inode:
            os.unlink(listener.unix_path)

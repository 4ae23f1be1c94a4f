"""A small blocking HTTP/1.1 client for the Engine API, written on ``socket``.

Owns: where the daemon is (``-H``, ``FREIGHT_HOST``, ``DOCKER_HOST``, default
socket), one request per connection, request bodies (JSON, bytes, or a file
object or an iterator of byte strings sent with chunked transfer), response bodies (Content-Length, chunked,
or read until close, all readable incrementally), connection hijacking
(``Upgrade: tcp`` -> ``101`` -> raw socket), and mapping failures to
``ApiError`` / ``DaemonUnreachable``. ``tcp://`` with ``TlsOptions`` goes
over TLS (``client.tlsconfig``; ``ssl`` is imported only then), ``ssh://``
over an ssh command's stdio (``client.sshdial``).

Why not ``http.client``: the CLI's start time is a headline number and
``http.client`` drags in ``email`` and friends; this module only needs
``socket`` and ``json``. One connection per request keeps it simple and lets
``run`` hold attach, wait and start open at once.
"""

from __future__ import annotations

# The C module, not `socket` (nor `json`): those import enum and re, ~15 ms of every command.
import _socket
import os

from freight.client import wirejson

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from socket import socket as Socket
    from typing import Any, BinaryIO

    from freight.client.tlsconfig import TlsOptions

API_VERSION = "1.45"
DEFAULT_HOST = "unix:///run/freight/freight.sock"
_READ_SIZE = 65536
_UPLOAD_CHUNK = 65536


class ClientError(Exception):
    """Base of the client's errors; ``str()`` is what the CLI prints."""


class DaemonUnreachable(ClientError):
    """No daemon answers at the host address."""

    def __init__(self, host: str, reason: str = "") -> None:
        super().__init__(f"Cannot connect to the freight daemon at {host}. Is freightd running?")
        self.host = host
        self.reason = reason


_REFUSED = "the daemon closed the connection: it did not accept this client's certificate (--tlscert/--tlskey)"


class TlsError(ClientError):
    """The TLS handshake failed, or the daemon refused our certificate."""

    def __init__(self, host: str, exc: BaseException) -> None:
        reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc
        alert = _alert_text(str(reason))
        if alert:  # the daemon's alert, worded as docker (Go's crypto/tls) words it
            super().__init__(f"error during connect: {host}: remote error: tls: {alert}")
        else:
            super().__init__(f"error during connect: {host}: tls: {reason}")


# OpenSSL's names of TLS alerts where Go's differ (the rest: lower case, spaces).
_GO_ALERTS = {"unknown ca": "unknown certificate authority",
              "protocol version": "protocol version not supported"}  # fmt: skip


def _alert_text(reason: str) -> str:
    """'TLSV13_ALERT_CERTIFICATE_REQUIRED' -> 'certificate required'; '' if no alert."""
    for prefix in ("TLSV13_ALERT_", "TLSV1_ALERT_", "SSLV3_ALERT_"):
        if reason.startswith(prefix):
            name = reason.removeprefix(prefix).replace("_", " ").lower()
            return _GO_ALERTS.get(name, name)
    return ""


class _TlsSocket:
    """A TLS connection (client.tlsstream) whose TLS failures (a refused client
    certificate arrives at the first read under TLS 1.3) surface as TlsError;
    ``shutdown(SHUT_WR)`` sends close_notify and reading goes on (stdin's end)."""

    def __init__(self, sock: Any, host: str) -> None:
        self._sock = sock
        self._host = host
        self._answered = False

    def recv(self, n: int) -> bytes:
        import ssl

        try:
            data = self._sock.recv(n)
        except ssl.SSLError as exc:
            raise TlsError(self._host, exc) from None
        except ConnectionResetError as exc:
            if self._answered:
                raise
            raise TlsError(self._host, exc) from None
        if not data and not self._answered:
            # A daemon that drops the connection before any answer refused the
            # handshake's outcome: with TLS 1.3, its alert may not reach us.
            raise TlsError(self._host, _REFUSED)
        self._answered = True
        return data

    def sendall(self, data: bytes) -> None:
        import ssl

        try:
            self._sock.sendall(data)
        except ssl.SSLError as exc:
            raise TlsError(self._host, exc) from None

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def fileno(self) -> int:
        return self._sock.fileno()

    def settimeout(self, value: float | None) -> None:
        self._sock.settimeout(value)

    def close(self) -> None:
        self._sock.close()


class ProtocolError(ClientError):
    """The daemon's answer is not HTTP we understand."""


class ApiError(ClientError):
    """The daemon answered with a non-2xx status; ``message`` is its text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Error response from daemon: {message}")
        self.status = status
        self.message = message


def resolve_host(flag: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The daemon address: ``-H`` flag, then FREIGHT_HOST, DOCKER_HOST, default."""
    env = os.environ if environ is None else environ
    return flag or env.get("FREIGHT_HOST") or env.get("DOCKER_HOST") or DEFAULT_HOST


def parse_host(host: str) -> tuple[str, Any]:
    """Split a host URL into a socket family name and address.

    ``unix:///path`` -> ("unix", "/path"); ``tcp://h:p`` / ``http://h:p`` ->
    ("tcp", (h, p)). A bare path is taken as a unix socket.
    """
    scheme, sep, rest = host.partition("://")
    if not sep:
        if host.startswith("/"):
            return "unix", host
        scheme, rest = "tcp", host
    if scheme == "unix":
        return "unix", rest
    if scheme == "ssh":
        from freight.client.sshdial import parse_target

        try:
            return "ssh", parse_target(rest)
        except ValueError as exc:
            raise ClientError(f"invalid ssh host {host!r}: {exc}") from None
    if scheme in ("tcp", "http", "https"):
        hostport = rest.split("/", 1)[0]
        name, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        return "tcp", (name.strip("[]") or "127.0.0.1", int(port or 2375))
    raise ClientError(f"unsupported protocol scheme in {host!r}")


class _Reader:
    """A buffered reader over a socket, for headers and bodies."""

    def __init__(self, sock: Socket, buffered: bytes = b"") -> None:
        self.sock = sock
        self.buf = bytearray(buffered)
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(_READ_SIZE)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def readline(self, limit: int = 65536) -> bytes:
        while True:
            idx = self.buf.find(b"\n")
            if idx >= 0:
                line = bytes(self.buf[: idx + 1])
                del self.buf[: idx + 1]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("header line too long")
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read_some(self, limit: int) -> bytes:
        """Up to ``limit`` bytes: what is buffered, else one recv; b'' at EOF."""
        if not self.buf and not self._fill():
            return b""
        data = bytes(self.buf[:limit])
        del self.buf[:limit]
        return data

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ProtocolError("connection closed in the middle of a response")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def take_buffer(self) -> bytes:
        data = bytes(self.buf)
        self.buf.clear()
        return data


class Response:
    """A response whose body is read on demand (whole, in chunks, or lines)."""

    def __init__(self, sock: Socket, reader: _Reader, method: str) -> None:
        self.sock = sock
        self._reader = reader
        self.status, self.reason, self.headers = _read_head(reader)
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self._remaining: int | None = int(length) if length is not None else None
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self._remaining = 0
            self._chunked = False
        self._chunk_left = 0
        self._done = False

    def iter_chunks(self) -> Iterator[bytes]:
        """Yield body bytes as they arrive (chunk boundaries are not kept)."""
        while True:
            data = self._read_piece()
            if not data:
                return
            yield data

    def _read_piece(self) -> bytes:
        if self._done:
            return b""
        if self._chunked:
            return self._read_chunked_piece()
        if self._remaining is not None:
            if self._remaining == 0:
                return self._finish()
            data = self._reader.read_some(min(self._remaining, _READ_SIZE))
            if not data:
                raise ProtocolError("connection closed before the end of the body")
            self._remaining -= len(data)
            return data
        data = self._reader.read_some(_READ_SIZE)
        return data if data else self._finish()

    def _read_chunked_piece(self) -> bytes:
        if self._chunk_left == 0:
            size_line = self._reader.readline()
            if not size_line:
                raise ProtocolError("connection closed inside a chunked body")
            self._chunk_left = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if self._chunk_left == 0:
                while self._reader.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers: nothing here uses them
                return self._finish()
        data = self._reader.read_some(self._chunk_left)
        if not data:
            raise ProtocolError("connection closed inside a chunked body")
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self._reader.read_exact(2)
        return data

    def _finish(self) -> bytes:
        self._done = True
        self.close()
        return b""

    def read(self) -> bytes:
        return b"".join(self.iter_chunks())

    def iter_lines(self) -> Iterator[bytes]:
        """Yield newline-terminated lines (the last may lack its newline)."""
        pending = b""
        for data in self.iter_chunks():
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line + b"\n"
        if pending:
            yield pending

    def iter_json(self) -> Iterator[Any]:
        """Decode a stream of JSON values (one per line, as docker sends them)."""
        pending = ""
        for data in self.iter_chunks():
            pending += data.decode("utf-8", "replace")
            pending = yield from _decode_available(pending)
        if pending.strip():
            raise ProtocolError("truncated JSON message in stream")

    def json(self) -> Any:
        body = self.read()
        return wirejson.loads(body) if body.strip() else None

    def close(self) -> None:
        self.sock.close()


def _decode_available(text: str) -> Iterator[Any]:
    """Yield every complete JSON value in ``text``; return the unfinished tail."""
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            return ""
        try:
            value, pos = wirejson.raw_decode(text, pos)
        except ValueError:
            return text[pos:]
        yield value


def _read_head(reader: _Reader) -> tuple[int, str, dict[str, str]]:
    line = reader.readline()
    if not line:
        raise ProtocolError("the daemon closed the connection without answering")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProtocolError(f"malformed HTTP status line: {line[:80]!r}")
    headers: dict[str, str] = {}
    while True:
        raw = reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


class Hijacked:
    """A connection taken over after ``101``: the raw socket plus early bytes.

    Usable with ``select()`` (``fileno``); ``close_write`` half-closes so the
    daemon sees the end of stdin while output keeps flowing back. Bytes read
    along with the ``101`` are handed out first, so check ``buffered``
    before blocking in ``select``.
    """

    def __init__(self, sock: Socket, buffered: bytes) -> None:
        self.sock = sock
        self.buffered = buffered

    def fileno(self) -> int:
        return self.sock.fileno()

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, n: int = _READ_SIZE) -> bytes:
        """Read from the stream, handing out the already-buffered bytes first."""
        if self.buffered:
            data, self.buffered = self.buffered[:n], self.buffered[n:]
            return data
        return self.sock.recv(n)

    def close_write(self) -> None:
        # contextlib.suppress would cost an import on the hot path.
        try:  # noqa: SIM105
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass  # already closed by the daemon: nothing left to signal

    def close(self) -> None:
        self.sock.close()


class EngineClient:
    """Talks HTTP/1.1 to the daemon at ``host``; paths get the /v1.45 prefix."""

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout: float | None = None,
        tls: TlsOptions | None = None,
    ) -> None:
        self.host = resolve_host(host)
        self.family, self.address = parse_host(self.host)
        self.timeout = timeout
        # TLS applies to tcp:// only (a unix socket or ssh is protected otherwise).
        self.tls = tls if self.family == "tcp" else None
        self._ssl_context: Any = None
        self.user_agent = "freight-cli/0.1.0"
        # As the docker CLI: DOCKER_API_VERSION pins it; an older daemon's refusal lowers it.
        self.api_version = os.environ.get("DOCKER_API_VERSION") or API_VERSION

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        if not path.startswith("/_ping"):
            path = f"/v{self.api_version}{path}"
        query = _encode_query(params) if params else ""
        return f"{path}?{query}" if query else path

    def connect(self) -> Socket:
        if self.family == "ssh":
            from freight.client.sshdial import dial

            return dial(self.address)
        if self.tls is not None:
            return self._connect_tls()
        family = _socket.AF_UNIX if self.family == "unix" else _socket.AF_INET
        if self.family == "tcp" and ":" in self.address[0]:
            family = _socket.AF_INET6
        sock = _socket.socket(family, _socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.address)
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            sock.close()
            raise DaemonUnreachable(self.host, str(exc)) from None
        except OSError as exc:
            sock.close()
            raise DaemonUnreachable(self.host, str(exc)) from None
        return sock

    def _connect_tls(self) -> Socket:
        import socket
        import ssl

        from freight.client.tlsconfig import TlsConfigError, client_context

        if self._ssl_context is None:
            try:
                self._ssl_context = client_context(self.tls)  # type: ignore[arg-type]
            except TlsConfigError as exc:
                raise ClientError(str(exc)) from None
        name, port = self.address
        try:
            raw = socket.create_connection((name, port), timeout=self.timeout)
        except OSError as exc:
            raise DaemonUnreachable(self.host, str(exc)) from None
        raw.settimeout(self.timeout)
        try:
            from freight.client.tlsstream import TlsStream

            return _TlsSocket(TlsStream(raw, self._ssl_context, name), self.host)
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raw.close()
            raise TlsError(self.host, exc) from None
        except OSError as exc:
            raw.close()
            raise DaemonUnreachable(self.host, str(exc)) from None

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | BinaryIO | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        upgrade: bool = False,
    ) -> tuple[Socket, _Reader]:
        """Connect and send one request; the answer is read by the caller."""
        sock = self.connect()
        head = self._head(method, self.url(path, params), headers, upgrade)
        try:
            if json_body is not None:
                data = wirejson.dumps(json_body).encode()
                head["Content-Type"] = "application/json"
            if isinstance(data, (bytes, bytearray)):
                head["Content-Length"] = str(len(data))
                sock.sendall(_format_head(method, self.url(path, params), head) + data)
            elif data is not None:
                head["Transfer-Encoding"] = "chunked"
                sock.sendall(_format_head(method, self.url(path, params), head))
                _send_chunked(sock, data)
            else:
                if method in ("POST", "PUT"):
                    head["Content-Length"] = "0"
                sock.sendall(_format_head(method, self.url(path, params), head))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered early (e.g. an error); its answer says why
        return sock, _Reader(sock)

    def _head(
        self, method: str, url: str, extra: Mapping[str, str] | None, upgrade: bool
    ) -> dict[str, str]:
        head = {"Host": self._host_header() if self.family == "tcp" else "api.moby.localhost"}
        head["User-Agent"] = self.user_agent
        if upgrade:
            head["Connection"] = "Upgrade"
            head["Upgrade"] = "tcp"
        else:
            head["Connection"] = "close"
        head.update(extra or {})
        return head

    def _host_header(self) -> str:
        name, port = self.address
        return f"{name}:{port}"

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        """Send a request and return its response; non-2xx raises ApiError.

        A daemon older than API 1.45 (dockerd 20.10 serves 1.41) refuses the
        version: the request is sent again at the version it names, and later
        requests keep that version (a streamed body can't be sent twice)."""
        sock, reader = self.send(method, path, **kwargs)
        try:
            return check(Response(sock, reader, method))
        except ApiError as exc:
            older = _older_version(exc)
            data = kwargs.get("data")
            if older is None or not (data is None or isinstance(data, (bytes, bytearray))):
                raise
            self.api_version = older
            sock, reader = self.send(method, path, **kwargs)
            return check(Response(sock, reader, method))

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).json()

    def post_json(
        self, path: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        return self.request("POST", path, params=params, json_body=body).json()

    def hijack(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Hijacked:
        """Upgrade the connection to a raw stream (attach, exec start)."""
        sock, reader = self.send(method, path, params=params, json_body=body, upgrade=True)
        response = Response(sock, reader, method)
        if response.status not in (101, 200):
            check(response)
            sock.close()
            raise ProtocolError(f"unable to upgrade to tcp, received {response.status}")
        return Hijacked(sock, reader.take_buffer())


_TOO_NEW = "is too new. Maximum supported API version is "


def _older_version(exc: ApiError) -> str | None:
    """The version an older daemon says it serves, from dockerd's refusal."""
    if exc.status != 400 or _TOO_NEW not in exc.message:
        return None
    version = exc.message.split(_TOO_NEW, 1)[1].strip().rstrip(".")
    major, _, minor = version.partition(".")
    return version if major.isdigit() and minor.isdigit() else None


def check(response: Response) -> Response:
    """Return a 1xx-3xx response (304 "already started/stopped" is not an error, as in
    docker's client); raise ApiError with the daemon's message otherwise."""
    if 100 <= response.status < 400:
        return response
    body = response.read()
    raise ApiError(response.status, _error_message(body, response.reason))


def _error_message(body: bytes, reason: str) -> str:
    try:
        doc = wirejson.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip() or reason
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return doc["message"]
    return body.decode("utf-8", "replace").strip() or reason


def _send_chunked(sock: Socket, body: BinaryIO | Iterable[bytes]) -> None:
    for data in _pieces(body):
        if data:  # an empty chunk would end the body early
            sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
    sock.sendall(b"0\r\n\r\n")


def _pieces(body: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    """A file's reads, or the byte strings of an iterator (a build context being packed)."""
    read = getattr(body, "read1", None) or getattr(body, "read", None)
    if read is None:
        yield from body  # type: ignore[misc]
        return
    while True:
        data = read(_UPLOAD_CHUNK)
        if not data:
            return
        yield data


def _format_head(method: str, url: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"{method} {url} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def quote(text: str, safe: str = "") -> str:
    """Percent-encode like urllib.parse.quote, without importing urllib."""
    allowed = _SAFE | frozenset(safe.encode())
    return "".join(chr(b) if b in allowed else f"%{b:02X}" for b in text.encode())


def _encode_query(params: Mapping[str, Any]) -> str:
    """Query string; None is left out, a list repeats its key (``changes=``)."""
    parts = []
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item is None:
                continue
            if isinstance(item, bool):
                item = "1" if item else "0"
            elif isinstance(item, dict):
                item = wirejson.dumps(item, separators=(",", ":"))
            parts.append(f"{quote(str(key))}={quote(str(item))}")
    return "&".join(parts)

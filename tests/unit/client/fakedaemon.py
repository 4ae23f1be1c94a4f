"""A fake Engine API server on a temporary unix socket, for client and CLI tests.

Requests are parsed with h11 (an independent HTTP implementation), so the
client is checked against something other than itself; handlers write raw
response bytes so each test controls the framing exactly.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable

import h11


class Request:
    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


Handler = Callable[[Request, socket.socket], None]


def respond(
    sock: socket.socket, status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> None:
    head = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    head.update(headers or {})
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in head.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def respond_json(sock: socket.socket, status: int, doc) -> None:
    respond(sock, status, json.dumps(doc).encode())


class FakeDaemon:
    def __init__(self, path: str) -> None:
        self.path = path
        self.routes: list[tuple[str, str, Handler]] = []
        self.requests: list[Request] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(16)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def route(self, method: str, path_suffix: str, handler: Handler) -> None:
        self.routes.append((method, path_suffix, handler))

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = _read_request(conn)
            if request is None:
                return
            self.requests.append(request)
            for method, suffix, handler in self.routes:
                if method == request.method and request.path.endswith(suffix):
                    with contextlib.suppress(OSError):
                        handler(request, conn)
                    return
            respond_json(conn, 404, {"message": f"page not found: {request.path}"})

    def close(self) -> None:
        self.server.close()


def _read_request(conn: socket.socket) -> Request | None:
    parser = h11.Connection(h11.SERVER)
    head = None
    body = b""
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            data = conn.recv(65536)
            parser.receive_data(data)
            if not data and head is None:
                return None
            continue
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif (
            isinstance(event, (h11.EndOfMessage, h11.PAUSED))
            or event is h11.PAUSED
            or isinstance(event, h11.ConnectionClosed)
        ):
            break
    headers = {k.decode().lower(): v.decode() for k, v in head.headers}
    return Request(head.method.decode(), head.target.decode(), headers, body)

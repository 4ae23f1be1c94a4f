"""A fake Engine API server on a temporary unix socket, for client and CLI tests.

Requests are parsed with h11 (an independent HTTP implementation), so the
client is checked against something other than itself; handlers write raw
response bytes so each test controls the framing exactly.

``SimContainer`` installs a simulated container (create, inspect, attach,
start, wait, resize, kill) and its execs (create, start, inspect, resize)
whose "process" echoes stdin back, upper-cased without a TTY, exits on
``exit N`` or at the end of stdin, and detaches on the detach keys as the
daemon does. It is complete enough for the real docker CLI too:
``python fakedaemon.py SOCKET [--tty] [--open-stdin]`` serves one.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
from collections.abc import Callable
from urllib.parse import parse_qs

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
    head = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Connection": "close",  # one request per connection, so Go's client must not reuse it
    }
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
        # shutdown wakes the thread blocked in accept(); a bare close would leave it
        # there, to accept on whatever socket next gets the same fd number (the next
        # test's daemon), with this daemon's routes.
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(5)


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


UPGRADE = (
    b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
    b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
)
CID = "c" * 64
EID = "e" * 64
_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def detach_key_bytes(text: str) -> bytes:
    if not text:
        return b"\x10\x11"
    out = bytearray()
    for key in text.split(","):
        if key.startswith("ctrl-"):
            c = key[5]
            out.append(ord(c) - ord("a") + 1 if c.isalpha() else _CTRL[c])
        else:
            out.append(ord(key))
    return bytes(out)


def frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


class SimProcess:
    """The echoing "process" behind one attach or exec stream."""

    def __init__(self, sock: socket.socket, tty: bool, keys: bytes, stdin: bool) -> None:
        self.sock, self.tty, self.keys, self.stdin = sock, tty, keys, stdin
        self.received = bytearray()
        self.half_closed = False
        self.detached = False
        self.exit_code: int | None = None

    def write(self, stream: int, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(data if self.tty else frame(stream, data))

    def run(self, greeting: bytes = b"") -> None:
        if greeting:
            self.write(1, greeting)
        if not self.stdin:
            return
        while self.exit_code is None:
            data = self.sock.recv(65536)
            if not data and self.tty:
                self.detached = True  # moby: with a TTY, the client leaving does not close stdin
                return
            if not data:
                self.half_closed = True
                self.write(1, b"stdin closed\n")
                self.exit_code = 0
                return
            self.received += data
            if self.keys in self.received:
                self.detached = True  # the daemon's detach: close, the process runs on
                return
            self.write(1, data if self.tty else data.upper())
            if m := re.search(rb"exit (\d+)", self.received):
                self.exit_code = int(m.group(1))


class SimContainer:
    """One simulated container on a FakeDaemon, with its execs; records what it was asked."""

    def __init__(
        self,
        daemon: FakeDaemon,
        *,
        tty: bool = False,
        open_stdin: bool = False,
        running: bool = False,
        exit_code: int = 0,
        exec_exit_code: int = 0,
        greeting: bytes = b"hello\n",
    ) -> None:
        self.daemon = daemon
        self.tty, self.open_stdin = tty, open_stdin
        self.exit_code, self.exec_exit_code = exit_code, exec_exit_code
        self.greeting = greeting
        self.started = threading.Event()
        self.exited = threading.Event()
        if running:
            self.started.set()
        self.processes: list[SimProcess] = []
        self.resizes: list[tuple[str, int, int]] = []
        self.kills: list[str] = []
        self.exec_configs: list[dict] = []
        self.exec_starts: list[dict] = []
        self.exec_error: tuple[int, str] | None = None
        self.resize_failures = 0  # answer this many container resizes with 500 first
        self.exec_done = threading.Event()
        for method, path, handler in [
            ("GET", "/_ping", self.ping),
            ("HEAD", "/_ping", self.ping),
            ("POST", "/containers/create", self.create),
            ("GET", f"/containers/{CID}/json", self.inspect),
            ("POST", f"/containers/{CID}/attach", self.attach),
            ("POST", f"/containers/{CID}/start", self.start),
            ("POST", f"/containers/{CID}/wait", self.wait),
            ("POST", f"/containers/{CID}/resize", self.resize),
            ("POST", f"/containers/{CID}/kill", self.kill),
            ("POST", f"/containers/{CID}/exec", self.exec_create),
            ("POST", f"/exec/{EID}/start", self.exec_start),
            ("GET", f"/exec/{EID}/json", self.exec_inspect),
            ("POST", f"/exec/{EID}/resize", self.exec_resize),
        ]:
            daemon.route(method, path, handler)

    # ---------------------------------------------------------- container
    def ping(self, req: Request, s: socket.socket) -> None:
        respond(
            s, 200, b"OK", {"Content-Type": "text/plain", "Api-Version": "1.45", "OSType": "linux"}
        )

    def create(self, req: Request, s: socket.socket) -> None:
        body = req.json()
        self.tty, self.open_stdin = bool(body.get("Tty")), bool(body.get("OpenStdin"))
        respond_json(s, 201, {"Id": CID, "Warnings": []})

    def inspect(self, req: Request, s: socket.socket) -> None:
        running = self.started.is_set() and not self.exited.is_set()
        respond_json(s, 200, {
            "Id": CID, "Name": "/sim",
            "Config": {"Tty": self.tty, "OpenStdin": self.open_stdin, "AttachStdin": False},
            "State": {"Running": running, "Paused": False, "Restarting": False,
                      "Status": "running" if running else "exited"},
            "HostConfig": {"AutoRemove": False},
        })  # fmt: skip

    def attach(self, req: Request, s: socket.socket) -> None:
        q = parse_qs(req.query)
        stdin = q.get("stdin", ["0"])[0] in ("1", "true")
        keys = detach_key_bytes(q.get("detachKeys", [""])[0])
        s.sendall(UPGRADE)
        proc = SimProcess(s, self.tty, keys, stdin)
        self.processes.append(proc)
        if not self.started.wait(10):
            return
        proc.run(self.greeting)
        if not proc.detached and not self.exited.is_set():
            if proc.exit_code is None:  # no stdin: the process exits by itself
                proc.exit_code = self.exit_code
            self.exit_code = proc.exit_code
            self.exited.set()

    def start(self, req: Request, s: socket.socket) -> None:
        self.started.set()
        respond(s, 204)

    def wait(self, req: Request, s: socket.socket) -> None:
        # Headers at once, the body at exit, as moby: docker's client waits for the headers.
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        if self.exited.wait(30):
            s.sendall(json.dumps({"StatusCode": self.exit_code, "Error": None}).encode())

    def resize(self, req: Request, s: socket.socket) -> None:
        if self.resize_failures > 0:
            self.resize_failures -= 1
            respond_json(s, 500, {"message": "no tty yet"})
            return
        q = parse_qs(req.query)
        self.resizes.append(("container", int(q["h"][0]), int(q["w"][0])))
        respond(s, 200)

    def kill(self, req: Request, s: socket.socket) -> None:
        self.kills.append(parse_qs(req.query).get("signal", ["KILL"])[0])
        respond(s, 204)
        if self.kills[-1] in ("INT", "TERM", "KILL", "SIGINT", "SIGTERM", "SIGKILL"):
            self.exit_code = 130
            self.exited.set()
            for proc in self.processes:
                with contextlib.suppress(OSError):
                    proc.sock.shutdown(socket.SHUT_RDWR)

    # ---------------------------------------------------------- exec
    def exec_create(self, req: Request, s: socket.socket) -> None:
        if not self.started.is_set() or self.exited.is_set():
            respond_json(s, 409, {"message": f"container {CID} is not running"})
            return
        self.exec_configs.append(req.json())
        respond_json(s, 201, {"Id": EID})

    def exec_start(self, req: Request, s: socket.socket) -> None:
        body = req.json()
        self.exec_starts.append(body)
        if self.exec_error is not None:
            respond_json(s, self.exec_error[0], {"message": self.exec_error[1]})
            return
        if body.get("Detach"):
            respond(s, 200)
            self.exec_done.set()
            return
        config = self.exec_configs[-1]
        s.sendall(UPGRADE)
        proc = SimProcess(
            s, bool(body.get("Tty")), detach_key_bytes(config.get("DetachKeys") or ""),
            bool(config.get("AttachStdin")),
        )  # fmt: skip
        self.processes.append(proc)
        proc.run(b"exec " + " ".join(config["Cmd"]).encode() + b"\n")
        if proc.detached:
            return
        if proc.exit_code is not None:  # it read "exit N" or the end of stdin
            self.exec_exit_code = proc.exit_code
        self.exec_done.set()

    def exec_inspect(self, req: Request, s: socket.socket) -> None:
        done = self.exec_done.is_set()
        respond_json(s, 200, {
            "ID": EID, "Running": not done, "ContainerID": CID,
            "ExitCode": self.exec_exit_code if done else None,
        })  # fmt: skip

    def exec_resize(self, req: Request, s: socket.socket) -> None:
        q = parse_qs(req.query)
        self.resizes.append(("exec", int(q["h"][0]), int(q["w"][0])))
        respond(s, 201)


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    fake = FakeDaemon(sys.argv[1])
    sim = SimContainer(fake, tty="--tty" in sys.argv, open_stdin="--open-stdin" in sys.argv,
                       running="--running" in sys.argv)  # fmt: skip
    print("serving", fake.host, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for r in fake.requests:
            print(r.method, r.target, r.body[:200], flush=True)
        print("resizes", sim.resizes, "kills", sim.kills, flush=True)

"""A demo Engine API app and a server running it in a background thread.

The demo router exercises each kind of response the framework offers:
/_ping and /version as dockerd answers them (enough for `docker version`
and docker-py's ping), a swarm route answering 503 like a non-swarm node,
streaming, hijacking, body reading and every error kind. `DemoState`
records what handlers saw so tests can assert on cancellation.
"""

import asyncio
import hashlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h11
import pytest

from freight import errors
from freight.apiserver import (
    ApiServer,
    HijackedStream,
    HijackResponse,
    Request,
    Response,
    Router,
    StreamingResponse,
    json_response,
    text_response,
)
from freight.dockerapi import stdcopy

SWARM_MESSAGE = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
    "to connect this node to swarm and try again."
)

ERROR_KINDS = {
    "notfound": errors.NotFound("No such container: x"),
    "exists": errors.AlreadyExists("name in use"),
    "conflict": errors.Conflict("container is running"),
    "invalid": errors.InvalidArgument("bad value"),
    "denied": errors.PermissionDenied("no"),
    "unavailable": errors.Unavailable("later"),
    "notimpl": errors.NotImplementedYet("not yet"),
    "exec127": errors.ExecError('exec: "nope": executable file not found in $PATH', 127),
    "exec125": errors.ExecError("runtime failed", 125),
    "internal": errors.Internal("oops"),
}


@dataclass
class DemoState:
    """What the demo handlers observed, shared with the test thread."""

    stream_started: threading.Event = field(default_factory=threading.Event)
    stream_cancelled: threading.Event = field(default_factory=threading.Event)
    stream_closed: threading.Event = field(default_factory=threading.Event)
    body_chunks: list[int] = field(default_factory=list)
    release_wait: asyncio.Event | None = None


def demo_router(state: DemoState) -> Router:
    router = Router()

    async def ping(req: Request) -> Response:
        headers = [
            ("Builder-Version", "1"),
            ("Cache-Control", "no-cache, no-store, must-revalidate"),
            ("Pragma", "no-cache"),
            ("Swarm", "inactive"),
        ]
        return text_response("OK", headers=headers)

    async def version(req: Request) -> Response:
        return json_response(
            {
                "Version": "0.1.0",
                "ApiVersion": "1.45",
                "MinAPIVersion": "1.24",
                "GitCommit": "demo",
                "GoVersion": "python3.11",
                "Os": "linux",
                "Arch": "amd64",
                "KernelVersion": "6.1",
                "BuildTime": "2024-01-01T00:00:00.000000000+00:00",
                "Components": [
                    {
                        "Name": "Engine",
                        "Version": "0.1.0",
                        "Details": {"ApiVersion": "1.45", "MinAPIVersion": "1.24", "Os": "linux"},
                    }
                ],
                "Platform": {"Name": "freight"},
            }
        )

    async def services(req: Request) -> Response:
        raise errors.Unavailable(SWARM_MESSAGE)

    async def stream(req: Request) -> StreamingResponse:
        count = req.query.int("count", -1)

        async def lines() -> AsyncIterator[bytes]:
            state.stream_started.set()
            n = 0
            try:
                while count < 0 or n < count:
                    yield b'{"n":%d}\n' % n
                    n += 1
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                state.stream_cancelled.set()
                raise
            finally:
                state.stream_closed.set()

        return StreamingResponse(lines())

    async def wait(req: Request) -> StreamingResponse:
        async def result() -> AsyncIterator[bytes]:
            await asyncio.sleep(float(req.query.get("delay", "0.5") or 0))
            yield b'{"StatusCode":0}\n'

        return StreamingResponse(result())

    async def echo(req: Request) -> Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in req.body:
            state.body_chunks.append(len(chunk))
            digest.update(chunk)
            size += len(chunk)
        return json_response({"size": size, "sha256": digest.hexdigest()})

    async def echo_json(req: Request) -> Response:
        return json_response({"got": await req.json()})

    async def ignore_body(req: Request) -> Response:
        return json_response({"ignored": True})

    def uppercase_session(multiplexed: bool) -> HijackResponse:
        async def session(stream: HijackedStream) -> None:
            async for chunk in stream:
                out = chunk.upper()
                await stream.write(
                    stdcopy.encode_frame(stdcopy.StreamId.STDOUT, out) if multiplexed else out
                )
            # stdin is closed (half-close); output must still reach the client
            await asyncio.sleep(0.05)
            bye = b"bye\n"
            await stream.write(
                stdcopy.encode_frame(stdcopy.StreamId.STDERR, bye) if multiplexed else bye
            )

        return HijackResponse(session, multiplexed=multiplexed)

    async def attach(req: Request) -> HijackResponse:
        return uppercase_session(req.query.bool("multiplexed"))

    async def exec_create(req: Request) -> Response:
        body = await req.json()
        if not body or "Cmd" not in body:
            raise errors.InvalidArgument("No exec command specified")
        return json_response({"Id": "e1"}, 201)

    async def exec_start(req: Request) -> HijackResponse:
        config = await req.json(default={})
        if config.get("Tty"):
            raise errors.NotImplementedYet("tty exec is not in the demo")
        return uppercase_session(multiplexed=True)

    async def exec_inspect(req: Request) -> Response:
        return json_response({"ID": req.params["id"], "Running": False, "ExitCode": 0, "Pid": 0})

    async def fail(req: Request) -> Response:
        raise ERROR_KINDS[req.params["kind"]]

    async def boom(req: Request) -> Response:
        raise RuntimeError("kaboom")

    async def image(req: Request) -> Response:
        return json_response({"name": req.params["name"], "version": req.api_version})

    async def container(req: Request) -> Response:
        return json_response({"id": req.params["id"], "version": req.api_version})

    async def filters(req: Request) -> Response:
        return json_response({"filters": req.query.filters(), "all": req.query.bool("all")})

    for method, pattern, handler in [
        ("GET", "/_ping", ping),
        ("HEAD", "/_ping", ping),
        ("GET", "/version", version),
        ("GET", "/services", services),
        ("GET", "/stream", stream),
        ("POST", "/containers/{id}/wait", wait),
        ("POST", "/echo", echo),
        ("POST", "/json", echo_json),
        ("POST", "/ignore", ignore_body),
        ("POST", "/containers/{id}/attach", attach),
        ("POST", "/containers/{id}/exec", exec_create),
        ("POST", "/exec/{id}/start", exec_start),
        ("GET", "/exec/{id}/json", exec_inspect),
        ("GET", "/error/{kind}", fail),
        ("GET", "/boom", boom),
        ("GET", "/images/{name:path}/json", image),
        ("DELETE", "/images/{name:path}", image),
        ("GET", "/containers/{id}/json", container),
        ("GET", "/containers/json", filters),
    ]:
        router.add(method, pattern, handler)
    return router


class ServerThread:
    """An ApiServer on its own event loop in a daemon thread."""

    def __init__(self, router: Router, listeners: list[str], grace: float = 1.0) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = ApiServer(router, listeners, shutdown_grace=grace)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def run(self, coro: object, timeout: float = 10.0) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def start(self) -> None:
        self._thread.start()
        self.run(self.server.start())

    def stop(self) -> None:
        try:
            self.run(self.server.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()


@dataclass
class Demo:
    sock: str
    state: DemoState
    thread: ServerThread

    def connect(self) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(5)
        conn.connect(self.sock)
        return conn

    def client(self) -> "RawClient":
        return RawClient(self.connect())


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    state = DemoState()
    sock = str(tmp_path / "run" / "freight.sock")
    thread = ServerThread(demo_router(state), [f"unix://{sock}"])
    thread.start()
    try:
        yield Demo(sock, state, thread)
    finally:
        thread.stop()


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


class RawClient:
    """A blocking HTTP/1.1 client on one socket, parsing with h11, for keep-alive tests."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.h11 = h11.Connection(h11.CLIENT)

    def send(self, event: object) -> None:
        self.sock.sendall(self.h11.send(event))  # type: ignore[arg-type]

    def next_event(self) -> object:
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(self.sock.recv(65536))
                continue
            return event

    def read_head(self) -> h11.Response:
        while True:
            event = self.next_event()
            if isinstance(event, h11.Response):
                return event

    def read_reply(self) -> Reply:
        head = self.read_head()
        body = b""
        while True:
            event = self.next_event()
            if isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        headers = {k.decode().lower(): v.decode() for k, v in head.headers}
        return Reply(head.status_code, head.reason.decode(), headers, body)

    def request(
        self, method: str, target: str, body: bytes | None = None, headers: list | None = None
    ) -> Reply:
        if self.h11.our_state is h11.DONE:
            self.h11.start_next_cycle()
        hdrs = [("Host", "docker")] + (headers or [])
        if body is not None and not any(k.lower() == "transfer-encoding" for k, _ in hdrs):
            hdrs.append(("Content-Length", str(len(body))))
        self.send(h11.Request(method=method, target=target, headers=hdrs))
        if body:
            self.send(h11.Data(data=body))
        self.send(h11.EndOfMessage())
        return self.read_reply()

    def close(self) -> None:
        self.sock.close()

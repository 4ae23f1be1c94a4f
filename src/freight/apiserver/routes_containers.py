"""Engine API container endpoints: create, list, inspect, start, stop, kill,
restart, wait, logs, attach (output), remove.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import quote_plus

from freight.apiserver import container_json as wire
from freight.apiserver import network_json as netwire
from freight.apiserver import websocket
from freight.apiserver.attachio import output_chunk
from freight.apiserver.http import (
    AnyResponse,
    HijackResponse,
    Request,
    StreamingResponse,
    empty_response,
    encode_json,
    json_response,
)
from freight.apiserver.router import Router
from freight.apiserver.routes_update import UpdateRoutes
from freight.apiserver.streams import HijackedStream
from freight.dockerapi import stdcopy
from freight.errors import InvalidArgument, Unavailable
from freight.services import containerfilters, detachkeys
from freight.services.clock import parse_rfc3339
from freight.services.containers import ContainerService
from freight.services.logs import LogEntry, LogQuery
from freight.services.model import Container
from freight.services.shimio import ShimStdio
from freight.shimapi import frames

STREAM_IDS = {"stdout": stdcopy.StreamId.STDOUT, "stderr": stdcopy.StreamId.STDERR}


class ContainerRoutes:
    def __init__(self, containers: ContainerService, default_runtime: str) -> None:
        self.containers = containers
        self.default_runtime = default_runtime

    def register(self, r: Router) -> None:
        r.add("POST", "/containers/create", self.create)
        r.add("GET", "/containers/json", self.list)
        r.add("GET", "/containers/{id}/json", self.inspect)
        r.add("POST", "/containers/{id}/start", self.start)
        r.add("POST", "/containers/{id}/stop", self.stop)
        r.add("POST", "/containers/{id}/kill", self.kill)
        r.add("POST", "/containers/{id}/restart", self.restart)
        r.add("POST", "/containers/{id}/wait", self.wait)
        r.add("GET", "/containers/{id}/logs", self.logs)
        r.add("POST", "/containers/{id}/attach", self.attach)
        r.add("GET", "/containers/{id}/attach/ws", self.attach_websocket)
        r.add("POST", "/containers/{id}/resize", self.resize)
        r.add("DELETE", "/containers/{id}", self.remove)
        UpdateRoutes(self.containers).register(r)  # POST /containers/{id}/update

    async def create(self, req: Request) -> AnyResponse:
        body = await req.json(default=None)
        if body is None:
            raise InvalidArgument("config cannot be empty in order to create a container")
        create = wire.parse_create(req.query.get("name", "") or "", body, self.default_runtime)
        c, warnings = await self.containers.create(create)
        return json_response({"Id": c.id, "Warnings": warnings}, status=201)

    async def list(self, req: Request) -> AnyResponse:
        filters = req.query.filters()
        # As moby: a status filter implies all; limit -1 (docker-py's default) is no limit.
        show_all = req.query.bool("all") or bool(filters.get("status"))
        limit = req.query.int("limit", 0)
        found = containerfilters.select(
            self.containers.list(),
            filters,
            containerfilters.context_for(self.containers),
            self.containers.get,
        )
        if not show_all and limit <= 0:
            found = [c for c in found if c.state.running]
        if limit > 0:
            found = found[:limit]
        net = self.containers.network
        return json_response([netwire.with_summary(wire.summary_json(c), c, net) for c in found])

    async def inspect(self, req: Request) -> AnyResponse:
        c = self.containers.get(req.params["id"])
        files = str(self.containers.data_root / "containers" / c.id)
        graph = self.containers.images.snapshot_dirs(c.snapshot_key)
        body = netwire.with_inspect(wire.inspect_json(c, files, graph), c, self.containers.network)
        return json_response(body)

    async def start(self, req: Request) -> AnyResponse:
        started = await self.containers.start(req.params["id"])
        return empty_response(204 if started else 304)

    async def stop(self, req: Request) -> AnyResponse:
        timeout = req.query.int("t", -999) if "t" in req.query else None
        stopped = await self.containers.stop(
            req.params["id"], timeout, req.query.get("signal") or None
        )
        return empty_response(204 if stopped else 304)

    async def kill(self, req: Request) -> AnyResponse:
        await self.containers.kill(req.params["id"], req.query.get("signal") or "SIGKILL")
        return empty_response(204)

    async def restart(self, req: Request) -> AnyResponse:
        timeout = req.query.int("t") if "t" in req.query else None
        await self.containers.restart(req.params["id"], timeout, req.query.get("signal") or None)
        return empty_response(204)

    async def wait(self, req: Request) -> AnyResponse:
        condition = req.query.get("condition") or "not-running"
        future = self.containers.wait_future(req.params["id"], condition)

        async def body() -> AsyncIterator[bytes]:
            status = await future
            yield encode_json({"StatusCode": status.exit_code, "Error": None})

        return StreamingResponse(body())

    async def logs(self, req: Request) -> AnyResponse:
        q = req.query
        query = _log_query(req, follow=q.bool("follow"))
        if not (query.stdout or query.stderr):
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        c = self.containers.get(req.params["id"])
        self.containers.check_logs_readable(c)
        entries = self.containers.logs(c.id, query)
        return StreamingResponse(
            _frames(entries, c.config.tty, q.bool("timestamps"), q.bool("details")),
            content_type=_stream_type(c),
        )

    async def attach(self, req: Request) -> AnyResponse:
        """Output (and stdin) straight through the shim's stdio socket: raw bytes,
        binary-safe; the json log is only for `logs`."""
        return self._attach(req, websocket_handshake=None)

    async def attach_websocket(self, req: Request) -> AnyResponse:
        """The same session over a websocket: one message per chunk, never multiplexed."""
        self.containers.get(req.params["id"])  # "No such container" before the handshake
        return self._attach(req, websocket.handshake_lines(req.headers))

    def _attach(self, req: Request, websocket_handshake: list[str] | None) -> AnyResponse:
        c = self.containers.get(req.params["id"])
        q = req.query
        query = LogQuery(stdout=q.bool("stdout"), stderr=q.bool("stderr"))
        with_logs, stream = q.bool("logs"), q.bool("stream")
        keys = detachkeys.parse(q.get("detachKeys") or detachkeys.DEFAULT)
        with_stdin = q.bool("stdin") and c.config.open_stdin and stream
        past = self.containers.logs(c.id, query) if with_logs else None
        self.containers.events.container(c, "attach")
        # Registered now, before the client gets a chance to start the container:
        # the start then waits for this attach to be on the shim's socket.
        launched = self.containers.launched_future(c.id) if stream else None
        exited = self.containers.wait_future(c.id, "next-exit") if stream else None

        raw = c.config.tty or websocket_handshake is not None

        async def handler(conn: HijackedStream) -> None:
            session = _AttachSession(self.containers, c, conn, query, keys, raw)
            try:
                await session.run(past, launched, exited, with_stdin)
            finally:
                if launched is not None and not launched.done():
                    self.containers.cancel_launched(c.id, launched)
                    launched.cancel()

        return HijackResponse(handler, multiplexed=not raw, websocket_handshake=websocket_handshake)

    async def resize(self, req: Request) -> AnyResponse:
        await self.containers.resize(req.params["id"], req.query.int("h"), req.query.int("w"))
        return empty_response(200)

    async def remove(self, req: Request) -> AnyResponse:
        await self.containers.remove(
            req.params["id"], force=req.query.bool("force"), volumes=req.query.bool("v")
        )
        return empty_response(204)


def _stream_type(c: Container) -> str:
    return (
        "application/vnd.docker.raw-stream"
        if c.config.tty
        else "application/vnd.docker.multiplexed-stream"
    )


def _log_query(req: Request, follow: bool) -> LogQuery:
    q = req.query
    tail_text = q.get("tail") or "all"
    tail = None if tail_text == "all" else _int_param(tail_text, "tail")
    return LogQuery(
        stdout=q.bool("stdout"),
        stderr=q.bool("stderr"),
        tail=tail if tail is None or tail >= 0 else None,
        since=_time_param(q.get("since")),
        until=_time_param(q.get("until")),
        follow=follow,
    )


def _int_param(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError as e:
        raise InvalidArgument(f"invalid value for {name}: {text!r}") from e


def _time_param(text: str | None) -> float:
    """Unix seconds with optional fraction ("1700000000.123"), or RFC 3339."""
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_rfc3339(text)
    except ValueError as e:
        raise InvalidArgument(f"invalid time value {text!r}") from e


async def _frames(
    entries: AsyncIterator[LogEntry], tty: bool, timestamps: bool, details: bool = False
) -> AsyncIterator[bytes]:
    async for e in entries:
        data = e.data
        if details:  # as dockerd: "k=v,k2=v2 " (keys sorted, query-escaped) before the line
            pairs = ",".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in e.attrs)
            data = pairs.encode() + b" " + data
        if timestamps:
            data = e.time.encode() + b" " + data
        yield (
            data
            if tty
            else stdcopy.encode_frame(STREAM_IDS.get(e.stream, stdcopy.StreamId.STDOUT), data)
        )


async def _discard_input(conn: HijackedStream) -> None:
    """Stdin is not wired yet (interactive issue): read and drop what the client sends."""
    with contextlib.suppress(Exception):
        while await conn.read():
            pass


class _AttachSession:
    """One attached client: stdin in (with detach keys), output frames out."""

    def __init__(
        self,
        svc: ContainerService,
        c: Container,
        conn: HijackedStream,
        query: LogQuery,
        keys: bytes,
        raw: bool,
    ) -> None:
        self.svc, self.c, self.conn, self.query = svc, c, conn, query
        self.raw = raw  # bytes as they come (a TTY, a websocket), else 8-byte frames
        self.scanner = detachkeys.Scanner(keys)
        self.stdio: asyncio.Future[ShimStdio | None] = asyncio.get_running_loop().create_future()

    async def run(
        self,
        past: AsyncIterator[LogEntry] | None,
        launched: asyncio.Future | None,
        exited: asyncio.Future | None,
        with_stdin: bool,
    ) -> None:
        if past is not None:
            async for chunk in _frames(past, self.raw, False):
                await self.conn.write(chunk)
        if launched is None:
            return
        reader = self._input() if with_stdin else _discard_input(self.conn)
        input_task = asyncio.create_task(reader)
        output_task = asyncio.create_task(self._output(launched, exited))
        try:
            await asyncio.wait({input_task, output_task}, return_when=asyncio.FIRST_COMPLETED)
            if not output_task.done() and input_task.result() != "detached":
                await output_task
        finally:
            input_task.cancel()
            output_task.cancel()
            if self.stdio.done() and self.stdio.result() is not None:
                await self.stdio.result().close()
            elif not self.stdio.done():
                self.stdio.cancel()

    async def _connect(
        self, launched: asyncio.Future, exited: asyncio.Future | None
    ) -> ShimStdio | None:
        """The shim's socket once it is up; None if the container ended first."""
        waits = {launched} | ({exited} if exited is not None else set())
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if not launched.done():
            return None
        try:
            return await ShimStdio.connect(self.svc.stdio_socket(self.c), timeout=5.0)
        except Unavailable:
            return None  # it exited meanwhile

    async def _output(self, launched: asyncio.Future, exited: asyncio.Future | None) -> None:
        stdio = await self._connect(launched, exited)
        if not self.stdio.done():
            self.stdio.set_result(stdio)
        if stdio is None:
            return
        wanted = {frames.STDOUT: self.query.stdout, frames.STDERR: self.query.stderr}
        async for kind, payload in stdio.output():
            if kind == frames.EXIT:
                return
            if not wanted.get(kind):
                continue
            await self.conn.write(output_chunk(kind, payload, self.raw))

    async def _input(self) -> str:
        """Client input to the container's stdin; "detached" when the keys were typed."""
        pending = bytearray()
        read = asyncio.ensure_future(self.conn.read())
        try:
            while True:
                # Wake on input, and once on the connection to the shim, so what was
                # typed before the container started is delivered at once.
                waits = {read} if self.stdio.done() else {read, self.stdio}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if read.done():
                    data = read.result()
                    if not data:
                        break
                    data, detached = self.scanner.feed(data)
                    pending += data
                    if detached:
                        await self._send(pending)
                        return "detached"
                    read = asyncio.ensure_future(self.conn.read())
                await self._send(pending)
        finally:
            read.cancel()
        if self.c.config.tty:
            # As dockerd: with a TTY the end of the client's input ends the
            # session (a detaching client just goes away); the terminal stays.
            return "detached"
        stdio = await self.stdio
        if stdio is not None:
            await stdio.send_stdin(bytes(pending))
            if self.c.config.stdin_once:
                await stdio.close_stdin()
        await asyncio.Event().wait()  # stdin is done; output goes on until the exit
        return "eof"

    async def _send(self, pending: bytearray) -> None:
        """Flush buffered input once the shim's socket is there."""
        if pending and self.stdio.done():
            stdio = self.stdio.result()
            if stdio is not None:
                await stdio.send_stdin(bytes(pending))
            pending.clear()

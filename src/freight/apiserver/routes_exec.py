"""Engine API exec endpoints: create, start (attached or detached), inspect, resize."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from freight.apiserver.attachio import output_chunk
from freight.apiserver.http import (
    AnyResponse,
    HijackResponse,
    Request,
    empty_response,
    json_response,
)
from freight.apiserver.router import Router
from freight.apiserver.streams import HijackedStream
from freight.errors import ExecError, InvalidArgument
from freight.services import detachkeys
from freight.services.execs import ExecService
from freight.services.model import Exec, ExecConfig
from freight.services.shimio import ShimStdio
from freight.shimapi import frames


class ExecRoutes:
    def __init__(self, execs: ExecService) -> None:
        self.execs = execs

    def register(self, r: Router) -> None:
        r.add("POST", "/containers/{id}/exec", self.create)
        r.add("POST", "/exec/{id}/start", self.start)
        r.add("GET", "/exec/{id}/json", self.inspect)
        r.add("POST", "/exec/{id}/resize", self.resize)

    async def create(self, req: Request) -> AnyResponse:
        body = await req.json(default={})
        if not isinstance(body, dict):
            raise InvalidArgument("invalid exec config: must be a JSON object")
        e = self.execs.create(req.params["id"], parse_exec_config(body))
        return json_response({"Id": e.id}, status=201)

    async def start(self, req: Request) -> AnyResponse:
        body = await req.json(default={}) or {}
        e = self.execs.get(req.params["id"])
        tty = body.get("Tty")
        if body.get("Detach"):
            await self.execs.start(e.id, attach=False, tty=tty)
            return empty_response(200)
        tty_mode = e.config.tty if tty is None else bool(tty)
        keys = detachkeys.parse(e.config.detach_keys or detachkeys.DEFAULT)

        async def session(conn: HijackedStream) -> None:
            # As dockerd: the connection is taken over first; a process that cannot
            # start is reported in the stream and its exit code set (126/127).
            try:
                stdio = await self.execs.start(e.id, attach=True, tty=tty)
            except ExecError as err:
                self.execs.record_exit(e.id, err.exit_code)
                text = f"{err}\r\n".encode()
                await conn.write(output_chunk(frames.STDOUT, text, tty_mode))
                return
            assert stdio is not None
            await relay(conn, stdio, e, keys, tty_mode, self.execs)

        return HijackResponse(session, multiplexed=not tty_mode)

    async def inspect(self, req: Request) -> AnyResponse:
        e = self.execs.get(req.params["id"])
        return json_response(exec_json(e))

    async def resize(self, req: Request) -> AnyResponse:
        height, width = req.query.int("h"), req.query.int("w")
        await self.execs.resize(req.params["id"], height, width)
        return empty_response(200)


def parse_exec_config(body: dict[str, Any]) -> ExecConfig:
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd):
        raise InvalidArgument("No exec command specified")
    size = body.get("ConsoleSize")
    return ExecConfig(
        cmd=cmd,
        env=list(body.get("Env") or []),
        user=body.get("User") or "",
        working_dir=body.get("WorkingDir") or "",
        tty=bool(body.get("Tty")),
        privileged=bool(body.get("Privileged")),
        attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=bool(body.get("AttachStdout", True)),
        attach_stderr=bool(body.get("AttachStderr", True)),
        detach_keys=body.get("DetachKeys") or "",
        console_size=(int(size[0]), int(size[1])) if size and len(size) == 2 else None,
    )


async def relay(
    conn: HijackedStream,
    stdio: ShimStdio,
    e: Exec,
    keys: bytes,
    tty: bool,
    execs: ExecService,
) -> None:
    """Client stdin → exec, exec output → client, until the exec exits or the client detaches."""
    stdin = asyncio.create_task(_pump_stdin(conn, stdio, keys, e.config.attach_stdin, tty))
    try:
        output = asyncio.create_task(_pump_output(conn, stdio, e, tty, execs))
        done, _ = await asyncio.wait({stdin, output}, return_when=asyncio.FIRST_COMPLETED)
        if output not in done and stdin.result() == "detached":
            output.cancel()
        else:
            await output
    finally:
        stdin.cancel()
        await stdio.close()


async def _pump_stdin(
    conn: HijackedStream, stdio: ShimStdio, keys: bytes, wanted: bool, tty: bool
) -> str:
    scanner = detachkeys.Scanner(keys)
    with contextlib.suppress(ConnectionError, OSError):
        while data := await conn.read():
            if not wanted:
                continue
            data, detached = scanner.feed(data)
            await stdio.send_stdin(data)
            if detached:
                return "detached"
        if wanted and tty:
            return "detached"  # as dockerd: a TTY's input ending ends the session only
        if wanted:
            await stdio.close_stdin()
    # Stdin ended: the output keeps flowing until the process exits.
    await asyncio.Event().wait()
    return "eof"


async def _pump_output(
    conn: HijackedStream, stdio: ShimStdio, e: Exec, tty: bool, execs: ExecService
) -> None:
    async for kind, payload in stdio.output():
        if kind == frames.EXIT:
            execs.record_exit(e.id, int(payload or b"0"))
            return
        wanted = e.config.attach_stdout if kind == frames.STDOUT else e.config.attach_stderr
        if not wanted:
            continue
        await conn.write(output_chunk(kind, payload, tty))


def exec_json(e: Exec) -> dict[str, Any]:
    cfg = e.config
    return {
        "ID": e.id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {
            "tty": cfg.tty,
            "entrypoint": cfg.cmd[0],
            "arguments": cfg.cmd[1:],
            "privileged": cfg.privileged,
            "user": cfg.user,
        },
        "OpenStdin": cfg.attach_stdin,
        "OpenStderr": cfg.attach_stderr,
        "OpenStdout": cfg.attach_stdout,
        "CanRemove": False,
        "ContainerID": e.container_id,
        "DetachKeys": cfg.detach_keys,
        "Pid": e.pid,
    }

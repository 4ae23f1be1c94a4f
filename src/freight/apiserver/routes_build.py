"""Engine API for builds: `POST /build`, `POST /build/prune`, `POST /build/cancel`.

`POST /build` is the legacy builder's protocol (docker CLI without buildx, or
`DOCKER_BUILDKIT=0`; docker-py; compose): the body is the context tar (any
compression), the query carries the options, the answer is a JSON message
stream: `{"stream": text}` lines, `{"aux": {"ID": id}}` before "Successfully
built", and `{"error": ..., "errorDetail": ...}` if a step fails. An error
before the first message (bad Dockerfile, bad tag, unreadable context) is an
HTTP error instead, as dockerd answers. `version=2` (BuildKit's session
protocol) is refused with a message saying what to do.

freight extensions: `freightsteps=1` adds `{"aux": {"freight": {step...}}}`
messages (the CLI's live view) and tags each step's `stream` with
`"freightStep": N`, so parallel stages stream as they go; the `X-Freight-Build-Secrets` header is
base64 of a JSON map id -> base64 value (`--secret`, which the legacy API
has no field for; a header, so that access logs never hold one);
`freightcontext=PATH&freightcontextid=DEV:INO` names a folder on this
machine as the context, read in place through an overlay (the body then
only adds files, e.g. a Dockerfile from elsewhere); a folder this daemon
sees with another device and inode (another mount namespace) is refused
with `LOCAL_CONTEXT_REFUSED`, and the client sends a tar instead. A
client that goes away cancels its build, as does `/build/cancel?id=` for a
`buildid=`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from freight.apiserver.http import (
    AnyResponse,
    Request,
    StreamingResponse,
    encode_json,
    json_response,
)
from freight.apiserver.router import Router
from freight.apiserver.routes_distribution import credentials_of
from freight.apiserver.streams import BodyPipe
from freight.builder import context as contexts
from freight.builder.engine import Builder, success_lines
from freight.builder.model import BuildEvent, BuildRequest, Output, StepEvent
from freight.builder.prune import prune_build_cache
from freight.distribution.auth import Credentials
from freight.errors import FreightError, InvalidArgument, NotFound

_DONE = object()
log = logging.getLogger("freightd.build")


class BuildRoutes:
    def __init__(self, builder: Builder) -> None:
        self.builder = builder
        self.work_root = builder.data_root / "tmp" / "build"
        self._running: dict[str, asyncio.Task] = {}

    def register(self, r: Router) -> None:
        r.add("POST", "/build", self.build)
        r.add("POST", "/build/prune", self.prune)
        r.add("POST", "/build/cancel", self.cancel)

    def clean_leftovers(self) -> None:
        """Contexts of builds a killed daemon left behind (views unmounted first)."""
        contexts.unmount_views(self.work_root)
        shutil.rmtree(self.work_root, ignore_errors=True)

    # POST /build ------------------------------------------------------------------

    async def build(self, req: Request) -> AnyResponse:
        q = req.query
        if (q.get("version") or "1") == "2":
            raise InvalidArgument(
                "BuildKit's session protocol (version=2) is not supported by freightd: "
                "build with DOCKER_BUILDKIT=0 docker build, or freight build"
            )
        self.work_root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="ctx-", dir=self.work_root))
        try:
            request = _request(req, workdir / "context")
            request.dockerfile = await self._context(req, workdir, request)
        except BaseException:
            await asyncio.to_thread(contexts.discard_workdir, workdir)
            raise
        steps = q.bool("freightsteps", False)
        request.live_steps = steps and not request.quiet
        queue: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def emit(event: BuildEvent) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        async def work() -> str:
            try:
                return await self.builder.build(request, emit)
            finally:
                await asyncio.to_thread(contexts.discard_workdir, workdir)

        task = asyncio.create_task(work())
        task.add_done_callback(lambda _: loop.call_soon(queue.put_nowait, _DONE))
        build_id = q.get("buildid") or secrets.token_hex(8)
        self._running[build_id] = task
        task.add_done_callback(lambda _: self._running.pop(build_id, None))
        first = await queue.get()
        if first is _DONE:
            task.result()  # an error before any output: an HTTP error
        return StreamingResponse(self._messages(first, queue, task, request, steps))

    async def _messages(
        self,
        first: Any,
        queue: asyncio.Queue,
        task: asyncio.Task,
        request: BuildRequest,
        steps: bool,
    ) -> AsyncIterator[bytes]:
        quiet, tags = request.quiet, request.tags
        item = first
        try:
            while item is not _DONE:
                message = _message(item, quiet, steps)
                if message is not None:
                    yield encode_json(message)
                item = await queue.get()
            try:
                image_id = task.result()
            except FreightError as e:
                yield encode_json({"errorDetail": {"message": str(e)}, "error": str(e)})
                return
            except Exception as e:  # a bug: the client still gets a message, the log the trace
                log.exception("build failed")
                text = f"internal error in the builder: {e!r}"
                yield encode_json({"errorDetail": {"message": text}, "error": text})
                return
            yield encode_json({"aux": {"ID": image_id}})
            if quiet:
                yield encode_json({"stream": image_id + "\n"})
            else:
                for line in success_lines(image_id, tags):
                    yield encode_json({"stream": line})
        finally:
            if not task.done():  # the client went away: stop the build
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _context(self, req: Request, workdir: Path, request: BuildRequest) -> str:
        """Fill request.context from the body or `remote=`; the Dockerfile's path in it."""
        context = request.context
        context.mkdir()
        remote = req.query.get("remote") or ""
        dockerfile = req.query.get("dockerfile") or "Dockerfile"
        if remote and remote != "context":  # "context": buildx's name for the body
            if contexts.is_git_url(remote):
                request.context = await asyncio.to_thread(
                    contexts.git_checkout, remote, workdir / "git"
                )
                context = request.context
            else:
                dockerfile = await asyncio.to_thread(
                    contexts.fetch_remote, remote, context, dockerfile
                )
            await asyncio.to_thread(contexts.apply_dockerignore, context, dockerfile)
            return dockerfile
        local = req.query.get("freightcontext")
        if local:
            request.context = await asyncio.to_thread(
                contexts.local_view,
                Path(local),
                req.query.get("freightcontextid") or "",
                workdir,
            )
            context = request.context
        pipe = BodyPipe(req.body)
        pump = asyncio.create_task(pipe.pump())
        try:
            await asyncio.to_thread(contexts.extract_context, pipe.reader, context)
        finally:
            pipe.reader.close()
            await pump
        if local:  # the client filtered nothing: .dockerignore applies here
            await asyncio.to_thread(contexts.apply_dockerignore, context, dockerfile)
        return dockerfile

    # POST /build/prune, /build/cancel --------------------------------------------------

    async def prune(self, req: Request) -> AnyResponse:
        filters = req.query.filters()
        keep = int(req.query.get("keep-storage") or req.query.get("reserved-space") or 0)
        report = await asyncio.to_thread(
            prune_build_cache, self.builder, filters, req.query.bool("all", False), keep
        )
        return json_response(
            {"CachesDeleted": report.deleted or None, "SpaceReclaimed": report.reclaimed}
        )

    async def cancel(self, req: Request) -> AnyResponse:
        build_id = req.query.get("id") or ""
        task = self._running.get(build_id)
        if task is None:
            raise NotFound(f"no such build: {build_id}")
        task.cancel()
        return json_response({})


def _message(item: Any, quiet: bool, steps: bool) -> dict[str, Any] | None:
    if isinstance(item, Output):
        if quiet:
            return None
        if steps and item.step:  # which step it is of (stages run side by side)
            return {"stream": item.text, "freightStep": item.step}
        return {"stream": item.text}
    if isinstance(item, StepEvent):
        if not steps:
            return None
        return {
            "aux": {
                "freight": {
                    "step": item.step,
                    "total": item.total,
                    "stage": item.stage,
                    "instruction": item.instruction,
                    "state": item.state,
                    "seconds": item.seconds,
                }
            }
        }
    return None


# the query -------------------------------------------------------------------------------


def _request(req: Request, context: Path) -> BuildRequest:
    q = req.query
    return BuildRequest(
        context=context,
        dockerfile=q.get("dockerfile") or "Dockerfile",
        tags=[t for t in q.get_all("t") if t],
        build_args=_json_map(q.get("buildargs"), "buildargs", allow_null=True),  # type: ignore[arg-type]
        labels=_json_map(q.get("labels"), "labels"),  # type: ignore[arg-type]
        target=q.get("target") or "",
        platform=q.get("platform") or "",
        no_cache=q.bool("nocache", False),
        pull=q.bool("pull", False),
        cache_from=_json_list(q.get("cachefrom"), "cachefrom"),
        remove=q.bool("rm", True),
        force_remove=q.bool("forcerm", False),
        quiet=q.bool("q", False),
        network_mode=q.get("networkmode") or "default",
        extra_hosts=_extra_hosts(q.get_all("extrahosts")),
        secrets=_secrets(req.headers.get("x-freight-build-secrets")),
        credentials=_registry_config(req.headers.get("x-registry-config")),
    )


def _json_map(raw: str | None, name: str, allow_null: bool = False) -> dict[str, str | None]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise InvalidArgument(f"invalid {name}: not JSON") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {name}: must be a JSON object")
    out: dict[str, str | None] = {}
    for k, v in value.items():
        if v is None and allow_null:
            out[str(k)] = None
        elif isinstance(v, str):
            out[str(k)] = v
        else:
            raise InvalidArgument(f"invalid {name}: the value of {k!r} must be a string")
    return out


def _json_list(raw: str | None, name: str) -> list[str]:
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise InvalidArgument(f"invalid {name}: not JSON") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {name}: must be a JSON list of strings")
    return value


def _extra_hosts(values: list[str]) -> list[str]:
    # docker sends one `extrahosts` per host; older clients one comma-separated value.
    return [h.strip() for v in values for h in v.split(",") if h.strip()]


def _secrets(header: str | None) -> dict[str, bytes]:
    """X-Freight-Build-Secrets: base64 JSON {id: base64 value}."""
    if not header:
        return {}
    try:
        raw = base64.b64decode(header.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("invalid X-Freight-Build-Secrets header: not base64") from None
    out = {}
    for k, v in _json_map(raw, "secrets").items():
        try:
            out[k] = base64.b64decode(v or "", validate=True)
        except binascii.Error:
            raise InvalidArgument(f"invalid secrets: the value of {k!r} is not base64") from None
    return out


def _registry_config(header: str | None) -> dict[str, Credentials]:
    """X-Registry-Config: base64url JSON {registry: AuthConfig} (for FROM pulls)."""
    if not header:
        return {}
    raw = header.strip()
    try:
        doc = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidArgument("invalid X-Registry-Config header: not base64 JSON") from None
    if not isinstance(doc, dict):
        return {}
    out: dict[str, Credentials] = {}
    for server, auth in doc.items():
        if not isinstance(auth, dict):
            continue
        out[_registry_host(str(server))] = credentials_of(auth)
    return out


def _registry_host(server: str) -> str:
    host = server.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host

"""Engine API `cp` endpoints: HEAD, GET and PUT /containers/{id}/archive.

HEAD answers only the `X-Docker-Container-Path-Stat` header (base64 of
{"name","size","mode","mtime","linkTarget"}, mode in Go's os.FileMode bits);
GET adds the tar of the path; PUT extracts the request's tar into the
directory at `path`. The work is in `services.archivepath`; the tar moves
through a pipe between a worker thread and the HTTP stream, so memory stays
flat for any size.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator

from freight.apiserver.http import (
    AnyResponse,
    Request,
    StreamingResponse,
    empty_response,
    json_response,
)
from freight.apiserver.router import Router
from freight.errors import InvalidArgument
from freight.linux.pipes import big_pipe
from freight.services import archivepath
from freight.services.archivepath import ContainerRoot, PathStat
from freight.services.containers import ContainerService
from freight.services.model import Container

STAT_HEADER = "X-Docker-Container-Path-Stat"
TAR = "application/x-tar"
CHUNK = 1 << 20

log = logging.getLogger(__name__)


def stat_header(st: PathStat) -> tuple[str, str]:
    doc = {
        "name": st.name,
        "size": st.size,
        "mode": st.mode,
        "mtime": st.mtime,
        "linkTarget": st.link_target,
    }
    return STAT_HEADER, base64.b64encode(json.dumps(doc).encode()).decode()


class _Session:
    """The container root (and, when stopped, its lock) for one request."""

    def __init__(self, svc: ContainerService, c: Container) -> None:
        self.svc, self.c = svc, c
        mounts = [] if c.state.running else svc.images.rootfs_mounts(c.snapshot_key)
        self.root = ContainerRoot(c, mounts, svc.exec_root / "cp")
        self._lock: asyncio.Lock | None = None

    async def open(self) -> None:
        if not self.c.state.running:
            self._lock = self.svc.lock(self.c.id)
            await self._lock.acquire()
        try:
            await asyncio.to_thread(self.root.__enter__)
        except BaseException:
            self._release()
            raise

    async def close(self) -> None:
        await asyncio.to_thread(self.root.__exit__)
        self._release()

    def _release(self) -> None:
        if self._lock is not None and self._lock.locked():
            self._lock.release()
        self._lock = None


class ArchiveRoutes:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers

    def register(self, r: Router) -> None:
        r.add("GET", "/containers/{id}/archive", self.get)
        r.add("PUT", "/containers/{id}/archive", self.put)
        # freight's own: the container paths a glob matches (`freight cp web:/log/*.log .`).
        r.add("GET", "/freight/containers/{id}/glob", self.glob)

    async def glob(self, req: Request) -> AnyResponse:
        pattern = req.query.get("pattern") or ""
        if not pattern:
            raise InvalidArgument("pattern parameter is required")
        session = _Session(self.containers, self.containers.get(req.params["id"]))
        await session.open()
        try:
            found = await asyncio.to_thread(archivepath.glob, session.root, pattern)
        finally:
            await session.close()
        return json_response(found)

    async def get(self, req: Request) -> AnyResponse:
        ref, path = req.params["id"], _path(req)
        session = _Session(self.containers, self.containers.get(ref))
        await session.open()
        try:
            st = await asyncio.to_thread(archivepath.stat_path, session.root, path, ref)
        except BaseException:
            await session.close()
            raise
        header = stat_header(st)
        if req.method == "HEAD":
            await session.close()
            return empty_response(200, headers=[header])
        return StreamingResponse(_tar_body(session, path, ref), content_type=TAR, headers=[header])

    async def put(self, req: Request) -> AnyResponse:
        ref, path = req.params["id"], _path(req)
        q = req.query
        session = _Session(self.containers, self.containers.get(ref))
        await session.open()
        read_fd, write_fd = big_pipe()
        reader = os.fdopen(read_fd, "rb", buffering=CHUNK)

        def work() -> None:
            try:
                archivepath.extract_to(
                    session.root,
                    path,
                    ref,
                    reader,
                    no_overwrite_dir_non_dir=q.bool("noOverwriteDirNonDir"),
                    copy_uid_gid=q.bool("copyUIDGID"),
                )
            finally:
                reader.close()  # an early error ends the pump with EPIPE

        pump = asyncio.create_task(_pump(req, write_fd))
        try:
            await asyncio.to_thread(work)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            await session.close()
        return empty_response(200)


def _path(req: Request) -> str:
    path = req.query.get("path") or ""
    if not path:
        raise InvalidArgument("path parameter is required")
    return path


async def _pump(req: Request, write_fd: int) -> None:
    """The request body into the pipe the extracting thread reads."""
    try:
        async for chunk in req.body:
            await asyncio.to_thread(_write_all, write_fd, chunk)
    except OSError:
        pass  # the reader stopped early: its error is the answer
    finally:
        os.close(write_fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def _tar_body(session: _Session, path: str, ref: str) -> AsyncIterator[bytes]:
    read_fd, write_fd = big_pipe()

    def produce() -> None:
        with os.fdopen(write_fd, "wb", buffering=CHUNK) as out:
            try:
                archivepath.archive_path(session.root, path, ref, out)
            except BrokenPipeError:
                pass  # the client went away
            except Exception:
                log.exception("archive of %s:%s failed midway", ref, path)

    producer = asyncio.create_task(asyncio.to_thread(produce))
    try:
        while chunk := await asyncio.to_thread(os.read, read_fd, CHUNK):
            yield chunk
    finally:
        os.close(read_fd)
        with contextlib.suppress(Exception):
            await producer
        await session.close()

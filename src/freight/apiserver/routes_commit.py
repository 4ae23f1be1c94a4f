"""Engine API for a container's filesystem as version control:
`POST /commit`, `GET /containers/{id}/changes`, `GET /containers/{id}/export`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO

from freight.apiserver.container_json import parse_create
from freight.apiserver.http import AnyResponse, Request, StreamingResponse, json_response
from freight.apiserver.router import Router
from freight.errors import InvalidArgument
from freight.services import commit as commits
from freight.services.containers import ContainerService

TAR_CONTENT_TYPE = "application/x-tar"
CHUNK = 1 << 20


class CommitRoutes:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers

    def register(self, r: Router) -> None:
        r.add("POST", "/commit", self.commit)
        r.add("GET", "/containers/{id}/changes", self.changes)
        r.add("GET", "/containers/{id}/export", self.export)

    async def changes(self, req: Request) -> AnyResponse:
        c = self.containers.get(req.params["id"])
        found = await asyncio.to_thread(commits.container_changes, self.containers.images, c)
        return json_response([{"Path": ch.path, "Kind": int(ch.kind)} for ch in found] or None)

    async def commit(self, req: Request) -> AnyResponse:
        q = req.query
        c = self.containers.get(q.get("container") or "")
        repo = q.get("repo") or ""
        tag = q.get("tag") or ""
        if tag and not repo:
            raise InvalidArgument("refusing to create a tag without a repository name")
        body = await req.json(default=None)
        overrides = None
        if body:
            if not isinstance(body, dict):
                raise InvalidArgument("invalid container config: must be a JSON object")
            overrides = parse_create("", {**body, "Image": "x"}, "freight").config
            overrides.attach_stdout = overrides.attach_stderr = False
        request = commits.CommitRequest(
            container=c.id,
            repo_tag=f"{repo}:{tag}" if tag else repo,
            comment=q.get("comment") or "",
            author=q.get("author") or "",
            changes=_changes(q.get_all("changes")),
            pause=q.bool("pause", True),
            config=overrides,
        )
        image_id = await asyncio.to_thread(commits.commit, self.containers.images, c, request)
        return json_response({"Id": image_id}, status=201)

    async def export(self, req: Request) -> AnyResponse:
        c = self.containers.get(req.params["id"])
        rootfs = self.containers.tasks.paths(c.id).rootfs
        images = self.containers.images
        with commits.mounted_rootfs(images, c, rootfs):
            pass  # a missing or broken snapshot fails here, before the 200

        def write(out: BinaryIO) -> None:
            commits.export(images, c, rootfs, out)

        return StreamingResponse(threaded_stream(write), content_type=TAR_CONTENT_TYPE)


def _changes(values: list[str]) -> list[str]:
    # docker sends each --change as its own `changes=` value; older clients one
    # value with newline-separated lines.
    return [line for v in values for line in v.splitlines() if line.strip()]


def threaded_stream(write: Callable[[BinaryIO], Any]) -> AsyncIterator[bytes]:
    """The bytes a blocking `write(out)` produces in its own thread, as an async body.

    A client that goes away closes the pipe: the writer gets EPIPE and stops.
    """

    async def body() -> AsyncIterator[bytes]:
        read_fd, write_fd = os.pipe()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with os.fdopen(write_fd, "wb") as out:
                    write(out)
            except BrokenPipeError:
                pass
            except BaseException as e:  # noqa: BLE001 - re-raised in the event loop below
                failure.append(e)

        thread = threading.Thread(target=run, name="freight-stream", daemon=True)
        thread.start()
        try:
            while chunk := await asyncio.to_thread(os.read, read_fd, CHUNK):
                yield chunk
        finally:
            os.close(read_fd)
            await asyncio.to_thread(thread.join)
        if failure:
            raise failure[0]

    return body()

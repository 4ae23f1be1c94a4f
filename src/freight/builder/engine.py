"""A build: the Dockerfile parsed, the needed stages run as a DAG, the result tagged.

    build(request, emit)
      parse -> stages.plan (target, dependencies, meta ARGs)
      the needed stages, each after the stages it reads from (its base,
      COPY --from, RUN --mount=from=), independent ones at the same time
      (their events told in order: stageorder); unused stages are skipped
      each stage: steps.StageBuilder, step by step, cache first
      the target's image gets --label and the tags; "Successfully built"

Nothing is tagged before every stage succeeded. A failed or cancelled build
leaves its step images (reusable cache) but no tag; its temporary snapshots
and half-written blobs are unreferenced and swept by the next image GC.
Steps are numbered in plan order, so `Step N/M` is stable.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freight.archive import inroot
from freight.builder import context as contexts
from freight.builder import dockerfile as parser
from freight.builder.cache import BuildCache
from freight.builder.model import BuildFailed, BuildRequest, Emit, Output
from freight.builder.runstep import CacheLocks
from freight.builder.stageorder import StageOrder
from freight.builder.stages import PLATFORM_ARGS, PROXY_ARGS, Plan, plan
from freight.builder.state import State
from freight.builder.steps import BuildSession, StageBuilder
from freight.distribution import platforms
from freight.errors import InvalidArgument, NotFound
from freight.oci import reference as refs
from freight.services.containers import ContainerService
from freight.services.pull import PullService

log = logging.getLogger("freightd.build")

MAX_DOCKERFILE = 4 << 20


@dataclass
class Builder:
    """The daemon's builder: services it drives and state shared by all builds."""

    containers: ContainerService
    puller: PullService
    data_root: Path
    exec_root: Path
    locks: CacheLocks = field(default_factory=CacheLocks)

    def __post_init__(self) -> None:
        self.cache = BuildCache(self.containers.images.meta)
        self.cache_root = self.data_root / "build-cache" / "mounts"
        self.statcache_path = self.data_root / "build-cache" / "stat-cache.json"

    async def build(self, req: BuildRequest, emit: Emit) -> str:
        """Run the build; the final image's ID (tagged with req.tags)."""
        tags = [_tag(t) for t in req.tags]  # a bad tag fails before any work
        _check_platform(req.platform)
        text = read_dockerfile(req.context, req.dockerfile)
        # As dockerd: a Dockerfile or .dockerignore the ignore file lists is not
        # part of what COPY sees (also the CLI's .dockerfile.<hex> from outside).
        await asyncio.to_thread(contexts.remove_ignored_build_files, req.context, req.dockerfile)
        df = parser.parse(text)
        the_plan = plan(df, req.build_args, req.target)
        session = BuildSession(self, req, the_plan, df.escape, emit)
        try:
            results = await self._run_stages(session, the_plan)
        finally:
            session.close()
        final = results[the_plan.target]
        if req.labels:
            final = await session.stage_builder(the_plan.target).apply_labels(final, req.labels)
        if not final.image_id:
            raise BuildFailed("No image was generated. Is your Dockerfile empty?")
        image_id = final.image_id
        for tag in tags:
            self.containers.images.meta.tag(tag, image_id)
        _warn_unused_args(req, session, emit)
        return image_id

    async def _run_stages(self, session: BuildSession, the_plan: Plan) -> dict[int, State]:
        """Every needed stage as its own task: a stage waits only for the stages it
        reads from (their futures), so independent stages run side by side. The
        first failure cancels the others."""
        loop = asyncio.get_running_loop()
        futures: dict[int, asyncio.Future[State]] = {
            i: loop.create_future() for i in the_plan.needed
        }
        session.stage_results = futures
        order = StageOrder(session.emit, len(the_plan.needed), hold=not session.req.live_steps)
        offset = 0
        tasks = []
        for position, index in enumerate(the_plan.needed):
            stage = the_plan.stages[index]
            builder = StageBuilder(session, stage, offset, order.emit_for(position))
            session.builders[index] = builder
            offset += 1 + len(stage.nodes)
            work = _resolve_into(builder.run(), futures[index], order, position)
            tasks.append(asyncio.create_task(work, name=f"build-stage-{index}"))
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return {i: f.result() for i, f in futures.items()}


async def _resolve_into(
    work: Coroutine[Any, Any, State],
    fut: asyncio.Future[State],
    order: StageOrder,
    position: int,
) -> None:
    try:
        fut.set_result(await work)
    except BaseException as e:
        if not isinstance(e, asyncio.CancelledError):
            order.failed(position)
        if not fut.done():
            fut.set_exception(e)
            fut.exception()  # retrieved: the error is the gather's, not the future's
        raise
    order.finished(position)


def read_dockerfile(context: Path, name: str) -> str:
    """The Dockerfile from the context, resolved inside it (a symlink can't leave it)."""
    name = name or "Dockerfile"
    fd = os.open(context, os.O_RDONLY | os.O_DIRECTORY)
    try:
        path = inroot.resolve(fd, name)
    finally:
        os.close(fd)
    target = context / path.lstrip("/")
    try:
        with open(target, "rb") as f:
            data = f.read(MAX_DOCKERFILE + 1)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        if name == "Dockerfile" and (context / "dockerfile").is_file():
            return read_dockerfile(context, "dockerfile")  # as docker: the lower-case name too
        raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}") from None
    if len(data) > MAX_DOCKERFILE:
        raise InvalidArgument(f"the Dockerfile {name} is larger than 4 MiB")
    return data.decode("utf-8", errors="replace")


def _tag(tag: str) -> str:
    try:
        ref = refs.parse_normalized(tag)
    except InvalidArgument as e:
        raise InvalidArgument(f"invalid tag {tag!r}: {e}") from None
    if ref.digest:
        raise InvalidArgument(f"invalid tag {tag!r}: a tag can't have a digest")
    return str(ref if ref.tag else ref.with_tag(refs.DEFAULT_TAG))


def success_lines(image_id: str, tags: list[str]) -> list[str]:
    """The legacy builder's closing lines (sent after the image ID's aux message)."""
    short = image_id.removeprefix("sha256:")[:12]
    return [f"Successfully built {short}\n"] + [
        f"Successfully tagged {_familiar(t)}\n" for t in tags
    ]


def _familiar(tag: str) -> str:
    ref = refs.parse_normalized(tag)
    return (ref if ref.tag else ref.with_tag(refs.DEFAULT_TAG)).familiar_string()


def _check_platform(platform: str) -> None:
    if not platform:
        return
    if platforms.is_foreign(platform):
        host = platforms.host_platform()
        raise InvalidArgument(
            f"platform {platform} is not supported: freight builds for the host's platform "
            f"({platforms.format_platform(host)}) only"
        )


def _warn_unused_args(req: BuildRequest, session: BuildSession, emit: Emit) -> None:
    known = PROXY_ARGS | set(PLATFORM_ARGS) | {"SOURCE_DATE_EPOCH"}
    unused = sorted(set(req.build_args) - session.consumed_args - known)
    if unused:
        names = " ".join(unused)  # Go's %v of a slice
        emit(Output(f"[Warning] One or more build-args [{names}] were not consumed\n"))


__all__ = ["Builder", "BuildFailed", "NotFound", "read_dockerfile"]

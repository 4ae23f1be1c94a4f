"""Engine API endpoints that watch or hold a running container: stats, top,
pause, unpause, and rename (which changes only the name).

    GET  /containers/{id}/stats?stream=&one-shot=   services.stats (JSON lines when streaming)
    GET  /containers/{id}/top?ps_args=               services.top (host ps, filtered)
    POST /containers/{id}/pause | /unpause           cgroup freezer (linux.freezer)
    POST /containers/{id}/rename?name=
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from freight.apiserver.http import (
    AnyResponse,
    Request,
    StreamingResponse,
    empty_response,
    encode_json,
    json_response,
)
from freight.apiserver.router import Router
from freight.errors import Conflict, InvalidArgument
from freight.services import top as tops
from freight.services.containers import ContainerService
from freight.services.stats import StatsCollector


class ObserveRoutes:
    def __init__(
        self, containers: ContainerService, collector: StatsCollector | None = None
    ) -> None:
        self.containers = containers
        self.collector = collector or StatsCollector(containers.cgroup_path)

    def register(self, r: Router) -> None:
        r.add("GET", "/containers/{id}/stats", self.stats)
        r.add("GET", "/containers/{id}/top", self.top)
        r.add("POST", "/containers/{id}/pause", self.pause)
        r.add("POST", "/containers/{id}/unpause", self.unpause)
        r.add("POST", "/containers/{id}/rename", self.rename)

    async def stats(self, req: Request) -> AnyResponse:
        c = self.containers.get(req.params["id"])
        stream = req.query.bool("stream", True)
        one_shot = req.query.bool("one-shot", False)
        if stream and one_shot:
            raise InvalidArgument("cannot have stream=true and one-shot=true")
        if one_shot:
            return json_response(await self.collector.one_shot(c))
        if not stream:
            # As dockerd: wait for a second reading so precpu_stats is filled.
            samples = [s async for s in self.collector.stream(c, count=2)]
            return json_response(samples[-1])

        async def lines() -> AsyncIterator[bytes]:
            async for sample in self.collector.stream(c, count=None):
                yield encode_json(sample)

        return StreamingResponse(lines())

    async def top(self, req: Request) -> AnyResponse:
        c = self.containers.get(req.params["id"])
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.status == "restarting":
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        ps_args = req.query.get("ps_args") or tops.DEFAULT_PS_ARGS
        found = await asyncio.to_thread(tops.top, self.containers.cgroup_path(c), ps_args)
        return json_response(found.to_json())

    async def pause(self, req: Request) -> AnyResponse:
        await self.containers.pause(req.params["id"])
        return empty_response(204)

    async def unpause(self, req: Request) -> AnyResponse:
        await self.containers.unpause(req.params["id"])
        return empty_response(204)

    async def rename(self, req: Request) -> AnyResponse:
        self.containers.rename(req.params["id"], (req.query.get("name") or "").strip())
        return empty_response(204)

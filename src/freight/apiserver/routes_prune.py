"""Engine API pruning and disk usage: `POST /containers/prune`, `/images/prune`,
`/build/prune`, `GET /system/df`; and fallbacks for `/volumes/prune` and
`/networks/prune` (registered last, so the volume and network routes win when
they exist) so that `docker system prune` works in every build.
"""

from __future__ import annotations

import asyncio
from typing import Any

from freight.apiserver import container_json as wire
from freight.apiserver.http import AnyResponse, Request, json_response
from freight.apiserver.router import Router
from freight.apiserver.routes_images import image_summary_json
from freight.services import prune
from freight.services.containers import ContainerService


class PruneRoutes:
    def __init__(self, containers: ContainerService, volumes: Any = None) -> None:
        self.containers = containers
        self.images = containers.images
        # services.volumes.VolumeService: given, or the one the containers mount from.
        self.volumes = volumes or getattr(getattr(containers, "mounts", None), "volumes", None)

    def register(self, r: Router) -> None:
        r.add("POST", "/containers/prune", self.prune_containers)
        r.add("POST", "/images/prune", self.prune_images)
        r.add("POST", "/build/prune", self.prune_build)
        r.add("GET", "/system/df", self.disk_usage)

    def register_fallbacks(self, r: Router) -> None:
        r.add("POST", "/volumes/prune", self.prune_volumes)
        r.add("POST", "/networks/prune", self.prune_networks)

    async def prune_containers(self, req: Request) -> AnyResponse:
        report = await prune.prune_containers(self.containers, req.query.filters())
        return json_response(
            {"ContainersDeleted": report.deleted or None, "SpaceReclaimed": report.reclaimed}
        )

    async def prune_images(self, req: Request) -> AnyResponse:
        report = await asyncio.to_thread(prune.prune_images, self.images, req.query.filters())
        return json_response(
            {"ImagesDeleted": report.images or None, "SpaceReclaimed": report.reclaimed}
        )

    async def prune_build(self, req: Request) -> AnyResponse:
        return json_response({"CachesDeleted": None, "SpaceReclaimed": 0})

    async def prune_volumes(self, req: Request) -> AnyResponse:
        if self.volumes is None:
            return json_response({"VolumesDeleted": None, "SpaceReclaimed": 0})
        filters = req.query.filters()
        labels = filters.get("label", []) + ["!" + v for v in filters.get("label!", [])]
        everything = any(v.lower() in ("true", "1") for v in filters.get("all", []))
        report = await asyncio.to_thread(self.volumes.prune, labels, everything)
        return json_response(
            {"VolumesDeleted": report.deleted or None, "SpaceReclaimed": report.reclaimed}
        )

    async def prune_networks(self, req: Request) -> AnyResponse:
        return json_response({"NetworksDeleted": None})

    async def disk_usage(self, req: Request) -> AnyResponse:
        kinds = set(req.query.get_all("type")) or {"container", "image", "volume", "build-cache"}
        return json_response(await asyncio.to_thread(self._disk_usage, kinds, req.api_version))

    def _disk_usage(self, kinds: set[str], api_version: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "image" in kinds:
            layers, usage = prune.image_usage(self.images)
            by_id = {u.image_id: u for u in usage}
            rows = []
            for image in self.images.list():
                row = image_summary_json(image, api_version)
                u = by_id.get(image.id)
                if u is not None:
                    row["SharedSize"], row["Containers"] = u.shared_size, u.containers
                rows.append(row)
            out["LayersSize"], out["Images"] = layers, rows
        if "container" in kinds:
            rows = []
            for c in self.containers.list():
                row = wire.summary_json(c)
                row["SizeRw"] = prune.container_rw_size(self.containers, c.id)
                row["SizeRootFs"] = row["SizeRw"] + self._image_size(c.image_id)
                rows.append(row)
            out["Containers"] = rows
        if "volume" in kinds:
            out["Volumes"] = self._volumes()
        if "build-cache" in kinds:
            out["BuildCache"] = []
        return out

    def _image_size(self, image_id: str) -> int:
        try:
            return self.images.meta.image(image_id).size
        except Exception:  # noqa: BLE001 - an image removed meanwhile counts nothing
            return 0

    def _volumes(self) -> list[dict[str, Any]]:
        if self.volumes is None:
            return []
        return [
            {
                "Name": u.volume.name,
                "Driver": u.volume.driver,
                "Mountpoint": u.volume.mountpoint,
                "CreatedAt": u.volume.created_at,
                "Labels": u.volume.labels or None,
                "Scope": "local",
                "Options": u.volume.options or None,
                "UsageData": {"Size": u.size, "RefCount": u.ref_count},
            }
            for u in self.volumes.usage()
        ]

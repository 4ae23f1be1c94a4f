"""Engine API volume endpoints: /volumes (list), /volumes/create, /volumes/{name}
(inspect, remove), /volumes/prune; `volume_json` is the one Volume shape (also
for `system df`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from freight.apiserver.http import AnyResponse, Request, empty_response, json_response
from freight.apiserver.router import Router
from freight.errors import InvalidArgument
from freight.services.volumes import Volume, VolumeService, VolumeUsage, matches_labels

LIST_FILTERS = ("dangling", "driver", "label", "name")
PRUNE_FILTERS = ("label", "label!", "all")


def volume_json(v: Volume, usage: VolumeUsage | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": v.options or None,
        "Scope": "local",
    }
    if usage is not None:
        out["UsageData"] = {"Size": usage.size, "RefCount": usage.ref_count}
    return out


def _truthy(value: str) -> bool:
    if value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise InvalidArgument(f"invalid filter 'dangling={value}'")


class VolumeRoutes:
    def __init__(self, volumes: VolumeService) -> None:
        self.volumes = volumes

    def register(self, r: Router) -> None:
        r.add("GET", "/volumes", self.list)
        r.add("POST", "/volumes/create", self.create)
        r.add("POST", "/volumes/prune", self.prune)
        r.add("GET", "/volumes/{name}", self.inspect)
        r.add("DELETE", "/volumes/{name}", self.remove)

    async def list(self, req: Request) -> AnyResponse:
        filters = req.query.filters()
        for key in filters:
            if key not in LIST_FILTERS:
                raise InvalidArgument(f"invalid filter '{key}'")
        found = [v for v in self.volumes.list() if self._matches(v, filters)]
        return json_response({"Volumes": [volume_json(v) for v in found], "Warnings": []})

    def _matches(self, v: Volume, filters: dict[str, list[str]]) -> bool:
        for key, values in filters.items():
            if not values:
                continue
            if key == "name" and not any(value in v.name for value in values):
                return False
            if key == "driver" and v.driver not in values:
                return False
            if key == "label" and not matches_labels(v.labels, values):
                return False
            if key == "dangling":
                dangling = not self.volumes.users(v.name)
                if all(_truthy(value) != dangling for value in values):
                    return False
        return True

    async def create(self, req: Request) -> AnyResponse:
        body = await req.json(default={})
        if not isinstance(body, dict):
            raise InvalidArgument("invalid volume config: must be a JSON object")
        labels = body.get("Labels") or {}
        options = body.get("DriverOpts") or {}
        if not isinstance(labels, dict) or not isinstance(options, dict):
            raise InvalidArgument("Labels and DriverOpts must be JSON objects")
        v = await asyncio.to_thread(
            self.volumes.create,
            body.get("Name") or "",
            body.get("Driver") or "local",
            {str(k): str(val) for k, val in options.items()},
            {str(k): str(val) for k, val in labels.items()},
        )
        return json_response(volume_json(v), status=201)

    async def inspect(self, req: Request) -> AnyResponse:
        return json_response(volume_json(self.volumes.get(req.params["name"])))

    async def remove(self, req: Request) -> AnyResponse:
        await asyncio.to_thread(self.volumes.remove, req.params["name"], req.query.bool("force"))
        return empty_response(204)

    async def prune(self, req: Request) -> AnyResponse:
        filters = req.query.filters()
        for key in filters:
            if key not in PRUNE_FILTERS:
                raise InvalidArgument(f"invalid filter '{key}'")
        labels = list(filters.get("label", [])) + ["!" + v for v in filters.get("label!", [])]
        all_volumes = any(_truthy(v) for v in filters.get("all", []))
        report = await asyncio.to_thread(self.volumes.prune, labels, all_volumes)
        return json_response(
            {"VolumesDeleted": report.deleted or None, "SpaceReclaimed": report.reclaimed}
        )

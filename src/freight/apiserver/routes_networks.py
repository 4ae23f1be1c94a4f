"""Engine API network endpoints: list, inspect, create, remove, connect, disconnect, prune."""

from __future__ import annotations

import asyncio
import re

from freight.apiserver import network_json as wire
from freight.apiserver.http import AnyResponse, Request, empty_response, json_response
from freight.apiserver.router import Router
from freight.errors import InvalidArgument
from freight.services.containers import ContainerService
from freight.services.netmodel import Network
from freight.services.networks import NetworkService

LIST_FILTERS = ("driver", "id", "label", "name", "scope", "type", "dangling")


class NetworkRoutes:
    def __init__(self, networks: NetworkService, containers: ContainerService) -> None:
        self.networks = networks
        self.containers = containers

    def register(self, r: Router) -> None:
        r.add("GET", "/networks", self.list)
        r.add("POST", "/networks/create", self.create)
        r.add("POST", "/networks/prune", self.prune)
        r.add("GET", "/networks/{id}", self.inspect)
        r.add("DELETE", "/networks/{id}", self.remove)
        r.add("POST", "/networks/{id}/connect", self.connect)
        r.add("POST", "/networks/{id}/disconnect", self.disconnect)

    async def list(self, req: Request) -> AnyResponse:
        filters = req.query.filters()
        for key in filters:
            if key not in LIST_FILTERS:
                raise InvalidArgument(f"invalid filter '{key}'")
        found = [n for n in self.networks.list() if self._matches(n, filters)]
        return json_response([wire.network_json(n, self.networks, False) for n in found])

    def _matches(self, n: Network, filters: dict[str, list[str]]) -> bool:
        for key, values in filters.items():
            if values and not any(self._match_one(n, key, v) for v in values):
                return False
        return True

    def _match_one(self, n: Network, key: str, value: str) -> bool:
        if key == "name":
            return re.search(value, n.name) is not None
        if key == "id":
            return n.id.startswith(value)
        if key == "driver":
            return n.driver == value
        if key == "scope":
            return value == "local"
        if key == "label":
            k, eq, v = value.partition("=")
            return k in n.labels and (not eq or n.labels[k] == v)
        if key == "type":
            if value not in ("custom", "builtin"):
                raise InvalidArgument(f"invalid filter: 'type'='{value}'")
            return (value == "builtin") == n.predefined
        if key == "dangling":
            dangling = not n.predefined and not self.networks.containers_on(n.id)
            return dangling == (value.lower() in ("1", "true"))
        return False

    async def inspect(self, req: Request) -> AnyResponse:
        n = self.networks.get(req.params["id"])
        return json_response(wire.network_json(n, self.networks))

    async def create(self, req: Request) -> AnyResponse:
        create = wire.parse_create(await req.json(default=None))
        n = await asyncio.to_thread(self.networks.create, create)
        return json_response({"Id": n.id, "Warning": ""}, status=201)

    async def remove(self, req: Request) -> AnyResponse:
        await asyncio.to_thread(self.networks.remove, req.params["id"])
        return empty_response(204)

    async def prune(self, req: Request) -> AnyResponse:
        filters = req.query.filters()
        labels = filters.get("label", [])

        def keep(n: Network) -> bool:
            return any(not self._match_one(n, "label", v) for v in labels)

        removed = await asyncio.to_thread(self.networks.prune, keep)
        return json_response({"NetworksDeleted": removed})

    async def connect(self, req: Request) -> AnyResponse:
        body = await req.json(default={}) or {}
        self.networks.get(req.params["id"])  # a missing network is the 404, before the container
        c = self.containers.get(str(body.get("Container") or ""))
        endpoint = wire.parse_endpoint(body.get("EndpointConfig"))
        files = self.containers.data_root / "containers" / c.id
        await asyncio.to_thread(self.networks.connect, req.params["id"], c, endpoint, files)
        return empty_response(200)

    async def disconnect(self, req: Request) -> AnyResponse:
        body = await req.json(default={}) or {}
        self.networks.get(req.params["id"])
        c = self.containers.get(str(body.get("Container") or ""))
        files = self.containers.data_root / "containers" / c.id
        await asyncio.to_thread(
            self.networks.disconnect, req.params["id"], c, files, bool(body.get("Force"))
        )
        return empty_response(200)

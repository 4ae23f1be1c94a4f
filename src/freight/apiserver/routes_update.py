"""`POST /containers/{id}/update`: docker's resource and restart-policy update, plus
freight's changes of published ports and mounts.

The body is docker's UpdateConfig (v1.45): CpuShares, NanoCpus, CpuPeriod,
CpuQuota, CpusetCpus, CpusetMems, Memory, MemoryReservation, MemorySwap,
PidsLimit, BlkioWeight, RestartPolicy; a zero or absent field changes nothing.
The answer is {"Warnings": [...]}.

Freight extension (a docker daemon ignores these fields; freightd applies them
to a stopped container for its next start, and live to a running one):

    "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
        HostConfig.PortBindings' shape; each listed container port gets exactly
        these bindings (a port already bound moves).
    "RemovePorts": ["80/tcp"]        container ports to stop publishing
    "Binds": ["/src:/dst:ro"]        HostConfig.Binds entries to add
    "Mounts": [{"Type": "bind", "Source": "/src", "Target": "/dst"}]
                                     HostConfig.Mounts (mount.Mount) entries to add
    "RemoveMounts": ["/dst"]         destinations to unmount (before the adds)

They reuse HostConfig's own shapes so a client's create-time serialisers work
unchanged; the removals are lists because HostConfig has no way to say "not
this one any more".
"""

from __future__ import annotations

from typing import Any

from freight.apiserver.http import AnyResponse, Request, json_response
from freight.apiserver.router import Router
from freight.errors import InvalidArgument
from freight.services.update import ResourceUpdate, UpdateRequest, UpdateService

_INTS = {
    "CpuShares": "cpu_shares",
    "NanoCpus": "nano_cpus",
    "CpuPeriod": "cpu_period",
    "CpuQuota": "cpu_quota",
    "Memory": "memory",
    "MemoryReservation": "memory_reservation",
    "MemorySwap": "memory_swap",
    "BlkioWeight": "blkio_weight",
}


class UpdateRoutes:
    def __init__(self, containers: Any) -> None:
        self.updates = UpdateService(containers)

    def register(self, r: Router) -> None:
        r.add("POST", "/containers/{id}/update", self.update)

    async def update(self, req: Request) -> AnyResponse:
        body = await req.json(default=None)
        warnings = await self.updates.update(req.params["id"], parse_update(body or {}))
        return json_response({"Warnings": warnings})


def parse_update(body: Any) -> UpdateRequest:
    if not isinstance(body, dict):
        raise InvalidArgument("invalid update config: must be a JSON object")
    r = ResourceUpdate()
    for key, attr in _INTS.items():
        if body.get(key) is not None:
            setattr(r, attr, _int(body[key], key))
    if body.get("PidsLimit") is not None:
        r.pids_limit = _int(body["PidsLimit"], "PidsLimit")
    r.cpuset_cpus = str(body.get("CpusetCpus") or "")
    r.cpuset_mems = str(body.get("CpusetMems") or "")
    policy = body.get("RestartPolicy")
    if policy is not None:
        if not isinstance(policy, dict):
            raise InvalidArgument("invalid RestartPolicy: must be a JSON object")
        r.restart_policy = dict(policy)
    return UpdateRequest(
        resources=r,
        port_bindings=_object(body, "PortBindings"),
        remove_ports=_strings(body, "RemovePorts"),
        binds=_strings(body, "Binds"),
        mounts=_list(body, "Mounts"),
        remove_mounts=_strings(body, "RemoveMounts"),
    )


def _int(value: Any, key: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"invalid {key}: {value!r}") from None


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {key}: must be a JSON object")
    return value


def _list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise InvalidArgument(f"invalid {key}: must be a JSON array")
    return value


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = _list(body, key)
    if not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {key}: must be an array of strings")
    return value

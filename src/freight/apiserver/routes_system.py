"""Engine API system endpoints: /_ping, /version, /info; and the swarm family,
which answers as a Docker daemon that is not part of a swarm.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freight import __version__
from freight.apiserver.http import AnyResponse, Request, json_response, text_response
from freight.apiserver.router import Router
from freight.dockerapi import versions
from freight.errors import Unavailable
from freight.services.containers import ContainerService
from freight.services.images import ImageService, host_architecture
from freight.services.registries import Registries

NOT_A_SWARM_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
    "to connect this node to swarm and try again."
)
SWARM_PREFIXES = ("/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs")

NO_CACHE = [
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Builder-Version", "1"),
]


@dataclass
class SystemRoutes:
    containers: ContainerService
    images: ImageService
    data_root: Path
    default_runtime: str
    runtimes: dict[str, str]  # name -> path
    cgroup_version: str
    daemon_id: str
    registries: Registries | None = None  # their options change on SIGHUP
    live_restore: Callable[[], bool] = lambda: False  # the daemon's setting now
    security_options: tuple[str, ...] = ()  # dockerd's "name=seccomp,profile=builtin", ...

    def register(self, r: Router) -> None:
        r.add("GET", "/_ping", self.ping)
        r.add("GET", "/version", self.version)
        r.add("GET", "/info", self.info)
        for prefix in SWARM_PREFIXES:
            for method in ("GET", "POST", "DELETE"):
                r.add(method, prefix, self.swarm)
                r.add(method, prefix + "/{rest:path}", self.swarm)

    async def ping(self, req: Request) -> AnyResponse:
        # Freight-Local-Context: builds may name a folder (routes_build); over
        # TCP the client is elsewhere, and the header is only sent on a unix socket.
        local = [("Freight-Local-Context", "1")] if req.is_unix else []
        return text_response("OK", headers=NO_CACHE + [("Swarm", "inactive"), *local])

    async def version(self, req: Request) -> AnyResponse:
        uname = platform.uname()
        details = {
            "ApiVersion": versions.API_VERSION,
            "MinAPIVersion": versions.MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": f"python{platform.python_version()}",
            "Os": "linux",
            "Arch": host_architecture(),
            "KernelVersion": uname.release,
            "BuildTime": "",
            "Experimental": "false",
        }
        return json_response(
            {
                "Platform": {"Name": "Freight Engine"},
                "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
                "Version": __version__,
                **{k: v for k, v in details.items() if k not in ("ApiVersion", "Experimental")},
                "ApiVersion": versions.API_VERSION,
            }
        )

    async def info(self, req: Request) -> AnyResponse:
        return json_response(self._info())

    def _info(self) -> dict[str, Any]:
        containers = self.containers.list()
        states = [c.state.status for c in containers]
        uname = platform.uname()
        return {
            "ID": self.daemon_id,
            "Containers": len(containers),
            "ContainersRunning": states.count("running"),
            "ContainersPaused": states.count("paused"),
            "ContainersStopped": len(states) - states.count("running") - states.count("paused"),
            "Images": len(self.images.list()),
            "Driver": "overlayfs",
            "DriverStatus": [["Backing Filesystem", "overlay"]],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["null"],
                "Authorization": None,
                "Log": ["json-file"],
            },
            "MemoryLimit": True,
            "SwapLimit": True,
            "CpuCfsPeriod": True,
            "CpuCfsQuota": True,
            "CPUShares": True,
            "CPUSet": False,
            "PidsLimit": True,
            "IPv4Forwarding": True,
            "Debug": False,
            "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": 0,
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "LoggingDriver": self.containers.log_defaults.driver,
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": self.cgroup_version,
            "NEventsListener": 0,
            "KernelVersion": uname.release,
            "OperatingSystem": _os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": uname.machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": self._registry_config(),
            "NCPU": os.cpu_count() or 1,
            "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "GenericResources": None,
            "DockerRootDir": str(self.data_root),
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": socket.gethostname(),
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": __version__,
            "Runtimes": {name: {"path": path} for name, path in self.runtimes.items()},
            "DefaultRuntime": self.default_runtime,
            "Swarm": {
                "NodeID": "",
                "NodeAddr": "",
                "LocalNodeState": "inactive",
                "ControlAvailable": False,
                "Error": "",
                "RemoteManagers": None,
            },  # fmt: skip
            "LiveRestoreEnabled": self.live_restore(),
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""},
            "SecurityOptions": list(self.security_options),
            "Warnings": None,
        }

    def _registry_config(self) -> dict[str, Any]:
        """Docker's shape: CIDRs apart from named hosts, mirrors with a final slash."""
        opts = self.registries.options if self.registries is not None else None
        insecure = list(opts.insecure) if opts else []
        cidrs = [i for i in insecure if "/" in i and "://" not in i]
        mirrors = [m.rstrip("/") + "/" for m in (opts.mirrors if opts else [])]
        index = {"docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True,
                               "Official": True}}  # fmt: skip
        for name in insecure:
            if name not in cidrs:
                index[name] = {"Name": name, "Mirrors": [], "Secure": False, "Official": False}
        return {
            "IndexConfigs": index,
            "InsecureRegistryCIDRs": [*cidrs, "127.0.0.0/8"],
            "Mirrors": mirrors,
        }

    async def swarm(self, req: Request) -> AnyResponse:
        raise Unavailable(NOT_A_SWARM_MANAGER)


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"

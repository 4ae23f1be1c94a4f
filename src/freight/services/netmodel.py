"""Typed records of networks and of containers' places on them (stored as JSON).

    <data-root>/network/state.json   {"networks": [Network…], "containers": {id: ContainerNet}}

A `ContainerNet` says which networks a container is on (kept while it
exists) and, while it runs, what was made for it: the namespace path, each
endpoint's address, MAC and host veth, the host ports it holds. After a crash
those live fields name exactly what to remove.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREDEFINED = ("bridge", "host", "none")


@dataclass
class Network:
    id: str
    name: str
    driver: str  # bridge | host | null
    created: str
    bridge: str = ""  # the interface (bridge driver)
    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    subnet6: str = ""
    gateway6: str = ""
    ipv6: bool = False
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    user_defined: bool = True  # embedded DNS, aliases, --ip

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED and not self.user_defined


@dataclass
class Attachment:
    """A container's endpoint on one network: what was asked, and (running) what it got."""

    network_id: str
    aliases: list[str] = field(default_factory=list)
    ipv4_request: str = ""
    ipv6_request: str = ""
    mac_request: str = ""
    endpoint_id: str = ""
    ip: str = ""
    ip6: str = ""
    mac: str = ""
    ifname: str = ""
    host_ifname: str = ""


@dataclass
class PortMapping:
    proto: str
    host_ip: str
    host_port: int
    container_port: int

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


@dataclass
class ContainerNet:
    mode: str  # bridge | host | none | container:<id> | a network name
    attachments: list[Attachment] = field(default_factory=list)
    ports: list[PortMapping] = field(default_factory=list)
    netns: str = ""  # set while running with a namespace of ours

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ContainerNet:
        return cls(
            mode=raw["mode"],
            attachments=[Attachment(**a) for a in raw.get("attachments", [])],
            ports=[PortMapping(**p) for p in raw.get("ports", [])],
            netns=raw.get("netns", ""),
        )


@dataclass
class State:
    networks: list[Network] = field(default_factory=list)
    containers: dict[str, ContainerNet] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        data = {
            "networks": [dataclasses.asdict(n) for n in self.networks],
            "containers": {k: dataclasses.asdict(v) for k, v in self.containers.items()},
        }
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> State:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        return cls(
            networks=[Network(**n) for n in raw.get("networks", [])],
            containers={k: ContainerNet.from_json(v) for k, v in raw.get("containers", {}).items()},
        )

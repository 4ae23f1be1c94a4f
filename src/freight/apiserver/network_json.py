"""Docker's network JSON ↔ the network service's models.

Networks (`GET /networks`), create requests, endpoint configs, and the
network parts of container JSON: `NetworkSettings` in inspect, `Ports` and
`NetworkSettings.Networks` in the container list. Only translation here.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from freight.errors import InvalidArgument
from freight.services.model import Container
from freight.services.netmodel import Attachment, ContainerNet, Network
from freight.services.networks import CreateNetwork, EndpointRequest, NetworkService


def network_json(n: Network, svc: NetworkService, with_containers: bool = True) -> dict[str, Any]:
    config = []
    for subnet, gateway in ((n.subnet, n.gateway), (n.subnet6, n.gateway6)):
        if subnet:
            entry = {"Subnet": subnet, "Gateway": gateway}
            if n.ip_range and subnet == n.subnet:
                entry["IPRange"] = n.ip_range
            config.append(entry)
    out: dict[str, Any] = {
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.ipv6,
        "IPAM": {"Driver": "default", "Options": None, "Config": config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {},
        "Options": n.options,
        "Labels": n.labels,
    }
    if with_containers:
        out["Containers"] = _members(n, svc)
    return out


def _members(n: Network, svc: NetworkService) -> dict[str, Any]:
    members = {}
    for cid in svc.containers_on(n.id):
        cn = svc.container_net(cid)
        a = _attachment_on(cn, n.id)
        if a is None or not a.ip:
            continue
        try:
            name = svc.lookup(cid).name
        except Exception:  # a container being removed
            continue
        members[cid] = {
            "Name": name,
            "EndpointID": a.endpoint_id,
            "MacAddress": a.mac,
            "IPv4Address": f"{a.ip}/{ipaddress.ip_network(n.subnet).prefixlen}",
            "IPv6Address": f"{a.ip6}/{ipaddress.ip_network(n.subnet6).prefixlen}" if a.ip6 else "",
        }
    return members


def _attachment_on(cn: ContainerNet | None, network_id: str) -> Attachment | None:
    if cn is None:
        return None
    return next((a for a in cn.attachments if a.network_id == network_id), None)


def parse_create(body: Any) -> CreateNetwork:
    if not isinstance(body, dict):
        raise InvalidArgument("invalid network config: must be a JSON object")
    req = CreateNetwork(
        name=body.get("Name") or "",
        driver=body.get("Driver") or "bridge",
        internal=bool(body.get("Internal")),
        attachable=bool(body.get("Attachable")),
        ipv6=bool(body.get("EnableIPv6")),
        labels=dict(body.get("Labels") or {}),
        options={k: str(v) for k, v in (body.get("Options") or {}).items()},
    )
    for entry in (body.get("IPAM") or {}).get("Config") or []:
        subnet = entry.get("Subnet") or ""
        if ":" in subnet:
            req.subnet6, req.gateway6 = subnet, entry.get("Gateway") or ""
        elif subnet:
            if req.subnet:
                raise InvalidArgument("only one IPv4 subnet per network is supported")
            req.subnet, req.gateway = subnet, entry.get("Gateway") or ""
            req.ip_range = entry.get("IPRange") or ""
        elif entry.get("Gateway") or entry.get("IPRange"):
            raise InvalidArgument("gateway and ip-range need a subnet")
    return req


def parse_endpoint(raw: Any) -> EndpointRequest:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid EndpointConfig: must be a JSON object")
    ipam_cfg = raw.get("IPAMConfig") or {}
    return EndpointRequest(
        aliases=list(raw.get("Aliases") or []),
        ipv4=ipam_cfg.get("IPv4Address") or "",
        ipv6=ipam_cfg.get("IPv6Address") or "",
        mac=raw.get("MacAddress") or "",
    )


def parse_endpoints(networking: Any) -> dict[str, EndpointRequest]:
    """NetworkingConfig.EndpointsConfig of a create request."""
    endpoints = (networking or {}).get("EndpointsConfig") or {}
    if not isinstance(endpoints, dict):
        raise InvalidArgument("invalid NetworkingConfig.EndpointsConfig")
    return {name: parse_endpoint(cfg) for name, cfg in endpoints.items()}


# container JSON ---------------------------------------------------------------


def _endpoint_json(n: Network, a: Attachment) -> dict[str, Any]:
    ipam_cfg = None
    if a.ipv4_request or a.ipv6_request:
        ipam_cfg = {"IPv4Address": a.ipv4_request, "IPv6Address": a.ipv6_request}
    running = bool(a.ip)
    return {
        "IPAMConfig": ipam_cfg,
        "Links": None,
        "Aliases": a.aliases or None,
        "MacAddress": a.mac,
        "NetworkID": n.id,
        "EndpointID": a.endpoint_id,
        "Gateway": n.gateway if running else "",
        "IPAddress": a.ip,
        "IPPrefixLen": ipaddress.ip_network(n.subnet).prefixlen if running else 0,
        "IPv6Gateway": n.gateway6 if a.ip6 else "",
        "GlobalIPv6Address": a.ip6,
        "GlobalIPv6PrefixLen": ipaddress.ip_network(n.subnet6).prefixlen if a.ip6 else 0,
        "DriverOpts": None,
        "DNSNames": _dns_names(n, a) if running and n.user_defined else None,
    }


def _dns_names(n: Network, a: Attachment) -> list[str]:
    return list(a.aliases)


def _networks_of(c: Container, svc: NetworkService) -> dict[str, Any]:
    cn = svc.container_net(c.id)
    if cn is None:
        return {}
    if cn.mode in ("host", "none"):
        n = svc.get(cn.mode)
        return {n.name: {**_empty_endpoint(), "NetworkID": n.id}}
    out = {}
    for a in cn.attachments:
        try:
            n = svc.get(a.network_id)
        except Exception:  # removed while the container was stopped
            continue
        entry = _endpoint_json(n, a)
        if entry["DNSNames"] is not None:
            entry["DNSNames"] = [c.name, c.id[:12], *a.aliases]
        out[n.name] = entry
    return out


def _empty_endpoint() -> dict[str, Any]:
    return {
        "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "DriverOpts": None, "DNSNames": None,
    }  # fmt: skip


def ports_json(c: Container, svc: NetworkService) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed port → its host bindings (null: unpublished)."""
    cn = svc.container_net(c.id)
    if not c.state.running or cn is None or not (cn.netns or cn.ports):
        return {}
    ports: dict[str, Any] = {key: None for key in c.config.exposed_ports}
    for p in cn.ports:
        entry = {"HostIp": p.host_ip, "HostPort": str(p.host_port)}
        ports[p.key] = (ports.get(p.key) or []) + [entry]
    return ports


def network_settings_json(c: Container, svc: NetworkService) -> dict[str, Any]:
    networks = _networks_of(c, svc)
    cn = svc.container_net(c.id)
    default = networks.get("bridge") if cn is not None and cn.mode == "bridge" else None
    default = default or _empty_endpoint()
    return {
        "Bridge": "",
        "SandboxID": c.id if cn is not None and cn.netns else "",
        "SandboxKey": cn.netns if cn is not None else "",
        "Ports": ports_json(c, svc),
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": default["EndpointID"],
        "Gateway": default["Gateway"],
        "GlobalIPv6Address": default["GlobalIPv6Address"],
        "GlobalIPv6PrefixLen": default["GlobalIPv6PrefixLen"],
        "IPAddress": default["IPAddress"],
        "IPPrefixLen": default["IPPrefixLen"],
        "IPv6Gateway": default["IPv6Gateway"],
        "MacAddress": default["MacAddress"],
        "Networks": networks,
    }


def summary_ports(c: Container, svc: NetworkService) -> list[dict[str, Any]]:
    """The list's `Ports`: published ones with their host side, exposed ones without."""
    out: list[dict[str, Any]] = []
    for key, bindings in ports_json(c, svc).items():
        port, _, proto = key.partition("/")
        if not bindings:
            out.append({"PrivatePort": int(port), "Type": proto})
            continue
        for b in bindings:
            out.append(
                {
                    "IP": b["HostIp"],
                    "PrivatePort": int(port),
                    "PublicPort": int(b["HostPort"]),
                    "Type": proto,
                }
            )
    return out


def summary_networks(c: Container, svc: NetworkService) -> dict[str, Any]:
    return {"Networks": _networks_of(c, svc)}


def with_summary(body: dict[str, Any], c: Container, svc: NetworkService | None) -> dict[str, Any]:
    """A container list entry with its ports and networks filled in."""
    if svc is not None:
        body["Ports"] = summary_ports(c, svc)
        body["NetworkSettings"] = summary_networks(c, svc)
    return body


def with_inspect(body: dict[str, Any], c: Container, svc: NetworkService | None) -> dict[str, Any]:
    """Container inspect with its NetworkSettings filled in."""
    if svc is not None:
        body["NetworkSettings"] = network_settings_json(c, svc)
    return body

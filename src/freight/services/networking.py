"""Joins the network service to the container service at daemon start.

The container service knows nothing of networks beyond four calls
(validate, register, setup, teardown) on its `network` attribute; this
module sets that attribute, the container lookups the network service needs
(names for DNS, pids for `container:ID`) and the embedded DNS server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from freight.network import ipam
from freight.network.dns import DnsServer
from freight.services.containers import ContainerService
from freight.services.networks import NetworkConfig, NetworkService


def network_config(
    bridge: str, bip: str, pools: list[str], dns: list[str] | None = None
) -> NetworkConfig:
    cfg = NetworkConfig(bridge=bridge or "freight0", bip=bip or "", dns=list(dns or []))
    if pools:
        cfg.pools = [ipam.parse_pool(p) for p in pools]
    return cfg


async def start_networking(
    containers: ContainerService,
    data_root: Path,
    exec_root: Path,
    bridge: str,
    bip: str,
    pools: list[str],
    dns: list[str] | None = None,
) -> NetworkService:
    cfg = network_config(bridge, bip, pools, dns)
    net = NetworkService(data_root, exec_root, cfg, events=containers.events)
    net.lookup = containers.get
    net.running_ids = lambda: {c.id for c in containers.list() if c.state.running}
    dns = DnsServer(asyncio.get_running_loop(), net.dns_lookup, net.dns_upstreams)
    await asyncio.to_thread(net.start, dns)
    containers.network = net
    containers.on_removed.append(net.forget)
    return net

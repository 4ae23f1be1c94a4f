"""IP address management: subnets from pools, addresses within a subnet.

Pure logic, no I/O: callers pass what is in use (other networks' subnets, the
host's routes) and get a choice back. Docker's defaults: the local pools are
172.17.0.0/16 … 172.31.0.0/16 as /16s and 192.168.0.0/16 as /20s; the
gateway is the first address; container addresses are taken in order from the
`--ip-range` (or the whole subnet), skipping the gateway, the network and the
broadcast address, so a freed address is reused only after the range wraps.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from freight.errors import Conflict, InvalidArgument, Unavailable

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Pool:
    """`--default-address-pool base=10.10.0.0/16,size=24`."""

    base: Net
    size: int

    def subnets(self) -> Iterable[Net]:
        return self.base.subnets(new_prefix=self.size)


DEFAULT_POOLS = (
    Pool(ipaddress.ip_network("172.17.0.0/16"), 16),
    Pool(ipaddress.ip_network("172.18.0.0/15"), 16),
    Pool(ipaddress.ip_network("172.20.0.0/14"), 16),
    Pool(ipaddress.ip_network("172.24.0.0/13"), 16),
    Pool(ipaddress.ip_network("192.168.0.0/16"), 20),
)


def parse_pool(text: str) -> Pool:
    """`base=CIDR,size=N` (dockerd's --default-address-pool syntax)."""
    fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
    if "base" not in fields or "size" not in fields:
        raise InvalidArgument(f"invalid default address pool {text!r}: want base=CIDR,size=N")
    base = parse_subnet(fields["base"])
    try:
        size = int(fields["size"])
    except ValueError:
        raise InvalidArgument(f"invalid default address pool {text!r}: bad size") from None
    if not base.prefixlen <= size <= base.max_prefixlen:
        raise InvalidArgument(f"invalid default address pool {text!r}: size out of range")
    return Pool(base, size)


def parse_subnet(text: str) -> Net:
    """A CIDR with no host bits set, with Docker's message otherwise."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {text}") from None
    if "/" not in text:
        raise InvalidArgument(f"invalid CIDR address: {text}")
    if net.network_address != ipaddress.ip_interface(text).ip:
        raise InvalidArgument(f"invalid subnet {text}: it should be {net}")
    return net


def parse_address(text: str, what: str = "IP address") -> Addr:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {text}") from None


def overlaps(net: Net, others: Iterable[Net]) -> Net | None:
    for other in others:
        if other.version == net.version and net.overlaps(other):
            return other
    return None


def choose_subnet(pools: Iterable[Pool], taken: Iterable[Net]) -> Net:
    """The first pool subnet overlapping nothing in `taken` (networks and host routes)."""
    used = [n for n in taken if n.prefixlen > 0]  # a default route overlaps everything
    for pool in pools:
        for candidate in pool.subnets():
            if overlaps(candidate, used) is None:
                return candidate
    raise Unavailable(
        "could not find an available, non-overlapping IPv4 address pool among the "
        "defaults to assign to the network"
    )


def gateway_of(subnet: Net) -> Addr:
    return subnet.network_address + 1


def check_gateway(subnet: Net, gateway: Addr) -> None:
    if gateway not in subnet:
        raise InvalidArgument(f"no matching subnet for gateway {gateway}")


def check_range(subnet: Net, ip_range: Net) -> None:
    if not ip_range.subnet_of(subnet):  # type: ignore[arg-type]
        raise InvalidArgument(f"ip-range {ip_range} is not within subnet {subnet}")


def _reserved(subnet: Net, gateway: Addr) -> set[Addr]:
    reserved = {subnet.network_address, gateway}
    if subnet.version == 4 and subnet.prefixlen < 31:
        reserved.add(subnet.broadcast_address)
    return reserved


def allocate(
    subnet: Net,
    gateway: Addr,
    used: Iterable[Addr],
    ip_range: Net | None = None,
    after: Addr | None = None,
) -> Addr:
    """The next free address of `ip_range` (default: the subnet) after `after`."""
    span = ip_range or subnet
    taken = set(used) | _reserved(subnet, gateway)
    first, last = int(span.network_address), int(span.broadcast_address)
    if span.num_addresses > 2 and span.version == 4:
        first, last = max(first, int(subnet.network_address) + 1), last
    start = int(after) + 1 if after is not None and first <= int(after) < last else first
    count = last - first + 1
    for i in range(min(count, 1 << 16)):
        candidate = ipaddress.ip_address(first + (start - first + i) % count)
        if candidate not in taken:
            return candidate
    raise Unavailable(f"no available IPv{subnet.version} addresses on this network's address pools")


def claim(subnet: Net, gateway: Addr, used: Iterable[Addr], address: Addr) -> Addr:
    """A requested `--ip`: inside the subnet and not already used."""
    if address not in subnet:
        raise InvalidArgument(f"no configured subnet contains IP address {address}")
    if address in set(used) or address in _reserved(subnet, gateway):
        raise Conflict(f"Address already in use: {address}")
    return address

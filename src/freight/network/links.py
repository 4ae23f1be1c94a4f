"""Bridges, veth pairs, addresses and routes, over netlink (pyroute2).

No `ip` commands: each call opens a netlink socket (the host's, or one the
netns helper made inside a container's namespace) and sends a handful of
messages. A container's side is configured through a socket created inside
its namespace, so nothing here ever enters a namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from freight.errors import FreightError

IFNAMSIZ = 15

# pyroute2 logs every netlink message at debug level: far too much for the daemon log.
logging.getLogger("pyroute2").setLevel(logging.WARNING)


_T = TypeVar("_T")
_local = threading.local()


@contextlib.contextmanager
def _host() -> Iterator[IPRoute]:
    """This thread's netlink socket in the host's namespace, kept open between calls
    (opening one costs a socket and an event loop each time)."""
    ipr = getattr(_local, "ipr", None)
    if ipr is None:
        ipr = _local.ipr = IPRoute()
    try:
        yield ipr
    except OSError as e:
        if not isinstance(e, NetlinkError):  # the socket itself failed: open a new one next time
            _local.ipr = None
            with contextlib.suppress(Exception):
                ipr.close()
        raise


_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netlink")


def _off_loop(fn: Callable[..., _T]) -> Callable[..., _T]:
    """pyroute2's blocking API runs its own event loop, which it cannot do on a
    thread whose loop is running: there, the call runs on a worker thread (and
    the caller waits, a few milliseconds)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn(*args, **kwargs)
        return _worker.submit(fn, *args, **kwargs).result()

    return wrapper


@dataclass(frozen=True)
class Address:
    ip: str
    prefixlen: int


@dataclass(frozen=True)
class Endpoint:
    """One interface of a container on one bridge."""

    bridge: str
    host_ifname: str
    ifname: str  # inside: eth0, eth1, …
    mac: str
    addresses: tuple[Address, ...]
    gateways: tuple[str, ...] = ()  # default routes to add (v4 and/or v6)


def host_ifname(container_id: str, network_id: str) -> str:
    """A stable host-side veth name, so a record names what to delete after a crash."""
    return "fv" + hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()[:11]


def mac_for(ip: str) -> str:
    """Docker's scheme: 02:42 and the four bytes of the IPv4 address."""
    raw = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in raw)


def _index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _sysctl(path: str, value: str) -> None:
    with contextlib.suppress(OSError), open(path, "w") as f:
        f.write(value)


def enable_forwarding(ipv6: bool = False) -> None:
    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    if ipv6:
        _sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")


@_off_loop
def ensure_bridge(name: str, addresses: list[Address], mtu: int = 1500) -> None:
    """Create the bridge if missing, give it exactly its gateway addresses, bring it up."""
    with _host() as ipr:
        index = _index(ipr, name)
        if index is None:
            try:
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            except NetlinkError as e:
                raise FreightError(f"cannot create bridge {name}: {e.args[1]}") from e
            index = _index(ipr, name)
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index)}
        for a in addresses:
            if (a.ip, a.prefixlen) not in have:
                try:
                    ipr.addr("add", index=index, address=a.ip, prefixlen=a.prefixlen)
                except NetlinkError as e:
                    if e.code != errno.EEXIST:
                        raise FreightError(f"bridge {name}: address {a.ip}: {e.args[1]}") from e
        ipr.link("set", index=index, state="up")
    # Lets 127.0.0.1 connections be DNAT'd to containers on this bridge (see firewall).
    _sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")


@_off_loop
def bridge_exists(name: str) -> bool:
    with _host() as ipr:
        return _index(ipr, name) is not None


@_off_loop
def delete_link(name: str) -> None:
    """Delete an interface (a veth takes its peer along); absent is fine."""
    with _host() as ipr:
        index = _index(ipr, name)
        if index is not None:
            with contextlib.suppress(NetlinkError):
                ipr.link("del", index=index)


@_off_loop
def links_with_prefix(prefix: str) -> list[str]:
    with _host() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return [n for n in names if n and n.startswith(prefix)]


@_off_loop
def route_subnets() -> list[str]:
    """Every destination the host routes to (to choose subnets that collide with none)."""
    out = []
    with _host() as ipr:
        for family in (socket.AF_INET,):
            for r in ipr.get_routes(family=family):
                dst = r.get_attr("RTA_DST")
                if dst:
                    out.append(f"{dst}/{r['dst_len']}")
    return out


@_off_loop
def plug(ns_path: Path, inside: socket.socket, ep: Endpoint) -> None:
    """A veth from the bridge into the namespace at `ns_path`, configured inside via `inside`."""
    temp = "t" + ep.host_ifname[1:]  # the peer's name until it is renamed inside
    with _host() as ipr:
        bridge = _index(ipr, ep.bridge)
        if bridge is None:
            raise FreightError(f"bridge {ep.bridge} does not exist")
        fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            ipr.link(
                "add",
                ifname=ep.host_ifname,
                kind="veth",
                peer={"ifname": temp, "net_ns_fd": fd, "address": ep.mac},
            )
        except NetlinkError as e:
            raise FreightError(f"cannot create veth {ep.host_ifname}: {e.args[1]}") from e
        finally:
            os.close(fd)
        index = _index(ipr, ep.host_ifname)
        ipr.link("set", index=index, master=bridge, state="up")
    try:
        _configure_inside(inside, temp, ep)
    except BaseException:
        delete_link(ep.host_ifname)
        raise


def _configure_inside(inside: socket.socket, temp: str, ep: Endpoint) -> None:
    with IPRoute(use_socket=inside) as n:
        index = _index(n, temp)
        if index is None:
            raise FreightError(f"veth peer {temp} did not arrive in the container's namespace")
        n.link("set", index=index, ifname=ep.ifname)
        for a in ep.addresses:
            # nodad: a v6 address must be usable at once, not after duplicate detection.
            extra = {"flags": 0x02} if ":" in a.ip else {}
            n.addr("add", index=index, address=a.ip, prefixlen=a.prefixlen, **extra)
        n.link("set", index=index, state="up")
        for gw in ep.gateways:
            dst = "::/0" if ":" in gw else "0.0.0.0/0"
            with contextlib.suppress(NetlinkError):  # a second network's default: keep the first
                n.route("add", dst=dst, gateway=gw, oif=index)


@_off_loop
def unplug_inside(inside: socket.socket, ifname: str) -> None:
    """Remove the container's interface `ifname` (disconnect of a running container)."""
    with IPRoute(use_socket=inside) as n:
        index = _index(n, ifname)
        if index is not None:
            with contextlib.suppress(NetlinkError):
                n.link("del", index=index)

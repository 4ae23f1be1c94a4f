"""Networks and containers' places on them: the daemon's side of `docker network`.

Owns the network records (`bridge`, `host`, `none` and user-defined bridges),
each container's attachments, and what a running container's network is made
of: a named network namespace (made by the netns helper), one veth per
network into the bridge, addresses from IPAM, routes, /etc/hosts and
/etc/resolv.conf, published host ports (held as bound sockets, DNAT'd by the
firewall table) and the embedded DNS server's records.

Calls arrive from the event loop (API) and from worker threads (a start's
bundle preparation), so every change of state holds one lock. A start that
fails undoes what it made; `reconcile` at daemon start removes whatever a
crash left behind (namespaces, veths) and re-creates what running containers
need (ports, firewall rules, DNS).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from freight.errors import (
    AlreadyExists,
    Conflict,
    FreightError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from freight.linux import netns as nslib
from freight.network import firewall, ipam, links, portspec
from freight.network.dns import DnsServer
from freight.services import netfiles
from freight.services.clock import now_rfc3339
from freight.services.events import EventBus
from freight.services.model import Container, HostSettings
from freight.services.netmodel import (
    Attachment,
    ContainerNet,
    Network,
    PortMapping,
    State,
)

log = logging.getLogger(__name__)

BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
SPARE_NAMESPACES = 2


@dataclass
class NetworkConfig:
    """The daemon's networking flags (--bridge, --bip, --default-address-pool)."""

    bridge: str = "freight0"
    bip: str = ""  # gateway/prefix of the default bridge, e.g. 10.99.0.1/24
    pools: list[ipam.Pool] = field(default_factory=lambda: list(ipam.DEFAULT_POOLS))
    dns: list[str] = field(default_factory=list)  # freightd --dns: every container's default

    @property
    def table(self) -> str:
        return f"freight-{self.bridge}"


@dataclass
class CreateNetwork:
    name: str
    driver: str = "bridge"
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
    check_duplicate: bool = True


@dataclass
class EndpointRequest:
    aliases: list[str] = field(default_factory=list)
    ipv4: str = ""
    ipv6: str = ""
    mac: str = ""


@dataclass
class _Live:
    """What a running container holds that is not stored: the port sockets."""

    sockets: list[socket.socket] = field(default_factory=list)


class NetworkService:
    def __init__(
        self,
        data_root: Path,
        exec_root: Path,
        cfg: NetworkConfig,
        events: EventBus | None = None,
    ) -> None:
        self.cfg = cfg
        self.events = events or EventBus()  # the daemon's bus (wiring)
        self.state_path = data_root / "network" / "state.json"
        self.netns_dir = exec_root / "netns"
        self.state = State.load(self.state_path)
        self.lock = threading.RLock()
        self.helper = nslib.NetnsHelper()
        self.dns: DnsServer | None = None
        self.live: dict[str, _Live] = {}
        # Set by the daemon's wiring: container lookup by reference and by id.
        self.lookup: Callable[[str], Container] = _no_lookup
        self.running_ids: Callable[[], set[str]] = set
        # Namespaces made ahead of time: creating one (unshare in the helper) is the
        # slowest step of a start's network work, so it happens between starts.
        self._spares: list[tuple[Path, socket.socket]] = []
        self._spare_lock = threading.Lock()
        self._filling = False
        self._closing = False

    # start-up and shutdown ---------------------------------------------------

    def start(self, dns: DnsServer) -> None:
        """Helper up, predefined networks present, bridges and firewall in place."""
        self.dns = dns
        self.netns_dir.mkdir(parents=True, exist_ok=True)
        self.helper.start()
        with self.lock:
            self._ensure_predefined()
            # IPv4 only: turning on IPv6 forwarding host-wide would stop the host's own
            # interfaces from taking router advertisements.
            links.enable_forwarding()
            for n in self.state.networks:
                if n.driver == "bridge":
                    self._bring_up(n)
            self._save()

    def reconcile(self) -> None:
        """After the containers were restored: keep what running ones use, drop the rest."""
        running = self.running_ids()
        with self.lock:
            for cid, cn in self.state.containers.items():
                if cid in running and cn.netns and nslib.is_bound(Path(cn.netns)):
                    self._reclaim_ports(cid, cn)
                elif cn.netns or any(a.host_ifname for a in cn.attachments):
                    self._drop_live(cid, cn)
            known = {Path(cn.netns).name for cn in self.state.containers.values() if cn.netns}
            for path in self.netns_dir.iterdir():
                if path.name not in known:
                    nslib.remove(path)
            self._save()
            self._apply_firewall()
        self._refill()

    def close(self) -> None:
        """Clean shutdown: with nothing running, no bridge, rule or namespace stays."""
        self._closing = True
        with self._spare_lock:
            for path, sock in self._spares:
                sock.close()
                nslib.remove(path)
            self._spares.clear()
        with self.lock:
            running = bool(self.running_ids())
            for live in self.live.values():
                for s in live.sockets:
                    s.close()
            self.live.clear()
            if self.dns is not None:
                self.dns.close()
            if not running:
                with contextlib.suppress(FreightError):
                    firewall.remove(self.cfg.table)
                for n in self.state.networks:
                    if n.driver == "bridge":
                        links.delete_link(n.bridge)
        self.helper.stop()

    def _ensure_predefined(self) -> None:
        names = {n.name for n in self.state.networks}
        if "bridge" not in names:
            subnet, gateway = self._default_bridge_subnet()
            self.state.networks.insert(
                0,
                Network(
                    id=secrets.token_hex(32), name="bridge", driver="bridge",
                    created=now_rfc3339(), bridge=self.cfg.bridge, subnet=str(subnet),
                    gateway=str(gateway), user_defined=False,
                    options={BRIDGE_NAME_OPTION: self.cfg.bridge,
                             "com.docker.network.bridge.default_bridge": "true"},
                ),
            )  # fmt: skip
        else:
            default = self._network_named("bridge")
            if self.cfg.bip:
                iface = ipaddress.ip_interface(self.cfg.bip)
                default.subnet, default.gateway = str(iface.network), str(iface.ip)
            elif default.bridge != self.cfg.bridge:
                default.bridge = self.cfg.bridge
        for name, driver in (("host", "host"), ("none", "null")):
            if name not in names:
                self.state.networks.append(
                    Network(id=secrets.token_hex(32), name=name, driver=driver,
                            created=now_rfc3339(), user_defined=False)
                )  # fmt: skip

    def _default_bridge_subnet(self) -> tuple[ipam.Net, ipam.Addr]:
        if self.cfg.bip:
            try:
                iface = ipaddress.ip_interface(self.cfg.bip)
            except ValueError:
                raise InvalidArgument(f"invalid --bip: {self.cfg.bip}") from None
            return iface.network, iface.ip
        subnet = ipam.choose_subnet(self.cfg.pools, self._taken_subnets())
        return subnet, ipam.gateway_of(subnet)

    def _taken_subnets(self) -> list[ipam.Net]:
        taken = [ipaddress.ip_network(n.subnet) for n in self.state.networks if n.subnet]
        for route in links.route_subnets():
            with contextlib.suppress(ValueError):
                taken.append(ipaddress.ip_network(route, strict=False))
        return taken

    def _bring_up(self, n: Network) -> None:
        addresses = []
        for subnet, gateway in ((n.subnet, n.gateway), (n.subnet6, n.gateway6)):
            if subnet and gateway:
                addresses.append(links.Address(gateway, ipaddress.ip_network(subnet).prefixlen))
        links.ensure_bridge(n.bridge, addresses)
        if n.user_defined and self.dns is not None and n.gateway:
            try:
                self.dns.add(n.id, n.gateway)
            except OSError as e:
                log.warning("embedded DNS for network %s on %s: %s", n.name, n.gateway, e)

    # network records ---------------------------------------------------------

    def list(self) -> list[Network]:
        with self.lock:
            return list(self.state.networks)

    def get(self, ref: str) -> Network:
        """By full id, name, or unique id prefix (Docker's order)."""
        with self.lock:
            for n in self.state.networks:
                if n.id == ref:
                    return n
            for n in self.state.networks:
                if n.name == ref:
                    return n
            matches = [n for n in self.state.networks if ref and n.id.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgument(f"network {ref} is ambiguous ({len(matches)} matches found)")
        raise NotFound(f"network {ref} not found")

    def _network_named(self, name: str) -> Network:
        return next(n for n in self.state.networks if n.name == name)

    def create(self, req: CreateNetwork) -> Network:
        if not req.name:
            raise InvalidArgument("network name is required")
        if req.driver not in ("bridge", ""):
            raise NotFound(f'plugin "{req.driver}" not found')
        with self.lock:
            if any(n.name == req.name for n in self.state.networks):
                raise AlreadyExists(f"network with name {req.name} already exists")
            n = self._plan_network(req)
            self.state.networks.append(n)
            try:
                self._bring_up(n)
                self._apply_firewall()
            except BaseException:
                self.state.networks.remove(n)
                links.delete_link(n.bridge)
                if self.dns is not None:
                    self.dns.remove(n.id)
                raise
            self._save()
            self._event(n, "create")
            return n

    def _plan_network(self, req: CreateNetwork) -> Network:
        """Validate the request against the others; nothing is made yet."""
        others = [ipaddress.ip_network(s) for o in self.state.networks for s in (o.subnet, o.subnet6) if s]  # fmt: skip
        if req.subnet:
            subnet = ipam.parse_subnet(req.subnet)
            if subnet.version != 4:
                raise InvalidArgument(f"invalid subnet {req.subnet}: want an IPv4 subnet")
            if ipam.overlaps(subnet, others) is not None:
                raise Conflict("invalid pool request: Pool overlaps with other one on this address space")  # fmt: skip
        else:
            if req.gateway or req.ip_range:
                raise InvalidArgument("gateway and ip-range need a --subnet")
            subnet = ipam.choose_subnet(self.cfg.pools, self._taken_subnets())
        gateway = (
            ipam.parse_address(req.gateway, "gateway") if req.gateway else ipam.gateway_of(subnet)
        )
        ipam.check_gateway(subnet, gateway)
        ip_range = ""
        if req.ip_range:
            rng = ipam.parse_subnet(req.ip_range)
            ipam.check_range(subnet, rng)
            ip_range = str(rng)
        subnet6 = gateway6 = ""
        if req.subnet6 or req.ipv6:
            if not req.subnet6:
                raise InvalidArgument("--ipv6 needs an IPv6 --subnet on this daemon")
            net6 = ipam.parse_subnet(req.subnet6)
            if ipam.overlaps(net6, others) is not None:
                raise Conflict("invalid pool request: Pool overlaps with other one on this address space")  # fmt: skip
            gw6 = (
                ipam.parse_address(req.gateway6, "gateway")
                if req.gateway6
                else ipam.gateway_of(net6)
            )
            ipam.check_gateway(net6, gw6)
            subnet6, gateway6 = str(net6), str(gw6)
        nid = secrets.token_hex(32)
        bridge = req.options.get(BRIDGE_NAME_OPTION) or "br-" + nid[:12]
        if len(bridge) > links.IFNAMSIZ or not bridge.replace("-", "").replace("_", "").isalnum():
            raise InvalidArgument(f"invalid bridge name: {bridge}")
        if any(o.bridge == bridge for o in self.state.networks):
            raise Conflict(f"bridge name {bridge} is in use by another network")
        return Network(
            id=nid, name=req.name, driver="bridge", created=now_rfc3339(), bridge=bridge,
            subnet=str(subnet), gateway=str(gateway), ip_range=ip_range, subnet6=subnet6,
            gateway6=gateway6, ipv6=bool(subnet6), internal=req.internal,
            attachable=req.attachable, labels=dict(req.labels), options=dict(req.options),
        )  # fmt: skip

    def remove(self, ref: str) -> None:
        with self.lock:
            n = self.get(ref)
            if n.predefined:
                raise PermissionDenied(f"{n.name} is a pre-defined network and cannot be removed")
            users = self.containers_on(n.id)
            running = self.running_ids()
            active = [cid for cid in users if cid in running]
            if active:
                raise Conflict(
                    f"error while removing network: network {n.name} id {n.id} has active endpoints"
                )
            for cid in users:
                cn = self.state.containers[cid]
                cn.attachments = [a for a in cn.attachments if a.network_id != n.id]
            self.state.networks.remove(n)
            if self.dns is not None:
                self.dns.remove(n.id)
            links.delete_link(n.bridge)
            self._apply_firewall()
            self._save()
            self._event(n, "destroy")

    def _event(self, n: Network, action: str, container_id: str = "") -> None:
        """dockerd's network events: name and type (the driver), and the container."""
        attrs = {"name": n.name, "type": n.driver}
        if container_id:
            attrs["container"] = container_id
        self.events.publish("network", action, n.id, attrs)

    def _attachment_events(self, cid: str, cn: ContainerNet, action: str) -> None:
        for a in cn.attachments:
            n = next((x for x in self.state.networks if x.id == a.network_id), None)
            if n is not None:
                self._event(n, action, cid)

    def prune(self, keep: Callable[[Network], bool]) -> list[str]:
        """Remove user networks no container uses (and that `keep` does not protect)."""
        removed = []
        with self.lock:
            for n in list(self.state.networks):
                if n.predefined or self.containers_on(n.id) or keep(n):
                    continue
                self.remove(n.id)
                removed.append(n.name)
        return removed

    def containers_on(self, network_id: str) -> list[str]:
        return [
            cid
            for cid, cn in self.state.containers.items()
            if any(a.network_id == network_id for a in cn.attachments)
        ]

    def container_net(self, cid: str) -> ContainerNet | None:
        return self.state.containers.get(cid)

    # container attachments ---------------------------------------------------

    def validate(self, host: HostSettings, endpoints: dict[str, EndpointRequest]) -> None:
        """At create, before anything is made: the network mode and endpoint settings."""
        with self.lock:
            self._plan_attachments(host, endpoints)

    def register(self, c: Container, endpoints: dict[str, EndpointRequest]) -> None:
        """The container exists: store where it will be connected."""
        with self.lock:
            self.state.containers[c.id] = self._plan_attachments(c.host, endpoints)
            self._save()

    def _plan_attachments(
        self, host: HostSettings, endpoints: dict[str, EndpointRequest]
    ) -> ContainerNet:
        mode = network_mode(host)
        netfiles.validate_extra_hosts(host.extra.get("ExtraHosts") or [])
        portspec.from_api(host.extra.get("PortBindings"))  # a bad spec fails the create
        cn = ContainerNet(mode=mode)
        if mode in ("host", "none"):
            return cn
        if mode.startswith("container:"):
            self.lookup(mode.split(":", 1)[1])
            return cn
        primary = self.get(mode)
        if primary.driver != "bridge":
            raise InvalidArgument(f"network mode {mode!r} is not supported")
        mac = host.extra.get("MacAddress") or ""
        if "default" in endpoints and mode == "bridge":  # the docker CLI's key for -net default
            endpoints = {("bridge" if k == "default" else k): v for k, v in endpoints.items()}
        names = [mode] + [k for k in endpoints if k not in (mode, primary.id, primary.name)]
        for name in names:
            n = self.get(name)
            req = endpoints.get(name) or endpoints.get(n.id) or endpoints.get(n.name)
            cn.attachments.append(self._attachment(n, req or EndpointRequest(), mac))
        return cn

    def _attachment(self, n: Network, req: EndpointRequest, mac: str = "") -> Attachment:
        if req.aliases and not n.user_defined:
            raise InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
            )
        if (req.ipv4 or req.ipv6) and not n.user_defined:
            raise InvalidArgument(
                "user specified IP address is supported on user defined networks only"
            )
        if req.ipv4:
            addr = ipam.parse_address(req.ipv4)
            if addr not in ipaddress.ip_network(n.subnet):
                raise InvalidArgument(f"no configured subnet contains IP address {req.ipv4}")
        if req.ipv6 and not (n.subnet6 and ipam.parse_address(req.ipv6) in ipaddress.ip_network(n.subnet6)):  # fmt: skip
            raise InvalidArgument(f"no configured subnet contains IP address {req.ipv6}")
        mac = req.mac or mac
        if mac:
            _check_mac(mac)
        return Attachment(n.id, list(req.aliases), req.ipv4, req.ipv6, mac)

    def forget(self, cid: str) -> None:
        """The container was removed."""
        with self.lock:
            cn = self.state.containers.pop(cid, None)
            if cn is not None and (cn.netns or cn.ports):
                self._drop_live(cid, cn)
                self._apply_firewall()
            self._save()

    # a container's start and stop ---------------------------------------------

    def setup(self, c: Container, files: Path) -> str | None:
        """Make the container's network; write its hosts and resolv.conf.

        Returns the namespace for the OCI spec: a path to join, "" for a new
        private one (`none`), None for the host's.
        """
        with self.lock:
            cn = self.state.containers.get(c.id)
            if cn is None:  # created before networking existed
                self.register(c, {})
                cn = self.state.containers[c.id]
            if cn.mode == "host":
                netfiles.write_host_files(files, c, self.cfg.dns)
                return None
            if cn.mode == "none":
                netfiles.write_files(files, c, [], [], None, self.cfg.dns)
                return ""
            if cn.mode.startswith("container:"):
                return self._join_container(c, cn, files)
            if cn.netns:
                self._drop_live(c.id, cn)  # a leftover of an earlier run
            start = time.perf_counter()
            try:
                self._make_sandbox(c, cn)
                self._write_container_files(c, cn, files)
            except BaseException:
                self._drop_live(c.id, cn)
                self._apply_firewall()
                self._save()
                raise
            self._save()
            self._attachment_events(c.id, cn, "connect")
            # bench/network.py reads this line.
            log.info(
                "network setup of %s took %.1f ms", c.id[:12], (time.perf_counter() - start) * 1000
            )
            return cn.netns

    def _join_container(self, c: Container, cn: ContainerNet, files: Path) -> str:
        other = self.lookup(cn.mode.split(":", 1)[1])
        if not other.state.running:
            raise Conflict(f"cannot join network of a non running container: {other.id}")
        src = files.parent / other.id
        for name in ("hosts", "resolv.conf"):
            with contextlib.suppress(OSError):
                (files / name).write_bytes((src / name).read_bytes())
        return f"/proc/{other.state.pid}/ns/net"

    def _make_sandbox(self, c: Container, cn: ContainerNet) -> None:
        path, inside = self._take_namespace(c.id)
        cn.netns = str(path)
        with inside:
            for i, a in enumerate(cn.attachments):
                self._plug(c, self.get(a.network_id), a, inside, f"eth{i}", first=i == 0)
        self._publish(c, cn)

    def _take_namespace(self, cid: str) -> tuple[Path, socket.socket]:
        with self._spare_lock:
            spare = self._spares.pop() if self._spares else None
        self._refill()
        if spare is not None:
            return spare
        path = self.netns_dir / cid
        nslib.remove(path)
        return path, self.helper.create(path)

    def _refill(self) -> None:
        with self._spare_lock:
            if self._filling or self._closing or len(self._spares) >= SPARE_NAMESPACES:
                return
            self._filling = True
        threading.Thread(target=self._fill, name="netns-spares", daemon=True).start()

    def _fill(self) -> None:
        try:
            while not self._closing and len(self._spares) < SPARE_NAMESPACES:
                path = self.netns_dir / f"spare-{secrets.token_hex(8)}"
                try:
                    sock = self.helper.create(path)
                except OSError as e:
                    log.warning("cannot make a spare network namespace: %s", e)
                    return
                with self._spare_lock:
                    if self._closing:
                        sock.close()
                        nslib.remove(path)
                        return
                    self._spares.append((path, sock))
        finally:
            with self._spare_lock:
                self._filling = False

    def _plug(
        self,
        c: Container,
        n: Network,
        a: Attachment,
        inside: socket.socket,
        ifname: str,
        first: bool,
    ) -> None:
        a.ip = str(self._allocate(n, a.ipv4_request, c.id))
        a.ip6 = str(self._allocate6(n, a.ipv6_request, c.id)) if n.subnet6 else ""
        a.mac = a.mac_request or links.mac_for(a.ip)
        a.ifname, a.endpoint_id = ifname, secrets.token_hex(32)
        a.host_ifname = links.host_ifname(c.id, n.id)
        prefix = ipaddress.ip_network(n.subnet).prefixlen
        addresses = [links.Address(a.ip, prefix)]
        gateways = [n.gateway] if first and not n.internal else []
        if a.ip6:
            addresses.append(links.Address(a.ip6, ipaddress.ip_network(n.subnet6).prefixlen))
            if first and not n.internal:
                gateways.append(n.gateway6)
        links.delete_link(a.host_ifname)
        links.plug(
            Path(self.state.containers[c.id].netns),
            inside,
            links.Endpoint(
                n.bridge, a.host_ifname, ifname, a.mac, tuple(addresses), tuple(gateways)
            ),
        )

    def _used(self, n: Network, exclude: str) -> list[ipam.Addr]:
        used = []
        for cid, cn in self.state.containers.items():
            for a in cn.attachments:
                if a.network_id == n.id and a.ip and cid != exclude:
                    used.append(ipaddress.ip_address(a.ip))
                if a.network_id == n.id and a.ip6 and cid != exclude:
                    used.append(ipaddress.ip_address(a.ip6))
        return used

    def _allocate(self, n: Network, request: str, cid: str) -> ipam.Addr:
        subnet, gateway = ipaddress.ip_network(n.subnet), ipaddress.ip_address(n.gateway)
        used = self._used(n, cid)
        if request:
            return ipam.claim(subnet, gateway, used, ipaddress.ip_address(request))
        rng = ipaddress.ip_network(n.ip_range) if n.ip_range else None
        return ipam.allocate(subnet, gateway, used, rng)

    def _allocate6(self, n: Network, request: str, cid: str) -> ipam.Addr:
        subnet, gateway = ipaddress.ip_network(n.subnet6), ipaddress.ip_address(n.gateway6)
        used = self._used(n, cid)
        if request:
            return ipam.claim(subnet, gateway, used, ipaddress.ip_address(request))
        return ipam.allocate(subnet, gateway, used)

    # published ports ----------------------------------------------------------

    def _publish(self, c: Container, cn: ContainerNet) -> None:
        bindings = portspec.from_api(c.host.extra.get("PortBindings"))
        if c.host.extra.get("PublishAllPorts"):
            bound = {b.key for b in bindings}
            for key in sorted(c.config.exposed_ports, key=_port_sort_key):
                if key not in bound:
                    port, proto = portspec.split_proto(key)
                    bindings.append(portspec.Binding(int(port), proto))
        if not bindings:
            return
        live = self.live.setdefault(c.id, _Live())
        endpoint = f"{c.name} ({cn.attachments[0].endpoint_id if cn.attachments else ''})"
        for b in bindings:
            sock, port = self._reserve(b, endpoint)
            live.sockets.append(sock)
            cn.ports.append(PortMapping(b.proto, b.host_ip or "0.0.0.0", port, b.container_port))
        self._apply_firewall()

    def _reserve(self, b: portspec.Binding, endpoint: str) -> tuple[socket.socket, int]:
        """Bind the host port (or a free one) so no one else can take it while we DNAT it."""
        ip = b.host_ip or "0.0.0.0"
        candidates = (
            range(b.host_port, (b.host_port_end or b.host_port) + 1) if b.host_port else [0]
        )
        last: OSError | None = None
        for port in candidates:
            if port and self._held(b.proto, ip, port):
                last = None
                continue
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            kind = socket.SOCK_DGRAM if b.proto == "udp" else socket.SOCK_STREAM
            sock = socket.socket(family, kind)
            try:
                sock.bind((ip, port))
            except OSError as e:
                sock.close()
                last = e
                continue
            return sock, sock.getsockname()[1]
        shown = f"{ip}:{portspec.host_port_text(b) or 0}"
        if last is None:
            raise FreightError(
                f"driver failed programming external connectivity on endpoint {endpoint}: "
                f"Bind for {shown} failed: port is already allocated"
            )
        raise FreightError(
            f"driver failed programming external connectivity on endpoint {endpoint}: "
            f"Error starting userland proxy: listen {b.proto}4 {shown}: bind: {last.strerror.lower() if last.strerror else last}"
        )

    def _held(self, proto: str, ip: str, port: int) -> bool:
        for cn in self.state.containers.values():
            for p in cn.ports:
                if (
                    p.proto == proto
                    and p.host_port == port
                    and (p.host_ip == ip or "0.0.0.0" in (p.host_ip, ip))
                ):
                    return True
        return False

    def _reclaim_ports(self, cid: str, cn: ContainerNet) -> None:
        """After a daemon restart: hold the running container's ports again."""
        live = self.live.setdefault(cid, _Live())
        for p in cn.ports:
            kind = socket.SOCK_DGRAM if p.proto == "udp" else socket.SOCK_STREAM
            sock = socket.socket(socket.AF_INET, kind)
            try:
                sock.bind((p.host_ip, p.host_port))
                live.sockets.append(sock)
            except OSError as e:
                sock.close()
                log.warning("cannot hold port %s:%d again: %s", p.host_ip, p.host_port, e)

    def republish(self, c: Container, bindings: list[portspec.Binding]) -> None:
        """`update --publish`: a running container's published ports become `bindings`.

        Mappings that still match a binding stay as they are; the others are
        released, then the new host ports are held and the firewall rewritten.
        A port in use (or a firewall failure) puts the old mappings back, so
        the container is left exactly as it was.
        """
        with self.lock:
            cn = self.state.containers.get(c.id)
            if cn is None or not cn.netns or not cn.attachments:
                raise Conflict(
                    f"cannot change the published ports of container {c.id}: it has no "
                    "bridge network endpoint (network mode "
                    f"{cn.mode if cn else 'none'}); stop the container first"
                )
            live = self.live.setdefault(c.id, _Live())
            kept, todo = _match_mappings(cn.ports, bindings)
            dropped = [p for p in cn.ports if p not in kept]
            released = [self._release_socket(live, p) for p in dropped]
            cn.ports = list(kept)
            added: list[tuple[socket.socket, PortMapping]] = []
            endpoint = f"{c.name} ({cn.attachments[0].endpoint_id})"
            try:
                for b in todo:
                    sock, port = self._reserve(b, endpoint)
                    mapping = PortMapping(b.proto, b.host_ip or "0.0.0.0", port, b.container_port)
                    added.append((sock, mapping))
                    cn.ports.append(mapping)
                self._apply_firewall()
            except BaseException:
                for sock, _ in added:
                    sock.close()
                cn.ports = list(kept) + dropped
                back = [p for p, held in zip(dropped, released, strict=True) if held]
                self._reclaim_ports(c.id, ContainerNet(cn.mode, ports=back))
                with contextlib.suppress(FreightError):
                    self._apply_firewall()
                raise
            live.sockets += [sock for sock, _ in added]
            self._save()

    def _release_socket(self, live: _Live, p: PortMapping) -> bool:
        """Close the socket holding mapping `p`; True if there was one."""
        kind = socket.SOCK_DGRAM if p.proto == "udp" else socket.SOCK_STREAM
        for sock in list(live.sockets):
            with contextlib.suppress(OSError):
                if sock.type == kind and sock.getsockname()[:2] == (p.host_ip, p.host_port):
                    live.sockets.remove(sock)
                    sock.close()
                    return True
        return False

    def _apply_firewall(self) -> None:
        bridges = [
            firewall.BridgeRules(n.bridge, tuple(s for s in (n.subnet, n.subnet6) if s), n.internal)
            for n in self.state.networks
            if n.driver == "bridge"
        ]
        forwards = []
        for cn in self.state.containers.values():
            if not cn.ports or not cn.attachments:
                continue
            target = cn.attachments[0].ip
            forwards += [
                firewall.Forward(p.proto, p.host_ip, p.host_port, target, p.container_port)
                for p in cn.ports
            ]
        firewall.apply(self.cfg.table, bridges, forwards)

    # stop ---------------------------------------------------------------------

    def teardown(self, cid: str) -> None:
        """The container stopped (or failed to start): remove all it held."""
        with self.lock:
            cn = self.state.containers.get(cid)
            if cn is None or not (cn.netns or cn.ports or self.live.get(cid)):
                return
            had_ports = bool(cn.ports)
            if cn.netns:
                self._attachment_events(cid, cn, "disconnect")
            self._drop_live(cid, cn)
            if had_ports:
                with contextlib.suppress(FreightError):
                    self._apply_firewall()
            self._save()

    def _drop_live(self, cid: str, cn: ContainerNet) -> None:
        for a in cn.attachments:
            if a.host_ifname:
                links.delete_link(a.host_ifname)
            a.ip = a.ip6 = a.mac = a.ifname = a.host_ifname = a.endpoint_id = ""
        if cn.netns:
            nslib.remove(Path(cn.netns))
            cn.netns = ""
        for s in self.live.pop(cid, _Live()).sockets:
            s.close()
        cn.ports = []

    # connect / disconnect -------------------------------------------------------

    def connect(self, ref: str, container: Container, req: EndpointRequest, files: Path) -> None:
        with self.lock:
            n = self.get(ref)
            cn = self.state.containers.get(container.id)
            if cn is None:
                self.register(container, {})
                cn = self.state.containers[container.id]
            if cn.mode in ("host", "none") or cn.mode.startswith("container:"):
                raise InvalidArgument(
                    "container sharing network namespace with another container or host cannot be connected to any other network"
                    if cn.mode != "none"
                    else "container cannot be disconnected from host network or connected to host network"
                )
            if n.driver != "bridge":
                raise InvalidArgument(
                    "container cannot be disconnected from host network or connected to host network"
                )
            if any(a.network_id == n.id for a in cn.attachments):
                raise AlreadyExists(
                    f"endpoint with name {container.name} already exists in network {n.name}"
                )
            a = self._attachment(n, req)
            cn.attachments.append(a)
            if cn.netns:
                try:
                    with self.helper.netlink(Path(cn.netns)) as inside:
                        names = {x.ifname for x in cn.attachments if x.ifname}
                        ifname = next(f"eth{i}" for i in range(64) if f"eth{i}" not in names)
                        self._plug(container, n, a, inside, ifname, first=len(cn.attachments) == 1)
                    self._write_container_files(container, cn, files)
                except BaseException:
                    if a.host_ifname:
                        links.delete_link(a.host_ifname)
                    cn.attachments.remove(a)
                    raise
            self._save()
            if cn.netns:
                self._event(n, "connect", container.id)

    def disconnect(self, ref: str, container: Container, files: Path, force: bool = False) -> None:
        with self.lock:
            n = self.get(ref)
            cn = self.state.containers.get(container.id)
            a = next((x for x in cn.attachments if x.network_id == n.id), None) if cn else None
            if cn is None or a is None:
                raise Conflict(f"container {container.id} is not connected to network {n.name}")
            if a.host_ifname:
                links.delete_link(a.host_ifname)
            cn.attachments.remove(a)
            if cn.netns:
                self._write_container_files(container, cn, files)
                if cn.ports:
                    self._apply_firewall()
            self._save()
            if cn.netns:
                self._event(n, "disconnect", container.id)

    # DNS and files ----------------------------------------------------------------

    def dns_lookup(self, network_id: str, name: str) -> list[str] | None:
        """Addresses of a running container on the network known as `name`."""
        with self.lock:
            for cid, cn in self.state.containers.items():
                for a in cn.attachments:
                    if a.network_id != network_id or not a.ip:
                        continue
                    try:
                        c = self.lookup(cid)
                    except FreightError:
                        continue
                    names = {c.name.lower(), cid[:12], *(x.lower() for x in a.aliases)}
                    if c.config.hostname:
                        names.add(c.config.hostname.lower())
                    if name in names:
                        return [x for x in (a.ip, a.ip6) if x]
        return None

    def dns_upstreams(self, network_id: str, client: str) -> list[str]:
        with self.lock:
            for cid, cn in self.state.containers.items():
                if any(a.ip == client for a in cn.attachments):
                    with contextlib.suppress(FreightError):
                        dns = self.lookup(cid).host.extra.get("Dns") or []
                        if dns:
                            return list(dns)
        return list(self.cfg.dns) or netfiles.host_nameservers(loopback_ok=True)

    def _write_container_files(self, c: Container, cn: ContainerNet, files: Path) -> None:
        nets = [(self.get(a.network_id), a) for a in cn.attachments]
        own = [(a.ip, a.ip6) for _, a in nets if a.ip]
        user = next((n for n, a in nets if n.user_defined and a.ip), None)
        gateways = [n.gateway for n, _ in nets if n.gateway]
        netfiles.write_files(files, c, own, gateways, user, self.cfg.dns)

    def _save(self) -> None:
        self.state.save(self.state_path)


# pure helpers ---------------------------------------------------------------


def network_mode(host: HostSettings) -> str:
    mode = host.network_mode or "default"
    return "bridge" if mode == "default" else mode


def _no_lookup(ref: str) -> Container:
    raise NotFound(f"No such container: {ref}")


def _match_mappings(
    current: list[PortMapping], wanted: list[portspec.Binding]
) -> tuple[list[PortMapping], list[portspec.Binding]]:
    """(current mappings some wanted binding still describes, bindings left to make)."""
    kept: list[PortMapping] = []
    todo: list[portspec.Binding] = []
    for b in wanted:
        ip = b.host_ip or "0.0.0.0"
        low, high = b.host_port, b.host_port_end or b.host_port
        match = next(
            (
                p
                for p in current
                if p not in kept
                and p.key == b.key
                and p.host_ip == ip
                and (not b.host_port or low <= p.host_port <= high)
            ),
            None,
        )
        if match is None:
            todo.append(b)
        else:
            kept.append(match)
    return kept, todo


def _port_sort_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    return (int(port) if port.isdigit() else 0, proto)


def _check_mac(mac: str) -> None:
    parts = mac.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in p) for p in parts):  # fmt: skip
        raise InvalidArgument(f"invalid MAC address: {mac}")

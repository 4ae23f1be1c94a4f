"""A container's /etc/hosts and /etc/resolv.conf, by Docker's rules.

Pure functions of the container, its addresses and networks, and the host's
/etc/resolv.conf: the embedded DNS server's address on user networks,
`--dns`/`--dns-search`/`--dns-option`, the daemon's `--dns`, the host's
resolvers without loopback ones (which mean nothing inside a container),
`--add-host` (with `host-gateway`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from freight.errors import InvalidArgument
from freight.network import ipam
from freight.services.model import Container
from freight.services.netmodel import Network

HOSTS_HEADER = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
)
FALLBACK_DNS = ["8.8.8.8", "8.8.4.4"]  # Docker's, when the host has only loopback resolvers


def host_nameservers(loopback_ok: bool = False, path: Path = Path("/etc/resolv.conf")) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    servers = [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1]  # fmt: skip
    if not loopback_ok:
        servers = [s for s in servers if not (s.startswith("127.") or s == "::1")]
    return servers


def _host_resolv_extras(path: Path = Path("/etc/resolv.conf")) -> tuple[list[str], list[str]]:
    """(search domains, options) of the host's resolv.conf."""
    search, options = [], []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            fields = line.split()
            if fields and fields[0] in ("search", "domain"):
                search = fields[1:]
            elif fields and fields[0] == "options":
                options += fields[1:]
    return search, options


def resolv_conf(c: Container, user_network: Network | None, daemon_dns: list[str] = ()) -> str:
    """Docker's rules: the embedded DNS on user networks, else --dns or the host's."""
    extra = c.host.extra
    search, options = _host_resolv_extras()
    if extra.get("DnsSearch"):
        search = list(extra["DnsSearch"])
    if extra.get("DnsOptions"):
        options = list(extra["DnsOptions"])
    if user_network is not None:
        servers = [user_network.gateway]
    else:
        servers = list(extra.get("Dns") or daemon_dns) or host_nameservers() or FALLBACK_DNS
    lines = [f"nameserver {s}" for s in servers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(c: Container, own: list[tuple[str, str]], gateways: list[str]) -> str:
    hostname = c.config.hostname or c.id[:12]
    names = hostname + (
        f"\t{c.config.hostname}.{c.config.domainname}" if c.config.domainname else ""
    )
    out = HOSTS_HEADER
    for host in c.host.extra.get("ExtraHosts") or []:
        name, _, addr = host.partition(":")
        if addr == "host-gateway":
            addr = gateways[0] if gateways else "127.0.0.1"
        out += f"{addr}\t{name}\n"
    for ip, ip6 in own:
        out += f"{ip}\t{names}\n"
        if ip6:
            out += f"{ip6}\t{names}\n"
    if not own:
        out += f"127.0.1.1\t{hostname}\n"
    return out


def write_files(
    files: Path,
    c: Container,
    own: list[tuple[str, str]],
    gateways: list[str],
    user: Network | None,
    daemon_dns: list[str] = (),
) -> None:
    files.mkdir(parents=True, exist_ok=True)
    (files / "hosts").write_text(hosts_file(c, own, gateways))
    (files / "resolv.conf").write_text(resolv_conf(c, user, daemon_dns))


def write_host_files(files: Path, c: Container, daemon_dns: list[str] = ()) -> None:
    files.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        (files / "hosts").write_bytes(Path("/etc/hosts").read_bytes())
    (files / "resolv.conf").write_text(resolv_conf(c, None, daemon_dns))


def validate_extra_hosts(values: list[str]) -> None:
    for value in values:
        name, sep, addr = value.partition(":")
        if not sep or not name:
            raise InvalidArgument(f"bad format for add-host: {value!r}")
        if addr != "host-gateway":
            ipam.parse_address(addr, "IP address in add-host")

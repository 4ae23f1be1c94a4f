"""freight's firewall: one nftables table per daemon, rendered whole, applied atomically.

Nothing outside our own table is ever touched (a dockerd on the same host
keeps its iptables chains). The table is re-rendered from the daemon's state
on every change and replaced in one `nft -f -` transaction (create-if-missing,
delete, re-create), so a failure leaves the previous ruleset, never half a one.

    table inet <name>
      prerouting  (nat, dstnat)   addressed to this host → jump ports
      output      (nat, -100)     same for locally made connections, 127.0.0.1 too
      ports                       one DNAT per published port
      postrouting (nat, srcnat)   masquerade: subnet → outside (not --internal),
                                  127.0.0.0/8 → a bridge (loopback publishing; the
                                  bridge has route_localnet=1), DNAT'd traffic leaving
                                  by the bridge it came in on (hairpin)
      forward     (filter)        DNAT'd traffic passes; otherwise no traffic between
                                  two of our bridges; --internal bridges only talk
                                  to themselves

Connections to 127.0.0.1:<published port> are DNAT'd in `output` (with
route_localnet and the masquerade above), as dockerd does with
`userland-proxy: false`: the kernel carries them, so loopback throughput is
the same as any other path, and no proxy process is left to clean up.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from freight.errors import FreightError, Unavailable


@dataclass(frozen=True)
class BridgeRules:
    bridge: str
    subnets: tuple[str, ...]  # CIDRs, v4 and v6
    internal: bool = False


@dataclass(frozen=True)
class Forward:
    """DNAT host_ip:host_port/proto → container_ip:container_port."""

    proto: str
    host_ip: str  # "" or 0.0.0.0 / :: = every local address
    host_port: int
    container_ip: str
    container_port: int


def _family(addr: str) -> str:
    return "ip6" if ":" in addr else "ip"


def _forward_rule(f: Forward) -> str:
    family = _family(f.container_ip)
    match = ""
    if f.host_ip and f.host_ip not in ("0.0.0.0", "::"):
        if _family(f.host_ip) != family:
            return ""
        match = f"{family} daddr {f.host_ip} "
    else:
        match = f"meta nfproto {'ipv6' if family == 'ip6' else 'ipv4'} "
    target = f"[{f.container_ip}]" if family == "ip6" else f.container_ip
    return f"{match}{f.proto} dport {f.host_port} dnat {family} to {target}:{f.container_port}"


def render(table: str, bridges: list[BridgeRules], forwards: list[Forward]) -> str:
    """The whole `table inet <table>` as nft source."""
    q = lambda name: '"' + name + '"'  # noqa: E731 - interface names quoted for nft
    ports = [r for r in (_forward_rule(f) for f in forwards) if r]
    post, fwd = [], ["ct status dnat accept"]
    names = [b.bridge for b in bridges]
    for b in bridges:
        for subnet in b.subnets:
            if not b.internal:
                post.append(f"{_family(subnet)} saddr {subnet} oifname != {q(b.bridge)} masquerade")
        post.append(f"ip saddr 127.0.0.0/8 oifname {q(b.bridge)} masquerade")
        post.append(f"ct status dnat iifname {q(b.bridge)} oifname {q(b.bridge)} masquerade")
        others = [n for n in names if n != b.bridge]
        if b.internal:
            fwd.append(f"iifname {q(b.bridge)} oifname != {q(b.bridge)} drop")
            fwd.append(f"oifname {q(b.bridge)} iifname != {q(b.bridge)} drop")
        elif others:
            fwd.append(f"iifname {q(b.bridge)} oifname {{ {', '.join(map(q, others))} }} drop")
    lines = [
        f"table inet {table} {{",
        "  chain ports {",
        *(f"    {r}" for r in ports),
        "  }",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        "    fib daddr type local jump ports",
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
        "    fib daddr type local jump ports",
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        *(f"    {r}" for r in post),
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        *(f"    {r}" for r in fwd),
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _nft(script: str) -> None:
    nft = shutil.which("nft")
    if nft is None:
        raise Unavailable("nftables (the nft command) is required for container networking")
    result = subprocess.run(
        [nft, "-f", "-"], input=script.encode(), capture_output=True, timeout=30
    )
    if result.returncode != 0:
        raise FreightError(f"nft: {result.stderr.decode(errors='replace').strip()}")


def apply(table: str, bridges: list[BridgeRules], forwards: list[Forward]) -> None:
    """Replace our table with this state in one transaction."""
    _nft(f"table inet {table} {{}}\ndelete table inet {table}\n" + render(table, bridges, forwards))


def remove(table: str) -> None:
    """Drop our table (absent is fine)."""
    _nft(f"table inet {table} {{}}\ndelete table inet {table}\n")


def exists(table: str) -> bool:
    nft = shutil.which("nft")
    if nft is None:
        return False
    result = subprocess.run(
        [nft, "list", "table", "inet", table],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    return result.returncode == 0

"""Published-port specs: `-p [ip:][hostPort:]containerPort[/tcp|udp]` and their bindings.

The same grammar as Docker's (go-connections nat.ParsePortSpec), with its
error wording, used by the CLI (to build ExposedPorts/PortBindings) and by
the daemon (to validate PortBindings from any API client). Pure and light:
the CLI imports it on its hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

from freight.errors import InvalidArgument

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class Binding:
    """One published port: container port/proto ← host ip:port (port 0: pick one)."""

    container_port: int
    proto: str
    host_ip: str = ""
    host_port: int = 0
    host_port_end: int = 0  # a host range for one container port: any free one in it

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


def split_proto(text: str) -> tuple[str, str]:
    port, _, proto = text.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in PROTOCOLS:
        raise InvalidArgument(f"invalid proto: {proto}")
    return port, proto


def parse_range(text: str, what: str) -> tuple[int, int]:
    """`80` or `8000-8010` → (start, end); Docker's "Invalid containerPort: x" otherwise."""
    start_s, dash, end_s = text.partition("-")
    try:
        start = int(start_s)
        end = int(end_s) if dash else start
    except ValueError:
        raise InvalidArgument(f"Invalid {what}: {text}") from None
    if not (0 < start <= 65535 and 0 < end <= 65535) or end < start:
        raise InvalidArgument(f"Invalid {what}: {text}")
    return start, end


def _split_ip(spec: str) -> tuple[str, str]:
    """Peel a leading `ip:` (IPv6 in brackets) off `spec`."""
    if spec.startswith("["):
        ip, sep, rest = spec[1:].partition("]:")
        if not sep:
            raise InvalidArgument(f"invalid IP address: {spec}")
        return ip, rest
    parts = spec.split(":")
    if len(parts) == 3:
        return parts[0], ":".join(parts[1:])
    if len(parts) > 3:
        # An unbracketed IPv6 address: everything but the last two fields.
        return ":".join(parts[:-2]), ":".join(parts[-2:])
    return "", spec


def parse(spec: str) -> list[Binding]:
    """One `-p` value → its bindings (a range gives one per port)."""
    ip, rest = _split_ip(spec)
    if ip:
        _check_ip(ip, spec)
    host_part, sep, container_part = rest.rpartition(":")
    if not sep:
        host_part, container_part = "", rest
    container_text, proto = split_proto(container_part)
    if not container_text:
        raise InvalidArgument(f"No port specified: {spec}<empty>")
    c_start, c_end = parse_range(container_text, "containerPort")
    h_start = h_end = 0
    if host_part:
        h_start, h_end = parse_range(host_part, "hostPort")
    count = c_end - c_start + 1
    if host_part and count > 1 and h_end - h_start + 1 != count:
        raise InvalidArgument(
            f"Invalid ranges specified for container and host Ports: {container_text} and {host_part}"
        )
    if count == 1:
        return [Binding(c_start, proto, ip, h_start, h_end if h_end != h_start else 0)]
    return [Binding(c_start + i, proto, ip, h_start + i if h_start else 0) for i in range(count)]


def _check_ip(ip: str, spec: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidArgument(f"invalid IP address: {ip}") from None


def parse_exposed(spec: str) -> list[str]:
    """`--expose 80`, `--expose 7000-7010/udp` → ["80/tcp"], ["7000/udp", …]."""
    port, proto = split_proto(spec)
    start, end = parse_range(port, "range format for --expose specified")
    return [f"{p}/{proto}" for p in range(start, end + 1)]


def host_port_text(b: Binding) -> str:
    if b.host_port and b.host_port_end:
        return f"{b.host_port}-{b.host_port_end}"
    return str(b.host_port) if b.host_port else ""


def to_api(bindings: list[Binding]) -> tuple[dict[str, dict], dict[str, list[dict[str, str]]]]:
    """(ExposedPorts, PortBindings) as the Engine API carries them."""
    exposed: dict[str, dict] = {}
    port_bindings: dict[str, list[dict[str, str]]] = {}
    for b in bindings:
        exposed[b.key] = {}
        port_bindings.setdefault(b.key, []).append(
            {"HostIp": b.host_ip, "HostPort": host_port_text(b)}
        )
    return exposed, port_bindings


def from_api(port_bindings: dict | None) -> list[Binding]:
    """HostConfig.PortBindings → bindings, validating each entry."""
    out: list[Binding] = []
    for key, entries in (port_bindings or {}).items():
        port_text, proto = split_proto(str(key))
        c_start, c_end = parse_range(port_text, "containerPort")
        if c_start != c_end:
            raise InvalidArgument(f"Invalid containerPort: {port_text}")
        for entry in entries or [{}]:
            ip = (entry or {}).get("HostIp") or ""
            if ip:
                _check_ip(ip, str(key))
            host = (entry or {}).get("HostPort") or ""
            h_start, h_end = parse_range(host, "hostPort") if host else (0, 0)
            out.append(Binding(c_start, proto, ip, h_start, h_end if h_end != h_start else 0))
    return out

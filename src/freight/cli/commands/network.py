"""``network create|ls|inspect|rm|prune|connect|disconnect`` and ``port``: docker's commands.

Owns: their flags, the request bodies they make, and their output (the
``network ls`` table and ``--format``, inspect as an indented JSON array or a
Go template, ``port``'s ``8080/tcp -> 0.0.0.0:49153`` lines).
"""

from __future__ import annotations

from freight.cli.confirm import confirm
from freight.cli.flags import Command, Flag, key_value_map
from freight.cli.formatter import inspect_each, render, resolve_format
from freight.cli.session import CliError, Session
from freight.client import networks as api
from freight.client.http import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CREATE = Command(
    "network create",
    "[OPTIONS] NETWORK",
    "Create a network",
    [
        Flag("attachable", "", help="Enable manual container attachment"),
        Flag("driver", "d", "string", 'Driver to manage the Network (default "bridge")'),
        Flag(
            "gateway", "", "list", "IPv4 or IPv6 Gateway for the master subnet", type_name="strings"
        ),  # fmt: skip
        Flag("internal", "", help="Restrict external access to the network"),
        Flag(
            "ip-range", "", "list", "Allocate container ip from a sub-range", type_name="strings"
        ),  # fmt: skip
        Flag("ipv6", "", help="Enable or disable IPv6 networking"),
        Flag("label", "", "list", "Set metadata on a network"),
        Flag("opt", "o", "list", "Set driver specific options (default map[])", type_name="map"),
        Flag(
            "subnet",
            "",
            "list",
            "Subnet in CIDR format that represents a network segment",
            type_name="strings",
        ),  # fmt: skip
    ],
    min_args=1,
    max_args=1,
)
LS = Command(
    "network ls",
    "[OPTIONS]",
    "List networks",
    [
        Flag(
            "filter",
            "f",
            "list",
            "Provide filter values (e.g. 'driver=bridge')",
            type_name="filter",
        ),  # fmt: skip
        Flag("format", "", "string", "Format output using a custom template"),
        Flag("no-trunc", "", help="Do not truncate the output"),
        Flag("quiet", "q", help="Only display network IDs"),
    ],
    max_args=0,
    aliases=("freight network ls", "freight network list"),
)
INSPECT = Command(
    "network inspect",
    "[OPTIONS] NETWORK [NETWORK...]",
    "Display detailed information on one or more networks",
    [Flag("format", "f", "string", "Format output using a custom template")],
    min_args=1,
)
RM = Command(
    "network rm",
    "NETWORK [NETWORK...]",
    "Remove one or more networks",
    [Flag("force", "f", help="Do not error if the network does not exist")],
    min_args=1,
    aliases=("freight network rm", "freight network remove"),
)
PRUNE = Command(
    "network prune",
    "[OPTIONS]",
    "Remove all unused networks",
    [
        Flag(
            "filter",
            "",
            "list",
            "Provide filter values (e.g. 'until=<timestamp>')",
            type_name="filter",
        ),  # fmt: skip
        Flag("force", "f", help="Do not prompt for confirmation"),
    ],
    max_args=0,
)
CONNECT = Command(
    "network connect",
    "[OPTIONS] NETWORK CONTAINER",
    "Connect a container to a network",
    [
        Flag(
            "alias", "", "list", "Add network-scoped alias for the container", type_name="strings"
        ),  # fmt: skip
        Flag("ip", "", "string", 'IPv4 address (e.g., "172.30.100.104")'),
        Flag("ip6", "", "string", 'IPv6 address (e.g., "2001:db8::33")'),
    ],
    min_args=2,
    max_args=2,
)
DISCONNECT = Command(
    "network disconnect",
    "[OPTIONS] NETWORK CONTAINER",
    "Disconnect a container from a network",
    [Flag("force", "f", help="Force the container to disconnect from a network")],
    min_args=2,
    max_args=2,
)
PORT = Command(
    "port",
    "CONTAINER [PRIVATE_PORT[/PROTO]]",
    "List port mappings or a specific mapping for the container",
    min_args=1,
    max_args=2,
    aliases=("freight container port", "freight port"),
)

LS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
LS_HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}


class NetworkRow:
    """The fields ``network ls --format`` knows (docker's networkContext)."""

    FIELDS = ("CreatedAt", "Driver", "ID", "IPv6", "Internal", "Labels", "Name", "Scope")

    def __init__(self, n: dict[str, Any], trunc: bool = True) -> None:
        self.n, self.trunc = n, trunc

    def ID(self) -> str:  # noqa: N802 - docker's field names are the template API
        ident = self.n.get("Id", "")
        return ident[:12] if self.trunc else ident

    def Name(self) -> str:  # noqa: N802
        return self.n.get("Name", "")

    def Driver(self) -> str:  # noqa: N802
        return self.n.get("Driver", "")

    def Scope(self) -> str:  # noqa: N802
        return self.n.get("Scope", "")

    def IPv6(self) -> str:  # noqa: N802
        return "true" if self.n.get("EnableIPv6") else "false"

    def Internal(self) -> str:  # noqa: N802
        return "true" if self.n.get("Internal") else "false"

    def Labels(self) -> str:  # noqa: N802
        return ",".join(f"{k}={v}" for k, v in sorted((self.n.get("Labels") or {}).items()))

    def Label(self, name: str) -> str:  # noqa: N802
        return (self.n.get("Labels") or {}).get(name, "")

    def CreatedAt(self) -> str:  # noqa: N802
        return self.n.get("Created", "")

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name)() for name in self.FIELDS}


def _filters(items: list[str]) -> dict[str, list[str]]:
    from freight.cli.commands.ps import parse_filters

    return parse_filters(items)


def ipam_config(subnets: list[str], gateways: list[str], ranges: list[str]) -> list[dict]:
    """docker's rule: each --gateway/--ip-range belongs to the --subnet that contains it."""
    import ipaddress

    if (gateways or ranges) and not subnets:
        raise CliError("every ip-range or gateway must have a corresponding subnet")
    configs = []
    for subnet in subnets:
        try:
            net = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            raise CliError(f"invalid CIDR address: {subnet}") from None
        entry: dict[str, Any] = {"Subnet": subnet}
        for gw in gateways:
            try:
                if ipaddress.ip_address(gw) in net:
                    entry["Gateway"] = gw
            except ValueError:
                raise CliError(f"invalid gateway address: {gw}") from None
        for rng in ranges:
            try:
                if ipaddress.ip_network(rng, strict=False).subnet_of(net):  # type: ignore[arg-type]
                    entry["IPRange"] = rng
            except (ValueError, TypeError):
                continue
        configs.append(entry)
    for gw in gateways:
        if not any(c.get("Gateway") == gw for c in configs):
            raise CliError(f"no matching subnet for gateway {gw}")
    for rng in ranges:
        if not any(c.get("IPRange") == rng for c in configs):
            raise CliError(f"no matching subnet for range {rng}")
    return configs


def create_main(session: Session, argv: list[str]) -> int:
    opts, args = CREATE.parse(argv)
    body = {
        "Name": args[0],
        "CheckDuplicate": True,
        "Driver": opts["driver"] or "bridge",
        "Internal": opts["internal"],
        "Attachable": opts["attachable"],
        "EnableIPv6": opts["ipv6"],
        "IPAM": {
            "Driver": "default",
            "Config": ipam_config(opts["subnet"], opts["gateway"], opts["ip_range"]),
            "Options": {},
        },
        "Options": key_value_map(opts["opt"], "-o, --opt"),
        "Labels": key_value_map(opts["label"]),
    }
    try:
        created = api.network_create(session.api, body)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    session.out(created["Id"] + "\n")
    return 0


def ls_main(session: Session, argv: list[str]) -> int:
    opts, _ = LS.parse(argv)
    fmt = resolve_format(opts["format"], LS_TABLE, opts["quiet"])
    try:
        found = api.network_list(session.api, _filters(opts["filter"]))
    except ApiError as exc:
        raise CliError(str(exc)) from None
    rows = [NetworkRow(n, not opts["no_trunc"]) for n in sorted(found, key=lambda n: n["Name"])]
    session.out(render(fmt, rows, LS_HEADERS))
    return 0


def inspect_main(session: Session, argv: list[str]) -> int:
    opts, args = INSPECT.parse(argv)
    return inspect_each(
        session, args, lambda ref: api.network_inspect(session.api, ref), "network", opts["format"]
    )


def rm_main(session: Session, argv: list[str]) -> int:
    opts, args = RM.parse(argv)
    status = 0
    for ref in args:
        try:
            api.network_remove(session.api, ref)
        except ApiError as exc:
            if exc.status == 404 and opts["force"]:
                continue
            session.err(f"{exc}\n")
            status = 1
            continue
        session.out(ref + "\n")
    return status


def prune_main(session: Session, argv: list[str]) -> int:
    opts, _ = PRUNE.parse(argv)
    warning = "WARNING! This will remove all custom networks not used by at least one container."
    if not opts["force"] and not confirm(warning):
        return 0
    try:
        report = api.network_prune(session.api, _filters(opts["filter"]))
    except ApiError as exc:
        raise CliError(str(exc)) from None
    deleted = report.get("NetworksDeleted") or []
    if deleted:
        session.out("Deleted Networks:\n" + "".join(f"{name}\n" for name in deleted) + "\n")
    return 0


def connect_main(session: Session, argv: list[str]) -> int:
    opts, (network, container) = CONNECT.parse(argv)
    endpoint: dict[str, Any] = {"Aliases": opts["alias"] or None}
    if opts["ip"] or opts["ip6"]:
        endpoint["IPAMConfig"] = {"IPv4Address": opts["ip"] or "", "IPv6Address": opts["ip6"] or ""}
    try:
        api.network_connect(session.api, network, container, endpoint)
    except ApiError as exc:
        raise CliError(str(exc)) from None
    return 0


def disconnect_main(session: Session, argv: list[str]) -> int:
    opts, (network, container) = DISCONNECT.parse(argv)
    try:
        api.network_disconnect(session.api, network, container, opts["force"])
    except ApiError as exc:
        raise CliError(str(exc)) from None
    return 0


def port_lines(ports: dict[str, Any], wanted: str | None) -> list[str]:
    """docker port's lines: all mappings, or the host sides of one port."""
    if wanted is not None:
        key = wanted if "/" in wanted else wanted + "/tcp"
        return [f"{b['HostIp']}:{b['HostPort']}" for b in ports.get(key) or []]
    lines = []
    for key in sorted(ports, key=_port_key):
        for b in ports[key] or []:
            lines.append(f"{key} -> {b['HostIp']}:{b['HostPort']}")
    return lines


def _port_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    return (int(port) if port.isdigit() else 0, proto)


def port_main(session: Session, argv: list[str]) -> int:
    _, args = PORT.parse(argv)
    try:
        c = session.api.container_inspect(args[0])
    except ApiError as exc:
        raise CliError(str(exc)) from None
    ports = (c.get("NetworkSettings") or {}).get("Ports") or {}
    wanted = args[1] if len(args) > 1 else None
    lines = port_lines(ports, wanted)
    if wanted is not None and not lines:
        key = wanted if "/" in wanted else wanted + "/tcp"
        raise CliError(f"No public port '{key}' published for {args[0]}")
    session.out("".join(line + "\n" for line in lines))
    return 0

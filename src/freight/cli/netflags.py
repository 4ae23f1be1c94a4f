"""The network options of ``run``/``create`` and what they put in the create request.

Owns: ``-p/--publish``, ``-P/--publish-all``, ``--expose``, ``--network``,
``--network-alias``, ``--ip``, ``--ip6``, ``--mac-address``, ``--add-host``,
``--dns``, ``--dns-search``, ``--dns-option``; they become ExposedPorts,
HostConfig (PortBindings, PublishAllPorts, NetworkMode, Dns…, ExtraHosts) and
NetworkingConfig.EndpointsConfig, as docker's CLI sends them.
"""

from __future__ import annotations

from freight.cli.flags import Flag
from freight.cli.session import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def network_flags() -> list[Flag]:
    return [
        Flag("add-host", "", "list", "Add a custom host-to-IP mapping (host:ip)"),
        Flag("dns", "", "list", "Set custom DNS servers"),
        Flag("dns-option", "", "list", "Set DNS options"),
        Flag("dns-search", "", "list", "Set custom DNS search domains"),
        Flag("expose", "", "list", "Expose a port or a range of ports"),
        Flag("ip", "", "string", 'IPv4 address (e.g., "172.30.100.104")'),
        Flag("ip6", "", "string", 'IPv6 address (e.g., "2001:db8::33")'),
        Flag("mac-address", "", "string", 'Container MAC address (e.g., "92:d0:c6:0a:29:33")'),
        Flag("net", "", "string", "Connect a container to a network", hidden=True),
        Flag("net-alias", "", "list", "Add network-scoped alias for the container", hidden=True),
        Flag("network", "", "string", "Connect a container to a network", type_name="network"),
        Flag("network-alias", "", "list", "Add network-scoped alias for the container"),
        Flag("publish", "p", "list", "Publish a container's port(s) to the host"),
        Flag("publish-all", "P", help="Publish all exposed ports to random ports"),
    ]


def _apply_ports(
    opts: dict[str, Any], exposed: dict[str, dict], bindings: dict[str, list[dict[str, str]]]
) -> None:
    # Imported here: portspec's dataclasses (and enum, re under them) cost ~15 ms of
    # every `run`, and most runs publish nothing.
    from freight.errors import InvalidArgument
    from freight.network import portspec

    try:
        for spec in opts.get("expose") or []:
            exposed.update(dict.fromkeys(portspec.parse_exposed(spec), {}))
        for spec in opts.get("publish") or []:
            e, b = portspec.to_api(portspec.parse(spec))
            exposed.update(e)
            for key, entries in b.items():
                bindings.setdefault(key, []).extend(entries)
    except InvalidArgument as exc:
        raise CliError(str(exc)) from None


def apply_network_options(opts: dict[str, Any], body: dict[str, Any]) -> None:
    """Fill the create request `body` (Config with HostConfig inside) from the options."""
    host = body["HostConfig"]
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    if opts.get("expose") or opts.get("publish"):
        _apply_ports(opts, exposed, bindings)
    if exposed:
        body["ExposedPorts"] = {**body.get("ExposedPorts", {}), **exposed}
    if bindings:
        host["PortBindings"] = bindings
    if opts.get("publish_all"):
        host["PublishAllPorts"] = True
    mode = opts.get("network") or opts.get("net") or "default"
    host["NetworkMode"] = mode
    for flag, key in (
        ("dns", "Dns"),
        ("dns_search", "DnsSearch"),
        ("dns_option", "DnsOptions"),
        ("add_host", "ExtraHosts"),
    ):
        if opts.get(flag):
            host[key] = list(opts[flag])
    _check_hosts(host.get("ExtraHosts") or [])
    aliases = list(opts.get("network_alias") or []) + list(opts.get("net_alias") or [])
    endpoint: dict[str, Any] = {}
    if aliases:
        endpoint["Aliases"] = aliases
    if opts.get("ip") or opts.get("ip6"):
        endpoint["IPAMConfig"] = {"IPv4Address": opts.get("ip") or "", "IPv6Address": opts.get("ip6") or ""}  # fmt: skip
    if opts.get("mac_address"):
        endpoint["MacAddress"] = opts["mac_address"]
    if endpoint:
        if mode in ("host", "none") or mode.startswith("container:"):
            raise CliError(
                "Conflicting options: network-scoped settings need a bridge or user-defined network"
            )
        body["NetworkingConfig"] = {"EndpointsConfig": {mode: endpoint}}


def _check_hosts(values: list[str]) -> None:
    for value in values:
        name, sep, addr = value.partition(":")
        if not sep or not name or not addr:
            raise CliError(
                f'invalid argument "{value}" for "--add-host" flag: bad format for add-host: "{value}"'
            )

"""run/create network options → the create request, as the docker CLI builds it."""

from __future__ import annotations

import pytest

from freight.cli.containerspec import RUN, create_body
from freight.cli.session import CliError


def body_of(*argv: str) -> dict:
    opts, args = RUN.parse([*argv, "busybox"])
    return create_body(opts, args[0], [], detach=True)


def test_publish_expose_network_and_dns() -> None:
    body = body_of(
        "-p", "127.0.0.1:8080:80", "-p", "53/udp", "--expose", "9000-9001", "-P",
        "--network", "backend", "--network-alias", "db", "--ip", "10.1.0.9",
        "--dns", "10.0.0.53", "--dns-search", "example.org", "--add-host", "foo:1.2.3.4",
        "--mac-address", "92:d0:c6:0a:29:33",
    )  # fmt: skip
    assert body["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}, "9001/tcp": {}}
    host = body["HostConfig"]
    assert host["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "", "HostPort": ""}],
    }
    assert host["PublishAllPorts"] is True and host["NetworkMode"] == "backend"
    assert host["Dns"] == ["10.0.0.53"] and host["DnsSearch"] == ["example.org"]
    assert host["ExtraHosts"] == ["foo:1.2.3.4"]
    assert body["NetworkingConfig"] == {
        "EndpointsConfig": {
            "backend": {
                "Aliases": ["db"],
                "IPAMConfig": {"IPv4Address": "10.1.0.9", "IPv6Address": ""},
                "MacAddress": "92:d0:c6:0a:29:33",
            }
        }
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-p", "8080:80x"], "Invalid containerPort: 80x"),
        (["--expose", "abc"], "Invalid range format for --expose specified: abc"),
        (["--add-host", "nocolon"], 'bad format for add-host: "nocolon"'),
        (["--network", "host", "--ip", "10.0.0.1"], "Conflicting options"),
    ],
)
def test_bad_values_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(CliError, match=message):
        body_of(*argv)

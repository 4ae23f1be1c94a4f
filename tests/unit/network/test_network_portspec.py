"""`-p` specs: Docker's grammar and error wording."""

from __future__ import annotations

import pytest

from freight.errors import InvalidArgument
from freight.network.portspec import Binding, from_api, parse, parse_exposed, to_api


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("80", [Binding(80, "tcp")]),
        ("8080:80", [Binding(80, "tcp", "", 8080)]),
        ("127.0.0.1:8080:80/udp", [Binding(80, "udp", "127.0.0.1", 8080)]),
        ("127.0.0.1::80", [Binding(80, "tcp", "127.0.0.1", 0)]),
        ("[::1]:8080:80", [Binding(80, "tcp", "::1", 8080)]),
        ("8000-8001:80-81", [Binding(80, "tcp", "", 8000), Binding(81, "tcp", "", 8001)]),
        ("8000-8010:80", [Binding(80, "tcp", "", 8000, 8010)]),
        ("7000-7001", [Binding(7000, "tcp"), Binding(7001, "tcp")]),
    ],
)
def test_parse(spec: str, want: list[Binding]) -> None:
    assert parse(spec) == want


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("99999", "Invalid containerPort: 99999"),
        ("abc", "Invalid containerPort: abc"),
        ("x:80", "Invalid hostPort: x"),
        ("80/sctpx", "invalid proto: sctpx"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        (
            "8000-8002:80-81",
            "Invalid ranges specified for container and host Ports: 80-81 and 8000-8002",
        ),
    ],
)
def test_parse_errors_name_the_value(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse(spec)
    assert str(info.value) == message


def test_api_round_trip() -> None:
    exposed, bindings = to_api(parse("127.0.0.1:8080:80") + parse("8000-8010:81"))
    assert exposed == {"80/tcp": {}, "81/tcp": {}}
    assert bindings == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
        "81/tcp": [{"HostIp": "", "HostPort": "8000-8010"}],
    }
    assert from_api(bindings) == [
        Binding(80, "tcp", "127.0.0.1", 8080),
        Binding(81, "tcp", "", 8000, 8010),
    ]


def test_from_api_rejects_bad_entries() -> None:
    with pytest.raises(InvalidArgument, match="Invalid hostPort: nope"):
        from_api({"80/tcp": [{"HostPort": "nope"}]})


def test_expose() -> None:
    assert parse_exposed("53/udp") == ["53/udp"]
    assert parse_exposed("7000-7002") == ["7000/tcp", "7001/tcp", "7002/tcp"]

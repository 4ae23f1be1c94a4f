"""IPAM: subnet choice around what is in use, address allocation, Docker's errors."""

from __future__ import annotations

import ipaddress

import pytest

from freight.errors import Conflict, InvalidArgument, Unavailable
from freight.network import ipam

net = ipaddress.ip_network
addr = ipaddress.ip_address


def test_choose_subnet_skips_docker0_and_host_routes() -> None:
    taken = [net("172.17.0.0/16"), net("172.18.5.0/24"), net("0.0.0.0/0")]
    assert ipam.choose_subnet(ipam.DEFAULT_POOLS, taken) == net("172.19.0.0/16")


def test_choose_subnet_from_a_custom_pool() -> None:
    pool = ipam.parse_pool("base=10.10.0.0/16,size=24")
    assert ipam.choose_subnet([pool], [net("10.10.0.0/24")]) == net("10.10.1.0/24")


def test_pool_exhausted() -> None:
    pool = ipam.parse_pool("base=10.10.0.0/24,size=24")
    with pytest.raises(Unavailable, match="non-overlapping"):
        ipam.choose_subnet([pool], [net("10.10.0.0/16")])


@pytest.mark.parametrize("bad", ["10.0.0.0", "10.0.0.300/24", "nonsense", "10.0.0.0/33"])
def test_invalid_cidr_names_the_value(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid CIDR address: " + bad.replace(".", r"\.")):
        ipam.parse_subnet(bad)


def test_subnet_with_host_bits() -> None:
    with pytest.raises(InvalidArgument, match="it should be 10.1.2.0/24"):
        ipam.parse_subnet("10.1.2.3/24")


def test_gateway_outside_subnet() -> None:
    with pytest.raises(InvalidArgument, match="no matching subnet for gateway 10.9.0.1"):
        ipam.check_gateway(net("10.1.0.0/24"), addr("10.9.0.1"))


def test_allocate_skips_gateway_and_used_and_respects_range() -> None:
    subnet, gw = net("10.1.0.0/24"), addr("10.1.0.1")
    assert ipam.allocate(subnet, gw, []) == addr("10.1.0.2")
    assert ipam.allocate(subnet, gw, [addr("10.1.0.2")]) == addr("10.1.0.3")
    assert ipam.allocate(subnet, gw, [], net("10.1.0.128/25")) == addr("10.1.0.128")


def test_allocate_full_subnet() -> None:
    subnet, gw = net("10.1.0.0/30"), addr("10.1.0.1")
    assert ipam.allocate(subnet, gw, []) == addr("10.1.0.2")
    with pytest.raises(Unavailable):
        ipam.allocate(subnet, gw, [addr("10.1.0.2")])


def test_claim_checks_subnet_and_use() -> None:
    subnet, gw = net("10.1.0.0/24"), addr("10.1.0.1")
    assert ipam.claim(subnet, gw, [], addr("10.1.0.9")) == addr("10.1.0.9")
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.claim(subnet, gw, [addr("10.1.0.9")], addr("10.1.0.9"))
    with pytest.raises(InvalidArgument, match="no configured subnet contains IP address"):
        ipam.claim(subnet, gw, [], addr("10.2.0.9"))

"""The nftables table freight renders: its own table only, the rules each feature needs."""

from __future__ import annotations

from freight.network.firewall import BridgeRules, Forward, render


def test_render_nat_isolation_and_ports() -> None:
    text = render(
        "freight-fr0",
        [
            BridgeRules("fr0", ("10.1.0.0/24",)),
            BridgeRules("br-a", ("10.2.0.0/24",)),
            BridgeRules("br-int", ("10.3.0.0/24",), internal=True),
        ],
        [
            Forward("tcp", "0.0.0.0", 49153, "10.1.0.2", 22),
            Forward("udp", "127.0.0.1", 53, "10.1.0.3", 53),
        ],
    )
    assert text.startswith("table inet freight-fr0 {")
    assert 'ip saddr 10.1.0.0/24 oifname != "fr0" masquerade' in text
    assert 'ip saddr 10.3.0.0/24 oifname != "br-int" masquerade' not in text  # --internal
    assert 'iifname "fr0" oifname { "br-a", "br-int" } drop' in text
    assert 'iifname "br-int" oifname != "br-int" drop' in text
    assert "meta nfproto ipv4 tcp dport 49153 dnat ip to 10.1.0.2:22" in text
    assert "ip daddr 127.0.0.1 udp dport 53 dnat ip to 10.1.0.3:53" in text
    assert 'ip saddr 127.0.0.0/8 oifname "fr0" masquerade' in text  # loopback publishing
    # Published ports are reachable across networks: DNAT'd traffic passes before the drops.
    assert text.index("ct status dnat accept") < text.index("drop")


def test_ipv6_forward_only_matches_ipv6_host_ip() -> None:
    text = render(
        "t", [], [Forward("tcp", "::1", 80, "10.1.0.2", 80), Forward("tcp", "", 81, "fd00::2", 80)]
    )
    assert "dport 80 " not in text
    assert "meta nfproto ipv6 tcp dport 81 dnat ip6 to [fd00::2]:80" in text

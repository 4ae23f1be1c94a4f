"""The embedded DNS server: local names answered, others forwarded, failures quick.

Everything runs on 127.0.0.1 with ports the kernel picks."""

from __future__ import annotations

import asyncio
import socket
import time

import dns.message
import dns.rcode
import dns.rdatatype

from freight.network.dns import DnsServer, answer_local

RECORDS = {"web": ["10.5.0.2"], "db": ["10.5.0.3", "fd00::3"]}


def _lookup(key: str, name: str) -> list[str] | None:
    return RECORDS.get(name) if key == "net1" else None


async def _ask(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        await loop.sock_connect(s, ("127.0.0.1", port))
        await loop.sock_sendall(s, dns.message.make_query(name, rdtype).to_wire())
        return dns.message.from_wire(await asyncio.wait_for(loop.sock_recv(s, 4096), 5))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Upstream(asyncio.DatagramProtocol):
    """A fake resolver answering every A query with 192.0.2.10."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        reply = answer_local(dns.message.from_wire(data), ["192.0.2.10"])
        self.transport.sendto(reply.to_wire(), addr)


def test_local_names_forwarding_and_quick_failure() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        upstream, _ = await loop.create_datagram_endpoint(_Upstream, local_addr=("127.0.0.1", 0))
        up_port = upstream.get_extra_info("sockname")[1]
        dead_port = _free_port()
        upstreams = {"net1": [f"127.0.0.1:{up_port}"], "net2": [f"127.0.0.1:{dead_port}"]}
        server = DnsServer(loop, _lookup, lambda key, client: upstreams[key])
        p1, p2 = _free_port(), _free_port()
        server.add("net1", "127.0.0.1", p1)
        server.add("net2", "127.0.0.1", p2)
        await asyncio.sleep(0.05)
        try:
            reply = await _ask(p1, "WEB")
            assert [r.to_text() for r in reply.answer[0]] == ["10.5.0.2"]
            reply = await _ask(p1, "db", "AAAA")
            assert [r.to_text() for r in reply.answer[0]] == ["fd00::3"]
            reply = await _ask(p1, "web", "AAAA")  # ours, no v6: empty, not forwarded
            assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
            reply = await _ask(p1, "example.test")
            assert [r.to_text() for r in reply.answer[0]] == ["192.0.2.10"]
            assert reply.question[0].rdtype == dns.rdatatype.A
            # net2 does not see net1's names, and its upstream is dead: SERVFAIL, fast.
            start = time.monotonic()
            reply = await _ask(p2, "web")
            assert reply.rcode() == dns.rcode.SERVFAIL
            assert time.monotonic() - start < 1.5
        finally:
            server.close()
            upstream.close()

    asyncio.run(scenario())

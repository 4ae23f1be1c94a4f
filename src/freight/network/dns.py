"""The embedded DNS server of user-defined networks (asyncio UDP, dnspython codec).

Each user network gets one UDP socket on its gateway address, port 53; the
containers' /etc/resolv.conf points there. A query is answered from the
network's own records (container names, aliases, short ids) when the name is
one of them; anything else is forwarded to the upstream resolvers (the
host's, or the container's `--dns`), with a short timeout so a host without
resolvers answers SERVFAIL quickly instead of hanging the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

log = logging.getLogger(__name__)

FORWARD_TIMEOUT_S = 2.0
TTL = 600

# (network key, lower-case name without the final dot) → addresses, or None: not ours.
Lookup = Callable[[str, str], list[str] | None]
# (network key, client address) → upstream resolver addresses.
Upstreams = Callable[[str, str], list[str]]


def answer_local(query: dns.message.Message, addresses: list[str]) -> dns.message.Message:
    """A reply with the A/AAAA records of `addresses` matching the question's type."""
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.RA
    question = query.question[0]
    want = "AAAA" if question.rdtype == dns.rdatatype.AAAA else "A"
    matching = [a for a in addresses if (":" in a) == (want == "AAAA")]
    if matching and question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        reply.answer.append(
            dns.rrset.from_text_list(question.name, TTL, dns.rdataclass.IN, want, matching)
        )
    return reply


def failure(query: dns.message.Message, rcode: int = dns.rcode.SERVFAIL) -> dns.message.Message:
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.RA
    reply.set_rcode(rcode)
    return reply


async def forward(wire: bytes, upstreams: list[str], timeout: float = FORWARD_TIMEOUT_S) -> bytes:
    """Send the query to each upstream in turn; the first answer wins. Raises TimeoutError."""
    loop = asyncio.get_running_loop()
    for server in upstreams:
        host, port = _server_address(server)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (host, port))
                await loop.sock_sendall(sock, wire)
                return await asyncio.wait_for(loop.sock_recv(sock, 65535), timeout)
            except (OSError, TimeoutError):
                continue
    raise TimeoutError("no upstream resolver answered")


def _server_address(server: str) -> tuple[str, int]:
    """`1.2.3.4`, `1.2.3.4:5353`, `::1` or `[::1]:5353` → (host, port)."""
    if server.startswith("["):
        host, _, port = server[1:].partition("]:")
        return host, int(port or 53)
    if server.count(":") == 1:
        host, _, port = server.partition(":")
        return host, int(port)
    return server, 53


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer, key: str) -> None:
        self.server, self.key = server, key
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        task = asyncio.get_running_loop().create_task(self.server.handle(self.key, data, addr[0]))
        self.server.pending.add(task)
        task.add_done_callback(lambda t: self._reply(t, addr))

    def _reply(self, task: asyncio.Task, addr: tuple) -> None:
        self.server.pending.discard(task)
        if task.cancelled() or task.exception() is not None or self.transport is None:
            return
        reply = task.result()
        if reply:
            self.transport.sendto(reply, addr)


@dataclass
class _Listener:
    transport: asyncio.DatagramTransport


class DnsServer:
    """Thread-safe `add`/`remove`; answers run on the daemon's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, lookup: Lookup, upstreams: Upstreams):
        self.loop = loop
        self.lookup = lookup
        self.upstreams = upstreams
        self.listeners: dict[str, _Listener] = {}
        self.pending: set[asyncio.Task] = set()

    async def handle(self, key: str, data: bytes, client: str) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except Exception:  # dnspython raises many kinds for malformed packets
            return None
        if len(query.question) != 1:
            return failure(query, dns.rcode.FORMERR).to_wire()
        name = query.question[0].name.to_text(omit_final_dot=True).lower()
        addresses = self.lookup(key, name)
        if addresses is not None:
            return answer_local(query, addresses).to_wire()
        upstreams = self.upstreams(key, client)
        if not upstreams:
            return failure(query).to_wire()
        try:
            return await forward(data, upstreams)
        except TimeoutError:
            return failure(query).to_wire()

    def add(self, key: str, address: str, port: int = 53) -> None:
        """Listen for network `key` on address:port (bound here, served on the loop)."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        fut = asyncio.run_coroutine_threadsafe(self._serve(key, sock), self.loop)
        if not self._on_loop():
            fut.result(5)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    async def _serve(self, key: str, sock: socket.socket) -> None:
        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: _Protocol(self, key), sock=sock
        )
        old = self.listeners.pop(key, None)
        self.listeners[key] = _Listener(transport)
        if old is not None:
            old.transport.close()

    def remove(self, key: str) -> None:
        listener = self.listeners.pop(key, None)
        if listener is not None:
            self.loop.call_soon_threadsafe(listener.transport.close)

    def close(self) -> None:
        for key in list(self.listeners):
            self.remove(key)
        for task in list(self.pending):
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(task.cancel)

"""The DNS server: UDP and TCP on sockets it is given, cluster answers, forwarding."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Sequence

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode

from kubeling_dns.resolver import ClusterResolver

log = logging.getLogger(__name__)

__all__ = ["DnsServer", "parse_upstream"]


def parse_upstream(value: str) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:5353`` or ``[::1]:53`` -> (address, port)."""
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
        return host.rstrip("]"), int(port or 53)
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, int(port)
    return value, 53


class DnsServer:
    """Serves :class:`ClusterResolver` answers and forwards other names to ``upstream``."""

    def __init__(self, resolver: ClusterResolver, *, upstream: Sequence[str] = (),
                 forward_timeout: float = 2.0) -> None:
        self.resolver = resolver
        self.upstream = [parse_upstream(u) for u in upstream]
        self.forward_timeout = forward_timeout
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.AbstractServer] = []
        self.queries = 0
        self._pending: set[asyncio.Future[None]] = set()

    async def start(self, udp: socket.socket | None = None,
                    tcp: socket.socket | None = None) -> None:
        """Serve on already bound sockets (a listening one for TCP)."""
        loop = asyncio.get_running_loop()
        if udp is not None:
            server = self

            class Protocol(asyncio.DatagramProtocol):
                def connection_made(self, transport: asyncio.BaseTransport) -> None:
                    self.transport = transport

                def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                    task = asyncio.ensure_future(server._reply_udp(self.transport, data, addr))
                    server._pending.add(task)
                    task.add_done_callback(server._pending.discard)

            transport, _ = await loop.create_datagram_endpoint(Protocol, sock=udp)
            self._udp.append(transport)  # type: ignore[arg-type]
        if tcp is not None:
            self._tcp.append(await asyncio.start_server(self._serve_tcp, sock=tcp))

    async def close(self) -> None:
        for transport in self._udp:
            transport.close()
        for server in self._tcp:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._udp.clear()
        self._tcp.clear()

    async def _reply_udp(self, transport: asyncio.BaseTransport, data: bytes,
                         addr: tuple[str, int]) -> None:
        reply = await self.handle(data, tcp=False)
        if reply is not None and not transport.is_closing():
            transport.sendto(reply, addr)  # type: ignore[attr-defined]

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                reply = await self.handle(data, tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(self, data: bytes, *, tcp: bool) -> bytes | None:
        """The wire-format reply to one wire-format query (None: drop it)."""
        self.queries += 1
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None
        if query.flags & dns.flags.QR:
            return None
        try:
            response = self.resolver.answer(query)
        except Exception:
            log.exception("answering %s failed", query.question)
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
        if response is None:
            return await self.forward(query, data, tcp=tcp)
        limit = 65535 if tcp else max(512, query.payload if query.edns >= 0 else 512)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.additional.clear()
            response.flags |= dns.flags.TC
            return response.to_wire()

    async def forward(self, query: dns.message.Message, data: bytes, *, tcp: bool) -> bytes:
        """Ask the upstream resolvers; SERVFAIL when none answers."""
        for host, port in self.upstream:
            try:
                if tcp:
                    reply = await dns.asyncquery.tcp(query, host, port=port,
                                                     timeout=self.forward_timeout)
                else:
                    reply = await dns.asyncquery.udp(query, host, port=port,
                                                     timeout=self.forward_timeout,
                                                     ignore_unexpected=True)
                return reply.to_wire()
            except (dns.exception.DNSException, OSError) as exc:
                log.debug("upstream %s:%s failed: %s", host, port, exc)
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.SERVFAIL)
        return response.to_wire()

"""``ProxierContract``: the behaviour every proxier plugin must show, with real traffic.

A proxier plugin's tests subclass :class:`ProxierContract` and implement
:meth:`~ProxierContract.make_proxier`, returning a proxier that programs the network
namespace it is given.  The suite builds a small routed network of namespaces
(:class:`NetnsLab`) — a *node* namespace where the proxier's rules live, *pods* behind veth
pairs (backends that answer with their name and the peer address they saw), a client pod
and an *outside* client — and checks with real connections: cluster IPs spread over ready
endpoints, node ports, REJECT without endpoints, unready endpoints dropped while existing
connections to terminating ones survive, ClientIP affinity, hairpin traffic,
``externalTrafficPolicy: Local`` keeping the client's address, and cleanup.

Nothing here touches the host's own namespace: every address lives in namespaces the
suite creates (``kl-test-<random>-*``) and deletes.  Needs root, ``ip`` and ``nsenter``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import pytest

from kubeling.proxy import Endpoint, Proxier, ProxyState, ServicePort, ServicePortName

__all__ = ["NetnsLab", "ProxierContract", "in_netns", "lab_available"]

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
NODE_IP = "10.10.0.1"
OUTSIDE_IP = "10.20.0.2"
_libc = ctypes.CDLL(None, use_errno=True)


def lab_available() -> str | None:
    """Why the lab cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables)"
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread that has entered network namespace ``netns`` (sockets it
    creates stay in that namespace)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns} failed")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


class NetnsLab:
    """A node namespace with pods and an outside client, all routed through the node.

    Addresses: the node is ``10.10.0.1`` (on its loopback; its default route leads outside),
    pod ``i`` is ``10.244.<i>.2`` behind a veth whose node end is ``10.244.<i>.1``, the
    outside client is ``10.20.0.2`` on a veth to the node's ``10.20.0.1``.
    """

    def __init__(self) -> None:
        self.prefix = f"kl-test-{secrets.token_hex(3)}"
        self.node = f"{self.prefix}-node"
        self.outside = f"{self.prefix}-out"
        self.pods: dict[str, str] = {}
        """pod name -> IP."""
        self.namespaces: list[str] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._udp: list[asyncio.DatagramTransport] = []

    # -- building -------------------------------------------------------------------------

    def _netns(self, name: str) -> str:
        _sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        _sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def create(self) -> NetnsLab:
        node = self._netns(self.node)
        _sh("ip", "-n", node, "addr", "add", f"{NODE_IP}/32", "dev", "lo")
        _sh("ip", "netns", "exec", node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        out = self._netns(self.outside)
        _sh("ip", "link", "add", "kl-out0", "netns", node, "type", "veth", "peer", "name",
            "eth0", "netns", out)
        _sh("ip", "-n", node, "addr", "add", "10.20.0.1/24", "dev", "kl-out0")
        _sh("ip", "-n", node, "link", "set", "kl-out0", "up")
        _sh("ip", "-n", out, "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
        _sh("ip", "-n", out, "link", "set", "eth0", "up")
        _sh("ip", "-n", out, "route", "add", "default", "via", "10.20.0.1")
        # the node's default route points outside, as a real node's does
        _sh("ip", "-n", node, "route", "add", "default", "via", OUTSIDE_IP)
        return self

    def add_pod(self, name: str) -> str:
        """A pod namespace routed through the node; returns its IP."""
        index = len(self.pods) + 1
        ns = self._netns(f"{self.prefix}-{name}")
        ip = f"10.244.{index}.2"
        veth = f"kl-veth{index}"
        _sh("ip", "link", "add", veth, "netns", self.node, "type", "veth", "peer", "name",
            "eth0", "netns", ns)
        _sh("ip", "-n", self.node, "addr", "add", f"10.244.{index}.1/24", "dev", veth)
        _sh("ip", "-n", self.node, "link", "set", veth, "up")
        _sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        _sh("ip", "-n", ns, "link", "set", "eth0", "up")
        _sh("ip", "-n", ns, "route", "add", "default", "via", f"10.244.{index}.1")
        self.pods[name] = ip
        return ip

    def pod_netns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    async def serve(self, name: str, port: int = 8080) -> None:
        """A TCP backend in pod ``name``: each connection gets ``<name> <peer ip>\\n``; a
        connection that sends ``hold`` stays open and answers every line with the name."""
        ip = self.pods[name]

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ip, port))
            sock.listen(512)
            sock.setblocking(False)
            return sock

        sock = in_netns(self.pod_netns(name), make)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")[0]
            try:
                writer.write(f"{name} {peer}\n".encode())
                await writer.drain()
                while line := await reader.readline():
                    writer.write(f"{name} {line.decode().strip()}\n".encode())
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        self._servers.append(await asyncio.start_server(handle, sock=sock))

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()

    # -- traffic --------------------------------------------------------------------------

    def request(self, netns: str, ip: str, port: int, *, timeout: float = 2.0,
                source: str | None = None) -> str:
        """One connection from ``netns``: the backend's first line (``name peer``).

        :raises OSError: refused, unreachable or timed out.
        """
        def go() -> str:
            with socket.create_connection((ip, port), timeout=timeout,
                                          source_address=(source, 0) if source else None) as s:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(256)
                    if not chunk:
                        break
                    data += chunk
                return data.decode().strip()

        return in_netns(netns, go)

    def spread(self, netns: str, ip: str, port: int, count: int) -> collections.Counter[str]:
        """``count`` connections from ``netns``; how many each backend answered."""
        def go() -> collections.Counter[str]:
            seen: collections.Counter[str] = collections.Counter()
            for _ in range(count):
                with socket.create_connection((ip, port), timeout=2.0) as s:
                    data = s.recv(256).decode()
                    seen[data.split()[0] if data else ""] += 1
            return seen

        return in_netns(netns, go)

    def hold(self, netns: str, ip: str, port: int) -> Any:
        """An open connection (in ``netns``) to keep talking over: ``.ask()`` sends a line
        and returns the backend name that answers; ``.close()``."""
        def go() -> socket.socket:
            s = socket.create_connection((ip, port), timeout=2.0)
            s.recv(256)
            return s

        sock = in_netns(netns, go)

        class Held:
            backend = ""

            @staticmethod
            def ask() -> str:
                sock.sendall(b"ping\n")
                return sock.recv(256).decode().split()[0]

            @staticmethod
            def close() -> None:
                sock.close()

        return Held()


@contextlib.contextmanager
def lab_context() -> Iterator[NetnsLab]:
    lab = NetnsLab()
    try:
        yield lab.create()
    finally:
        for ns in reversed(lab.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def service(name: str, ip: str, *, port: int = 80, node_port: int = 0,
            namespace: str = "default", affinity: int = 0, external_local: bool = False,
            internal_local: bool = False, protocol: str = "TCP",
            port_name: str = "") -> ServicePort:
    """A :class:`ServicePort` for tests."""
    return ServicePort(name=ServicePortName(namespace, name, port_name, protocol),
                       cluster_ips=(ip,), port=port, protocol=protocol, node_port=node_port,
                       affinity_timeout=affinity, external_local=external_local,
                       internal_local=internal_local)


def endpoints(lab: NetnsLab, *names: str, port: int = 8080, unready: tuple[str, ...] = (),
              terminating: tuple[str, ...] = (), local: tuple[str, ...] | None = None
              ) -> tuple[Endpoint, ...]:
    """Endpoints for pods of the lab (all local to the node unless ``local`` says)."""
    return tuple(Endpoint(ip=lab.pods[n], port=port, ready=n not in unready and
                          n not in terminating,
                          serving=n not in unready, terminating=n in terminating,
                          local=True if local is None else n in local, node_name="node-a")
                 for n in names)


def state(*pairs: tuple[ServicePort, tuple[Endpoint, ...]]) -> ProxyState:
    return ProxyState({p.name: p for p, _ in pairs}, {p.name: e for p, e in pairs})


class ProxierContract:
    """Subclass in a proxier plugin's tests and implement :meth:`make_proxier`."""

    node_name = "node-a"

    def make_proxier(self, netns: str) -> Proxier:
        """A proxier that programs network namespace ``netns`` (named, under
        ``/run/netns``)."""
        raise NotImplementedError

    async def rules_present(self, proxier: Proxier, netns: str) -> bool:
        """Whether any rule of this proxier is installed in ``netns`` (for the cleanup
        test); override for other dataplanes."""
        out = subprocess.run(["ip", "netns", "exec", netns, "iptables-save"],
                             capture_output=True, text=True).stdout
        return "KUBE-" in out

    # -- fixtures -------------------------------------------------------------------------

    @pytest.fixture
    async def lab(self) -> AsyncIterator[NetnsLab]:
        why = lab_available()
        if why:
            pytest.skip(why)
        lab = NetnsLab().create()
        try:
            for name in ("b1", "b2", "b3", "client"):
                lab.add_pod(name)
            for name in ("b1", "b2", "b3"):
                await lab.serve(name)
            yield lab
        finally:
            await lab.close()

    @pytest.fixture
    async def proxier(self, lab: NetnsLab) -> AsyncIterator[Proxier]:
        proxier = self.make_proxier(lab.node)
        await proxier.start(self.node_name)
        try:
            yield proxier
        finally:
            with contextlib.suppress(Exception):
                await proxier.cleanup()
            await proxier.close()

    @staticmethod
    async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- the contract ---------------------------------------------------------------------

    async def test_cluster_ip_spreads_over_every_backend(self, lab: NetnsLab,
                                                         proxier: Proxier) -> None:
        web = service("web", "10.96.0.50")
        await proxier.sync(state((web, endpoints(lab, "b1", "b2", "b3"))))
        for netns in (lab.pod_netns("client"), lab.node):  # from a pod and from the node
            # The choice is random: one batch of 300 lands within +-15 % of 100 per backend
            # only ~82 % of the time, so up to three batches are drawn and one must.  A
            # wrong split (say 1/3, 2/9, 4/9) passes a batch well under 1 % of the time.
            batches = []
            for _ in range(3):
                seen = await self.call(lab.spread, netns, "10.96.0.50", 80, 300)
                assert set(seen) == {"b1", "b2", "b3"}, seen
                batches.append(seen)
                if all(85 <= seen[name] <= 115 for name in ("b1", "b2", "b3")):
                    break
            else:
                raise AssertionError(f"no batch of 300 within 100 +- 15 each: {batches}")

    async def test_node_port_from_outside_and_from_the_node(self, lab: NetnsLab,
                                                            proxier: Proxier) -> None:
        web = service("web", "10.96.0.51", node_port=30080)
        await proxier.sync(state((web, endpoints(lab, "b1", "b2"))))
        for netns in (lab.outside, lab.node):
            answer = await self.call(lab.request, netns, NODE_IP, 30080)
            assert answer.split()[0] in ("b1", "b2")
        # external traffic to a Cluster-policy node port is masqueraded
        answer = await self.call(lab.request, lab.outside, "10.20.0.1", 30080)
        assert answer.split()[1] != OUTSIDE_IP

    async def test_no_endpoints_is_refused_at_once(self, lab: NetnsLab,
                                                   proxier: Proxier) -> None:
        empty = service("empty", "10.96.0.52", node_port=30081)
        await proxier.sync(state((empty, ())))
        for netns, ip, port in ((lab.pod_netns("client"), "10.96.0.52", 80),
                                (lab.outside, NODE_IP, 30081)):
            started = time.monotonic()
            with pytest.raises(ConnectionRefusedError):
                await self.call(lab.request, netns, ip, port, timeout=3.0)
            assert time.monotonic() - started < 1.0

    async def test_unready_endpoint_gets_no_new_connections_but_keeps_old_ones(
            self, lab: NetnsLab, proxier: Proxier) -> None:
        web = service("web", "10.96.0.53")
        await proxier.sync(state((web, endpoints(lab, "b1", "b2"))), None)
        held = []
        for _ in range(20):  # an open connection to each backend
            conn = await self.call(lab.hold, lab.pod_netns("client"), "10.96.0.53", 80)
            conn.backend = await self.call(conn.ask)
            held.append(conn)
        to_b1 = next(c for c in held if c.backend == "b1")
        started = time.monotonic()
        await proxier.sync(state((web, endpoints(lab, "b1", "b2", terminating=("b1",)))),
                           frozenset({"default/web"}))
        assert time.monotonic() - started < 1.0
        seen = await self.call(lab.spread, lab.pod_netns("client"), "10.96.0.53", 80, 40)
        assert set(seen) == {"b2"}, seen
        assert await self.call(to_b1.ask) == "b1"  # the existing connection still works
        # with no ready endpoint left, serving terminating ones take traffic
        await proxier.sync(state((web, endpoints(lab, "b1", "b2", terminating=("b1",),
                                                 unready=("b2",)))),
                           frozenset({"default/web"}))
        seen = await self.call(lab.spread, lab.pod_netns("client"), "10.96.0.53", 80, 10)
        assert set(seen) == {"b1"}, seen
        for conn in held:
            conn.close()

    async def test_client_ip_affinity_sticks(self, lab: NetnsLab, proxier: Proxier) -> None:
        sticky = service("sticky", "10.96.0.54", affinity=60)
        await proxier.sync(state((sticky, endpoints(lab, "b1", "b2", "b3"))))
        seen = await self.call(lab.spread, lab.pod_netns("client"), "10.96.0.54", 80, 30)
        assert len(seen) == 1, seen
        seen_node = await self.call(lab.spread, lab.node, "10.96.0.54", 80, 30)
        assert len(seen_node) == 1, seen_node

    async def test_hairpin_to_itself(self, lab: NetnsLab, proxier: Proxier) -> None:
        solo = service("solo", "10.96.0.55")
        await proxier.sync(state((solo, endpoints(lab, "b1"))))
        answer = await self.call(lab.request, lab.pod_netns("b1"), "10.96.0.55", 80)
        assert answer.split()[0] == "b1"
        assert answer.split()[1] != lab.pods["b1"]  # masqueraded, or the reply would be lost

    async def test_external_traffic_policy_local(self, lab: NetnsLab,
                                                 proxier: Proxier) -> None:
        local = service("local", "10.96.0.56", node_port=30082, external_local=True)
        await proxier.sync(state((local, endpoints(lab, "b1", "b2", local=("b1",)))))
        for _ in range(10):
            answer = await self.call(lab.request, lab.outside, NODE_IP, 30082)
            name, peer = answer.split()
            assert name == "b1"  # only this node's endpoint
            assert peer == OUTSIDE_IP  # and the client's address is kept
        # no local endpoint: external traffic is dropped, cluster traffic still flows
        await proxier.sync(state((local, endpoints(lab, "b1", "b2", local=()))),
                           frozenset({"default/local"}))
        with pytest.raises(OSError):
            await self.call(lab.request, lab.outside, NODE_IP, 30082, timeout=0.5)
        answer = await self.call(lab.request, lab.pod_netns("client"), "10.96.0.56", 80)
        assert answer.split()[0] in ("b1", "b2")

    async def test_services_come_and_go(self, lab: NetnsLab, proxier: Proxier) -> None:
        a = service("a", "10.96.0.57")
        b = service("b", "10.96.0.58")
        await proxier.sync(state((a, endpoints(lab, "b1")), (b, endpoints(lab, "b2"))))
        assert (await self.call(lab.request, lab.node, "10.96.0.58", 80)).startswith("b2")
        await proxier.sync(state((a, endpoints(lab, "b1"))), frozenset({"default/b"}))
        with pytest.raises(OSError):
            await self.call(lab.request, lab.node, "10.96.0.58", 80, timeout=0.5)
        assert (await self.call(lab.request, lab.node, "10.96.0.57", 80)).startswith("b1")
        # a full sync (a restarted proxy) converges too
        await proxier.sync(state((b, endpoints(lab, "b3"))), None)
        assert (await self.call(lab.request, lab.node, "10.96.0.58", 80)).startswith("b3")
        with pytest.raises(OSError):
            await self.call(lab.request, lab.node, "10.96.0.57", 80, timeout=0.5)

    async def test_cleanup_removes_everything(self, lab: NetnsLab, proxier: Proxier) -> None:
        web = service("web", "10.96.0.59", node_port=30083)
        await proxier.sync(state((web, endpoints(lab, "b1"))))
        assert await self.rules_present(proxier, lab.node)
        await proxier.cleanup()
        assert not await self.rules_present(proxier, lab.node)
        with pytest.raises(OSError):
            await self.call(lab.request, lab.node, "10.96.0.59", 80, timeout=0.5)

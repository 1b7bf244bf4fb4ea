"""Cluster DNS from inside a pod: the resolv.conf kubeling.dnsconfig builds, queries to the
kube-dns Service IP carried by the iptables proxy to the DNS server, real glibc lookups."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubeling.client.resources import ENDPOINTSLICES, SERVICES
from kubeling.config import load_config
from kubeling.context import Context
from kubeling.dnsconfig import pod_resolv_conf
from kubeling.proxy import ProxyComponent
from kubeling.testing.cluster import api_server
from kubeling.testing.proxier_contract import NODE_IP, NetnsLab, in_netns, lab_available

pytest.importorskip("kubeling_proxy_iptables")
pytest.importorskip("kubeling_dns")
from kubeling_dns.hooks import ClusterDnsSettings, DnsComponent, bind_sockets
from kubeling_dns.server import DnsServer
from kubeling_proxy_iptables import IptablesProxier, IptablesSettings

pytestmark = pytest.mark.skipif(lab_available() is not None, reason=str(lab_available()))


class Upstream:
    """The host's resolver, standing in: every A query gets 192.0.2.77."""

    def answer(self, query: Any) -> Any:
        import dns.message
        import dns.rrset

        response = dns.message.make_response(query)
        q = query.question[0]
        if q.rdtype == 1:
            response.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", "192.0.2.77"))
        return response


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[Any]:
    lab = NetnsLab().create()
    resolv_dir = Path("/etc/netns") / lab.pod_netns("client")
    tasks: list[asyncio.Task[Any]] = []
    upstream = DnsServer(Upstream())  # type: ignore[arg-type]
    try:
        lab.add_pod("b1")
        lab.add_pod("client")
        await lab.serve("b1")
        await upstream.start(*bind_sockets("127.0.0.1", 0))
        upstream_port = upstream._udp[0].get_extra_info("sockname")[1]
        async with api_server(tmp_path) as api:
            ctx = Context(config=load_config({"proxy": {"min_sync_period_seconds": 0.2}}),
                          host=api.host)
            ctx.server = api.server
            proxier = IptablesProxier(IptablesSettings(netns=lab.node))
            proxy = ProxyComponent(ctx, proxier, node_name="node-a")
            # the DNS server listens in the node's namespace, on the node's address
            sockets = in_netns(lab.node, lambda: bind_sockets(NODE_IP, 10053))
            dns_component = DnsComponent(
                ctx, ClusterDnsSettings(upstream=[f"127.0.0.1:{upstream_port}"]),
                node_name="node-a", sockets=sockets, endpoint_address=NODE_IP)
            tasks = [asyncio.create_task(proxy.run()), asyncio.create_task(dns_component.run())]
            await asyncio.wait_for(dns_component.ready.wait(), 10)
            # the pod's resolv.conf, as a runtime writes it (ip netns exec mounts it)
            resolv_dir.mkdir(parents=True, exist_ok=True)
            pod = {"metadata": {"name": "client", "namespace": "default"}, "spec": {}}
            (resolv_dir / "resolv.conf").write_text(pod_resolv_conf(pod))
            try:
                yield api, lab
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await dns_component.close()
                await proxier.cleanup()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ctx.close(), 5)
    finally:
        await upstream.close()
        shutil.rmtree(resolv_dir, ignore_errors=True)
        await lab.close()


def lookup(lab: NetnsLab, name: str) -> str:
    """``getaddrinfo`` inside the client pod (glibc, its resolv.conf, search paths)."""
    code = ("import socket,sys\n"
            "print(socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET)[0][4][0])")
    out = subprocess.run(["ip", "netns", "exec", lab.pod_netns("client"), sys.executable,
                          "-c", code, name], capture_output=True, text=True, timeout=20)
    if out.returncode != 0:
        raise LookupError(out.stderr.strip().splitlines()[-1] if out.stderr else name)
    return out.stdout.strip()


async def eventually(fn: Any, *args: Any, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await asyncio.to_thread(fn, *args)
        except (LookupError, OSError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_names_resolve_inside_a_pod(world: Any) -> None:
    api, lab = world
    c = api.client()
    web = await c.create(SERVICES, {"metadata": {"name": "web"}, "spec": {
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}, "default")
    await c.create(ENDPOINTSLICES, {
        "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [lab.pods["b1"]], "conditions": {"ready": True}}]},
        "default")
    ip = web["spec"]["clusterIP"]
    # the short name, through the search path default.svc.cluster.local
    assert await eventually(lookup, lab, "web") == ip
    assert await asyncio.to_thread(lookup, lab, "web.default") == ip
    assert await asyncio.to_thread(lookup, lab, "web.default.svc.cluster.local") == ip
    assert await asyncio.to_thread(lookup, lab, "kubernetes.default") == "10.96.0.1"
    assert await asyncio.to_thread(lookup, lab, "10-244-9-9.default.pod.cluster.local") == \
        "10.244.9.9"
    # names outside the cluster go to the host's resolvers
    assert await asyncio.to_thread(lookup, lab, "www.example.org") == "192.0.2.77"
    with pytest.raises(LookupError):
        await asyncio.to_thread(lookup, lab, "nope.default.svc.cluster.local")
    # and the name leads to the Service: connect by name from inside the pod
    code = ("import socket\n"
            "s = socket.create_connection(('web', 80), timeout=3)\n"
            "print(s.recv(100).decode().split()[0])")
    out = await asyncio.to_thread(subprocess.run, [
        "ip", "netns", "exec", lab.pod_netns("client"), sys.executable, "-c", code],
        capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "b1", out.stderr

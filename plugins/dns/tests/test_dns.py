"""Cluster DNS against a real API server, queried over UDP and TCP on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from kubeling_dns.hooks import ClusterDnsSettings, DnsComponent, bind_sockets
from kubeling_dns.server import DnsServer

from kubeling.client import ApiError
from kubeling.client.resources import ENDPOINTSLICES, SERVICES
from kubeling.config import load_config
from kubeling.context import Context
from kubeling.testing.cluster import api_server

DOMAIN = "cluster.local"


class FakeUpstream:
    """Answers every A query with 192.0.2.77 (stands in for the host's resolvers)."""

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        q = query.question[0]
        if q.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", "192.0.2.77"))
        return response


@pytest.fixture
async def upstream() -> AsyncIterator[int]:
    server = DnsServer(FakeUpstream())  # type: ignore[arg-type]
    udp, tcp = bind_sockets("127.0.0.1", 0)
    port = udp.getsockname()[1]
    await server.start(udp, tcp)
    yield port
    await server.close()


@pytest.fixture
async def cluster(tmp_path: Path, upstream: int) -> AsyncIterator[Any]:
    async with api_server(tmp_path) as api:
        ctx = Context(config=load_config({}), host=api.host)
        ctx.server = api.server
        sockets = bind_sockets("127.0.0.1", 0)
        settings = ClusterDnsSettings(upstream=[f"127.0.0.1:{upstream}"])
        component = DnsComponent(ctx, settings, node_name="node-a", sockets=sockets,
                                 endpoint_address="192.0.2.10")
        task = asyncio.create_task(component.run())
        await asyncio.wait_for(component.ready.wait(), 10)
        try:
            yield api, component, sockets[0].getsockname()[1]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await component.close()
            # (a bounded wait: a rare hang stopping informers is reported to their owner)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.close(), 5)


async def ask(port: int, name: str, rdtype: str = "A", *, tcp: bool = False
              ) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(query, "127.0.0.1", port=port, timeout=3)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=3)


def values(response: dns.message.Message, rdtype: int | None = None) -> list[str]:
    return sorted(r.to_text() for rrset in response.answer for r in rrset
                  if rdtype is None or rrset.rdtype == rdtype)


async def until(check: Any, timeout: float = 5.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("not in time")


def slice_for(service: str, *eps: tuple[str, bool, str | None], port: int = 8080
              ) -> dict[str, Any]:
    return {"metadata": {"name": f"{service}-1",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready},
                           **({"hostname": host} if host else {})}
                          for ip, ready, host in eps]}


async def test_kube_dns_service_and_endpoint_are_published(cluster: Any) -> None:
    api, component, _ = cluster
    c = api.client()
    svc = await c.get(SERVICES, "kube-dns", "kube-system")
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    assert {(p["name"], p["protocol"], p["port"]) for p in svc["spec"]["ports"]} == {
        ("dns", "UDP", 53), ("dns-tcp", "TCP", 53)}
    eps = await c.get(ENDPOINTSLICES, component.slice_name, "kube-system")
    assert eps["endpoints"][0]["addresses"] == ["192.0.2.10"]
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    await component.close()
    with pytest.raises(ApiError):
        await c.get(ENDPOINTSLICES, component.slice_name, "kube-system")


async def test_cluster_ip_service_records(cluster: Any) -> None:
    api, _, port = cluster
    c = api.client()
    web = await c.create(SERVICES, {"metadata": {"name": "web"}, "spec": {
        "ports": [{"name": "http", "port": 80}]}}, "default")
    ip = web["spec"]["clusterIP"]
    name = f"web.default.svc.{DOMAIN}"
    response = await until(lambda: _answered(port, name))
    assert values(response) == [ip]
    assert response.flags & dns.flags.AA
    for tcp in (False, True):
        assert values(await ask(port, name.upper(), tcp=tcp)) == [ip]
    nodata = await ask(port, name, "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    assert nodata.authority[0].rdtype == dns.rdatatype.SOA
    srv = await ask(port, f"_http._tcp.{name}", "SRV")
    assert values(srv) == [f"0 100 80 {name}."]
    assert [r.to_text() for rrset in srv.additional for r in rrset] == [ip]
    ptr = await ask(port, ".".join(reversed(ip.split("."))) + ".in-addr.arpa", "PTR")
    assert values(ptr) == [f"{name}."]
    missing = await ask(port, f"nope.default.svc.{DOMAIN}")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert missing.authority[0].rdtype == dns.rdatatype.SOA
    kube = await ask(port, f"kubernetes.default.svc.{DOMAIN}")
    assert values(kube) == ["10.96.0.1"]


async def _answered(port: int, name: str) -> dns.message.Message | None:
    response = await ask(port, name)
    return response if response.answer else None


async def test_headless_service_returns_ready_endpoints(cluster: Any) -> None:
    api, _, port = cluster
    c = api.client()
    await c.create(SERVICES, {"metadata": {"name": "db"}, "spec": {
        "clusterIP": "None", "selector": {"app": "db"},
        "ports": [{"name": "http", "port": 80}]}}, "default")
    await c.create(ENDPOINTSLICES, slice_for(
        "db", ("10.244.1.5", True, "db-0"), ("10.244.1.6", True, None),
        ("10.244.1.7", False, "db-2")), "default")
    name = f"db.default.svc.{DOMAIN}"
    response = await until(lambda: _answered(port, name))
    assert values(response) == ["10.244.1.5", "10.244.1.6"]
    assert values(await ask(port, f"db-0.{name}")) == ["10.244.1.5"]
    assert values(await ask(port, f"10-244-1-6.{name}")) == ["10.244.1.6"]
    assert (await ask(port, f"db-2.{name}")).rcode() == dns.rcode.NXDOMAIN
    srv = await ask(port, f"_http._tcp.{name}", "SRV")
    assert values(srv) == [f"0 50 8080 10-244-1-6.{name}.", f"0 50 8080 db-0.{name}."]
    # publishNotReadyAddresses includes the unready one
    await c.patch(SERVICES, "db", {"spec": {"publishNotReadyAddresses": True}}, "default",
                  type="merge")
    await until(lambda: _count(port, name, 3))


async def _count(port: int, name: str, n: int) -> bool:
    return len(values(await ask(port, name))) == n


async def test_external_name_pod_records_and_forwarding(cluster: Any) -> None:
    api, _, port = cluster
    c = api.client()
    await c.create(SERVICES, {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "db.example.org"}}, "default")
    response = await until(lambda: _answered(port, f"ext.default.svc.{DOMAIN}"))
    assert values(response, dns.rdatatype.CNAME) == ["db.example.org."]
    assert values(await ask(port, f"10-244-3-4.default.pod.{DOMAIN}")) == ["10.244.3.4"]
    for tcp in (False, True):
        forwarded = await ask(port, "www.example.org", tcp=tcp)
        assert values(forwarded) == ["192.0.2.77"]


async def test_truncation_over_udp_and_full_answer_over_tcp(cluster: Any) -> None:
    api, _, port = cluster
    c = api.client()
    await c.create(SERVICES, {"metadata": {"name": "big"}, "spec": {
        "clusterIP": "None", "ports": [{"name": "http", "port": 80}]}}, "default")
    await c.create(ENDPOINTSLICES, slice_for(
        "big", *((f"10.244.9.{i}", True, None) for i in range(1, 101))), "default")
    name = f"big.default.svc.{DOMAIN}"
    query = dns.message.make_query(name, "A")
    for _ in range(100):
        raw = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=3)
        if raw.flags & dns.flags.TC:
            break
        await asyncio.sleep(0.05)
    assert raw.flags & dns.flags.TC
    assert len(values(await ask(port, name, tcp=True))) == 100


async def test_unreachable_upstream_is_servfail(tmp_path: Path) -> None:
    from kubeling_dns.resolver import ClusterIndex, ClusterResolver

    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))  # bound, never answers
    server = DnsServer(ClusterResolver(ClusterIndex()),
                       upstream=[f"127.0.0.1:{dead.getsockname()[1]}"], forward_timeout=0.2)
    reply = await server.handle(dns.message.make_query("x.example", "A").to_wire(), tcp=False)
    assert reply is not None
    assert dns.message.from_wire(reply).rcode() == dns.rcode.SERVFAIL
    dead.close()

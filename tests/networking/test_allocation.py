"""Service cluster IP and node port allocation in the API server, through the real API."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from kubeling.api.allocation import IP_PREFIX, NODE_PORT_PREFIX
from kubeling.api.server import ApiServer, ServerSettings
from kubeling.client import ApiError, Client, InProcessTransport
from kubeling.client.resources import ENDPOINTS, ENDPOINTSLICES, SERVICES
from kubeling.testing.cluster import api_server


def svc(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"port": 80}])
    return {"metadata": {"name": name}, "spec": spec}


async def keys(storage: Any, prefix: str) -> set[str]:
    return {kv.key[len(prefix):] for kv in (await storage.range(prefix)).kvs}


async def expect_422(coro: Any, text: str) -> ApiError:
    with pytest.raises(ApiError) as info:
        await coro
    assert info.value.code == 422, info.value.message
    assert text in info.value.message, info.value.message
    return info.value


async def test_kubernetes_service_at_first_address_with_endpoints(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client()
        kube = await c.get(SERVICES, "kubernetes", "default")
        assert kube["spec"]["clusterIP"] == "10.96.0.1"
        assert kube["spec"]["ports"][0]["port"] == 443
        api.server.kubernetes_service.advertise("192.0.2.10", 6443)
        for _ in range(100):
            try:
                eps = await c.get(ENDPOINTS, "kubernetes", "default")
                eps_slice = await c.get(ENDPOINTSLICES, "kubernetes", "default")
                break
            except ApiError:
                await asyncio.sleep(0.02)
        assert eps["subsets"][0]["addresses"] == [{"ip": "192.0.2.10"}]
        assert eps["subsets"][0]["ports"][0]["port"] == 6443
        assert eps_slice["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
        assert eps_slice["endpoints"][0]["addresses"] == ["192.0.2.10"]
        # the IP is recorded like any other and cannot be taken
        await expect_422(c.create(SERVICES, svc("x", clusterIP="10.96.0.1"), "default"),
                         "already allocated")


async def test_dynamic_ips_are_unique_in_range_and_avoid_the_static_band(tmp_path: Path
                                                                          ) -> None:
    async with api_server(tmp_path) as api:
        c = api.client()
        net = ipaddress.ip_network("10.96.0.0/12")
        ips = []
        for i in range(40):
            created = await c.create(SERVICES, svc(f"s{i}"), "default")
            spec = created["spec"]
            assert spec["clusterIPs"] == [spec["clusterIP"]]
            assert spec["ipFamilies"] == ["IPv4"]
            ips.append(ipaddress.ip_address(spec["clusterIP"]))
        assert len(set(ips)) == 40
        assert all(ip in net for ip in ips)
        # the lower band (256 addresses for a /12) is kept for requested IPs
        assert all(int(ip) - int(net.network_address) > 256 for ip in ips)
        assert {str(ip) for ip in ips} <= await keys(api.storage, IP_PREFIX)


async def test_requested_ip_honoured_or_refused(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client()
        dns = await c.create(SERVICES, svc("dns", clusterIP="10.96.0.10"), "default")
        assert dns["spec"]["clusterIPs"] == ["10.96.0.10"]
        await expect_422(c.create(SERVICES, svc("dns2", clusterIP="10.96.0.10"), "default"),
                         'spec.clusterIPs[0]: Invalid value: "10.96.0.10": provided IP is '
                         "already allocated")
        await expect_422(c.create(SERVICES, svc("far", clusterIP="192.168.9.9"), "default"),
                         "provided IP is not in the valid range. The range of valid IPs is "
                         "10.96.0.0/12")
        await expect_422(c.create(SERVICES, svc("net", clusterIP="10.96.0.0"), "default"),
                         "not in the valid range")
        await expect_422(c.create(SERVICES, svc("bcast", clusterIP="10.111.255.255"),
                                  "default"), "not in the valid range")
        await expect_422(c.create(SERVICES, svc("v6", clusterIP="fd00::1"), "default"),
                         "spec.ipFamilies[0]")
        await expect_422(c.create(SERVICES, svc("dual", ipFamilyPolicy="RequireDualStack"),
                                  "default"), "not configured for dual-stack")
        # nothing was left behind by the refusals
        assert await keys(api.storage, IP_PREFIX) == {"10.96.0.1", "10.96.0.10"}


async def test_headless_and_external_name_get_no_ip(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client()
        headless = await c.create(SERVICES, svc("h", clusterIP="None", selector={"a": "b"}),
                                  "default")
        assert headless["spec"]["clusterIPs"] == ["None"]
        ext = await c.create(SERVICES, {"metadata": {"name": "e"}, "spec": {
            "type": "ExternalName", "externalName": "example.com"}}, "default")
        assert "clusterIP" not in ext["spec"]
        assert await keys(api.storage, IP_PREFIX) == {"10.96.0.1"}


async def test_node_ports(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client()
        a = await c.create(SERVICES, svc("a", type="NodePort", ports=[
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "web", "port": 80}]), "default")
        ports = a["spec"]["ports"]
        assert all(30000 <= p["nodePort"] <= 32767 for p in ports)
        assert ports[0]["nodePort"] == ports[1]["nodePort"]  # one port number, two protocols
        assert ports[2]["nodePort"] != ports[0]["nodePort"]
        b = await c.create(SERVICES, svc("b", type="NodePort",
                                         ports=[{"port": 80, "nodePort": 30080}]), "default")
        assert b["spec"]["ports"][0]["nodePort"] == 30080
        await expect_422(c.create(SERVICES, svc("c", type="NodePort",
                                                ports=[{"port": 80, "nodePort": 30080}]),
                                  "default"),
                         'spec.ports[0].nodePort: Invalid value: 30080: provided port is '
                         "already allocated")
        await expect_422(c.create(SERVICES, svc("d", type="NodePort",
                                                ports=[{"port": 80, "nodePort": 8080}]),
                                  "default"),
                         "provided port is not in the valid range. The range of valid ports "
                         "is 30000-32767")
        await expect_422(c.create(SERVICES, svc("e", ports=[{"port": 80, "nodePort": 30081}]),
                                  "default"), "may not be used when `type` is 'ClusterIP'")
        lb = await c.create(SERVICES, svc("lb", type="LoadBalancer",
                                          externalTrafficPolicy="Local"), "default")
        assert 30000 <= lb["spec"]["healthCheckNodePort"] <= 32767
        held = await keys(api.storage, NODE_PORT_PREFIX)
        assert held == {str(p["nodePort"]) for p in ports} | {
            "30080", str(lb["spec"]["ports"][0]["nodePort"]),
            str(lb["spec"]["healthCheckNodePort"])}


async def test_freed_on_delete_and_reused(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client()
        await c.create(SERVICES, svc("a", type="NodePort", clusterIP="10.96.0.50",
                                     ports=[{"port": 80, "nodePort": 30100}]), "default")
        await c.delete(SERVICES, "a", "default")
        assert "10.96.0.50" not in await keys(api.storage, IP_PREFIX)
        assert "30100" not in await keys(api.storage, NODE_PORT_PREFIX)
        again = await c.create(SERVICES, svc("b", type="NodePort", clusterIP="10.96.0.50",
                                             ports=[{"port": 80, "nodePort": 30100}]),
                               "default")
        assert again["spec"]["clusterIP"] == "10.96.0.50"


async def test_update_allocates_and_frees(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client()
        s = await c.create(SERVICES, svc("a"), "default")
        ip = s["spec"]["clusterIP"]
        s = await c.patch(SERVICES, "a", {"spec": {"type": "NodePort"}}, "default",
                          type="merge")
        node_port = s["spec"]["ports"][0]["nodePort"]
        assert s["spec"]["clusterIP"] == ip
        assert str(node_port) in await keys(api.storage, NODE_PORT_PREFIX)
        # a PUT without the node port keeps it
        body = {"metadata": {"name": "a"}, "spec": {"type": "NodePort",
                                                    "ports": [{"port": 80}]}}
        s = await c.update(SERVICES, {**body, "metadata": {"name": "a", "namespace": "default"}})
        assert s["spec"]["ports"][0]["nodePort"] == node_port
        s = await c.patch(SERVICES, "a", {"spec": {"ports": [
            {"port": 80, "nodePort": 30222}]}}, "default", type="merge")
        assert s["spec"]["ports"][0]["nodePort"] == 30222
        assert await keys(api.storage, NODE_PORT_PREFIX) == {"30222"}
        s = await c.patch(SERVICES, "a", {"spec": {"type": "ClusterIP"}}, "default",
                          type="merge")
        assert "nodePort" not in s["spec"]["ports"][0]
        assert await keys(api.storage, NODE_PORT_PREFIX) == set()
        s = await c.patch(SERVICES, "a", {"spec": {"type": "ExternalName",
                                                   "externalName": "example.com"}},
                          "default", type="merge")
        assert ip not in await keys(api.storage, IP_PREFIX)
        # a refused update leaves nothing behind
        await c.create(SERVICES, svc("b", type="NodePort",
                                     ports=[{"port": 80, "nodePort": 30300}]), "default")
        await expect_422(c.patch(SERVICES, "b", {"spec": {"ports": [
            {"port": 80, "nodePort": 30300}, {"name": "x", "port": 81, "nodePort": 99}]}},
            "default", type="merge"), "spec.ports")
        assert await keys(api.storage, NODE_PORT_PREFIX) == {"30300"}


async def test_failed_create_and_dry_run_leave_nothing(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client()
        await c.create(SERVICES, svc("a"), "default")
        before = await keys(api.storage, IP_PREFIX)
        with pytest.raises(ApiError) as info:
            await c.create(SERVICES, svc("a"), "default")
        assert info.value.code == 409
        assert await keys(api.storage, IP_PREFIX) == before
        dry = await c.create(SERVICES, svc("d", clusterIP="10.96.0.77"), "default",
                             dry_run=True)
        assert dry["spec"]["clusterIP"] == "10.96.0.77"
        assert await keys(api.storage, IP_PREFIX) == before


async def test_allocations_survive_a_restart(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        s = await api.client().create(SERVICES, svc("a", type="NodePort"), "default")
    async with api_server(tmp_path) as api:
        c = api.client()
        await expect_422(c.create(SERVICES, svc("b", clusterIP=s["spec"]["clusterIP"]),
                                  "default"), "already allocated")
        port = s["spec"]["ports"][0]["nodePort"]
        await expect_422(c.create(SERVICES, svc("c", type="NodePort", ports=[
            {"port": 80, "nodePort": port}]), "default"), "already allocated")


async def test_two_api_servers_never_hand_out_one_ip_twice(tmp_path: Path) -> None:
    settings = ServerSettings(compaction_interval_seconds=0,
                              service_cluster_ip_range="10.100.0.0/27",
                              service_node_port_range="30000-30009")
    async with api_server(tmp_path, settings=settings) as api:
        second = ApiServer(storage=api.storage, kinds=list(api.server.registry),
                           settings=settings)
        await second.start()
        try:
            clients = [api.client(), Client(InProcessTransport(second))]
            # 30 usable addresses, one is the kubernetes Service's: 29 left, raced by two
            results = await asyncio.gather(*(
                clients[i % 2].create(SERVICES, svc(f"s{i}", type="NodePort"), "default")
                for i in range(29)), return_exceptions=True)
            created = [r for r in results if isinstance(r, dict)]
            ips = [r["spec"]["clusterIP"] for r in created]
            ports = [r["spec"]["ports"][0]["nodePort"] for r in created]
            assert len(set(ips)) == len(ips)
            assert len(set(ports)) == len(ports) == 10  # the node port range holds 10
            failed = [r for r in results if not isinstance(r, dict)]
            assert all(isinstance(e, ApiError) and e.code == 422 for e in failed)
            await clients[1].close()
        finally:
            await second.stop()


async def test_range_exhaustion_is_a_clear_422(tmp_path: Path) -> None:
    settings = ServerSettings(compaction_interval_seconds=0,
                              service_cluster_ip_range="10.100.0.0/29")
    async with api_server(tmp_path, settings=settings) as api:
        c = api.client()
        for i in range(5):  # 6 usable, the kubernetes Service has one
            await c.create(SERVICES, svc(f"s{i}"), "default")
        await expect_422(c.create(SERVICES, svc("full"), "default"),
                         "no IP addresses left in range 10.100.0.0/29")


async def test_dual_stack(tmp_path: Path) -> None:
    settings = ServerSettings(compaction_interval_seconds=0,
                              service_cluster_ip_range="10.96.0.0/16,fd00:10::/108")
    async with api_server(tmp_path, settings=settings) as api:
        c = api.client()
        dual = await c.create(SERVICES, svc("d", ipFamilyPolicy="PreferDualStack"), "default")
        assert dual["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
        v4, v6 = dual["spec"]["clusterIPs"]
        assert ipaddress.ip_address(v4).version == 4
        assert ipaddress.ip_address(v6) in ipaddress.ip_network("fd00:10::/108")
        single6 = await c.create(SERVICES, svc("s", ipFamilies=["IPv6"]), "default")
        assert ipaddress.ip_address(single6["spec"]["clusterIP"]).version == 6
        await c.delete(SERVICES, "d", "default")
        assert v6 not in await keys(api.storage, IP_PREFIX)


async def test_repair_frees_leaks_and_records_missing_keys(tmp_path: Path) -> None:
    async with api_server(tmp_path) as api:
        c = api.client()
        s = await c.create(SERVICES, svc("a", type="NodePort"), "default")
        ip, port = s["spec"]["clusterIP"], s["spec"]["ports"][0]["nodePort"]
        allocator = api.server.allocator
        # a crash between reserving and writing the Service leaves a key nobody holds
        await api.storage.create(IP_PREFIX + "10.96.0.99", b'{"service": {"uid": "gone"}}')
        # a key lost (restored backup, manual edit) while the Service still holds it
        await api.storage.delete(f"{NODE_PORT_PREFIX}{port}")
        report = await allocator.repair()
        assert report.recorded == [f"{NODE_PORT_PREFIX}{port}"]
        assert report.suspected == [IP_PREFIX + "10.96.0.99"]
        assert (await allocator.repair()).released == []
        third = await allocator.repair()
        assert third.released == [IP_PREFIX + "10.96.0.99"]
        assert await keys(api.storage, IP_PREFIX) == {"10.96.0.1", ip}
        assert await keys(api.storage, NODE_PORT_PREFIX) == {str(port)}
        await c.create(SERVICES, svc("b", clusterIP="10.96.0.99"), "default")

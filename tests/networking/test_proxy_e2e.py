"""The proxy component end to end: a real API server, Services and EndpointSlices written
through the API, the iptables proxier programming a test network namespace, real traffic."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubeling.client.resources import ENDPOINTSLICES, SERVICES
from kubeling.config import load_config
from kubeling.context import Context
from kubeling.proxy import ProxyComponent
from kubeling.testing.cluster import api_server
from kubeling.testing.proxier_contract import NODE_IP, NetnsLab, lab_available

pytest.importorskip("kubeling_proxy_iptables")
from kubeling_proxy_iptables import IptablesProxier, IptablesSettings

pytestmark = pytest.mark.skipif(lab_available() is not None, reason=str(lab_available()))


def endpoint_slice(lab: NetnsLab, service: str, *names: str, unready: tuple[str, ...] = ()
                   ) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{service}-abc", "labels": {
            "kubernetes.io/service-name": service,
            "endpointslice.kubernetes.io/managed-by": "test"}},
        "addressType": "IPv4",
        "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [lab.pods[n]], "nodeName": "node-a",
                       "conditions": {"ready": n not in unready}} for n in names],
    }


@pytest.fixture
async def lab() -> AsyncIterator[NetnsLab]:
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
async def cluster(tmp_path: Path, lab: NetnsLab) -> AsyncIterator[Any]:
    async with api_server(tmp_path) as api:
        config = load_config({"proxy": {"min_sync_period_seconds": 0.3}})
        ctx = Context(config=config, host=api.host)
        ctx.server = api.server
        proxier = IptablesProxier(IptablesSettings(netns=lab.node))
        component = ProxyComponent(ctx, proxier, node_name="node-a")
        task = asyncio.create_task(component.run())
        try:
            yield api, component
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await proxier.cleanup()
            with contextlib.suppress(TimeoutError):  # see plugins/dns/tests/test_dns.py
                await asyncio.wait_for(ctx.close(), 5)


async def wait_for(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = await asyncio.to_thread(check)
            if value:
                return value
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_services_and_slices_through_the_api(lab: NetnsLab, cluster: Any) -> None:
    api, component = cluster
    c = api.client()
    svc = await c.create(SERVICES, {"metadata": {"name": "web"}, "spec": {
        "type": "NodePort", "ports": [{"port": 80, "targetPort": 8080}]}}, "default")
    ip = svc["spec"]["clusterIP"]
    node_port = svc["spec"]["ports"][0]["nodePort"]
    await c.create(ENDPOINTSLICES, endpoint_slice(lab, "web", "b1", "b2", "b3"), "default")
    client = lab.pod_netns("client")
    await wait_for(lambda: len(lab.spread(client, ip, 80, 30)) == 3)
    seen = await asyncio.to_thread(lab.spread, client, ip, 80, 300)
    assert set(seen) == {"b1", "b2", "b3"}
    answer = await asyncio.to_thread(lab.request, lab.outside, NODE_IP, node_port)
    assert answer.split()[0] in ("b1", "b2", "b3")

    # an endpoint turning unready stops receiving new connections within a second
    slice_ = await c.get(ENDPOINTSLICES, "web-abc", "default")
    slice_["endpoints"][1]["conditions"]["ready"] = False
    started = time.monotonic()
    await c.update(ENDPOINTSLICES, slice_)
    await wait_for(lambda: "b2" not in lab.spread(client, ip, 80, 30), timeout=1.0)
    assert time.monotonic() - started < 1.0
    seen = await asyncio.to_thread(lab.spread, client, ip, 80, 60)
    assert set(seen) == {"b1", "b3"}, seen
    assert component.last_result is not None and not component.last_result.full

    # ClientIP affinity set through the API sticks
    await c.patch(SERVICES, "web", {"spec": {"sessionAffinity": "ClientIP"}}, "default",
                  type="merge")
    await wait_for(lambda: len(lab.spread(client, ip, 80, 20)) == 1)
    assert len(await asyncio.to_thread(lab.spread, client, ip, 80, 40)) == 1

    # a deleted Service stops answering
    await c.delete(SERVICES, "web", "default")
    await wait_for(lambda: _refused_or_silent(lab, client, ip))


def _refused_or_silent(lab: NetnsLab, netns: str, ip: str) -> bool:
    try:
        lab.request(netns, ip, 80, timeout=0.3)
    except OSError:
        return True
    return False


async def test_service_without_endpoints_is_rejected(lab: NetnsLab, cluster: Any) -> None:
    api, _ = cluster
    c = api.client()
    svc = await c.create(SERVICES, {"metadata": {"name": "lonely"}, "spec": {
        "ports": [{"port": 80}]}}, "default")
    ip = svc["spec"]["clusterIP"]

    def refused() -> bool:
        try:
            lab.request(lab.pod_netns("client"), ip, 80, timeout=2.0)
        except ConnectionRefusedError:
            return True
        return False

    await wait_for(refused)
    await c.create(ENDPOINTSLICES, endpoint_slice(lab, "lonely", "b3"), "default")
    answer = await wait_for(lambda: lab.request(lab.pod_netns("client"), ip, 80))
    assert answer.startswith("b3")

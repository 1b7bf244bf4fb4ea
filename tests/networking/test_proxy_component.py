"""kubeling.proxy: compiling Services and EndpointSlices, and the sync loop's rate limits.

The dataplane is a recording proxier here (the real one is tested with real iptables in
plugins/proxy_iptables and tests/networking/test_proxy_e2e.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from kubeling.config import load_config
from kubeling.context import Context
from kubeling.plugins import PluginHost
from kubeling.proxy import (
    ChangeTracker,
    Proxier,
    ProxyComponent,
    ProxyState,
    SyncResult,
    select_endpoints,
)


def svc(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("clusterIP", "10.96.0.5")
    spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP"}])
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def eps_slice(service: str, name: str, *eps: dict[str, Any], port: int = 8080,
              port_name: str = "http") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": list(eps)}


def ep(ip: str, node: str = "node-a", **conditions: Any) -> dict[str, Any]:
    return {"addresses": [ip], "nodeName": node, "conditions": conditions}


def test_tracker_compiles_services_and_slices() -> None:
    t = ChangeTracker("node-a")
    t.service_updated(svc("web", type="NodePort", sessionAffinity="ClientIP",
                          externalTrafficPolicy="Local",
                          ports=[{"name": "http", "port": 80, "nodePort": 30080}]))
    t.service_updated(svc("headless", clusterIP="None"))
    t.service_updated(svc("ext", type="ExternalName", clusterIP=None))
    other = svc("other")
    other["metadata"]["labels"] = {"service.kubernetes.io/service-proxy-name": "foo"}
    t.service_updated(other)
    t.slice_updated(eps_slice("web", "web-1", ep("10.244.1.2", ready=True),
                              ep("10.244.2.2", node="node-b", ready=False,
                                 serving=True, terminating=True)))
    t.slice_updated(eps_slice("web", "web-2", ep("10.244.1.2", ready=True),
                              ep("10.244.3.2", node="node-c")))  # duplicate; no conditions
    t.slice_updated(eps_slice("web", "web-3", ep("10.244.9.9"), port_name="other"))
    state, changed = t.take()
    assert changed == {"default/web", "default/headless", "default/ext", "default/other"}
    [(name, port)] = state.services.items()
    assert str(name) == "default/web:http"
    assert port.node_port == 30080 and port.affinity_timeout == 10800 and port.external_local
    eps = state.endpoints[name]
    assert [(e.ip, e.port, e.ready, e.terminating, e.local) for e in eps] == [
        ("10.244.1.2", 8080, True, False, True),
        ("10.244.2.2", 8080, False, True, False),
        ("10.244.3.2", 8080, True, False, False)]
    cluster, external = select_endpoints(port, eps)
    assert [e.ip for e in cluster] == ["10.244.1.2", "10.244.3.2"]
    assert [e.ip for e in external] == ["10.244.1.2"]  # Local: this node's only
    # an update that changes nothing the proxy uses is not a change
    again = svc("web", type="NodePort", sessionAffinity="ClientIP",
                externalTrafficPolicy="Local",
                ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    again["metadata"]["resourceVersion"] = "99"
    t.service_updated(again)
    assert t.take()[1] == frozenset()
    t.slice_deleted(eps_slice("web", "web-1"))
    t.slice_deleted(eps_slice("web", "web-2"))
    state, changed = t.take()
    assert changed == {"default/web"}
    assert [e.ip for e in state.endpoints[name]] == []


class Recorder(Proxier):
    """Records syncs; can be told to fail once."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, frozenset[str] | None, ProxyState]] = []
        self.fail_next = False

    async def sync(self, state: ProxyState, changed: frozenset[str] | None = None
                   ) -> SyncResult:
        self.calls.append((time.monotonic(), changed, state))
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("boom")
        return SyncResult(full=changed is None, services=len(state.services), seconds=0)

    async def cleanup(self) -> None:
        pass


async def run_loop(min_period: float, period: float = 30.0
                   ) -> tuple[ProxyComponent, Recorder, asyncio.Task[None]]:
    config = load_config({"proxy": {"min_sync_period_seconds": min_period,
                                    "sync_period_seconds": period}})
    recorder = Recorder()
    component = ProxyComponent(Context(config=config, host=PluginHost()), recorder,
                               node_name="node-a")
    task = asyncio.create_task(component.loop())
    await asyncio.wait_for(component.synced.wait(), 5)
    return component, recorder, task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_first_sync_is_full_then_changes_are_partial_and_rate_limited() -> None:
    component, recorder, task = await run_loop(0.5)
    try:
        assert recorder.calls[0][1] is None  # full
        await asyncio.sleep(0.6)  # idle for longer than the minimum period
        started = time.monotonic()
        component.tracker.service_updated(svc("a"))
        while len(recorder.calls) < 2:
            await asyncio.sleep(0.005)
        assert recorder.calls[1][0] - started < 0.1  # an idle proxy syncs at once
        assert recorder.calls[1][1] == {"default/a"}
        for i in range(20):  # a burst within the minimum period: batched
            component.tracker.service_updated(svc(f"b{i}"))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.7)
        assert len(recorder.calls) == 3
        assert recorder.calls[2][0] - recorder.calls[1][0] >= 0.49
        assert len(recorder.calls[2][1] or ()) == 20
    finally:
        await stop(task)


async def test_a_failed_sync_is_retried_in_full_and_periodic_syncs_happen() -> None:
    component, recorder, task = await run_loop(0.1, period=0.3)
    try:
        recorder.fail_next = True
        component.tracker.service_updated(svc("a"))
        await asyncio.sleep(0.35)
        changes = [c for _, c, _ in recorder.calls]
        assert changes[1] == {"default/a"}  # failed
        assert changes[2] is None  # retried as a full sync
        await asyncio.sleep(0.7)
        assert frozenset() in [c for _, c, _ in recorder.calls]  # periodic, nothing changed
    finally:
        await stop(task)


async def test_repeated_failures_back_off() -> None:
    component, _recorder, task = await run_loop(0.05)
    try:
        class Broken(Recorder):
            async def sync(self, state: ProxyState, changed: frozenset[str] | None = None
                           ) -> SyncResult:
                self.calls.append((time.monotonic(), changed, state))
                raise PermissionError("iptables-restore: Permission denied")

        broken = Broken()
        component.proxier = broken
        component.tracker.service_updated(svc("a"))
        await asyncio.sleep(1.0)
        # 0.05 s apart without back-off would be ~20 attempts; doubling gives ~5
        assert 3 <= len(broken.calls) <= 7, len(broken.calls)
        gaps = [b[0] - a[0] for a, b in zip(broken.calls, broken.calls[1:], strict=False)]
        assert gaps == sorted(gaps)
    finally:
        await stop(task)

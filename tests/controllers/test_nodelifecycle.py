"""Node lifecycle: dead nodes become Unknown and tainted, their pods are evicted and
replaced elsewhere; default tolerations; cordon; pod garbage collection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from kubeling_controllers_default.testing import controller_cluster, eventually

from kubeling.client import ApiError
from kubeling.client.resources import DEPLOYMENTS, LEASES, NODES, PODS

FAST = {"node_monitor_period_seconds": 0.2, "node_monitor_grace_period_seconds": 2.0,
        "node_eviction_rate": 100.0, "pod_gc_period_seconds": 0.3,
        "orphaned_pod_quarantine_seconds": 0.3}


def deployment(name: str, replicas: int, tolerations: list[Any] | None = None
               ) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "i"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}}


def quick(seconds: int) -> list[Any]:
    return [{"key": key, "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": seconds}
            for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]


async def pods(client: Any, app: str) -> list[dict[str, Any]]:
    return (await client.list(PODS, "default", label_selector=f"app={app}"))["items"]


def taints(node: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}


def ready_of(node: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


async def test_pods_of_a_dead_node_are_recreated_on_other_nodes(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        nodes = await cluster.nodes("a", "b", "c", lease_interval=0.3)
        await client.create(DEPLOYMENTS, deployment("web", 6, quick(1)), "default")

        async def running_everywhere() -> bool:
            ps = await pods(client, "web")
            return len(ps) == 6 and all(p["status"].get("phase") == "Running" for p in ps)

        await eventually(running_everywhere)
        victims = {p["metadata"]["name"] for p in await pods(client, "web")
                   if p["spec"]["nodeName"] == "a"}
        assert victims
        lease = await client.get(LEASES, "a", "kube-node-lease")
        assert lease["spec"]["holderIdentity"] == "a"
        started = asyncio.get_running_loop().time()
        nodes.kill("a")

        async def unreachable() -> dict[str, Any] | None:
            node = await client.get(NODES, "a")
            ok = ready_of(node)["status"] == "Unknown" and \
                ("node.kubernetes.io/unreachable", "NoExecute") in taints(node)
            return node if ok else None

        node = await eventually(unreachable, timeout=10)
        assert ready_of(node)["reason"] == "NodeStatusUnknown"
        assert ready_of(node)["message"] == "Kubelet stopped posting node status."
        assert ("node.kubernetes.io/unreachable", "NoSchedule") in taints(node)

        async def replaced() -> bool:
            ps = await pods(client, "web")
            live = [p for p in ps if not p["metadata"].get("deletionTimestamp")]
            return len(live) == 6 and all(p["spec"].get("nodeName") in ("b", "c")
                                          and p["status"].get("phase") == "Running"
                                          for p in live)

        await eventually(replaced, timeout=15)
        elapsed = asyncio.get_running_loop().time() - started
        assert elapsed < 10
        # the evicted pods: marked, deleted gracefully, left terminating on the dead node
        evicted = [p for p in await pods(client, "web") if p["metadata"]["name"] in victims]
        assert evicted and all(p["metadata"].get("deletionTimestamp") for p in evicted)
        for pod in evicted:
            conditions = {c["type"]: c for c in pod["status"]["conditions"]}
            assert conditions["DisruptionTarget"]["reason"] == "DeletionByTaintManager"
            assert conditions["Ready"]["status"] == "False"  # marked not ready
        # the node comes back: Ready again, taints gone, its terminating pods finished
        await nodes.revive("a")

        async def healthy() -> bool:
            node = await client.get(NODES, "a")
            return ready_of(node)["status"] == "True" and not taints(node)

        await eventually(healthy, timeout=10)
        await eventually(lambda: _only_live(client, "web", 6))


async def _only_live(client: Any, app: str, n: int) -> bool:
    """Exactly ``n`` pods, all running (so bound), none terminating."""
    ps = await pods(client, app)
    return len(ps) == n and not any(p["metadata"].get("deletionTimestamp") for p in ps) \
        and all(p["status"].get("phase") == "Running" for p in ps)


async def test_tolerated_pods_stay_until_their_toleration_seconds(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        nodes = await cluster.nodes("a", "b", "c", lease_interval=0.3)
        # default tolerations (300 s, added at admission) keep the pods for now
        await client.create(DEPLOYMENTS, deployment("patient", 3), "default")
        await eventually(lambda: _only_live(client, "patient", 3))
        pod = (await pods(client, "patient"))[0]
        added = [t for t in pod["spec"]["tolerations"] if t.get("tolerationSeconds") == 300]
        assert {t["key"] for t in added} == {"node.kubernetes.io/not-ready",
                                              "node.kubernetes.io/unreachable"}
        on_a = {p["metadata"]["name"] for p in await pods(client, "patient")
                if p["spec"]["nodeName"] == "a"}
        nodes.kill("a")

        async def tainted() -> bool:
            node = await client.get(NODES, "a")
            return ("node.kubernetes.io/unreachable", "NoExecute") in taints(node)

        await eventually(tainted, timeout=10)
        await asyncio.sleep(1.0)
        still = {p["metadata"]["name"] for p in await pods(client, "patient")
                 if not p["metadata"].get("deletionTimestamp")}
        assert on_a <= still


async def test_untolerated_no_execute_taint_evicts_at_once(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("a", "b")
    await client.create(DEPLOYMENTS, deployment("evict", 4), "default")
    await eventually(lambda: _only_live(client, "evict", 4))
    await client.patch(NODES, "a", {"spec": {"taints": [
        {"key": "example.com/maintenance", "value": "yes", "effect": "NoExecute"}]}})

    async def moved() -> bool:
        live = [p for p in await pods(client, "evict")
                if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 4 and all(p["spec"].get("nodeName") == "b" and
                                      p["status"].get("phase") == "Running" for p in live)

    await eventually(moved, timeout=10)


async def test_kubelet_reporting_not_ready_and_cordon_set_taints(cluster: Any) -> None:
    client = cluster.client
    nodes = await cluster.nodes("a", "b")
    await nodes.set_ready("a", False)

    async def not_ready_tainted() -> bool:
        node = await client.get(NODES, "a")
        return {("node.kubernetes.io/not-ready", "NoExecute"),
                ("node.kubernetes.io/not-ready", "NoSchedule")} <= taints(node)

    await eventually(not_ready_tainted, timeout=10)
    await nodes.set_ready("a", True)
    await client.patch(NODES, "b", {"spec": {"unschedulable": True}})

    async def settled() -> bool:
        a = await client.get(NODES, "a")
        b = await client.get(NODES, "b")
        return not taints(a) and \
            taints(b) == {("node.kubernetes.io/unschedulable", "NoSchedule")}

    await eventually(settled, timeout=10)


async def test_no_evictions_when_every_node_is_down(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        nodes = await cluster.nodes("a", "b", lease_interval=0.3)
        await client.create(DEPLOYMENTS, deployment("all", 2, quick(0)), "default")
        await eventually(lambda: _only_live(client, "all", 2))
        nodes.kill("a")
        nodes.kill("b")

        async def both_unknown() -> bool:
            got = [await client.get(NODES, n) for n in ("a", "b")]
            return all(ready_of(n)["status"] == "Unknown" for n in got)

        await eventually(both_unknown, timeout=10)
        await asyncio.sleep(1.0)
        for name in ("a", "b"):
            node = await client.get(NODES, name)
            assert ("node.kubernetes.io/unreachable", "NoExecute") not in taints(node)
            assert ("node.kubernetes.io/unreachable", "NoSchedule") in taints(node)
        assert await _only_live(client, "all", 2)


async def test_pod_gc_deletes_pods_of_deleted_nodes_and_old_finished_pods(
        tmp_path: Path) -> None:
    settings = {**FAST, "terminated_pod_gc_threshold": 2}
    async with controller_cluster(tmp_path, settings=settings) as cluster:
        client = cluster.client
        await cluster.nodes("a")
        pod = {"metadata": {"name": "lost"}, "spec": {
            "nodeName": "gone", "containers": [{"name": "c", "image": "i"}]}}
        await client.create(PODS, pod, "default")
        for n in range(4):
            await client.create(PODS, {"metadata": {"name": f"done-{n}"}, "spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}},
                "default")

        async def collected() -> bool:
            names = {p["metadata"]["name"] for p in (await client.list(PODS, "default"))[
                "items"]}
            return "lost" not in names and \
                len([n for n in names if n.startswith("done-")]) == 2

        await eventually(collected, timeout=10)
        names = {p["metadata"]["name"] for p in (await client.list(PODS, "default"))["items"]}
        assert names == {"done-2", "done-3"}  # the oldest finished pods went first


async def test_default_tolerations_are_added_once(cluster: Any) -> None:
    client = cluster.client
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
           "effect": "NoExecute", "tolerationSeconds": 7}
    pod = await client.create(PODS, {"metadata": {"name": "p"}, "spec": {
        "tolerations": [own], "containers": [{"name": "c", "image": "i"}]}}, "default")
    assert pod["spec"]["tolerations"] == [own, {
        "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
        "tolerationSeconds": 300}]
    everything = await client.create(PODS, {"metadata": {"name": "q"}, "spec": {
        "tolerations": [{"operator": "Exists"}],
        "containers": [{"name": "c", "image": "i"}]}}, "default")
    assert everything["spec"]["tolerations"] == [{"operator": "Exists"}]
    try:
        await client.delete(NODES, "nowhere")
    except ApiError as exc:
        assert exc.code == 404

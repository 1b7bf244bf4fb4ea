"""The DaemonSet controller: one pod per eligible node, history, rolling updates."""

from __future__ import annotations

import asyncio
from typing import Any

from kubeling_controllers_default.resources import CONTROLLERREVISIONS, DAEMONSETS
from kubeling_controllers_default.testing import eventually

from kubeling.client.resources import NODES, PODS


def daemonset(name: str, *, image: str = "agent:1", update: Any = None,
              node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": image}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    body: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": spec}}}
    if update is not None:
        body["spec"]["updateStrategy"] = update
    return body


async def pods_of(client: Any, app: str, *, live: bool = True) -> list[dict[str, Any]]:
    pods = (await client.list(PODS, "default", label_selector=f"app={app}"))["items"]
    if live:
        pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return pods


async def settled(client: Any, name: str, desired: int) -> bool:
    """What ``kubectl rollout status daemonset`` waits for."""
    ds = await client.get(DAEMONSETS, name, "default")
    status = ds.get("status") or {}
    return status.get("observedGeneration") == ds["metadata"]["generation"] and \
        status.get("desiredNumberScheduled") == desired and \
        status.get("updatedNumberScheduled") == desired and \
        status.get("numberAvailable") == desired and \
        status.get("numberMisscheduled") == 0 and \
        len(await pods_of(client, name)) == desired


async def test_one_pod_per_eligible_node(cluster: Any) -> None:
    client = cluster.client
    nodes = await cluster.nodes("a", "b")
    await nodes.add("tainted", taints=[{"key": "dedicated", "value": "db",
                                        "effect": "NoSchedule"}])
    await nodes.add("cordoned", unschedulable=True)
    await nodes.add("other", labels={"disk": "hdd"})
    await client.create(DAEMONSETS, daemonset("agent", node_selector={"kubernetes.io/os":
                                                                      "linux"}), "default")
    await eventually(lambda: settled(client, "agent", 4))
    pods = await pods_of(client, "agent")
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["a", "b", "cordoned", "other"]
    pod = pods[0]
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                       "values": [pod["spec"]["nodeName"]]}]}]
    keys = {t["key"] for t in pod["spec"]["tolerations"]}
    assert {"node.kubernetes.io/unschedulable", "node.kubernetes.io/not-ready"} <= keys
    assert pod["metadata"]["labels"]["controller-revision-hash"]
    # a new node gets a pod; a node that stops matching loses its pod
    await nodes.add("c")
    await eventually(lambda: settled(client, "agent", 5))
    await client.patch(NODES, "other", {"metadata": {"labels": {"kubernetes.io/os":
                                                                "windows"}}})
    await eventually(lambda: settled(client, "agent", 4))
    assert "other" not in {p["spec"]["nodeName"] for p in await pods_of(client, "agent")}
    # a NoExecute taint it does not tolerate removes the pod
    await client.patch(NODES, "c", {"spec": {"taints": [
        {"key": "evict", "effect": "NoExecute"}]}})
    await eventually(lambda: settled(client, "agent", 3))
    ds = await client.get(DAEMONSETS, "agent", "default")
    assert ds["status"]["numberMisscheduled"] == 0
    assert ds["status"]["currentNumberScheduled"] == 3


async def test_rolling_update_replaces_one_node_at_a_time(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("a", "b", "c", "d")
    await client.create(DAEMONSETS, daemonset("roll"), "default")
    await eventually(lambda: settled(client, "roll", 4))
    listed = await client.list(PODS, "default", label_selector="app=roll")
    pods = {p["metadata"]["uid"]: p for p in listed["items"]}
    low = [4]

    async def watch() -> None:
        async for ev in client.watch(PODS, "default", label_selector="app=roll",
                                     resource_version=listed["metadata"]["resourceVersion"]):
            if ev.type == "DELETED":
                pods.pop(ev.object["metadata"]["uid"], None)
            else:
                pods[ev.object["metadata"]["uid"]] = ev.object
            ready_nodes = {p["spec"].get("nodeName") for p in pods.values()
                           if not p["metadata"].get("deletionTimestamp") and any(
                               c["type"] == "Ready" and c["status"] == "True"
                               for c in p["status"].get("conditions") or [])}
            low[0] = min(low[0], len(ready_nodes))

    watcher = asyncio.create_task(watch())
    await client.patch(DAEMONSETS, "roll", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "agent:2"}]}}}}, "default", type="strategic")

    async def updated() -> bool:
        live = await pods_of(client, "roll")
        return await settled(client, "roll", 4) and \
            {p["spec"]["containers"][0]["image"] for p in live} == {"agent:2"}

    await eventually(updated, timeout=20)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert low[0] >= 3  # maxUnavailable 1
    revisions = (await client.list(CONTROLLERREVISIONS, "default",
                                   label_selector="app=roll"))["items"]
    assert sorted(r["revision"] for r in revisions) == [1, 2]
    current = max(revisions, key=lambda r: r["revision"])
    assert current["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "agent:2"
    assert current["data"]["spec"]["template"]["$patch"] == "replace"
    assert current["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"


async def test_surge_starts_the_new_pod_before_stopping_the_old(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("a", "b")
    update = {"type": "RollingUpdate",
              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    await client.create(DAEMONSETS, daemonset("surge", update=update), "default")
    await eventually(lambda: settled(client, "surge", 2))
    listed = await client.list(PODS, "default", label_selector="app=surge")
    pods = {p["metadata"]["uid"]: p for p in listed["items"]}
    low = [2]

    async def watch() -> None:
        async for ev in client.watch(PODS, "default", label_selector="app=surge",
                                     resource_version=listed["metadata"]["resourceVersion"]):
            if ev.type == "DELETED":
                pods.pop(ev.object["metadata"]["uid"], None)
            else:
                pods[ev.object["metadata"]["uid"]] = ev.object
            ready_nodes = {p["spec"].get("nodeName") for p in pods.values()
                           if not p["metadata"].get("deletionTimestamp") and any(
                               c["type"] == "Ready" and c["status"] == "True"
                               for c in p["status"].get("conditions") or [])}
            low[0] = min(low[0], len(ready_nodes))

    watcher = asyncio.create_task(watch())
    await client.patch(DAEMONSETS, "surge", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "agent:2"}]}}}}, "default", type="strategic")

    async def updated() -> bool:
        live = await pods_of(client, "surge")
        return await settled(client, "surge", 2) and \
            {p["spec"]["containers"][0]["image"] for p in live} == {"agent:2"}

    await eventually(updated, timeout=20)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert low[0] == 2  # never a node without a ready pod

"""The ReplicaSet controller through the API: scale, replace, adopt, release, status."""

from __future__ import annotations

from typing import Any

from kubeling_controllers_default.testing import eventually

from kubeling.client.resources import EVENTS, PODS, REPLICASETS


def replicaset(name: str, replicas: int, *, labels: dict[str, str] | None = None,
               min_ready: int = 0) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                 "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }


async def owned_pods(client: Any, rs: dict[str, Any], *, active: bool = True) -> list[Any]:
    pods = (await client.list(PODS, "default"))["items"]
    uid = rs["metadata"]["uid"]
    out = [p for p in pods
           if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])]
    if active:
        out = [p for p in out if not p["metadata"].get("deletionTimestamp")]
    return out


async def test_creates_pods_and_reports_ready_replicas(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1", "n2")
    rs = await client.create(REPLICASETS, replicaset("web", 3), "default")

    async def ready() -> bool:
        got = await client.get(REPLICASETS, "web", "default")
        status = got.get("status") or {}
        return status.get("readyReplicas") == 3 and status.get("availableReplicas") == 3 \
            and status.get("observedGeneration") == 1 and status.get("replicas") == 3 \
            and status.get("fullyLabeledReplicas") == 3

    await eventually(ready)
    pods = await owned_pods(client, rs)
    assert len(pods) == 3
    for pod in pods:
        ref = pod["metadata"]["ownerReferences"][0]
        assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                       "uid": rs["metadata"]["uid"], "controller": True,
                       "blockOwnerDeletion": True}
        assert pod["metadata"]["name"].startswith("web-")
        assert pod["metadata"]["labels"] == {"app": "web"}
    events = (await client.list(EVENTS, "default"))["items"]
    created = [e for e in events if e["reason"] == "SuccessfulCreate"
               and e["involvedObject"]["name"] == "web"]
    assert created and all(e["message"].startswith("Created pod: web-") for e in created)
    assert created[0]["source"]["component"] == "replicaset-controller"


async def test_scales_down_unscheduled_pods_first_and_replaces_deleted(cluster: Any) -> None:
    client = cluster.client
    rs = await client.create(REPLICASETS, replicaset("db", 2), "default")
    await eventually(lambda: _count(client, rs, 2))
    # no nodes: the pods stay pending; add a node so new pods bind there
    nodes = await cluster.nodes("n1")
    await eventually(lambda: _all_running(client, rs, 2))
    nodes.bind = False
    await client.patch(REPLICASETS, "db", {"spec": {"replicas": 3}}, "default")
    await eventually(lambda: _count(client, rs, 3))
    pending = [p for p in await owned_pods(client, rs) if not p["spec"].get("nodeName")]
    assert len(pending) == 1
    await client.patch(REPLICASETS, "db", {"spec": {"replicas": 2}}, "default")
    await eventually(lambda: _count(client, rs, 2))
    # the unscheduled pod went first
    assert all(p["spec"].get("nodeName") for p in await owned_pods(client, rs))
    victim = (await owned_pods(client, rs))[0]
    await client.delete(PODS, victim["metadata"]["name"], "default", grace_period_seconds=0)
    await eventually(lambda: _count(client, rs, 2))
    names = {p["metadata"]["name"] for p in await owned_pods(client, rs)}
    assert victim["metadata"]["name"] not in names


async def test_adopts_orphans_and_releases_pods_that_stop_matching(cluster: Any) -> None:
    client = cluster.client
    orphan = await client.create(PODS, {
        "metadata": {"name": "stray", "labels": {"app": "adopt"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, "default")
    rs = await client.create(REPLICASETS, replicaset("adopt", 2), "default")
    await eventually(lambda: _count(client, rs, 2))
    pods = await owned_pods(client, rs)
    assert orphan["metadata"]["name"] in {p["metadata"]["name"] for p in pods}
    # relabel one pod: it is released and replaced
    await client.patch(PODS, "stray", {"metadata": {"labels": {"app": "other"}}}, "default")

    async def released() -> bool:
        pod = await client.get(PODS, "stray", "default")
        return not pod["metadata"].get("ownerReferences") and \
            len(await owned_pods(client, rs)) == 2

    await eventually(released)


async def test_available_waits_for_min_ready_seconds(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1")
    await client.create(REPLICASETS, replicaset("slow", 1, min_ready=1), "default")

    async def status() -> dict[str, Any]:
        return (await client.get(REPLICASETS, "slow", "default")).get("status") or {}

    await eventually(lambda: _ready(status, 1))
    assert (await status()).get("availableReplicas", 0) == 0
    await eventually(lambda: _available(status, 1), timeout=5)


async def test_never_over_creates_while_creates_are_in_flight(cluster: Any) -> None:
    client = cluster.client
    rs = await client.create(REPLICASETS, replicaset("many", 30), "default")
    await eventually(lambda: _count(client, rs, 30))
    # churn: many updates of the ReplicaSet while it works
    for n in range(5):
        await client.patch(REPLICASETS, "many", {"metadata": {"labels": {"n": str(n)}}},
                           "default")
    await eventually(lambda: _count(client, rs, 30))
    all_pods = await owned_pods(client, rs, active=False)
    assert len(all_pods) == 30


async def _count(client: Any, rs: Any, n: int) -> bool:
    return len(await owned_pods(client, rs)) == n


async def _all_running(client: Any, rs: Any, n: int) -> bool:
    pods = await owned_pods(client, rs)
    return len(pods) == n and all(p["status"].get("phase") == "Running" for p in pods)


async def _ready(status: Any, n: int) -> bool:
    return (await status()).get("readyReplicas") == n


async def _available(status: Any, n: int) -> bool:
    return (await status()).get("availableReplicas") == n


async def test_replication_controller_keeps_replicas_and_adopts(cluster: Any) -> None:
    from kubeling_controllers_default.resources import REPLICATIONCONTROLLERS

    client = cluster.client
    await cluster.nodes("n1")
    orphan = await client.create(PODS, {"metadata": {"name": "stray", "labels": {
        "app": "legacy", "extra": "x"}}, "spec": {"containers": [
            {"name": "c", "image": "busybox"}]}}, "default")
    rc = await client.create(REPLICATIONCONTROLLERS, {
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
        "spec": {"replicas": 3, "selector": {"app": "legacy"},
                 "template": {"metadata": {"labels": {"app": "legacy"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
        "default")

    async def settled(n: int) -> bool:
        got = await client.get(REPLICATIONCONTROLLERS, "legacy", "default")
        status = got.get("status") or {}
        return status.get("replicas") == n and status.get("readyReplicas") == n and \
            status.get("observedGeneration") == got["metadata"]["generation"] and \
            len(await owned_pods(client, rc)) == n

    await eventually(lambda: settled(3))
    pods = await owned_pods(client, rc)
    assert orphan["metadata"]["uid"] in {p["metadata"]["uid"] for p in pods}  # adopted
    ref = pods[0]["metadata"]["ownerReferences"][0]
    assert (ref["apiVersion"], ref["kind"], ref["controller"]) == \
        ("v1", "ReplicationController", True)
    await client.patch(REPLICATIONCONTROLLERS, "legacy", {"spec": {"replicas": 1}}, "default")
    await eventually(lambda: settled(1))

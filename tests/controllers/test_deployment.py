"""The Deployment controller through the API: rollouts, revisions, pause, deadlines."""

from __future__ import annotations

import asyncio
from typing import Any

from kubeling_controllers_default.testing import eventually

from kubeling.client.resources import DEPLOYMENTS, EVENTS, PODS, REPLICASETS


def deployment(name: str, replicas: int, *, image: str = "web:1", strategy: Any = None,
               **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    body: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": image}]}},
                 **spec},
    }
    if strategy is not None:
        body["spec"]["strategy"] = strategy
    return body


async def get(client: Any, name: str) -> dict[str, Any]:
    return await client.get(DEPLOYMENTS, name, "default")


async def replicasets(client: Any, app: str) -> list[dict[str, Any]]:
    items = (await client.list(REPLICASETS, "default", label_selector=f"app={app}"))["items"]
    return sorted(items, key=lambda rs: int(rs["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"]))


def complete(d: dict[str, Any]) -> bool:
    """What ``kubectl rollout status`` waits for."""
    status = d.get("status") or {}
    replicas = d["spec"]["replicas"]
    progressing = next((c for c in status.get("conditions") or []
                        if c["type"] == "Progressing"), {})
    return status.get("observedGeneration", 0) >= d["metadata"]["generation"] \
        and progressing.get("reason") != "ProgressDeadlineExceeded" \
        and status.get("updatedReplicas", 0) == replicas \
        and status.get("replicas", 0) == replicas \
        and status.get("availableReplicas", 0) == replicas


async def rolled_out(client: Any, name: str) -> bool:
    return complete(await get(client, name))


async def set_image(client: Any, name: str, image: str) -> None:
    await client.patch(DEPLOYMENTS, name, {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": image}]}}}}, "default", type="strategic")


async def test_creates_a_replicaset_with_hash_and_revision_and_reports_status(
        cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1", "n2")
    d = await client.create(DEPLOYMENTS, deployment("web", 3), "default")
    await eventually(lambda: rolled_out(client, "web"))
    [rs] = await replicasets(client, "web")
    digest = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{digest}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": digest}
    assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    annotations = rs["metadata"]["annotations"]
    assert annotations["deployment.kubernetes.io/revision"] == "1"
    assert annotations["deployment.kubernetes.io/desired-replicas"] == "3"
    assert annotations["deployment.kubernetes.io/max-replicas"] == "4"  # 3 + 25% up
    got = await get(client, "web")
    assert got["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert got["metadata"]["generation"] == 1  # the revision annotation is not a new spec
    status = got["status"]
    assert status["replicas"] == status["updatedReplicas"] == status["readyReplicas"] == 3
    assert status["unavailableReplicas"] == 0
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert conditions["Progressing"]["message"] == \
        f'ReplicaSet "web-{digest}" has successfully progressed.'
    pods = (await client.list(PODS, "default", label_selector="app=web"))["items"]
    assert all(p["metadata"]["labels"]["pod-template-hash"] == digest for p in pods)
    events = [e for e in (await client.list(EVENTS, "default"))["items"]
              if e["reason"] == "ScalingReplicaSet"]
    assert events[0]["message"] == f"Scaled up replica set web-{digest} to 3"
    assert events[0]["source"]["component"] == "deployment-controller"


async def test_rolling_update_keeps_availability_and_surge_bounds(cluster: Any) -> None:
    """10 replicas, maxUnavailable 1: never fewer than 9 ready, never more than 11 pods."""
    client = cluster.client
    await cluster.nodes("n1", "n2", "n3")
    strategy = {"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}
    await client.create(DEPLOYMENTS, deployment("roll", 10, strategy=strategy), "default")
    await eventually(lambda: rolled_out(client, "roll"), timeout=20)
    listed = await client.list(PODS, "default", label_selector="app=roll")
    pods = {p["metadata"]["uid"]: p for p in listed["items"]}
    seen = {"min_ready": 10, "max_pods": 10, "events": 0}

    def check() -> None:
        live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in live if any(c["type"] == "Ready" and c["status"] == "True"
                                        for c in (p.get("status") or {}).get("conditions")
                                        or [])]
        seen["min_ready"] = min(seen["min_ready"], len(ready))
        seen["max_pods"] = max(seen["max_pods"], len(live))

    async def watch() -> None:
        async for ev in client.watch(PODS, "default", label_selector="app=roll",
                                     resource_version=listed["metadata"]["resourceVersion"]):
            seen["events"] += 1
            if ev.type == "DELETED":
                pods.pop(ev.object["metadata"]["uid"], None)
            else:
                pods[ev.object["metadata"]["uid"]] = ev.object
            check()

    watcher = asyncio.create_task(watch())
    await set_image(client, "roll", "web:2")
    await eventually(lambda: rolled_out(client, "roll"), timeout=30)
    await eventually(lambda: _pods_settled(pods, 10))
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert seen["events"] > 30
    assert seen["min_ready"] >= 9
    assert seen["max_pods"] <= 11
    old, new = await replicasets(client, "roll")
    assert old["spec"]["replicas"] == 0
    assert new["spec"]["replicas"] == 10
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    images = {p["spec"]["containers"][0]["image"] for p in pods.values()}
    assert images == {"web:2"}


def _pods_settled(pods: dict[str, Any], n: int) -> bool:
    return len(pods) == n


async def test_recreate_stops_every_old_pod_before_starting_new_ones(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1")
    await client.create(DEPLOYMENTS, deployment("re", 3, strategy={"type": "Recreate"}),
                        "default")
    await eventually(lambda: rolled_out(client, "re"))
    listed = await client.list(PODS, "default", label_selector="app=re")
    pods = {p["metadata"]["uid"]: p for p in listed["items"]}
    overlap = []

    async def watch() -> None:
        async for ev in client.watch(PODS, "default", label_selector="app=re",
                                     resource_version=listed["metadata"]["resourceVersion"]):
            if ev.type == "DELETED":
                pods.pop(ev.object["metadata"]["uid"], None)
            else:
                pods[ev.object["metadata"]["uid"]] = ev.object
            images = {p["spec"]["containers"][0]["image"] for p in pods.values()}
            if len(images) > 1:
                overlap.append(images)

    watcher = asyncio.create_task(watch())
    await set_image(client, "re", "web:2")
    await eventually(lambda: rolled_out(client, "re"), timeout=20)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert not overlap


async def test_scaling_changes_only_the_active_replicaset(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1")
    await client.create(DEPLOYMENTS, deployment("sc", 2), "default")
    await eventually(lambda: rolled_out(client, "sc"))
    await client.patch(DEPLOYMENTS, "sc", {"spec": {"replicas": 5}}, "default")
    await eventually(lambda: rolled_out(client, "sc"))
    [rs] = await replicasets(client, "sc")
    assert rs["spec"]["replicas"] == 5
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "5"
    await client.patch(DEPLOYMENTS, "sc", {"spec": {"replicas": 1}}, "default",
                       subresource="scale")
    await eventually(lambda: rolled_out(client, "sc"))
    [rs] = await replicasets(client, "sc")
    assert rs["spec"]["replicas"] == 1


async def test_paused_deployment_does_not_roll_until_resumed(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1")
    await client.create(DEPLOYMENTS, deployment("pz", 2), "default")
    await eventually(lambda: rolled_out(client, "pz"))
    await client.patch(DEPLOYMENTS, "pz", {"spec": {"paused": True}}, "default")
    await set_image(client, "pz", "web:2")

    async def paused() -> bool:
        d = await get(client, "pz")
        cond = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
        return cond["reason"] == "DeploymentPaused" and cond["status"] == "Unknown" \
            and d["status"]["observedGeneration"] == d["metadata"]["generation"]

    await eventually(paused)
    await asyncio.sleep(0.3)
    assert len(await replicasets(client, "pz")) == 1
    await client.patch(DEPLOYMENTS, "pz", {"spec": {"paused": False}}, "default")
    await eventually(lambda: rolled_out(client, "pz"))
    assert len(await replicasets(client, "pz")) == 2


async def test_progress_deadline_exceeded_when_pods_never_become_available(
        cluster: Any) -> None:
    client = cluster.client
    nodes = await cluster.nodes("n1")
    nodes.bind = False  # nothing gets scheduled
    await client.create(DEPLOYMENTS, deployment("stuck", 2, progressDeadlineSeconds=1),
                        "default")

    async def timed_out() -> bool:
        d = await get(client, "stuck")
        cond = next((c for c in (d.get("status") or {}).get("conditions") or []
                     if c["type"] == "Progressing"), {})
        return cond.get("status") == "False" and cond.get("reason") == "ProgressDeadlineExceeded"

    await eventually(timed_out, timeout=10)
    d = await get(client, "stuck")
    available = next(c for c in d["status"]["conditions"] if c["type"] == "Available")
    assert available["status"] == "False"
    assert available["reason"] == "MinimumReplicasUnavailable"
    assert d["status"]["unavailableReplicas"] == 2


async def test_revision_history_limit_and_rollback_to_an_old_template(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1")
    await client.create(DEPLOYMENTS, deployment("hist", 1, revisionHistoryLimit=2), "default")
    await eventually(lambda: rolled_out(client, "hist"))
    for n in (2, 3, 4):
        await set_image(client, "hist", f"web:{n}")
        await eventually(lambda: rolled_out(client, "hist"))

    async def trimmed() -> bool:
        return len(await replicasets(client, "hist")) == 3  # the new one and two old

    await eventually(trimmed)
    revisions = [rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                 for rs in await replicasets(client, "hist")]
    assert revisions == ["2", "3", "4"]
    # roll back to revision 2: its ReplicaSet becomes the new one, as revision 5
    rs2 = (await replicasets(client, "hist"))[0]
    template = rs2["spec"]["template"]
    del template["metadata"]["labels"]["pod-template-hash"]
    await client.patch(DEPLOYMENTS, "hist", [
        {"op": "replace", "path": "/spec/template", "value": template}], "default",
        type="json")
    await eventually(lambda: rolled_out(client, "hist"))

    async def rolled_back() -> bool:
        rss = await replicasets(client, "hist")
        return rss[-1]["metadata"]["uid"] == rs2["metadata"]["uid"]

    await eventually(rolled_back)
    back = (await replicasets(client, "hist"))[-1]
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "5"
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "2"
    assert back["spec"]["replicas"] == 1
    d = await get(client, "hist")
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "5"

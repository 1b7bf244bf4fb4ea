"""The StatefulSet controller: ordered pods with stable names and claims, scale-down in
reverse, Parallel management, rolling updates with a partition, OnDelete, history."""

from __future__ import annotations

import asyncio
from typing import Any

from kubeling_controllers_default.resources import (
    CONTROLLERREVISIONS,
    PERSISTENTVOLUMECLAIMS,
    STATEFULSETS,
)
from kubeling_controllers_default.testing import Outcome, default_outcome, eventually

from kubeling.client.resources import EVENTS, PODS


def statefulset(name: str, *, replicas: int = 3, image: str = "db:1", **spec: Any
                ) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name,
                     "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "containers": [{"name": "c", "image": image}]}}, **spec}}


async def pods_of(client: Any, app: str) -> dict[str, dict[str, Any]]:
    items = (await client.list(PODS, "default", label_selector=f"app={app}"))["items"]
    return {p["metadata"]["name"]: p for p in items if not p["metadata"].get("deletionTimestamp")}


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


async def rolled_out(client: Any, name: str, replicas: int) -> bool:
    """What ``kubectl rollout status statefulset`` waits for."""
    sts = await client.get(STATEFULSETS, name, "default")
    status = sts.get("status") or {}
    return status.get("observedGeneration") == sts["metadata"]["generation"] and \
        status.get("readyReplicas") == replicas and status.get("replicas") == replicas and \
        status.get("currentRevision") == status.get("updateRevision") and \
        len(await pods_of(client, name)) == replicas


async def record_order(client: Any, app: str, since: str) -> tuple[list[str], asyncio.Task[Any]]:
    """Names of pods as they are created / finish deleting, in order."""
    seen: list[str] = []

    async def watch() -> None:
        async for ev in client.watch(PODS, "default", label_selector=f"app={app}",
                                     resource_version=since):
            name = ev.object["metadata"]["name"]
            if ev.type == "ADDED":
                seen.append(f"+{name}")
            elif ev.type == "DELETED":
                seen.append(f"-{name}")

    return seen, asyncio.create_task(watch())


async def test_ordered_pods_with_identity_and_claims(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("a", "b")
    since = (await client.list(PODS, "default"))["metadata"]["resourceVersion"]
    order, watcher = await record_order(client, "web", since)
    claim_template = {"metadata": {"name": "data", "labels": {"tier": "db"}},
                      "spec": {"accessModes": ["ReadWriteOnce"],
                               "resources": {"requests": {"storage": "1Gi"}}}}
    await client.create(STATEFULSETS, statefulset("web", volumeClaimTemplates=[claim_template]),
                        "default")
    await eventually(lambda: rolled_out(client, "web", 3), timeout=20)
    assert order[:3] == ["+web-0", "+web-1", "+web-2"]
    pods = await pods_of(client, "web")
    web1 = pods["web-1"]
    assert web1["spec"]["hostname"] == "web-1" and web1["spec"]["subdomain"] == "web"
    labels = web1["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-1"
    assert labels["apps.kubernetes.io/pod-index"] == "1"
    sts = await client.get(STATEFULSETS, "web", "default")
    assert labels["controller-revision-hash"] == sts["status"]["updateRevision"]
    assert web1["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}} in \
        web1["spec"]["volumes"]
    claims = {c["metadata"]["name"]: c for c in
              (await client.list(PERSISTENTVOLUMECLAIMS, "default"))["items"]}
    assert set(claims) == {"data-web-0", "data-web-1", "data-web-2"}
    assert claims["data-web-0"]["metadata"]["labels"] == {"tier": "db", "app": "web"}
    assert claims["data-web-0"]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    # a deleted pod comes back under its name, with the same claim
    uid = pods["web-1"]["metadata"]["uid"]
    await client.delete(PODS, "web-1", "default")
    await eventually(lambda: pods_of(client, "web"), timeout=10)

    async def replaced() -> bool:
        now = await pods_of(client, "web")
        return "web-1" in now and now["web-1"]["metadata"]["uid"] != uid and ready(now["web-1"])

    await eventually(replaced, timeout=20)
    # scale down removes the highest ordinals first, one at a time; claims are kept
    await client.patch(STATEFULSETS, "web", {"spec": {"replicas": 1}}, "default")
    await eventually(lambda: rolled_out(client, "web", 1), timeout=20)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    removals = [e for e in order if e in ("-web-1", "-web-2")]
    assert removals[-2:] == ["-web-2", "-web-1"]
    assert len((await client.list(PERSISTENTVOLUMECLAIMS, "default"))["items"]) == 3
    events = (await client.list(EVENTS, "default",
                                field_selector="involvedObject.name=web"))["items"]
    messages = {e["message"] for e in events}
    assert "create Pod web-0 in StatefulSet web successful" in messages
    assert "create Claim data-web-0 Pod web-0 in StatefulSet web success" in messages
    assert "delete Pod web-2 in StatefulSet web successful" in messages


async def test_ordered_ready_waits_for_each_pod(cluster: Any) -> None:
    client = cluster.client
    held = {"slow-1"}

    def outcome(pod: dict[str, Any]) -> Outcome:
        if pod["metadata"]["name"] in held:
            return Outcome("Running", ready=False)
        return default_outcome(pod)

    await cluster.nodes("a", outcome=outcome)
    await client.create(STATEFULSETS, statefulset("slow"), "default")

    async def two_and_stuck() -> bool:
        pods = await pods_of(client, "slow")
        return set(pods) == {"slow-0", "slow-1"} and ready(pods["slow-0"])

    await eventually(two_and_stuck, timeout=10)
    await asyncio.sleep(1.0)
    assert set(await pods_of(client, "slow")) == {"slow-0", "slow-1"}  # slow-2 waits
    sts = await client.get(STATEFULSETS, "slow", "default")
    assert sts["status"]["readyReplicas"] == 1 and sts["status"]["replicas"] == 2


async def test_parallel_creates_at_once_and_failed_pods_come_back(cluster: Any) -> None:
    client = cluster.client
    held = {"par-0", "par-1", "par-2"}

    def outcome(pod: dict[str, Any]) -> Outcome:
        if pod["metadata"]["name"] in held:
            return Outcome("Running", ready=False)
        return default_outcome(pod)

    await cluster.nodes("a", outcome=outcome)
    await client.create(STATEFULSETS, statefulset("par", podManagementPolicy="Parallel"),
                        "default")
    await eventually(lambda: _names(client, "par", {"par-0", "par-1", "par-2"}), timeout=10)
    # a pod that failed is deleted and created again
    pod = (await pods_of(client, "par"))["par-2"]
    await client.patch(PODS, "par-2", {"status": {"phase": "Failed"}}, "default",
                       subresource="status")

    async def recreated() -> bool:
        now = await pods_of(client, "par")
        return "par-2" in now and now["par-2"]["metadata"]["uid"] != pod["metadata"]["uid"]

    await eventually(recreated, timeout=10)


async def _names(client: Any, app: str, names: set[str]) -> bool:
    return set(await pods_of(client, app)) == names


async def test_rolling_update_from_the_top_with_a_partition(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("a", "b")
    await client.create(STATEFULSETS, statefulset("roll"), "default")
    await eventually(lambda: rolled_out(client, "roll", 3), timeout=20)
    first = (await client.get(STATEFULSETS, "roll", "default"))["status"]["currentRevision"]
    since = (await client.list(PODS, "default"))["metadata"]["resourceVersion"]
    order, watcher = await record_order(client, "roll", since)
    await client.patch(STATEFULSETS, "roll", {"spec": {
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
        "template": {"spec": {"containers": [{"name": "c", "image": "db:2"}]}}}},
        "default", type="strategic")

    async def partitioned() -> bool:
        pods = await pods_of(client, "roll")
        images = {n: p["spec"]["containers"][0]["image"] for n, p in pods.items()}
        sts = await client.get(STATEFULSETS, "roll", "default")
        return images == {"roll-0": "db:1", "roll-1": "db:2", "roll-2": "db:2"} and \
            all(ready(p) for p in pods.values()) and sts["status"]["updatedReplicas"] == 2

    await eventually(partitioned, timeout=20)
    sts = await client.get(STATEFULSETS, "roll", "default")
    assert sts["status"]["currentRevision"] == first != sts["status"]["updateRevision"]
    assert sts["status"]["currentReplicas"] == 1
    deletions = [e for e in order if e.startswith("-")]
    assert deletions == ["-roll-2", "-roll-1"]
    # a pod below the partition is re-created at the current revision
    await client.delete(PODS, "roll-0", "default", grace_period_seconds=0)
    await asyncio.sleep(0.5)
    await eventually(lambda: partitioned(), timeout=20)
    # partition 0 finishes the rollout; the current revision becomes the new one
    await client.patch(STATEFULSETS, "roll", {"spec": {"updateStrategy": {
        "rollingUpdate": {"partition": 0}}}}, "default", type="strategic")

    async def done() -> bool:
        pods = await pods_of(client, "roll")
        return await rolled_out(client, "roll", 3) and \
            {p["spec"]["containers"][0]["image"] for p in pods.values()} == {"db:2"}

    await eventually(done, timeout=20)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    revisions = (await client.list(CONTROLLERREVISIONS, "default",
                                   label_selector="app=roll"))["items"]
    assert sorted(r["revision"] for r in revisions) == [1, 2]
    assert all(r["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
               for r in revisions)


async def test_on_delete_waits_for_the_user(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("a")
    await client.create(STATEFULSETS, statefulset("od", replicas=2,
                                                  updateStrategy={"type": "OnDelete"}),
                        "default")
    await eventually(lambda: rolled_out(client, "od", 2), timeout=20)
    await client.patch(STATEFULSETS, "od", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "db:2"}]}}}}, "default", type="strategic")
    await asyncio.sleep(1.0)
    images = {p["spec"]["containers"][0]["image"] for p in (await pods_of(client, "od"))
              .values()}
    assert images == {"db:1"}
    await client.delete(PODS, "od-1", "default", grace_period_seconds=0)

    async def replaced() -> bool:
        pods = await pods_of(client, "od")
        return pods.get("od-1", {}).get("spec", {}).get("containers", [{}])[0].get(
            "image") == "db:2" and pods["od-0"]["spec"]["containers"][0]["image"] == "db:1"

    await eventually(replaced, timeout=20)


async def test_claims_go_with_the_set_or_the_scaled_down_pod(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("a")
    claim_template = {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    await client.create(STATEFULSETS, statefulset(
        "gone", replicas=2, volumeClaimTemplates=[claim_template],
        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete",
                                              "whenScaled": "Delete"}), "default")
    await eventually(lambda: rolled_out(client, "gone", 2), timeout=20)

    async def claims() -> set[str]:
        items = (await client.list(PERSISTENTVOLUMECLAIMS, "default"))["items"]
        return {c["metadata"]["name"] for c in items
                if not c["metadata"].get("deletionTimestamp")}

    assert await claims() == {"data-gone-0", "data-gone-1"}
    await client.patch(STATEFULSETS, "gone", {"spec": {"replicas": 1}}, "default")
    await eventually(lambda: _claims_are(claims, {"data-gone-0"}), timeout=20)
    await client.delete(STATEFULSETS, "gone", "default")
    await eventually(lambda: _claims_are(claims, set()), timeout=20)
    assert await pods_of(client, "gone") == {}


async def _claims_are(claims: Any, names: set[str]) -> bool:
    return await claims() == names

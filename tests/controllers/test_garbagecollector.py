"""The garbage collector: Background, Foreground and Orphan cascades, dangling dependents,
blockOwnerDeletion."""

from __future__ import annotations

import asyncio
from typing import Any

from kubeling_controllers_default.testing import eventually

from kubeling.client import ApiError
from kubeling.client.resources import CONFIGMAPS, PODS, REPLICASETS


def replicaset(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


def owned_by(obj: dict[str, Any], *owners: dict[str, Any], block: bool = False
             ) -> dict[str, Any]:
    refs = [{"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"], "blockOwnerDeletion": block} for o in owners]
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": refs}}


async def exists(client: Any, resource: Any, name: str, namespace: str = "default") -> bool:
    try:
        await client.get(resource, name, namespace)
        return True
    except ApiError as exc:
        if exc.code == 404:
            return False
        raise


async def pods_of(client: Any, app: str) -> list[dict[str, Any]]:
    return (await client.list(PODS, "default", label_selector=f"app={app}"))["items"]


async def running_rs(cluster: Any, name: str, replicas: int) -> dict[str, Any]:
    client = cluster.client
    rs = await client.create(REPLICASETS, replicaset(name, replicas), "default")

    async def ready() -> bool:
        got = await client.get(REPLICASETS, name, "default")
        return (got.get("status") or {}).get("readyReplicas") == replicas

    await eventually(ready)
    return rs


async def test_background_deletes_the_owner_then_its_dependents(cluster: Any) -> None:
    await cluster.nodes("n1")
    client = cluster.client
    await running_rs(cluster, "bg", 3)
    await client.delete(REPLICASETS, "bg", "default", propagation_policy="Background")
    assert not await exists(client, REPLICASETS, "bg")  # the owner goes at once
    await eventually(lambda: _none_left(client, "bg"))


async def test_foreground_deletes_dependents_before_the_owner(cluster: Any) -> None:
    await cluster.nodes("n1")
    client = cluster.client
    rs = await running_rs(cluster, "fg", 3)
    order: list[str] = []

    async def watch() -> None:
        async for ev in client.watch(PODS, "default", label_selector="app=fg",
                                     resource_version=rs["metadata"]["resourceVersion"]):
            if ev.type == "DELETED":
                order.append("pod")
    watcher = asyncio.create_task(watch())
    await client.delete(REPLICASETS, "fg", "default", propagation_policy="Foreground")
    got = await client.get(REPLICASETS, "fg", "default")
    assert got["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in got["metadata"]["finalizers"]

    async def owner_gone() -> bool:
        if await exists(client, REPLICASETS, "fg"):
            return False
        order.append("owner")
        return True

    await eventually(owner_gone)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert order.count("pod") == 3
    assert order.index("owner") == 3  # every pod went before the owner
    assert not await pods_of(client, "fg")


async def test_orphan_keeps_the_dependents_without_the_owner_reference(cluster: Any) -> None:
    await cluster.nodes("n1")
    client = cluster.client
    await running_rs(cluster, "orph", 2)
    before = {p["metadata"]["uid"] for p in await pods_of(client, "orph")}
    await client.delete(REPLICASETS, "orph", "default", propagation_policy="Orphan")
    await eventually(lambda: _gone(client, REPLICASETS, "orph"))
    pods = await pods_of(client, "orph")
    assert {p["metadata"]["uid"] for p in pods} == before
    assert all(not p["metadata"].get("ownerReferences") for p in pods)
    assert all(not p["metadata"].get("deletionTimestamp") for p in pods)
    # a new ReplicaSet with the same selector adopts them instead of creating more
    rs2 = await client.create(REPLICASETS, replicaset("orph", 2), "default")

    async def adopted() -> bool:
        pods = await pods_of(client, "orph")
        return {p["metadata"]["uid"] for p in pods} == before and all(
            (p["metadata"].get("ownerReferences") or [{}])[0].get("uid") == rs2["metadata"]["uid"]
            for p in pods)

    await eventually(adopted)


async def test_dangling_dependents_are_collected(cluster: Any) -> None:
    client = cluster.client
    ghost = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "never-was", "uid": "0d0d0d0d-0000-4000-8000-000000000000"}}
    await client.create(CONFIGMAPS, owned_by({"metadata": {"name": "dangling"}}, ghost),
                        "default")
    owner = await client.create(CONFIGMAPS, {"metadata": {"name": "owner"}}, "default")
    await client.create(CONFIGMAPS, owned_by({"metadata": {"name": "kept"}}, owner),
                        "default")
    await client.create(CONFIGMAPS, owned_by({"metadata": {"name": "two-owners"}}, owner,
                                             ghost), "default")
    await eventually(lambda: _gone(client, CONFIGMAPS, "dangling"))

    async def dangling_ref_removed() -> bool:
        got = await client.get(CONFIGMAPS, "two-owners", "default")
        return [r["uid"] for r in got["metadata"]["ownerReferences"]] == \
            [owner["metadata"]["uid"]]

    await eventually(dangling_ref_removed)
    assert await exists(client, CONFIGMAPS, "kept")
    # a replaced owner (same name, new uid) does not own the old dependents
    await client.delete(CONFIGMAPS, "owner", "default")
    await client.create(CONFIGMAPS, {"metadata": {"name": "owner"}}, "default")
    await eventually(lambda: _gone(client, CONFIGMAPS, "kept"))
    await eventually(lambda: _gone(client, CONFIGMAPS, "two-owners"))


async def test_foreground_waits_only_for_blocking_dependents(cluster: Any) -> None:
    client = cluster.client
    owner = await client.create(CONFIGMAPS, {"metadata": {"name": "boss"}}, "default")
    blocking = owned_by({"metadata": {"name": "blocker", "finalizers": ["test.io/hold"]}},
                        owner, block=True)
    await client.create(CONFIGMAPS, blocking, "default")
    await client.create(CONFIGMAPS, owned_by({"metadata": {"name": "free",
                                                           "finalizers": ["test.io/hold"]}},
                                             owner), "default")
    await client.delete(CONFIGMAPS, "boss", "default", propagation_policy="Foreground")

    async def dependents_deleting() -> bool:
        a = await client.get(CONFIGMAPS, "blocker", "default")
        b = await client.get(CONFIGMAPS, "free", "default")
        return bool(a["metadata"].get("deletionTimestamp")
                    and b["metadata"].get("deletionTimestamp"))

    await eventually(dependents_deleting)
    await asyncio.sleep(0.3)
    assert await exists(client, CONFIGMAPS, "boss")  # held by the blocking dependent
    await client.patch(CONFIGMAPS, "blocker", {"metadata": {"finalizers": None}}, "default")
    await eventually(lambda: _gone(client, CONFIGMAPS, "boss"))
    assert await exists(client, CONFIGMAPS, "free")  # still held by its own finalizer
    await client.patch(CONFIGMAPS, "free", {"metadata": {"finalizers": None}}, "default")
    await eventually(lambda: _gone(client, CONFIGMAPS, "free"))


async def _gone(client: Any, resource: Any, name: str) -> bool:
    return not await exists(client, resource, name)


async def _none_left(client: Any, app: str) -> bool:
    return not await pods_of(client, app)

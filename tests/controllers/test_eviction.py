"""pods/eviction with PodDisruptionBudgets kept current by the disruption controller."""

from __future__ import annotations

from typing import Any

import pytest
from kubeling_controllers_default.resources import PODDISRUPTIONBUDGETS
from kubeling_controllers_default.testing import eventually

from kubeling.client import ApiError
from kubeling.client.resources import DEPLOYMENTS, PODS


def eviction(name: str) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}


async def evict(client: Any, name: str) -> Any:
    return await client.create(PODS, eviction(name), "default", name=name,
                               subresource="eviction")


async def live_pods(client: Any, app: str) -> list[dict[str, Any]]:
    pods = (await client.list(PODS, "default", label_selector=f"app={app}"))["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and p["status"].get("phase") == "Running"]


async def test_eviction_without_a_budget_deletes_the_pod(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1")
    await client.create(PODS, {"metadata": {"name": "p", "labels": {"app": "solo"}},
                               "spec": {"containers": [{"name": "c", "image": "i"}]}},
                        "default")
    await eventually(lambda: live_pods(client, "solo"))
    with pytest.raises(ApiError) as info:
        await client.create(PODS, eviction("other"), "default", name="p",
                            subresource="eviction")
    assert info.value.code == 400
    result = await evict(client, "p")
    assert result["status"] == "Success" and result["code"] == 201

    async def gone() -> bool:
        try:
            await client.get(PODS, "p", "default")
            return False
        except ApiError as exc:
            return exc.code == 404

    await eventually(gone)


async def test_budget_allows_one_disruption_at_a_time(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1", "n2")
    labels = {"app": "db"}
    await client.create(DEPLOYMENTS, {"metadata": {"name": "db"}, "spec": {
        "replicas": 3, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels},
                     "spec": {"containers": [{"name": "c", "image": "i"}]}}}}, "default")
    pdb = await client.create(PODDISRUPTIONBUDGETS, {
        "metadata": {"name": "db"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}}, "default")
    assert pdb["status"]["disruptionsAllowed"] == 0

    async def status() -> dict[str, Any]:
        return (await client.get(PODDISRUPTIONBUDGETS, "db", "default")).get("status") or {}

    async def allows_one() -> bool:
        s = await status()
        return s.get("disruptionsAllowed") == 1 and s.get("currentHealthy") == 3 and \
            s.get("desiredHealthy") == 2 and s.get("expectedPods") == 3

    await eventually(allows_one)
    conditions = {c["type"]: c for c in (await status())["conditions"]}
    assert conditions["DisruptionAllowed"]["reason"] == "SufficientPods"
    first, second = (await live_pods(client, "db"))[:2]
    await evict(client, first["metadata"]["name"])
    with pytest.raises(ApiError) as info:
        await evict(client, second["metadata"]["name"])
    assert info.value.code == 429
    assert info.value.message == \
        "Cannot evict pod as it would violate the pod's disruption budget."
    assert info.value.details["causes"][0]["reason"] == "DisruptionBudget"
    assert "needs 2 healthy pods and has" in info.value.details["causes"][0]["message"]
    # the Deployment replaces the evicted pod; then the budget allows one again
    await eventually(allows_one, timeout=10)
    await evict(client, second["metadata"]["name"])


async def test_budget_with_a_percentage_counts_the_statefulset_scale(cluster: Any) -> None:
    from kubeling_controllers_default.resources import STATEFULSETS

    client = cluster.client
    await cluster.nodes("n1")
    labels = {"app": "quorum"}
    await client.create(STATEFULSETS, {"metadata": {"name": "quorum"}, "spec": {
        "replicas": 3, "serviceName": "quorum", "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels},
                     "spec": {"containers": [{"name": "c", "image": "i"}]}}}}, "default")
    await client.create(PODDISRUPTIONBUDGETS, {
        "metadata": {"name": "quorum"},
        "spec": {"maxUnavailable": "34%", "selector": {"matchLabels": labels}}}, "default")

    async def allows_one() -> bool:
        s = (await client.get(PODDISRUPTIONBUDGETS, "quorum", "default")).get("status") or {}
        return s.get("expectedPods") == 3 and s.get("desiredHealthy") == 1 and \
            s.get("currentHealthy") == 3 and s.get("disruptionsAllowed") == 2

    await eventually(allows_one, timeout=15)

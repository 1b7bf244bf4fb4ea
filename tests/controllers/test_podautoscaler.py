"""Kubernetes' replica calculator for CPU utilization, as pure cases (the controller runs
against real metrics in tests/node/test_top.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from kubeling_controllers_default.podautoscaler import recommend


def pod(name: str, cpu: str | None = "100m", *, ready: bool = True) -> dict:
    requests = {"cpu": cpu} if cpu else {}
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"}]}}


def milli(*values: int) -> dict[str, Decimal]:
    return {f"p{i}": Decimal(v) / 1000 for i, v in enumerate(values)}


def test_scale_up_and_down_by_the_ratio() -> None:
    pods = [pod("p0"), pod("p1")]
    # 2 pods at 100% of a 50% target: 4 pods
    assert recommend(2, 50, pods, milli(100, 100), 0.1) == (4, 100)
    # 2 pods at 10% of a 50% target: 1 pod (ceil(0.2 * 2))
    assert recommend(2, 50, pods, milli(10, 10), 0.1) == (1, 10)
    # within the tolerance: unchanged
    assert recommend(2, 50, pods, milli(54, 54), 0.1) == (2, 54)


def test_missing_metrics_and_unready_pods_do_not_overshoot() -> None:
    pods = [pod("p0"), pod("p1"), pod("p2")]
    # scaling up: the pod without metrics counts as idle -> ratio (200/300)/0.5 = 1.33
    assert recommend(3, 50, pods, milli(100, 100), 0.1) == (4, 100)
    # scaling down: it counts as fully used -> (10+10+100)/300 = 40% of 50% -> 0.8 * 3
    assert recommend(3, 50, pods, milli(10, 10), 0.1) == (3, 10)
    # an unready pod with metrics counts as idle when scaling up
    pods = [pod("p0"), pod("p1", ready=False)]
    assert recommend(2, 50, pods, milli(100, 100), 0.1) == (2, 100)


def test_no_metrics_keeps_the_count_and_missing_requests_are_an_error() -> None:
    assert recommend(3, 50, [pod("p0")], {}, 0.1) == (3, None)
    with pytest.raises(ValueError, match="missing request for cpu"):
        recommend(1, 50, [pod("p0", cpu=None)], milli(10), 0.1)


async def test_replicas_below_the_minimum_are_raised_without_metrics(cluster: object) -> None:
    from kubeling_controllers_default.podautoscaler import HPAS
    from kubeling_controllers_default.testing import eventually

    from kubeling.client.resources import DEPLOYMENTS, EVENTS

    client = cluster.client  # type: ignore[attr-defined]
    labels = {"app": "web"}
    await client.create(DEPLOYMENTS, {"metadata": {"name": "web"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}}}},
        "default")
    await client.create(HPAS, {"metadata": {"name": "web"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2, "maxReplicas": 4}}, "default")

    async def scaled() -> bool:
        d = await client.get(DEPLOYMENTS, "web", "default")
        return d["spec"]["replicas"] == 2

    await eventually(scaled)
    hpa = await client.get(HPAS, "web", "default")
    assert hpa["spec"]["targetCPUUtilizationPercentage"] == 80  # the default
    assert hpa["status"]["desiredReplicas"] == 2 and hpa["status"]["currentReplicas"] == 1

    async def reasons() -> dict[str, str]:
        items = (await client.list(EVENTS, "default",
                                   field_selector="involvedObject.name=web,"
                                                  "involvedObject.kind=HorizontalPodAutoscaler")
                 )["items"]
        return {e["reason"]: e["message"] for e in items}

    found = await eventually(lambda: _with(reasons, "SuccessfulRescale"))
    assert found["SuccessfulRescale"] == \
        "New size: 2; reason: Current number of replicas below Spec.MinReplicas"
    assert found["FailedGetResourceMetric"].startswith("failed to get cpu utilization")


async def _with(get: object, reason: str) -> dict[str, str] | None:
    got = await get()  # type: ignore[operator]
    return got if reason in got else None

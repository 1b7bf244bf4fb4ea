"""The HorizontalPodAutoscaler controller (autoscaling/v1: CPU utilization), Kubernetes'
algorithm without the v2 metric kinds.

Every ``hpa_sync_period_seconds`` each autoscaler reads its target's ``scale`` subresource
(the replica count and the pod selector), the pods it selects and their CPU usage from the
metrics API (``metrics.k8s.io``), and computes the utilization: the pods' CPU use over
their CPU requests.  With a ratio ``utilization / target`` outside the tolerance (10 %) the
recommendation is ``ceil(ratio x ready pods)``; pods without metrics count as using
nothing when scaling up and as using their full request when scaling down, and pods not
yet ready count as using nothing when scaling up (so neither makes the autoscaler overshoot).
The recommendation is kept within ``minReplicas..maxReplicas``, a scale-up at most doubles
the count (at least +4 pods), and a scale-down follows the highest recommendation of the
last ``hpa_downscale_stabilization_seconds`` (5 min).  A change is written to the target's
``scale`` with a ``SuccessfulRescale`` event; the status reports current and desired
replicas, the utilization and the last scale time.
"""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import Any

from kubeling.api.quantity import parse_quantity
from kubeling.api.registry import Resource
from kubeling.client import ApiError
from kubeling.client.resources import PODS
from kubeling_controllers_default.base import Controller, ControllerContext, Requeue
from kubeling_controllers_default.util import fmt_time, is_pod_ready, meta

__all__ = ["HorizontalPodAutoscalerController", "recommend"]

Obj = dict[str, Any]

HPAS = Resource(group="autoscaling", version="v1", plural="horizontalpodautoscalers",
                kind="HorizontalPodAutoscaler", namespaced=True)
POD_METRICS = Resource(group="metrics.k8s.io", version="v1beta1", plural="pods",
                       kind="PodMetrics", namespaced=True)
_TARGETS = {
    ("apps", "Deployment"): "deployments", ("apps", "ReplicaSet"): "replicasets",
    ("apps", "StatefulSet"): "statefulsets", ("", "ReplicationController"):
    "replicationcontrollers",
}


def _cpu(value: Any) -> Decimal:
    try:
        return parse_quantity(str(value))
    except (ValueError, ArithmeticError):
        return Decimal(0)


def _request(pod: Obj) -> Decimal | None:
    """The pod's CPU request (its containers'); None when a container sets none."""
    total = Decimal(0)
    for container in (pod.get("spec") or {}).get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        if "cpu" not in requests:
            return None
        total += _cpu(requests["cpu"])
    return total


def recommend(current: int, target: int, pods: list[Obj], usage: dict[str, Decimal],
              tolerance: float) -> tuple[int, int | None]:
    """(the replica count Kubernetes' replica calculator recommends, the utilization in
    percent of requests measured on the pods with metrics; None without any).

    :raises ValueError: a pod has no CPU request (utilization is undefined).
    """
    ready: dict[str, Decimal] = {}
    unready: dict[str, Decimal] = {}
    missing: dict[str, Decimal] = {}
    for pod in pods:
        m = meta(pod)
        if m.get("deletionTimestamp") is not None or \
                (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
            continue
        request = _request(pod)
        if request is None:
            raise ValueError(f"missing request for cpu in pod {m.get('name')}")
        name = str(m.get("name"))
        if name not in usage:
            missing[name] = request
        elif not is_pod_ready(pod):
            unready[name] = request
        else:
            ready[name] = request
    if not ready:
        return current, None
    used = sum((usage[n] for n in ready), Decimal(0))
    requested = sum(ready.values(), Decimal(0))
    if requested <= 0:
        raise ValueError("the pods request no cpu")
    utilization = used / requested * 100
    ratio = float(utilization) / target
    measured = int(utilization)
    if not missing and not unready:
        if abs(ratio - 1.0) <= tolerance:
            return current, measured
        return math.ceil(ratio * len(ready)), measured
    # the pods without metrics or readiness: none when scaling up, full when scaling down
    if ratio < 1.0:
        used += sum(missing.values(), Decimal(0))
        requested += sum(missing.values(), Decimal(0))
    else:
        requested += sum(missing.values(), Decimal(0)) + sum(unready.values(), Decimal(0))
    new_ratio = float(used / requested * 100) / target
    if abs(new_ratio - 1.0) <= tolerance or (new_ratio > 1.0) != (ratio > 1.0):
        return current, measured
    counted = len(ready) + len(missing) + (len(unready) if ratio >= 1.0 else 0)
    return math.ceil(new_ratio * counted), measured


class HorizontalPodAutoscalerController(Controller):
    """autoscaling/v1 HorizontalPodAutoscalers."""

    name = "horizontalpodautoscaler"
    component = "horizontal-pod-autoscaler"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.recorder = ctx.recorder(self.component)
        self.hpas = self.informer(HPAS)
        self.hpas.add_handler(on_add=self.enqueue, on_update=self._updated,
                              on_delete=self._forget)
        self._history: dict[str, list[tuple[float, int]]] = {}
        """key -> (monotonic time, recommendation) within the stabilization window."""

    def _updated(self, old: Obj, new: Obj) -> None:
        """A changed spec is evaluated at once; status writes (ours) wait for the period."""
        if meta(old).get("generation") != meta(new).get("generation"):
            self.enqueue(new)

    def _forget(self, hpa: Obj) -> None:
        self._history.pop(f"{meta(hpa).get('namespace')}/{meta(hpa).get('name')}", None)

    async def reconcile(self, key: str) -> None:
        hpa = self.hpas.get(key)
        if hpa is None:
            self._history.pop(key, None)
            return
        try:
            await self._evaluate(key, hpa)
        except ApiError as exc:  # evaluated again at the next period anyway
            self.log.info("%s %s: %s", self.name, key, exc)
        raise Requeue(self.settings.hpa_sync_period_seconds)

    async def _evaluate(self, key: str, hpa: Obj) -> None:
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        namespace = str(meta(hpa).get("namespace"))
        group = str(ref.get("apiVersion") or "").rpartition("/")[0]
        plural = _TARGETS.get((group, str(ref.get("kind") or "")))
        if plural is None:
            self.recorder.warning(hpa, "FailedGetScale",
                                  f"the HPA controller was unable to get the target's current "
                                  f'scale: no scale subresource for {ref.get("kind")} '
                                  f'"{ref.get("apiVersion")}"')
            return
        version = str(ref.get("apiVersion") or "v1").rpartition("/")[2] or "v1"
        target = Resource(group=group, version=version, plural=plural,
                          kind=str(ref.get("kind")), namespaced=True)
        try:
            scale = await self.client.get(target, str(ref.get("name")), namespace,
                                          subresource="scale")
        except ApiError as exc:
            self.recorder.warning(hpa, "FailedGetScale",
                                  f"the HPA controller was unable to get the target's "
                                  f"current scale: {exc.message}")
            return
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        low, high = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1)
        utilization: int | None = None
        if current == 0:
            desired = 0  # scaled to zero by hand: autoscaling is off
        else:
            selector = str((scale.get("status") or {}).get("selector") or "")
            try:
                proposal, utilization = await self._proposal(hpa, namespace, selector,
                                                             current)
            except ValueError as exc:
                self.recorder.warning(hpa, "FailedGetResourceMetric", str(exc))
                proposal = current
            desired = self._stabilized(key, current, max(low, min(high, proposal)))
            desired = max(low, min(high, desired, max(2 * current, current + 4)))
        status: Obj = {"observedGeneration": int(meta(hpa).get("generation") or 1),
                       "currentReplicas": current, "desiredReplicas": desired}
        old = hpa.get("status") or {}
        if old.get("lastScaleTime"):
            status["lastScaleTime"] = old["lastScaleTime"]
        if utilization is not None:
            status["currentCPUUtilizationPercentage"] = utilization
        if desired != current:
            if not await self._set_replicas(target, scale, current, desired):
                return  # someone else changed the count: evaluated again next period
            if current > high:
                reason = "Current number of replicas above Spec.MaxReplicas"
            elif current < low:
                reason = "Current number of replicas below Spec.MinReplicas"
            elif desired > current:
                reason = "cpu resource utilization (percentage of request) above target"
            else:
                reason = "All metrics below target"
            self.recorder.normal(hpa, "SuccessfulRescale",
                                 f"New size: {desired}; reason: {reason}")
            status["lastScaleTime"] = fmt_time(self.clock.now())
        if status != old:
            try:
                await self.client.update_status(HPAS, {**hpa, "status": status})
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise

    async def _set_replicas(self, target: Resource, scale: Obj, current: int,
                            desired: int) -> bool:
        """Write the new count through ``scale``; a conflict caused by a status write (the
        count still ``current``) is retried on the fresh object.  False when the count
        changed meanwhile."""
        for _ in range(3):
            try:
                await self.client.update(target, {**scale, "spec": {
                    **(scale.get("spec") or {}), "replicas": desired}}, subresource="scale")
                return True
            except ApiError as exc:
                if exc.code != 409:
                    raise
            m = meta(scale)
            scale = await self.client.get(target, str(m.get("name")), m.get("namespace"),
                                          subresource="scale")
            if int((scale.get("spec") or {}).get("replicas") or 0) != current:
                return False
        return False

    async def _proposal(self, hpa: Obj, namespace: str, selector: str,
                        current: int) -> tuple[int, int | None]:
        target = int((hpa.get("spec") or {}).get("targetCPUUtilizationPercentage") or 80)
        pods = (await self.client.list(PODS, namespace, label_selector=selector or None)
                ).get("items") or []
        try:
            listed = (await self.client.list(POD_METRICS, namespace,
                                             label_selector=selector or None)).get("items") or []
        except ApiError as exc:
            raise ValueError(f"failed to get cpu utilization: unable to get metrics for "
                             f"resource cpu: {exc.message}") from None
        usage = {str(meta(m).get("name")): sum((_cpu((c.get("usage") or {}).get("cpu") or 0)
                                                for c in m.get("containers") or []),
                                               Decimal(0))
                 for m in listed}
        if not usage:
            raise ValueError("failed to get cpu utilization: unable to get metrics for "
                             "resource cpu: no metrics returned from resource metrics API")
        return recommend(current, target, pods, usage, self.settings.hpa_tolerance)

    def _stabilized(self, key: str, current: int, recommendation: int) -> int:
        """Scale-downs follow the highest recommendation of the stabilization window."""
        now = time.monotonic()
        window = self.settings.hpa_downscale_stabilization_seconds
        history = [(t, r) for t, r in self._history.get(key, []) if now - t <= window]
        history.append((now, recommendation))
        self._history[key] = history
        if recommendation >= current:
            return recommendation
        return min(current, max(r for _, r in history))

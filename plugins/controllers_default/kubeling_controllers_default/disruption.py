"""The disruption controller: PodDisruptionBudget status, which evictions consult.

For each budget: the pods its (non-empty) selector picks; the *expected* count (the pods
themselves for an integer ``minAvailable``, else the scale of their controllers --
ReplicaSets, the Deployment owning them, StatefulSets or ReplicationControllers); the
*desired* healthy count (``minAvailable``, or expected minus ``maxUnavailable``, percentages
rounded up); the *current* healthy count (ready pods not being deleted and not recently
evicted); ``disruptionsAllowed`` = current - desired (never negative), the
``DisruptionAllowed`` condition, and ``disruptedPods`` (evictions the API server granted
that the pod informer has not yet shown; entries expire after two minutes).
"""

from __future__ import annotations

import math
from typing import Any

from kubeling.api.selectors import SelectorError, label_selector_from_dict
from kubeling.client import ApiError
from kubeling_controllers_default.base import Controller, ControllerContext
from kubeling_controllers_default.indexes import BY_NAMESPACE, by_namespace
from kubeling_controllers_default.resources import (
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
)
from kubeling_controllers_default.util import (
    controller_ref,
    fmt_time,
    is_pod_ready,
    meta,
    parse_time,
)

__all__ = ["DisruptionController"]

Obj = dict[str, Any]

DELETION_TIMEOUT = 120.0


class _NoScale(Exception):
    """A pod's controller has no known scale."""


class DisruptionController(Controller):
    """policy/v1 PodDisruptionBudget status."""

    name = "disruption"
    component = "controllermanager"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client("kubeling-controller-manager/disruption-controller")
        self.recorder = ctx.recorder(self.component)
        self.budgets = self.informer(PODDISRUPTIONBUDGETS)
        self.pods = self.informer(PODS)
        self.replicasets = self.informer(REPLICASETS)
        self.deployments = self.informer(DEPLOYMENTS)
        self.statefulsets = self.informer(STATEFULSETS)
        self.rcs = self.informer(REPLICATIONCONTROLLERS)
        self.budgets_by_ns = ctx.index(PODDISRUPTIONBUDGETS, BY_NAMESPACE, by_namespace)
        self.pods_by_ns = ctx.index(PODS, BY_NAMESPACE, by_namespace)
        self.budgets.add_handler(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))
        self.pods.add_handler(on_add=self._changed, on_update=lambda o, n: self._changed(n, o),
                              on_delete=self._changed)
        for informer in (self.replicasets, self.deployments, self.statefulsets,
                         self.rcs):
            informer.add_handler(on_update=lambda _o, n: self._namespace_changed(n))

    def _namespace_changed(self, obj: Obj) -> None:
        for pdb in self.budgets_by_ns.get(str(meta(obj).get("namespace") or "")):
            self.enqueue(pdb)

    def _changed(self, pod: Obj, old: Obj | None = None) -> None:
        label_sets = [meta(pod).get("labels") or {}]
        if old is not None:
            label_sets.append(meta(old).get("labels") or {})
        for pdb in self.budgets_by_ns.get(str(meta(pod).get("namespace") or "")):
            selector = (pdb.get("spec") or {}).get("selector")
            try:
                sel = label_selector_from_dict(selector)
            except SelectorError:
                continue
            if selector is not None and not sel.empty and \
                    any(sel.matches(ls) for ls in label_sets):
                self.enqueue(pdb)

    def _scale_of(self, pod: Obj, seen: set[str]) -> int:
        """The replicas of the pod's top controller (0 if already counted)."""
        ref = controller_ref(pod)
        namespace = meta(pod).get("namespace")
        if ref is None:
            raise _NoScale(f"found no controller ref for pod {meta(pod).get('name')}")
        kind = ref.get("kind")
        if kind == "ReplicaSet":
            rs = self.replicasets.get(f"{namespace}/{ref.get('name')}")
            if rs is None:
                raise _NoScale(f"replica set {ref.get('name')} not found")
            owner = controller_ref(rs)
            if owner is not None and owner.get("kind") == "Deployment":
                d = self.deployments.get(f"{namespace}/{owner.get('name')}")
                if d is not None and meta(d).get("uid") == owner.get("uid"):
                    if owner["uid"] in seen:
                        return 0
                    seen.add(owner["uid"])
                    return int((d.get("spec") or {}).get("replicas") or 0)
            if ref.get("uid") in seen:
                return 0
            seen.add(str(ref.get("uid")))
            return int((rs.get("spec") or {}).get("replicas") or 0)
        if kind in ("StatefulSet", "ReplicationController"):
            informer = self.statefulsets if kind == "StatefulSet" else self.rcs
            sts = informer.get(f"{namespace}/{ref.get('name')}")
            if sts is None or meta(sts).get("uid") != ref.get("uid"):
                raise _NoScale(f"{kind.lower()} {ref.get('name')} not found")
            if ref["uid"] in seen:
                return 0
            seen.add(str(ref["uid"]))
            return int((sts.get("spec") or {}).get("replicas") or 0)
        raise _NoScale(f"pods owned by a {kind} have no scale this controller knows")

    async def reconcile(self, key: str) -> None:
        pdb = self.budgets.get(key)
        if pdb is None:
            return
        spec = pdb.get("spec") or {}
        selector = spec.get("selector")
        try:
            sel = label_selector_from_dict(selector)
        except SelectorError:
            sel = None
        pods = []
        if sel is not None and selector is not None and not sel.empty:
            pods = [p for p in self.pods_by_ns.get(str(meta(pdb).get("namespace") or ""))
                    if sel.matches(meta(p).get("labels") or {})]
        now = self.clock.now()
        status = dict(pdb.get("status") or {})
        disrupted = {}
        by_name = {meta(p).get("name"): p for p in pods}
        recheck = None
        for name, when in (status.get("disruptedPods") or {}).items():
            pod = by_name.get(name)
            if pod is None or meta(pod).get("deletionTimestamp") is not None:
                continue
            started = parse_time(when)
            age = (now - started).total_seconds() if started else DELETION_TIMEOUT
            if age >= DELETION_TIMEOUT:
                continue
            disrupted[name] = when
            left = DELETION_TIMEOUT - age
            recheck = left if recheck is None else min(recheck, left)
        healthy = sum(1 for p in pods if is_pod_ready(p)
                      and meta(p).get("deletionTimestamp") is None
                      and meta(p).get("name") not in disrupted)
        error = None
        try:
            expected, desired = self._expected_and_desired(spec, pods)
        except _NoScale as exc:
            error = str(exc)
            expected, desired = 0, 0
        allowed = max(healthy - desired, 0) if error is None else 0
        status.update({"observedGeneration": int(meta(pdb).get("generation") or 1),
                       "disruptionsAllowed": allowed, "currentHealthy": healthy,
                       "desiredHealthy": desired, "expectedPods": expected})
        if disrupted:
            status["disruptedPods"] = disrupted
        else:
            status.pop("disruptedPods", None)
        if error is not None:
            cond = {"type": "DisruptionAllowed", "status": "False", "reason": "SyncFailed",
                    "message": error}
        elif allowed > 0:
            cond = {"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                    "message": ""}
        else:
            cond = {"type": "DisruptionAllowed", "status": "False",
                    "reason": "InsufficientPods", "message": ""}
        old = next((c for c in status.get("conditions") or []
                    if c.get("type") == "DisruptionAllowed"), None)
        if old is not None and old.get("status") == cond["status"] and \
                old.get("reason") == cond["reason"] and old.get("message") == cond["message"]:
            cond = old
        else:
            cond = {**cond, "lastTransitionTime": fmt_time(now),
                    "observedGeneration": status["observedGeneration"]}
        status["conditions"] = [c for c in status.get("conditions") or []
                                if c.get("type") != "DisruptionAllowed"] + [cond]
        if status != (pdb.get("status") or {}):
            try:
                await self.client.update_status(PODDISRUPTIONBUDGETS, {**pdb, "status": status})
            except ApiError as exc:
                if exc.code != 404:
                    raise
        if recheck is not None:
            self.enqueue_after(key, recheck)

    def _expected_and_desired(self, spec: Obj, pods: list[Obj]) -> tuple[int, int]:
        max_unavailable = spec.get("maxUnavailable")
        min_available = spec.get("minAvailable")
        if max_unavailable is not None:
            expected = self._expected(pods)
            unavailable = _scaled(max_unavailable, expected)
            return expected, max(expected - unavailable, 0)
        if isinstance(min_available, int) and not isinstance(min_available, bool):
            return len(pods), min_available
        if isinstance(min_available, str):
            expected = self._expected(pods)
            return expected, _scaled(min_available, expected)
        return len(pods), len(pods)

    def _expected(self, pods: list[Obj]) -> int:
        seen: set[str] = set()
        return sum(self._scale_of(p, seen) for p in pods)


def _scaled(value: Any, total: int) -> int:
    """An int-or-percent of ``total``, rounded up."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


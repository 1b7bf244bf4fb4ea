"""The ReplicaSet controller: keep ``spec.replicas`` pods matching the selector.

Per sync of a ReplicaSet: claim pods (adopt matching orphans, release owned pods that no
longer match), then -- only when its expectations are satisfied -- create the missing pods
in slow-start batches or delete the least valuable surplus ones, then write the status
(replicas, fullyLabeledReplicas, readyReplicas, availableReplicas after minReadySeconds,
observedGeneration and the ReplicaFailure condition).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from kubeling.api.registry import Resource
from kubeling.api.selectors import LabelSelector, SelectorError, label_selector_from_dict
from kubeling.client import ApiError
from kubeling_controllers_default.base import Controller, ControllerContext
from kubeling_controllers_default.expectations import UIDTrackingExpectations
from kubeling_controllers_default.indexes import (
    BY_CONTROLLER,
    BY_NAMESPACE,
    by_controller,
    by_namespace,
    claim_candidates,
)
from kubeling_controllers_default.pods import PodControl, can_adopt, claim, slow_start_batch
from kubeling_controllers_default.resources import PODS, REPLICASETS, REPLICATIONCONTROLLERS
from kubeling_controllers_default.util import (
    condition,
    controller_ref,
    fmt_time,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    meta,
    ns_name,
    parse_time,
    pod_from_template,
    pod_ready_since,
    selector_of,
    set_condition,
)

__all__ = ["ReplicaSetController", "ReplicationControllerController", "rank_for_deletion"]

Obj = dict[str, Any]

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def rank_for_deletion(pods: list[Obj], related: list[Obj]) -> list[Obj]:
    """``pods`` ordered from the one to delete first (Kubernetes' ``ActivePodsWithRanks``):
    unscheduled before scheduled, pending before running, not ready before ready, pods on
    crowded nodes first, ready for less time first, more restarts first, newer first."""
    per_node: dict[str, int] = {}
    for pod in related:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and is_pod_active(pod):
            per_node[node] = per_node.get(node, 0) + 1

    def key(pod: Obj) -> tuple[Any, ...]:
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        node = spec.get("nodeName") or ""
        ready = is_pod_ready(pod)
        since = pod_ready_since(pod)
        restarts = sum(int(c.get("restartCount") or 0)
                       for c in status.get("containerStatuses") or [])
        created = parse_time(meta(pod).get("creationTimestamp"))
        return (
            1 if node else 0,
            _PHASE_RANK.get(status.get("phase") or "Pending", 0),
            1 if ready else 0,
            -per_node.get(node, 0) if node else 0,
            # ready for less time first: a later ready time sorts first
            -since.timestamp() if ready and since is not None else 0.0,
            -restarts,
            -created.timestamp() if created is not None else 0.0,
        )

    return sorted(pods, key=key)


class ReplicaSetController(Controller):
    """apps/v1 ReplicaSets."""

    name = "replicaset"
    kind_name = "ReplicaSet"
    component = "replicaset-controller"
    resource: ClassVar[Resource] = REPLICASETS

    def selector_of(self, owner: Obj) -> LabelSelector | None:
        """The owner's pod selector (None when invalid)."""
        return selector_of(owner)

    def _owns_api_version(self, api_version: str) -> bool:
        group = self.resource.group
        return api_version == "v1" if not group else api_version.startswith(f"{group}/")

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.recorder = ctx.recorder(self.component)
        self.pod_control = PodControl(self.client, self.recorder)
        self.expectations = UIDTrackingExpectations(ctx.settings.expectations_timeout_seconds,
                                                    clock=ctx.clock.monotonic)
        self.owners = self.informer(self.resource)
        self.pods = self.informer(PODS)
        self.owners_by_ns = ctx.index(self.resource, BY_NAMESPACE, by_namespace)
        self.pods_by_controller = ctx.index(PODS, BY_CONTROLLER, by_controller)
        self.owners.add_handler(on_add=self.enqueue, on_update=self._owner_updated,
                                on_delete=self.enqueue)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_deleted)

    # -- handlers --------------------------------------------------------------------------

    def _owner_updated(self, old: Obj, new: Obj) -> None:
        self.enqueue(new)

    def _resolve(self, namespace: str | None, ref: Any) -> Obj | None:
        if ref is None or ref.get("kind") != self.kind_name or \
                not self._owns_api_version(str(ref.get("apiVersion", ""))):
            return None
        owner = self.owners.get(f"{namespace}/{ref.get('name')}")
        if owner is None or meta(owner).get("uid") != ref.get("uid"):
            return None
        return owner

    def _owners_selecting(self, pod: Obj) -> list[Obj]:
        pod_labels = meta(pod).get("labels") or {}
        out = []
        for owner in self.owners_by_ns.get(str(meta(pod).get("namespace") or "")):
            selector = self.selector_of(owner)
            if selector is not None and selector.matches(pod_labels):
                out.append(owner)
        return out

    def _pod_added(self, pod: Obj) -> None:
        if meta(pod).get("deletionTimestamp") is not None:
            self._pod_deleted(pod)
            return
        owner = self._resolve(meta(pod).get("namespace"), controller_ref(pod))
        if owner is not None:
            key = ns_name(owner)
            self.expectations.creation_observed(key)
            self.enqueue(key)
            return
        if controller_ref(pod) is None:
            for owner in self._owners_selecting(pod):
                self.enqueue(owner)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        namespace = meta(new).get("namespace")
        labels_changed = meta(old).get("labels") != meta(new).get("labels")
        if meta(new).get("deletionTimestamp") is not None and \
                meta(old).get("deletionTimestamp") is None:
            self._pod_deleted(new)
            if labels_changed:
                old_owner = self._resolve(namespace, controller_ref(old))
                if old_owner is not None:
                    self.enqueue(old_owner)
            return
        new_ref, old_ref = controller_ref(new), controller_ref(old)
        if old_ref is not None and (new_ref is None or new_ref.get("uid") != old_ref.get("uid")):
            old_owner = self._resolve(namespace, old_ref)
            if old_owner is not None:
                self.enqueue(old_owner)
        if new_ref is not None:
            owner = self._resolve(namespace, new_ref)
            if owner is None:
                return
            self.enqueue(owner)
            min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and is_pod_ready(new) and not is_pod_ready(old):
                self.enqueue_after(owner, min_ready + 1)
            return
        if labels_changed or old_ref is not None:
            for owner in self._owners_selecting(new):
                self.enqueue(owner)

    def _pod_deleted(self, pod: Obj) -> None:
        owner = self._resolve(meta(pod).get("namespace"), controller_ref(pod))
        if owner is None:
            return
        key = ns_name(owner)
        self.expectations.deletion_observed_of(key, ns_name(pod))
        self.enqueue(key)

    # -- reconcile -------------------------------------------------------------------------

    async def _can_adopt(self, owner: Obj) -> bool:
        return await can_adopt(self.client, self.resource, owner)

    async def reconcile(self, key: str) -> None:
        rs = self.owners.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        needs_sync = self.expectations.satisfied(key)
        selector = self.selector_of(rs)
        if selector is None:
            self.log.warning("%s %s has an invalid selector", self.name, key)
            return
        rs_meta = meta(rs)
        candidates = claim_candidates(self.pods_by_controller, rs)
        pods = await claim(rs, selector, candidates,
                           adopt=lambda p: self.pod_control.adopt(p, rs),
                           release=lambda p: self.pod_control.release(p, rs),
                           can_adopt=lambda: self._can_adopt(rs))
        active = [p for p in pods if is_pod_active(p)]
        manage_error: Exception | None = None
        if needs_sync and rs_meta.get("deletionTimestamp") is None:
            try:
                active = await self.manage_replicas(active, rs, key)
            except ApiError as exc:
                manage_error = exc
        status = self.calculate_status(rs, active, manage_error)
        updated = await self.update_status(rs, status)
        if manage_error is not None:
            raise manage_error
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        new_status = updated.get("status") or {}
        if min_ready > 0 and new_status.get("readyReplicas") == rs["spec"].get("replicas") \
                and new_status.get("availableReplicas") != rs["spec"].get("replicas"):
            self.enqueue_after(key, min_ready)

    async def manage_replicas(self, active: list[Obj], rs: Obj, key: str) -> list[Obj]:
        """Create or delete pods towards ``spec.replicas``; the pods still active after."""
        wanted = int((rs.get("spec") or {}).get("replicas") or 0)
        diff = len(active) - wanted
        burst = self.settings.burst_replicas
        namespace = meta(rs)["namespace"]
        if diff < 0:
            count = min(-diff, burst)
            self.expectations.expect_creations(key, count)
            template = (rs.get("spec") or {}).get("template") or {}
            prefix = f"{meta(rs)['name']}-"

            async def create(_: int) -> None:
                pod = pod_from_template(template, rs, generate_name=prefix)
                if await self.pod_control.create(namespace, pod, rs) is None:
                    self.expectations.creation_observed(key)

            created, error = await slow_start_batch(count, create)
            skipped = count - created
            if skipped:
                self.expectations.lower(key, add=skipped)
            if error is not None:
                raise error
            return active
        if diff > 0:
            count = min(diff, burst)
            victims = rank_for_deletion(active, active)[:count]
            self.expectations.expect_deletions_of(key, [ns_name(p) for p in victims])
            results = await asyncio.gather(*(self.pod_control.delete(p, rs) for p in victims),
                                           return_exceptions=True)
            errors = []
            for pod, result in zip(victims, results, strict=True):
                if isinstance(result, Exception):
                    self.expectations.deletion_observed_of(key, ns_name(pod))
                    errors.append(result)
            gone = {ns_name(p) for p in victims}
            if errors:
                raise errors[0]
            return [p for p in active if ns_name(p) not in gone]
        return active

    def calculate_status(self, rs: Obj, active: list[Obj], error: Exception | None) -> Obj:
        spec = rs.get("spec") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") \
            or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        fully = ready = available = 0
        for pod in active:
            pod_labels = meta(pod).get("labels") or {}
            if all(pod_labels.get(k) == v for k, v in template_labels.items()):
                fully += 1
            if is_pod_ready(pod):
                ready += 1
                if is_pod_available(pod, min_ready, now):
                    available += 1
        old = rs.get("status") or {}
        status: Obj = {"replicas": len(active), "fullyLabeledReplicas": fully,
                       "readyReplicas": ready, "availableReplicas": available,
                       "observedGeneration": meta(rs).get("generation", 1)}
        conditions = list(old.get("conditions") or [])
        failure = condition(rs, "ReplicaFailure")
        if error is not None and failure is None:
            verb = "create" if len(active) < int(spec.get("replicas") or 0) else "delete"
            conditions = set_condition(conditions, {
                "type": "ReplicaFailure", "status": "True",
                "reason": "FailedCreate" if verb == "create" else "FailedDelete",
                "message": str(getattr(error, "message", error))}, fmt_time(now))
        elif error is None and failure is not None:
            conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
        if conditions:
            status["conditions"] = conditions
        return status

    async def update_status(self, rs: Obj, status: Obj) -> Obj:
        """Write ``status`` unless it is already there; the object as stored."""
        current = rs
        for attempt in range(2):
            old = current.get("status") or {}
            if all(old.get(k, 0 if k != "conditions" else None) == v
                   for k, v in status.items()) and \
                    ("conditions" in status or not old.get("conditions")):
                return current
            try:
                return await self.client.update_status(self.resource,
                                                       {**current, "status": status})
            except ApiError as exc:
                if exc.code != 409 or attempt:
                    if exc.code == 404:
                        return current
                    raise
                m = meta(current)
                current = await self.client.get(self.resource, m["name"], m["namespace"])
                if meta(current).get("uid") != m.get("uid"):
                    return current
        return current


class ReplicationControllerController(ReplicaSetController):
    """core/v1 ReplicationControllers: the ReplicaSet logic (Kubernetes runs them through
    its ReplicaSet code too) with an equality selector, ``spec.selector`` being a label
    map."""

    name = "replicationcontroller"
    kind_name = "ReplicationController"
    component = "replication-controller"
    resource: ClassVar[Resource] = REPLICATIONCONTROLLERS

    def selector_of(self, owner: Obj) -> LabelSelector | None:
        labels = (owner.get("spec") or {}).get("selector")
        if not isinstance(labels, dict) or not labels:
            return None
        try:
            return label_selector_from_dict({"matchLabels": labels})
        except SelectorError:
            return None

"""Node lifecycle: notice dead nodes, taint them, and evict what does not tolerate it.

:class:`NodeLifecycleController` (Kubernetes' node lifecycle controller)

* every ``node_monitor_period_seconds`` checks each node's heartbeat: its Lease in
  ``kube-node-lease`` and its Ready condition's ``lastHeartbeatTime``.  A node with neither
  renewed for ``node_monitor_grace_period_seconds`` gets its Ready (and pressure) conditions
  set to ``Unknown`` (``NodeStatusUnknown``: "Kubelet stopped posting node status.") and
  its pods marked not ready;
* keeps condition taints in step: ``NoSchedule`` taints for not-ready, unreachable,
  pressure, network-unavailable and cordoned nodes, and the ``NoExecute`` taints
  ``node.kubernetes.io/not-ready`` (Ready False) / ``node.kubernetes.io/unreachable``
  (Ready Unknown).  ``NoExecute`` taints are added at ``node_eviction_rate`` nodes per
  second per zone, more slowly in a partially disrupted large zone, and not at all while
  every zone is fully disrupted (then it is more likely the control plane that is cut off).

:class:`TaintEvictionController` (the NoExecute taint manager) deletes pods on nodes with
``NoExecute`` taints they do not tolerate at once, and pods that tolerate them for
``tolerationSeconds`` after that time; a pod's ReplicaSet then replaces it elsewhere.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from kubeling.client import ApiError
from kubeling_controllers_default.base import Controller, ControllerContext
from kubeling_controllers_default.indexes import BY_NODE, by_node
from kubeling_controllers_default.queue import TokenBucket
from kubeling_controllers_default.resources import LEASES, NODES, PODS
from kubeling_controllers_default.util import (
    condition,
    fmt_time,
    meta,
    ns_name,
    tolerates,
    toleration_matches,
)

__all__ = ["NodeLifecycleController", "TaintEvictionController", "zone_of"]

Obj = dict[str, Any]

NODE_LEASE_NAMESPACE = "kube-node-lease"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
CONDITION_TAINTS = {
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
    "NetworkUnavailable": "node.kubernetes.io/network-unavailable",
}
MONITORED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
MANAGED_NO_SCHEDULE = frozenset({NOT_READY, UNREACHABLE, UNSCHEDULABLE,
                                 *CONDITION_TAINTS.values()})

NORMAL = "Normal"
PARTIAL = "PartialDisruption"
FULL = "FullDisruption"


def zone_of(node: Obj) -> str:
    """The failure zone of a node: its region and zone labels."""
    labels = meta(node).get("labels") or {}
    region = labels.get("topology.kubernetes.io/region") or \
        labels.get("failure-domain.beta.kubernetes.io/region") or ""
    zone = labels.get("topology.kubernetes.io/zone") or \
        labels.get("failure-domain.beta.kubernetes.io/zone") or ""
    return f"{region}:\x00:{zone}"


def ready_status(node: Obj) -> str:
    """``True``, ``False`` or ``Unknown`` (a node without a Ready condition is Unknown)."""
    cond = condition(node, "Ready")
    return str(cond.get("status")) if cond is not None else "Unknown"


@attrs.define
class _Health:
    probe: float
    heartbeat: Any = None
    lease: Any = None
    ready: str = ""


class NodeLifecycleController(Controller):
    """Node heartbeats, node conditions and the taints derived from them."""

    name = "nodelifecycle"
    component = "node-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.recorder = ctx.recorder(self.component)
        self.nodes = self.informer(NODES)
        self.leases = self.informer(LEASES, namespace=NODE_LEASE_NAMESPACE)
        self.pods = self.informer(PODS)
        self.pods_by_node = ctx.index(PODS, BY_NODE, by_node)
        self.health: dict[str, _Health] = {}
        self.zone_states: dict[str, str] = {}
        self._limiters: dict[str, tuple[float, TokenBucket]] = {}
        self._may_add_no_execute: set[str] = set()
        """Nodes a finished monitor pass found not ready (see :meth:`monitor`)."""
        self.nodes.add_handler(on_add=self.enqueue, on_update=self._node_updated,
                               on_delete=self._node_deleted)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if (old.get("spec") or {}).get("taints") != (new.get("spec") or {}).get("taints") \
                or (old.get("status") or {}).get("conditions") != \
                (new.get("status") or {}).get("conditions") \
                or (old.get("spec") or {}).get("unschedulable") != \
                (new.get("spec") or {}).get("unschedulable"):
            self.enqueue(new)

    def _node_deleted(self, node: Obj) -> None:
        self.health.pop(meta(node).get("name") or "", None)

    # -- monitoring ------------------------------------------------------------------------

    async def background(self) -> None:
        period = max(self.settings.node_monitor_period_seconds, 0.05)
        while True:
            try:
                await self.monitor()
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                self.log.info("node monitor: %s", exc)
            except Exception:
                self.log.exception("node monitor failed")
            await asyncio.sleep(period)

    async def monitor(self) -> None:
        """One pass over every node: mark silent ones Unknown, recompute zone states."""
        now = self.clock.monotonic()
        seen = []
        for node in self.nodes.list():
            name = meta(node)["name"]
            updated = await self._check(node, now)
            if updated is not None:
                node = updated
            seen.append(node)
            state = ready_status(node)
            health = self.health[name]
            if health.ready and health.ready != state:
                self._ready_changed(node, health.ready, state)
            health.ready = state
        self._update_zone_states(seen)
        # NoExecute taints are added only after a whole pass, with the zone states it
        # found: nodes dying together must not be tainted one by one before the zone
        # is seen to be down
        for node in seen:
            name = meta(node)["name"]
            if ready_status(node) != "True":
                self._may_add_no_execute.add(name)
                self.enqueue(name)

    async def _check(self, node: Obj, now: float) -> Obj | None:
        name = meta(node)["name"]
        ready = condition(node, "Ready")
        heartbeat = ready.get("lastHeartbeatTime") if ready is not None else None
        lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}")
        renew = (lease.get("spec") or {}).get("renewTime") if lease is not None else None
        health = self.health.get(name)
        if health is None:
            health = _Health(now, heartbeat, renew)
            self.health[name] = health
        elif heartbeat != health.heartbeat or renew != health.lease:
            health.probe = now
            health.heartbeat = heartbeat
            health.lease = renew
        grace = self.settings.node_monitor_grace_period_seconds
        if ready is None:
            grace = self.settings.node_startup_grace_period_seconds
        if now - health.probe <= grace:
            return None
        stamp = fmt_time(self.clock.now())
        conditions = list((node.get("status") or {}).get("conditions") or [])
        changed = False
        for kind in MONITORED_CONDITIONS:
            current = next((c for c in conditions if c.get("type") == kind), None)
            if current is None:
                conditions.append({"type": kind, "status": "Unknown",
                                   "reason": "NodeStatusNeverUpdated",
                                   "message": "Kubelet never posted node status.",
                                   "lastHeartbeatTime": stamp, "lastTransitionTime": stamp})
                changed = True
            elif current.get("status") != "Unknown":
                conditions = [c if c is not current else {
                    **current, "status": "Unknown", "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.",
                    "lastTransitionTime": stamp} for c in conditions]
                changed = True
        if not changed:
            return None
        try:
            updated = await self.client.update_status(
                NODES, {**node, "status": {**(node.get("status") or {}),
                                           "conditions": conditions}})
        except ApiError as exc:
            if exc.code in (404, 409):
                return None
            raise
        health.heartbeat = (condition(updated, "Ready") or {}).get("lastHeartbeatTime")
        return updated

    def _ready_changed(self, node: Obj, before: str, after: str) -> None:
        name = meta(node)["name"]
        if after == "True":
            self.recorder.normal(node, "NodeReady", f"Node {name} status is now: NodeReady")
            return
        if before == "True":
            self.recorder.normal(node, "NodeNotReady",
                                 f"Node {name} status is now: NodeNotReady")
            asyncio.get_running_loop().create_task(self._mark_pods_not_ready(name))

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        stamp = fmt_time(self.clock.now())
        for pod in self.pods_by_node.get(node_name):
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            conditions = (pod.get("status") or {}).get("conditions") or []
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") != "True":
                continue
            new = [{**c, "status": "False", "lastTransitionTime": stamp}
                   if c.get("type") == "Ready" else c for c in conditions]
            m = meta(pod)
            try:
                await self.client.patch(PODS, m["name"], {"status": {"conditions": new}},
                                        m["namespace"], subresource="status")
                self.recorder.warning(pod, "NodeNotReady", "Node is not ready")
            except ApiError as exc:
                self.log.info("pod %s not marked not ready: %s", ns_name(pod), exc)

    def _update_zone_states(self, nodes: list[Obj]) -> None:
        zones: dict[str, list[int]] = {}
        for node in nodes:
            counts = zones.setdefault(zone_of(node), [0, 0])
            counts[0 if ready_status(node) == "True" else 1] += 1
        states = {}
        for zone, (ready, not_ready) in zones.items():
            if ready == 0 and not_ready > 0:
                states[zone] = FULL
            elif not_ready > 2 and not_ready / (ready + not_ready) >= \
                    self.settings.unhealthy_zone_threshold:
                states[zone] = PARTIAL
            else:
                states[zone] = NORMAL
        if states != self.zone_states:
            self.zone_states = states
            for node in self.nodes.list():
                self.enqueue(node)

    def _eviction_rate(self, zone: str) -> float:
        state = self.zone_states.get(zone, NORMAL)
        if state == PARTIAL:
            size = sum(1 for n in self.nodes.list() if zone_of(n) == zone)
            if size <= self.settings.large_cluster_size_threshold:
                return 0.0
            return self.settings.secondary_node_eviction_rate
        return self.settings.node_eviction_rate

    def _all_zones_down(self) -> bool:
        return bool(self.zone_states) and all(s == FULL for s in self.zone_states.values())

    def _may_taint(self, zone: str) -> float | None:
        """None when a NoExecute taint may be added now, else seconds to wait (inf: not
        at all)."""
        rate = self._eviction_rate(zone)
        if rate <= 0:
            return float("inf")
        limiter = self._limiters.get(zone)
        if limiter is None or limiter[0] != rate:
            limiter = (rate, TokenBucket(rate, 1, clock=self.clock.monotonic))
            self._limiters[zone] = limiter
        wait = limiter[1].try_take()
        return wait if wait > 0 else None

    # -- taints ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None:
            return
        spec = node.get("spec") or {}
        taints = list(spec.get("taints") or [])
        wanted_no_schedule = self._no_schedule_taints(node)
        kept = [t for t in taints if not (t.get("effect") == "NoSchedule"
                                          and t.get("key") in MANAGED_NO_SCHEDULE)]
        present = {t.get("key") for t in taints if t.get("effect") == "NoSchedule"}
        new_taints = kept + [t for t in taints if t.get("effect") == "NoSchedule"
                             and t.get("key") in wanted_no_schedule]
        for key_ in wanted_no_schedule:
            if key_ not in present:
                new_taints.append({"key": key_, "effect": "NoSchedule",
                                   "timeAdded": fmt_time(self.clock.now())})
        ready = ready_status(node)
        wanted_exec = {"False": NOT_READY, "Unknown": UNREACHABLE}.get(ready)
        if wanted_exec is None:
            self._may_add_no_execute.discard(key)
        if self._all_zones_down():
            wanted_exec = None
        has_exec = {t.get("key") for t in new_taints if t.get("effect") == "NoExecute"}
        new_taints = [t for t in new_taints if not (
            t.get("effect") == "NoExecute" and t.get("key") in (NOT_READY, UNREACHABLE)
            and t.get("key") != wanted_exec)]
        retry: float | None = None
        if wanted_exec is not None and wanted_exec not in has_exec and \
                key in self._may_add_no_execute:
            wait = self._may_taint(zone_of(node))
            if wait is None:
                self._may_add_no_execute.discard(key)
                new_taints.append({"key": wanted_exec, "effect": "NoExecute",
                                   "timeAdded": fmt_time(self.clock.now())})
                self.log.info("node %s is %s: tainted %s:NoExecute", key,
                              "not ready" if ready == "False" else "unreachable", wanted_exec)
            elif wait != float("inf"):
                retry = wait
        if new_taints != taints:
            body = {**node, "spec": {**spec, "taints": new_taints}}
            if not new_taints:
                body["spec"].pop("taints")
            try:
                await self.client.update(NODES, body)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        if retry is not None:
            self.enqueue_after(key, retry)

    @staticmethod
    def _no_schedule_taints(node: Obj) -> set[str]:
        wanted = set()
        ready = ready_status(node)
        if ready == "False":
            wanted.add(NOT_READY)
        elif ready == "Unknown":
            wanted.add(UNREACHABLE)
        for kind, taint in CONDITION_TAINTS.items():
            cond = condition(node, kind)
            if cond is not None and cond.get("status") == "True":
                wanted.add(taint)
        if (node.get("spec") or {}).get("unschedulable"):
            wanted.add(UNSCHEDULABLE)
        return wanted


class TaintEvictionController(Controller):
    """Deletes pods from nodes with NoExecute taints they do not tolerate (for long)."""

    name = "taint-eviction"
    component = "taint-eviction-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.recorder = ctx.recorder(self.component)
        self.nodes = self.informer(NODES)
        self.pods = self.informer(PODS)
        self.pods_by_node = ctx.index(PODS, BY_NODE, by_node)
        self.scheduled: dict[str, tuple[float, float]] = {}
        """pod key -> (first seen tainted, eviction due), monotonic."""
        self.nodes.add_handler(on_add=self._node_changed,
                               on_update=lambda o, n: self._node_changed(n, o))
        self.pods.add_handler(on_add=self._pod_changed,
                              on_update=lambda o, n: self._pod_changed(n, o),
                              on_delete=self._pod_deleted)

    @staticmethod
    def _no_execute(node: Obj | None) -> list[Obj]:
        if node is None:
            return []
        return [t for t in (node.get("spec") or {}).get("taints") or []
                if t.get("effect") == "NoExecute"]

    def _node_changed(self, node: Obj, old: Obj | None = None) -> None:
        if old is not None and self._no_execute(old) == self._no_execute(node):
            return
        for pod in self.pods_by_node.get(meta(node)["name"]):
            self.enqueue(pod)

    def _pod_changed(self, pod: Obj, old: Obj | None = None) -> None:
        spec = pod.get("spec") or {}
        if not spec.get("nodeName"):
            return
        if old is not None and (old.get("spec") or {}).get("nodeName") == spec["nodeName"] \
                and (old.get("spec") or {}).get("tolerations") == spec.get("tolerations"):
            return
        self.enqueue(pod)

    def _pod_deleted(self, pod: Obj) -> None:
        self.scheduled.pop(ns_name(pod), None)

    async def reconcile(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or meta(pod).get("deletionTimestamp") is not None:
            self.scheduled.pop(key, None)
            return
        node_name = (pod.get("spec") or {}).get("nodeName")
        taints = self._no_execute(self.nodes.get(node_name)) if node_name else []
        if not taints:
            if self.scheduled.pop(key, None) is not None:
                self.recorder.normal(pod, "TaintManagerEviction",
                                     f"Cancelling deletion of Pod {key}")
            return
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        if not all(tolerates(tolerations, t) for t in taints):
            await self._evict(pod, key)
            return
        used = [t for t in tolerations if any(toleration_matches(t, taint) for taint in taints)]
        seconds = [t.get("tolerationSeconds") for t in used]
        if any(s is None for s in seconds):
            self.scheduled.pop(key, None)
            return  # tolerated for ever
        wait = max(min(int(s) for s in seconds), 0)
        now = self.clock.monotonic()
        first, _ = self.scheduled.get(key, (now, 0.0))
        due = first + wait
        self.scheduled[key] = (first, due)
        if due <= now:
            await self._evict(pod, key)
        else:
            self.enqueue_after(key, due - now)

    async def _evict(self, pod: Obj, key: str) -> None:
        m = meta(pod)
        self.recorder.normal(pod, "TaintManagerEviction", f"Marking for deletion Pod {key}")
        stamp = fmt_time(self.clock.now())
        conditions = [c for c in (pod.get("status") or {}).get("conditions") or []
                      if c.get("type") != "DisruptionTarget"]
        conditions.append({"type": "DisruptionTarget", "status": "True",
                           "reason": "DeletionByTaintManager",
                           "message": "Taint manager: deleting due to NoExecute taint",
                           "lastTransitionTime": stamp, "lastProbeTime": None})
        try:
            await self.client.patch(PODS, m["name"], {"status": {"conditions": conditions}},
                                    m["namespace"], subresource="status")
            await self.client.delete(PODS, m["name"], m["namespace"],
                                     preconditions={"uid": m.get("uid")})
        except ApiError as exc:
            if exc.code != 404 and not (exc.code == 409 and "Precondition" in exc.message):
                raise
        self.scheduled.pop(key, None)

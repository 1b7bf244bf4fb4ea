"""The DaemonSet controller: one pod on every eligible node, updated node by node.

A node is eligible when the pod template's nodeSelector and required node affinity match
it and the pod tolerates its ``NoSchedule``/``NoExecute`` taints (daemon pods tolerate the
node-condition taints and cordoning, as Kubernetes adds for them); a pod on a node with a
``NoExecute`` taint it does not tolerate is removed.  Pods are created with a required node
affinity on the node's name, so the scheduler binds each to its node.

Template history is kept in ControllerRevisions (``<daemonset>-<hash>``, labelled
``controller-revision-hash``, data ``{"spec": {"template": ...}}`` as kubectl's ``rollout
undo`` applies it).  ``RollingUpdate`` replaces old pods while at most ``maxUnavailable``
nodes lack an available pod, or -- with ``maxSurge`` -- starts the new pod beside the old
one and deletes the old one once the new one is available; ``OnDelete`` waits for the
user.  Status: desired/current/misscheduled/ready/available/unavailable/updated counts and
observedGeneration, which ``kubectl rollout status daemonset`` reads.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from kubeling.client import ApiError
from kubeling_controllers_default.base import Controller, ControllerContext
from kubeling_controllers_default.expectations import UIDTrackingExpectations
from kubeling_controllers_default.history import REVISION_HASH, RevisionHistory
from kubeling_controllers_default.indexes import (
    BY_CONTROLLER,
    BY_NAMESPACE,
    by_controller,
    by_namespace,
    claim_candidates,
)
from kubeling_controllers_default.pods import PodControl, claim, slow_start_batch
from kubeling_controllers_default.resources import (
    CONTROLLERREVISIONS,
    DAEMONSETS,
    NODES,
    PODS,
)
from kubeling_controllers_default.util import (
    controller_ref,
    int_or_percent,
    is_pod_available,
    is_pod_ready,
    meta,
    node_matches_pod,
    ns_name,
    pod_from_template,
    selector_of,
    tolerates,
)

__all__ = ["DaemonSetController", "daemon_tolerations", "should_run"]

Obj = dict[str, Any]

TEMPLATE_GENERATION = "pod-template-generation"


def daemon_tolerations(spec: Obj) -> list[Obj]:
    """The template's tolerations plus those Kubernetes gives every daemon pod."""
    tolerations = list(spec.get("tolerations") or [])
    wanted = [("node.kubernetes.io/not-ready", "NoExecute"),
              ("node.kubernetes.io/unreachable", "NoExecute"),
              ("node.kubernetes.io/disk-pressure", "NoSchedule"),
              ("node.kubernetes.io/memory-pressure", "NoSchedule"),
              ("node.kubernetes.io/pid-pressure", "NoSchedule"),
              ("node.kubernetes.io/unschedulable", "NoSchedule")]
    if spec.get("hostNetwork"):
        wanted.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
    for key, effect in wanted:
        if not any(t.get("key") == key and t.get("effect") == effect for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    return tolerations


def should_run(pod_spec: Obj, node: Obj) -> tuple[bool, bool]:
    """(whether a daemon pod should be started on ``node``, whether one running there may
    stay)."""
    if not node_matches_pod(pod_spec, node):
        return False, False
    tolerations = daemon_tolerations(pod_spec)
    run = stay = True
    for taint in (node.get("spec") or {}).get("taints") or []:
        effect = taint.get("effect")
        if effect not in ("NoSchedule", "NoExecute") or tolerates(tolerations, taint):
            continue
        run = False
        if effect == "NoExecute":
            stay = False
    return run, stay


def _node_affinity(spec: Obj, node_name: str) -> Obj:
    """``spec`` with its required node affinity replaced by ``metadata.name = node``."""
    affinity = copy.deepcopy(spec.get("affinity") or {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    term = {"matchFields": [{"key": "metadata.name", "operator": "In",
                             "values": [node_name]}]}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required and required.get("nodeSelectorTerms"):
        terms = []
        for old in required["nodeSelectorTerms"]:
            kept = [f for f in old.get("matchFields") or [] if f.get("key") != "metadata.name"]
            terms.append({**old, "matchFields": kept + term["matchFields"]})
        required = {"nodeSelectorTerms": terms}
    else:
        required = {"nodeSelectorTerms": [term]}
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
    return affinity


class DaemonSetController(Controller):
    """apps/v1 DaemonSets."""

    name = "daemonset"
    component = "daemonset-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.recorder = ctx.recorder(self.component)
        self.pod_control = PodControl(self.client, self.recorder)
        self.expectations = UIDTrackingExpectations(ctx.settings.expectations_timeout_seconds,
                                                    clock=ctx.clock.monotonic)
        self.daemonsets = self.informer(DAEMONSETS)
        self.nodes = self.informer(NODES)
        self.pods = self.informer(PODS)
        self.revisions = self.informer(CONTROLLERREVISIONS)
        self.ds_by_ns = ctx.index(DAEMONSETS, BY_NAMESPACE, by_namespace)
        self.pods_by_controller = ctx.index(PODS, BY_CONTROLLER, by_controller)
        self.history = RevisionHistory(
            self.client, DAEMONSETS,
            ctx.index(CONTROLLERREVISIONS, BY_CONTROLLER, by_controller))
        self.daemonsets.add_handler(on_add=self.enqueue,
                                    on_update=lambda _o, n: self.enqueue(n),
                                    on_delete=self.enqueue)
        self.nodes.add_handler(on_add=self._node_changed,
                               on_update=lambda o, n: self._node_changed(n, o),
                               on_delete=self._node_changed)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_deleted)

    # -- handlers --------------------------------------------------------------------------

    def _node_changed(self, node: Obj, old: Obj | None = None) -> None:
        if old is not None and meta(old).get("labels") == meta(node).get("labels") and \
                (old.get("spec") or {}).get("taints") == (node.get("spec") or {}).get("taints"):
            return
        for ds in self.daemonsets.list():
            self.enqueue(ds)

    def _resolve(self, pod: Obj) -> Obj | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "DaemonSet":
            return None
        ds = self.daemonsets.get(f"{meta(pod).get('namespace')}/{ref.get('name')}")
        if ds is None or meta(ds).get("uid") != ref.get("uid"):
            return None
        return ds

    def _pod_added(self, pod: Obj) -> None:
        if meta(pod).get("deletionTimestamp") is not None:
            self._pod_deleted(pod)
            return
        ds = self._resolve(pod)
        if ds is not None:
            self.expectations.creation_observed(ns_name(ds))
            self.enqueue(ds)
        elif controller_ref(pod) is None:
            self._enqueue_selecting(pod)

    def _enqueue_selecting(self, pod: Obj) -> None:
        labels = meta(pod).get("labels") or {}
        for ds in self.ds_by_ns.get(str(meta(pod).get("namespace") or "")):
            selector = selector_of(ds)
            if selector is not None and selector.matches(labels):
                self.enqueue(ds)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        if meta(new).get("deletionTimestamp") is not None and \
                meta(old).get("deletionTimestamp") is None:
            self._pod_deleted(new)
            return
        ds = self._resolve(new)
        if ds is not None:
            self.enqueue(ds)
            min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and is_pod_ready(new) and not is_pod_ready(old):
                self.enqueue_after(ds, min_ready + 1)
        elif controller_ref(new) is None:
            self._enqueue_selecting(new)
        old_ds = self._resolve(old)
        if old_ds is not None and (ds is None or meta(ds)["uid"] != meta(old_ds)["uid"]):
            self.enqueue(old_ds)

    def _pod_deleted(self, pod: Obj) -> None:
        ds = self._resolve(pod)
        if ds is not None:
            self.expectations.deletion_observed_of(ns_name(ds), ns_name(pod))
            self.enqueue(ds)

    # -- reconcile -------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        ds = self.daemonsets.get(key)
        if ds is None:
            self.expectations.delete(key)
            return
        selector = selector_of(ds)
        if selector is None or selector.empty:
            self.recorder.warning(ds, "SelectingAll",
                                  "This daemon set is selecting all pods. A non-empty "
                                  "selector is required.")
            return
        m = meta(ds)
        candidates = claim_candidates(self.pods_by_controller, ds)
        pods = await claim(ds, selector, candidates,
                           adopt=lambda p: self.pod_control.adopt(p, ds),
                           release=lambda p: self.pod_control.release(p, ds),
                           can_adopt=lambda: self.history.can_adopt(ds))
        if m.get("deletionTimestamp") is not None:
            return
        current, old_revisions = await self.history.sync(ds)
        digest = (meta(current).get("labels") or {}).get(REVISION_HASH, "")
        by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            node = _target_node(pod)
            if node:
                by_node.setdefault(node, []).append(pod)
        if self.expectations.satisfied(key):
            await self._manage(ds, key, by_node, digest)
        await self._update_status(ds, by_node, digest)
        in_use = {str((meta(p).get("labels") or {}).get(REVISION_HASH)) for p in pods}
        await self.history.truncate(ds, old_revisions, in_use)

    async def _manage(self, ds: Obj, key: str, by_node: dict[str, list[Obj]],
                      digest: str) -> None:
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        pod_spec = template.get("spec") or {}
        nodes = {meta(n)["name"]: n for n in self.nodes.list()}
        create_on: list[str] = []
        delete: list[Obj] = []
        for name, node in nodes.items():
            run, stay = should_run(pod_spec, node)
            here = [p for p in by_node.get(name, []) if meta(p).get("deletionTimestamp") is None]
            if run and not here:
                create_on.append(name)
            elif not stay and here:
                delete.extend(here)
            elif here:
                failed = [p for p in here if (p.get("status") or {}).get("phase") == "Failed"]
                delete.extend(failed)
                alive = [p for p in here if p not in failed]
                if len(alive) > 1 and not self._surging(ds, alive, digest):
                    alive.sort(key=lambda p: str(meta(p).get("creationTimestamp")))
                    delete.extend(alive[1:])
        for name, node_pods in by_node.items():
            if name not in nodes:
                delete.extend(p for p in node_pods if meta(p).get("deletionTimestamp") is None)
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
            more_deletes, surge = self._rolling_update(ds, by_node, nodes, digest)
            delete.extend(p for p in more_deletes if p not in delete)
            create_on.extend(n for n in surge if n not in create_on)
        await self._sync_nodes(ds, key, create_on, delete, digest)

    def _surging(self, ds: Obj, pods: list[Obj], digest: str) -> bool:
        """Two pods on one node are a surge (an old and a new one), not a duplicate."""
        hashes = {(meta(p).get("labels") or {}).get(REVISION_HASH) for p in pods}
        return len(pods) == 2 and digest in hashes and len(hashes) == 2

    def _rolling_update(self, ds: Obj, by_node: dict[str, list[Obj]], nodes: dict[str, Obj],
                        digest: str) -> tuple[list[Obj], list[str]]:
        """(old pods to delete now, nodes to start a surge pod on)."""
        spec = ds.get("spec") or {}
        rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
        pod_spec = (spec.get("template") or {}).get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        desired = sum(1 for n in nodes.values() if should_run(pod_spec, n)[0])
        max_surge = int_or_percent(rolling.get("maxSurge", 0), desired, True)
        max_unavailable = int_or_percent(rolling.get("maxUnavailable", 1), desired, True)
        if max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1
        deletes: list[Obj] = []
        surge: list[str] = []
        if max_surge == 0:
            unavailable = 0
            replaceable: list[Obj] = []
            for name, node in nodes.items():
                if not should_run(pod_spec, node)[0]:
                    continue
                new, old = self._pods_on(by_node.get(name, []), digest)
                if new is None and old is None:
                    unavailable += 1
                elif new is not None:
                    if not is_pod_available(new, min_ready, now):
                        unavailable += 1
                elif old is not None:
                    if not is_pod_available(old, min_ready, now):
                        deletes.append(old)  # not serving anyway: replace it at once
                        unavailable += 1
                    else:
                        replaceable.append(old)
            budget = max(max_unavailable - unavailable, 0)
            replaceable.sort(key=lambda p: str(meta(p).get("name")))
            deletes.extend(replaceable[:budget])
            return deletes, surge
        surging = 0
        waiting: list[str] = []
        for name, node in nodes.items():
            if not should_run(pod_spec, node)[0]:
                continue
            new, old = self._pods_on(by_node.get(name, []), digest)
            if old is None:
                continue
            if new is None:
                if not is_pod_available(old, min_ready, now):
                    deletes.append(old)
                else:
                    waiting.append(name)
            else:
                surging += 1
                if is_pod_available(new, min_ready, now):
                    deletes.append(old)
        budget = max(max_surge - surging, 0)
        surge = sorted(waiting)[:budget]
        return deletes, surge

    @staticmethod
    def _pods_on(pods: list[Obj], digest: str) -> tuple[Obj | None, Obj | None]:
        """(the newest pod of the current template, the oldest other pod) on a node."""
        live = [p for p in pods if meta(p).get("deletionTimestamp") is None and
                (p.get("status") or {}).get("phase") != "Failed"]
        new = [p for p in live if (meta(p).get("labels") or {}).get(REVISION_HASH) == digest]
        old = [p for p in live if p not in new]
        old.sort(key=lambda p: str(meta(p).get("creationTimestamp")))
        return (new[-1] if new else None), (old[0] if old else None)

    async def _sync_nodes(self, ds: Obj, key: str, create_on: list[str], delete: list[Obj],
                          digest: str) -> None:
        burst = self.settings.burst_replicas
        create_on = create_on[:burst]
        delete = delete[:burst]
        self.expectations.expect_deletions_of(key, [ns_name(p) for p in delete])
        self.expectations.raise_(key, add=len(create_on))
        template = (ds.get("spec") or {}).get("template") or {}
        namespace = meta(ds)["namespace"]
        generation = str(meta(ds).get("generation") or 1)

        async def create(i: int) -> None:
            node = create_on[i]
            pod = pod_from_template(template, ds, generate_name=f"{meta(ds)['name']}-",
                                    extra_labels={REVISION_HASH: digest,
                                                  TEMPLATE_GENERATION: generation})
            pod["spec"]["affinity"] = _node_affinity(pod["spec"], node)
            pod["spec"]["tolerations"] = daemon_tolerations(pod["spec"])
            if await self.pod_control.create(namespace, pod, ds) is None:
                self.expectations.creation_observed(key)

        errors: list[Exception] = []
        if create_on:
            created, error = await slow_start_batch(len(create_on), create)
            if created < len(create_on):
                self.expectations.lower(key, add=len(create_on) - created)
            if error is not None:
                errors.append(error)
        results = await asyncio.gather(*(self.pod_control.delete(p, ds) for p in delete),
                                       return_exceptions=True)
        for pod, result in zip(delete, results, strict=True):
            if isinstance(result, Exception):
                self.expectations.deletion_observed_of(key, ns_name(pod))
                errors.append(result)
        if errors:
            raise errors[0]

    async def _update_status(self, ds: Obj, by_node: dict[str, list[Obj]], digest: str
                             ) -> None:
        spec = ds.get("spec") or {}
        pod_spec = (spec.get("template") or {}).get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        desired = current = misscheduled = ready = available = updated = 0
        for node in self.nodes.list():
            name = meta(node)["name"]
            run, _ = should_run(pod_spec, node)
            pods = [p for p in by_node.get(name, [])
                    if meta(p).get("deletionTimestamp") is None]
            if run:
                desired += 1
                if pods:
                    current += 1
                    pods.sort(key=lambda p: str(meta(p).get("creationTimestamp")))
                    newest = self._pods_on(pods, digest)[0]
                    pod = newest or pods[0]
                    if is_pod_ready(pod):
                        ready += 1
                        if is_pod_available(pod, min_ready, now):
                            available += 1
                    if newest is not None:
                        updated += 1
            elif pods:
                misscheduled += 1
        old = ds.get("status") or {}
        status: Obj = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                       "desiredNumberScheduled": desired, "numberReady": ready,
                       "observedGeneration": int(meta(ds).get("generation") or 1),
                       "updatedNumberScheduled": updated, "numberAvailable": available,
                       "numberUnavailable": max(desired - available, 0)}
        for key in ("collisionCount", "conditions"):
            if old.get(key) is not None:
                status[key] = old[key]
        if status != old:
            try:
                await self.client.update_status(DAEMONSETS, {**ds, "status": status})
            except ApiError as exc:
                if exc.code == 404:
                    return
                raise
        if min_ready > 0 and ready != available:
            self.enqueue_after(ds, min_ready)


def _target_node(pod: Obj) -> str | None:
    """The node a daemon pod is on, or is meant for (before it is bound)."""
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        return str(node)
    terms = ((((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get(
                 "nodeSelectorTerms") or []
    for term in terms:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and \
                    len(field.get("values") or []) == 1:
                return str(field["values"][0])
    return None


"""The StatefulSet controller: pods with stable names, ordinals and claims.

For a StatefulSet ``web`` with ``replicas: 3`` the pods are ``web-0``, ``web-1`` and
``web-2`` (from ``spec.ordinals.start``), each with ``hostname`` = its name, ``subdomain``
= ``spec.serviceName`` and the labels ``statefulset.kubernetes.io/pod-name``,
``apps.kubernetes.io/pod-index`` and ``controller-revision-hash`` (the name of the
ControllerRevision it was made from).  Each ``volumeClaimTemplates`` entry ``data`` gives
the pod a PersistentVolumeClaim ``data-web-0``, created before the pod and kept across pod
restarts; ``persistentVolumeClaimRetentionPolicy`` decides whether claims go with the
StatefulSet (``whenDeleted: Delete``) or with pods removed by a scale-down
(``whenScaled: Delete``).

``podManagementPolicy: OrderedReady`` (the default) creates pods one at a time in ordinal
order, each once the previous ones are Running and Ready, and removes them in reverse
order, one at a time, only while the others are healthy; ``Parallel`` creates and deletes
them all at once.  A pod that failed or succeeded is deleted and created again under the
same name.

Updates follow Kubernetes: the template's history is kept in ControllerRevisions
(:mod:`kubeling_controllers_default.history`); ``RollingUpdate`` replaces pods from the
highest ordinal down to ``partition``, one at a time, waiting for each to be Running and
Ready; pods below the partition keep (and are re-created at) the current revision;
``OnDelete`` leaves replacement to the user.  Status: replicas, readyReplicas,
availableReplicas (``minReadySeconds``), currentReplicas/currentRevision,
updatedReplicas/updateRevision, observedGeneration and collisionCount, which
``kubectl rollout status statefulset`` reads.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from kubeling.client import ApiError
from kubeling.client.resources import PODS
from kubeling_controllers_default.base import Controller, ControllerContext
from kubeling_controllers_default.history import REVISION_HASH, RevisionHistory
from kubeling_controllers_default.indexes import (
    BY_CONTROLLER,
    BY_NAMESPACE,
    by_controller,
    by_namespace,
    claim_candidates,
)
from kubeling_controllers_default.pods import PodControl, claim
from kubeling_controllers_default.resources import (
    CONTROLLERREVISIONS,
    PERSISTENTVOLUMECLAIMS,
    STATEFULSETS,
)
from kubeling_controllers_default.util import (
    controller_ref,
    is_pod_available,
    is_pod_ready,
    meta,
    owner_ref,
    selector_of,
)

__all__ = ["POD_INDEX", "POD_NAME", "StatefulSetController", "claim_name", "ordinal_of"]

Obj = dict[str, Any]

POD_NAME = "statefulset.kubernetes.io/pod-name"
POD_INDEX = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


def ordinal_of(pod: Obj, set_name: str) -> int | None:
    """The ordinal in a pod's name ``<set>-<n>``, or None when it has none."""
    found = _ORDINAL.match(str(meta(pod).get("name") or ""))
    if found is None or found.group(1) != set_name:
        return None
    return int(found.group(2))


def claim_name(template_name: str, set_name: str, ordinal: int) -> str:
    """The claim of a volumeClaimTemplate for the pod with ``ordinal``."""
    return f"{template_name}-{set_name}-{ordinal}"


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _terminating(pod: Obj) -> bool:
    return meta(pod).get("deletionTimestamp") is not None


def _healthy(pod: Obj) -> bool:
    """Running, Ready and not being deleted (Kubernetes' ``isHealthy``)."""
    return _phase(pod) == "Running" and is_pod_ready(pod) and not _terminating(pod)


def _revision_of(pod: Obj) -> str:
    return str((meta(pod).get("labels") or {}).get(REVISION_HASH) or "")


def _set_from_revision(sts: Obj, revision: Obj) -> Obj:
    """``sts`` with the template the revision recorded."""
    template = dict(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return {**sts, "spec": {**(sts.get("spec") or {}), "template": template}}


class StatefulSetController(Controller):
    """apps/v1 StatefulSets."""

    name = "statefulset"
    component = "statefulset-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.recorder = ctx.recorder(self.component)
        self.pod_control = PodControl(self.client, self.recorder)
        self.sets = self.informer(STATEFULSETS)
        self.pods = self.informer(PODS)
        self.claims = self.informer(PERSISTENTVOLUMECLAIMS)
        self.informer(CONTROLLERREVISIONS)
        self.sets_by_ns = ctx.index(STATEFULSETS, BY_NAMESPACE, by_namespace)
        self.pods_by_controller = ctx.index(PODS, BY_CONTROLLER, by_controller)
        self.history = RevisionHistory(
            self.client, STATEFULSETS,
            ctx.index(CONTROLLERREVISIONS, BY_CONTROLLER, by_controller))
        self.sets.add_handler(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n),
                              on_delete=self.enqueue)
        self.pods.add_handler(on_add=self._pod_changed,
                              on_update=lambda o, n: self._pod_changed(n, o),
                              on_delete=self._pod_changed)

    # -- handlers --------------------------------------------------------------------------

    def _owner(self, pod: Obj) -> Obj | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "StatefulSet":
            return None
        sts = self.sets.get(f"{meta(pod).get('namespace')}/{ref.get('name')}")
        if sts is None or meta(sts).get("uid") != ref.get("uid"):
            return None
        return sts

    def _pod_changed(self, pod: Obj, old: Obj | None = None) -> None:
        if old is not None and meta(old).get("resourceVersion") == \
                meta(pod).get("resourceVersion"):
            return
        for candidate in (pod, old):
            if candidate is None:
                continue
            sts = self._owner(candidate)
            if sts is not None:
                self.enqueue(sts)
                min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
                if min_ready > 0 and is_pod_ready(pod) and \
                        (old is None or not is_pod_ready(old)):
                    self.enqueue_after(sts, min_ready + 1)
            elif controller_ref(candidate) is None:
                labels = meta(candidate).get("labels") or {}
                for sts in self.sets_by_ns.get(str(meta(candidate).get("namespace") or "")):
                    selector = selector_of(sts)
                    if selector is not None and selector.matches(labels):
                        self.enqueue(sts)

    # -- reconcile -------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        sts = self.sets.get(key)
        if sts is None:
            return
        selector = selector_of(sts)
        if selector is None or selector.empty:
            self.recorder.warning(sts, "SelectingAll",
                                  "This statefulset is selecting all pods. A non-empty "
                                  "selector is required.")
            return
        m = meta(sts)
        candidates = claim_candidates(self.pods_by_controller, sts)
        pods = await claim(sts, selector, candidates,
                           adopt=lambda p: self.pod_control.adopt(p, sts),
                           release=lambda p: self.pod_control.release(p, sts),
                           can_adopt=lambda: self.history.can_adopt(sts))
        update_rev, others = await self.history.sync(sts)
        wanted = (sts.get("status") or {}).get("currentRevision")
        current_rev = next((r for r in others if meta(r).get("name") == wanted), update_rev)
        if m.get("deletionTimestamp") is None:
            await self._sync_pods(sts, pods, current_rev, update_rev)
        await self._update_status(sts, current_rev, update_rev)
        in_use = {_revision_of(p) for p in pods}
        in_use |= {meta(current_rev)["name"], meta(update_rev)["name"]}
        await self.history.truncate(sts, [r for r in others if r is not current_rev], in_use)

    def _slots(self, sts: Obj, pods: list[Obj]) -> tuple[list[Obj | None], list[Obj], int]:
        """(pods by ordinal in the wanted range (None: missing), pods whose ordinal is
        outside it in ascending order, the first ordinal)."""
        spec = sts.get("spec") or {}
        start = int((spec.get("ordinals") or {}).get("start") or 0)
        replicas = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
        slots: list[Obj | None] = [None] * replicas
        condemned: list[tuple[int, Obj]] = []
        for pod in pods:
            ordinal = ordinal_of(pod, meta(sts)["name"])
            if ordinal is None:
                continue
            if start <= ordinal < start + replicas:
                slots[ordinal - start] = pod
            else:
                condemned.append((ordinal, pod))
        condemned.sort(key=lambda item: item[0])
        return slots, [pod for _, pod in condemned], start

    async def _sync_pods(self, sts: Obj, pods: list[Obj], current_rev: Obj,
                         update_rev: Obj) -> None:
        """One pass of Kubernetes' ``updateStatefulSet``: creates, deletes and updates as
        far as the pod management policy allows."""
        spec = sts.get("spec") or {}
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        slots, condemned, start = self._slots(sts, pods)
        for index, pod in enumerate(slots):
            ordinal = start + index
            if pod is not None and _phase(pod) in ("Failed", "Succeeded") \
                    and not _terminating(pod):
                await self._delete_pod(sts, pod)
                if monotonic:
                    return
                continue
            if pod is None:
                await self._create_pod(sts, ordinal, current_rev, update_rev)
                if monotonic:
                    return
                continue
            if monotonic and not _healthy(pod):
                return  # wait for it before going on
            await self._ensure_claims(sts, pod, ordinal)
        first_unhealthy = next((p for p in [*slots, *condemned]
                                if p is not None and not _healthy(p)), None)
        for pod in reversed(condemned):
            if _terminating(pod):
                if monotonic:
                    return
                continue
            if monotonic and not _healthy(pod) and pod is not first_unhealthy:
                return
            await self._release_claims_on_scale_down(sts, pod)
            await self._delete_pod(sts, pod)
            if monotonic:
                return
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        update_name = meta(update_rev)["name"]
        for index in range(len(slots) - 1, partition - 1, -1):
            pod = slots[index]
            if pod is None:
                return
            if _revision_of(pod) != update_name and not _terminating(pod):
                await self._delete_pod(sts, pod)
                return
            if not _healthy(pod):
                return

    # -- pods and claims -------------------------------------------------------------------

    def _template_for(self, sts: Obj, ordinal: int, current_rev: Obj,
                      update_rev: Obj) -> tuple[Obj, str]:
        """(the set whose template a new pod with ``ordinal`` gets, the revision name):
        below the partition the current revision, else the update revision."""
        spec = sts.get("spec") or {}
        strategy = spec.get("updateStrategy") or {}
        start = int((spec.get("ordinals") or {}).get("start") or 0)
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            rolling = strategy.get("rollingUpdate")
            if rolling is None:
                below = int((sts.get("status") or {}).get("currentReplicas") or 0)
            else:
                below = int(rolling.get("partition") or 0)
            if ordinal < start + below:
                return _set_from_revision(sts, current_rev), meta(current_rev)["name"]
        return sts, meta(update_rev)["name"]

    def _new_pod(self, sts: Obj, ordinal: int, current_rev: Obj, update_rev: Obj) -> Obj:
        source, revision = self._template_for(sts, ordinal, current_rev, update_rev)
        spec = source.get("spec") or {}
        template = spec.get("template") or {}
        tmeta = template.get("metadata") or {}
        name = f"{meta(sts)['name']}-{ordinal}"
        labels = {**(tmeta.get("labels") or {}), REVISION_HASH: revision, POD_NAME: name,
                  POD_INDEX: str(ordinal)}
        pod_meta: Obj = {"name": name, "labels": labels, "ownerReferences": [owner_ref(sts)]}
        if tmeta.get("annotations"):
            pod_meta["annotations"] = dict(tmeta["annotations"])
        if tmeta.get("finalizers"):
            pod_meta["finalizers"] = list(tmeta["finalizers"])
        pod_spec = copy.deepcopy(template.get("spec") or {})
        pod_spec["hostname"] = name
        if (sts.get("spec") or {}).get("serviceName"):
            pod_spec["subdomain"] = sts["spec"]["serviceName"]
        claims = {c["metadata"]["name"]: claim_name(c["metadata"]["name"], meta(sts)["name"],
                                                    ordinal)
                  for c in self._claim_templates(sts)}
        volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claims]
        volumes += [{"name": vname, "persistentVolumeClaim": {"claimName": cname}}
                    for vname, cname in claims.items()]
        if volumes:
            pod_spec["volumes"] = volumes
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}

    @staticmethod
    def _claim_templates(sts: Obj) -> list[Obj]:
        return [c for c in (sts.get("spec") or {}).get("volumeClaimTemplates") or []
                if isinstance(c, dict) and (c.get("metadata") or {}).get("name")]

    async def _create_pod(self, sts: Obj, ordinal: int, current_rev: Obj,
                          update_rev: Obj) -> None:
        pod = self._new_pod(sts, ordinal, current_rev, update_rev)
        name = pod["metadata"]["name"]
        await self._ensure_claims(sts, pod, ordinal)
        try:
            await self.client.create(PODS, pod, meta(sts)["namespace"])
        except ApiError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                return  # our cache is behind: it exists
            if exc.code == 403 and "being terminated" in exc.message:
                return
            self.recorder.warning(sts, "FailedCreate",
                                  f"create Pod {name} in StatefulSet {meta(sts)['name']} "
                                  f"failed error: {exc.message}")
            raise
        self.recorder.normal(sts, "SuccessfulCreate",
                             f"create Pod {name} in StatefulSet {meta(sts)['name']} "
                             "successful")

    async def _delete_pod(self, sts: Obj, pod: Obj) -> None:
        m = meta(pod)
        try:
            await self.client.delete(PODS, m["name"], m.get("namespace"),
                                     preconditions={"uid": m.get("uid")})
        except ApiError as exc:
            if exc.code == 404 or (exc.code == 409 and "recondition" in exc.message):
                return
            self.recorder.warning(sts, "FailedDelete",
                                  f"delete Pod {m['name']} in StatefulSet "
                                  f"{meta(sts)['name']} failed error: {exc.message}")
            raise
        self.recorder.normal(sts, "SuccessfulDelete",
                             f"delete Pod {m['name']} in StatefulSet {meta(sts)['name']} "
                             "successful")

    async def _ensure_claims(self, sts: Obj, pod: Obj, ordinal: int) -> None:
        """Create the pod's missing claims from the volumeClaimTemplates."""
        namespace = meta(sts)["namespace"]
        retention = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
        selector_labels = ((sts.get("spec") or {}).get("selector") or {}).get(
            "matchLabels") or {}
        for template in self._claim_templates(sts):
            tmeta = template.get("metadata") or {}
            name = claim_name(tmeta["name"], meta(sts)["name"], ordinal)
            if self.claims.get(f"{namespace}/{name}") is not None:
                continue
            claim_meta: Obj = {"name": name,
                               "labels": {**(tmeta.get("labels") or {}), **selector_labels}}
            if tmeta.get("annotations"):
                claim_meta["annotations"] = dict(tmeta["annotations"])
            if retention.get("whenDeleted") == "Delete":
                claim_meta["ownerReferences"] = [owner_ref(sts, controller=False)]
            body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": claim_meta,
                    "spec": copy.deepcopy(template.get("spec") or {})}
            try:
                await self.client.create(PERSISTENTVOLUMECLAIMS, body, namespace)
            except ApiError as exc:
                if exc.code == 409 and exc.reason == "AlreadyExists":
                    continue
                self.recorder.warning(sts, "FailedCreate",
                                      f"create Claim {name} for Pod "
                                      f"{meta(pod)['name']} in StatefulSet "
                                      f"{meta(sts)['name']} failed error: {exc.message}")
                raise
            self.recorder.normal(sts, "SuccessfulCreate",
                                 f"create Claim {name} Pod {meta(pod)['name']} in "
                                 f"StatefulSet {meta(sts)['name']} success")

    async def _release_claims_on_scale_down(self, sts: Obj, pod: Obj) -> None:
        """With ``whenScaled: Delete``, a condemned pod's claims get the pod as owner, so
        the garbage collector removes them with it."""
        retention = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
        if retention.get("whenScaled") != "Delete":
            return
        ordinal = ordinal_of(pod, meta(sts)["name"])
        namespace = meta(sts)["namespace"]
        for template in self._claim_templates(sts):
            name = claim_name(template["metadata"]["name"], meta(sts)["name"], int(ordinal or 0))
            current = self.claims.get(f"{namespace}/{name}")
            if current is None:
                continue
            refs = meta(current).get("ownerReferences") or []
            if any(r.get("uid") == meta(pod).get("uid") for r in refs):
                continue
            # the pod becomes the only owner (an owner left beside it, the set, would keep
            # the claim alive: the garbage collector deletes only what every owner left)
            ref = {**owner_ref(pod, controller=False, block=False), "apiVersion": "v1",
                   "kind": "Pod"}
            kept = [r for r in refs if r.get("uid") != meta(sts).get("uid")]
            try:
                await self.client.patch(PERSISTENTVOLUMECLAIMS, name, {"metadata": {
                    "ownerReferences": [*kept, ref]}}, namespace, type="merge")
            except ApiError as exc:
                if exc.code != 404:
                    raise

    # -- status ----------------------------------------------------------------------------

    async def _update_status(self, sts: Obj, current_rev: Obj, update_rev: Obj) -> None:
        m = meta(sts)
        spec = sts.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock.now()
        pods = [p for p in self.pods_by_controller.get(str(m.get("uid")))
                if ordinal_of(p, m["name"]) is not None]
        current_name = meta(current_rev)["name"]
        update_name = meta(update_rev)["name"]
        replicas = ready = available = current = updated = 0
        for pod in pods:
            replicas += 1
            if _phase(pod) == "Running" and is_pod_ready(pod):
                ready += 1
                if is_pod_available(pod, min_ready, now):
                    available += 1
            if not _terminating(pod):
                revision = _revision_of(pod)
                current += revision == current_name
                updated += revision == update_name
        old = sts.get("status") or {}
        status: Obj = {"observedGeneration": int(m.get("generation") or 1),
                       "replicas": replicas, "readyReplicas": ready,
                       "currentReplicas": current, "updatedReplicas": updated,
                       "currentRevision": current_name, "updateRevision": update_name,
                       "availableReplicas": available,
                       "collisionCount": int(old.get("collisionCount") or 0)}
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy == "RollingUpdate" and updated == replicas and ready == replicas:
            status["currentReplicas"] = updated
            status["currentRevision"] = update_name
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        if status != old:
            try:
                await self.client.update_status(STATEFULSETS, {**sts, "status": status})
            except ApiError as exc:
                if exc.code != 404:
                    raise
        if min_ready > 0 and ready != available:
            self.enqueue_after(sts, min_ready)

"""The Deployment controller: roll a pod template out through ReplicaSets.

Follows Kubernetes' deployment controller:

* the *new* ReplicaSet is the one whose template equals the Deployment's (ignoring the
  ``pod-template-hash`` label it adds); it is created on demand, named
  ``<deployment>-<hash>``, and carries the revision annotations
  (``deployment.kubernetes.io/revision``, ``revision-history``, ``desired-replicas``,
  ``max-replicas``) and the Deployment's own annotations;
* ``RollingUpdate`` scales the new ReplicaSet up while the total stays within
  ``replicas + maxSurge``, and old ones down while at least ``replicas - maxUnavailable``
  pods stay available; ``Recreate`` scales the old ones to zero, waits for their pods to be
  gone, then scales the new one up;
* a change of only ``replicas`` (a scaling event) or a paused Deployment scales the active
  ReplicaSets proportionally instead of rolling;
* old ReplicaSets beyond ``revisionHistoryLimit`` are deleted; a rollback (``kubectl
  rollout undo``) is a template change back to an old ReplicaSet's, which then becomes the
  new one with the next revision;
* status: replicas, updatedReplicas, readyReplicas, availableReplicas,
  unavailableReplicas, observedGeneration, collisionCount and the ``Available``,
  ``Progressing`` (with ``progressDeadlineSeconds``) and ``ReplicaFailure`` conditions.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from kubeling.client import ApiError
from kubeling_controllers_default.base import Controller, ControllerContext
from kubeling_controllers_default.indexes import (
    BY_CONTROLLER,
    BY_NAMESPACE,
    by_controller,
    by_namespace,
    claim_candidates,
)
from kubeling_controllers_default.pods import can_adopt, claim
from kubeling_controllers_default.resources import DEPLOYMENTS, PODS, REPLICASETS
from kubeling_controllers_default.util import (
    condition,
    controller_ref,
    fmt_time,
    int_or_percent,
    meta,
    ns_name,
    owner_ref,
    parse_time,
    safe_encode,
    selector_of,
)

__all__ = [
    "DESIRED_REPLICAS",
    "MAX_REPLICAS",
    "POD_TEMPLATE_HASH",
    "REVISION",
    "REVISION_HISTORY",
    "DeploymentController",
    "equal_ignore_hash",
    "max_surge",
    "max_unavailable",
    "template_hash",
]

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
SKIPPED_ANNOTATIONS = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
    DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to"})
MAX_REVISION_HISTORY_CHARS = 2000
NO_DEADLINE = 2**31 - 1


# -- pure helpers (Kubernetes' deploymentutil) -----------------------------------------------


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _replicas(obj: Obj) -> int:
    return int(_spec(obj).get("replicas") or 0)


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _rolling(d: Obj) -> Obj | None:
    strategy = _spec(d).get("strategy") or {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        return None
    return strategy.get("rollingUpdate") or {"maxSurge": "25%", "maxUnavailable": "25%"}


def _fenceposts(d: Obj) -> tuple[int, int]:
    rolling = _rolling(d) or {}
    desired = _replicas(d)
    surge = int_or_percent(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    """Pods above ``replicas`` a rolling update may run."""
    if _rolling(d) is None:
        return 0
    return _fenceposts(d)[0]


def max_unavailable(d: Obj) -> int:
    """Pods below ``replicas`` a rolling update may leave unavailable."""
    if _rolling(d) is None or _replicas(d) == 0:
        return 0
    return min(_fenceposts(d)[1], _replicas(d))


def _without_hash(template: Any) -> Any:
    template = dict(template or {})
    tmeta = dict(template.get("metadata") or {})
    labels = dict(tmeta.get("labels") or {})
    labels.pop(POD_TEMPLATE_HASH, None)
    if labels:
        tmeta["labels"] = labels
    else:
        tmeta.pop("labels", None)
    if tmeta:
        template["metadata"] = tmeta
    else:
        template.pop("metadata", None)
    return template


def equal_ignore_hash(a: Any, b: Any) -> bool:
    """Whether two pod templates are equal but for the ``pod-template-hash`` label."""
    return _without_hash(a) == _without_hash(b)


def template_hash(template: Any, collision_count: int | None) -> str:
    """The ``pod-template-hash`` of a template (and the collision count, when set)."""
    data = orjson.dumps(_without_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += b"/" + str(collision_count).encode()
    return safe_encode(data)


def _revision(rs: Obj | None) -> int:
    if rs is None:
        return 0
    try:
        return int((meta(rs).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _created(obj: Obj) -> tuple[float, str]:
    when = parse_time(meta(obj).get("creationTimestamp"))
    return (when.timestamp() if when else 0.0, str(meta(obj).get("name")))


def _active(rss: list[Obj]) -> list[Obj]:
    return [rs for rs in rss if _replicas(rs) > 0]


def _available_of(rs: Obj) -> int:
    """Available pods of a ReplicaSet, never more than it is scaled to (its status may
    still count pods it is deleting)."""
    available = int(_status(rs).get("availableReplicas") or 0)
    return min(available, _replicas(rs))


def _annotation_int(rs: Obj, key: str) -> int | None:
    try:
        return int((meta(rs).get("annotations") or {})[key])
    except (KeyError, ValueError):
        return None


def has_progress_deadline(d: Obj) -> bool:
    deadline = _spec(d).get("progressDeadlineSeconds")
    return deadline is not None and deadline != NO_DEADLINE


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = _replicas(d)
    return status.get("updatedReplicas", 0) == want and status.get("replicas", 0) == want \
        and status.get("availableReplicas", 0) == want \
        and status.get("observedGeneration", 0) >= int(meta(d).get("generation") or 1)


def _progressing(d: Obj, new: Obj) -> bool:
    old = _status(d)
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = new.get("replicas", 0) - new.get("updatedReplicas", 0)
    return new.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) \
        or new_old < old_old \
        or new.get("readyReplicas", 0) > old.get("readyReplicas", 0) \
        or new.get("availableReplicas", 0) > old.get("availableReplicas", 0)


def _set_condition(status: Obj, new: Obj) -> None:
    """Kubernetes' ``SetDeploymentCondition``: unchanged when type, status and reason are."""
    conditions = list(status.get("conditions") or [])
    current = next((c for c in conditions if c.get("type") == new["type"]), None)
    if current is not None and current.get("status") == new["status"] and \
            current.get("reason") == new.get("reason"):
        return
    if current is not None and current.get("status") == new["status"]:
        new = {**new, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in conditions if c.get("type") != new["type"]] + [new]


def _remove_condition(status: Obj, kind: str) -> None:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


class DeploymentController(Controller):
    """apps/v1 Deployments."""

    name = "deployment"
    component = "deployment-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.recorder = ctx.recorder(self.component)
        self.deployments = self.informer(DEPLOYMENTS)
        self.replicasets = self.informer(REPLICASETS)
        self.pods = self.informer(PODS)
        self.deployments_by_ns = ctx.index(DEPLOYMENTS, BY_NAMESPACE, by_namespace)
        self.rs_by_controller = ctx.index(REPLICASETS, BY_CONTROLLER, by_controller)
        self.pods_by_controller = ctx.index(PODS, BY_CONTROLLER, by_controller)
        self.deployments.add_handler(on_add=self.enqueue,
                                     on_update=lambda _o, n: self.enqueue(n),
                                     on_delete=self.enqueue)
        self.replicasets.add_handler(on_add=self._rs_added, on_update=self._rs_updated,
                                     on_delete=self._rs_deleted)
        self.pods.add_handler(on_delete=self._pod_deleted)

    # -- handlers --------------------------------------------------------------------------

    def _resolve(self, namespace: str | None, ref: Any) -> Obj | None:
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.deployments.get(f"{namespace}/{ref.get('name')}")
        if d is None or meta(d).get("uid") != ref.get("uid"):
            return None
        return d

    def _selecting(self, rs: Obj) -> list[Obj]:
        labels = meta(rs).get("labels") or {}
        out = []
        for d in self.deployments_by_ns.get(str(meta(rs).get("namespace") or "")):
            selector = selector_of(d)
            if selector is not None and not selector.empty and selector.matches(labels):
                out.append(d)
        return out

    def _rs_added(self, rs: Obj) -> None:
        d = self._resolve(meta(rs).get("namespace"), controller_ref(rs))
        if d is not None:
            self.enqueue(d)
        elif controller_ref(rs) is None:
            for d in self._selecting(rs):
                self.enqueue(d)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        namespace = meta(new).get("namespace")
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref is not None and (new_ref is None or old_ref.get("uid") != new_ref.get("uid")):
            d = self._resolve(namespace, old_ref)
            if d is not None:
                self.enqueue(d)
        if new_ref is not None:
            d = self._resolve(namespace, new_ref)
            if d is not None:
                self.enqueue(d)
            return
        if meta(old).get("labels") != meta(new).get("labels") or old_ref is not None:
            for d in self._selecting(new):
                self.enqueue(d)

    def _rs_deleted(self, rs: Obj) -> None:
        d = self._resolve(meta(rs).get("namespace"), controller_ref(rs))
        if d is not None:
            self.enqueue(d)

    def _pod_deleted(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        namespace = meta(pod).get("namespace")
        rs = self.replicasets.get(f"{namespace}/{ref.get('name')}")
        if rs is None:
            return
        d = self._resolve(namespace, controller_ref(rs))
        if d is not None and _rolling(d) is None:
            self.enqueue(d)

    # -- reconcile -------------------------------------------------------------------------

    async def _can_adopt(self, d: Obj) -> bool:
        return await can_adopt(self.client, DEPLOYMENTS, d)

    async def _adopt(self, rs: Obj, d: Obj) -> Obj | None:
        m = meta(rs)
        patch = {"metadata": {"ownerReferences": [owner_ref(d)], "uid": m.get("uid")}}
        try:
            return await self.client.patch(REPLICASETS, m["name"], patch, m["namespace"],
                                           type="strategic")
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def _release(self, rs: Obj, d: Obj) -> None:
        m = meta(rs)
        patch = {"metadata": {"ownerReferences": [
            {"$patch": "delete", "uid": meta(d).get("uid")}], "uid": m.get("uid")}}
        try:
            await self.client.patch(REPLICASETS, m["name"], patch, m["namespace"],
                                    type="strategic")
        except ApiError as exc:
            if exc.code not in (404, 422):
                raise

    async def reconcile(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            return
        d = cached
        selector = selector_of(d)
        if selector is None or selector.empty:
            self.recorder.warning(d, "SelectingAll",
                                  "This deployment is selecting all pods. A non-empty "
                                  "selector is required.")
            if _status(d).get("observedGeneration", 0) < int(meta(d).get("generation") or 1):
                await self._update_status(d, {**_status(d),
                                              "observedGeneration": meta(d).get("generation")})
            return
        m = meta(d)
        candidates = claim_candidates(self.rs_by_controller, d)
        rs_list = await claim(d, selector, candidates,
                              adopt=lambda rs: self._adopt(rs, d),
                              release=lambda rs: self._release(rs, d),
                              can_adopt=lambda: self._can_adopt(d))
        if m.get("deletionTimestamp") is not None:
            new_rs, old_rss, d = await self._sync_revision(d, rs_list, create=False)
            await self._sync_status(d, [*old_rss, *([new_rs] if new_rs else [])], new_rs,
                                    rollout=False)
            return
        d = await self._check_paused_conditions(d)
        if _spec(d).get("paused"):
            await self._sync(d, rs_list)
            return
        scaling, d = await self._is_scaling_event(d, rs_list)
        if scaling:
            await self._sync(d, rs_list)
            return
        if _rolling(d) is None:
            await self._rollout_recreate(d, rs_list)
        else:
            await self._rollout_rolling(d, rs_list)

    # -- revisions and the new ReplicaSet --------------------------------------------------

    def _find_new(self, d: Obj, rs_list: list[Obj]) -> Obj | None:
        template = _spec(d).get("template")
        for rs in sorted(rs_list, key=_created):
            if equal_ignore_hash(_spec(rs).get("template"), template):
                return rs
        return None

    def _set_new_rs_annotations(self, d: Obj, annotations: dict[str, str], revision: int,
                                exists: bool) -> bool:
        """Kubernetes' ``SetNewReplicaSetAnnotations``, on a copy of the RS annotations."""
        changed = False
        for k, v in (meta(d).get("annotations") or {}).items():
            if k in SKIPPED_ANNOTATIONS or annotations.get(k) == v:
                continue
            annotations[k] = v
            changed = True
        old_text = annotations.get(REVISION, "")
        try:
            old = int(old_text) if old_text else 0
        except ValueError:
            return changed
        if old < revision:
            annotations[REVISION] = str(revision)
            changed = True
            if old_text:
                history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
                history.append(old_text)
                text = ",".join(history)
                while len(text) > MAX_REVISION_HISTORY_CHARS and len(history) > 1:
                    history.pop(0)
                    text = ",".join(history)
                annotations[REVISION_HISTORY] = text
        if not exists:
            changed |= self._set_replicas_annotations(d, annotations)
        return changed

    @staticmethod
    def _set_replicas_annotations(d: Obj, annotations: dict[str, str]) -> bool:
        desired = str(_replicas(d))
        maximum = str(_replicas(d) + max_surge(d))
        changed = annotations.get(DESIRED_REPLICAS) != desired or \
            annotations.get(MAX_REPLICAS) != maximum
        annotations[DESIRED_REPLICAS] = desired
        annotations[MAX_REPLICAS] = maximum
        return changed

    async def _sync_revision(self, d: Obj, rs_list: list[Obj], *, create: bool
                             ) -> tuple[Obj | None, list[Obj], Obj]:
        """(new ReplicaSet or None, old ReplicaSets, the Deployment as now stored)."""
        existing = self._find_new(d, rs_list)
        old_rss = [rs for rs in rs_list if existing is None or
                   meta(rs).get("uid") != meta(existing).get("uid")]
        revision = max((_revision(rs) for rs in old_rss), default=0) + 1
        if existing is not None:
            annotations = dict(meta(existing).get("annotations") or {})
            changed = self._set_new_rs_annotations(d, annotations, revision, True)
            min_ready = _spec(d).get("minReadySeconds") or 0
            if changed or (_spec(existing).get("minReadySeconds") or 0) != min_ready:
                body = {**existing, "metadata": {**meta(existing), "annotations": annotations},
                        "spec": {**_spec(existing), "minReadySeconds": min_ready}}
                stale = existing
                existing = await self.client.update(REPLICASETS, body)
                # later steps of this sync work on the list: keep it current
                rs_list[:] = [existing if rs is stale else rs for rs in rs_list]
            status = dict(_status(d))
            needs_update = False
            d_annotations = dict(meta(d).get("annotations") or {})
            rs_revision = (meta(existing).get("annotations") or {}).get(REVISION)
            if rs_revision and d_annotations.get(REVISION) != rs_revision:
                d_annotations[REVISION] = rs_revision
                needs_update = True
            if has_progress_deadline(d) and condition(d, "Progressing") is None:
                _set_condition(status, self._condition(
                    "Progressing", "True", "FoundNewReplicaSet",
                    f'Found new replica set "{meta(existing)["name"]}"'))
                needs_update = True
            if needs_update:
                d = await self._update_status(
                    {**d, "metadata": {**meta(d), "annotations": d_annotations}}, status)
            return existing, old_rss, d
        if not create:
            return None, old_rss, d
        return await self._create_new(d, old_rss, revision)

    async def _create_new(self, d: Obj, old_rss: list[Obj], revision: int
                          ) -> tuple[Obj | None, list[Obj], Obj]:
        spec = _spec(d)
        collisions = _status(d).get("collisionCount")
        template = orjson.loads(orjson.dumps(spec.get("template") or {}))
        digest = template_hash(template, collisions)
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), POD_TEMPLATE_HASH: digest}
        selector = orjson.loads(orjson.dumps(spec.get("selector") or {}))
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}),
                                   POD_TEMPLATE_HASH: digest}
        name = f"{meta(d)['name']}-{digest}"
        new_rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": meta(d)["namespace"],
                         "labels": dict(tmeta["labels"]), "ownerReferences": [owner_ref(d)]},
            "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds") or 0,
                     "selector": selector, "template": template},
        }
        new_rs["spec"]["replicas"] = self._new_rs_new_replicas(d, [*old_rss, new_rs], new_rs)
        annotations: dict[str, str] = {}
        self._set_new_rs_annotations(d, annotations, revision, False)
        new_rs["metadata"]["annotations"] = annotations
        already = False
        try:
            created = await self.client.create(REPLICASETS, new_rs, meta(d)["namespace"])
        except ApiError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                found = await self.client.get(REPLICASETS, name, meta(d)["namespace"])
                ref = controller_ref(found)
                if ref is not None and ref.get("uid") == meta(d).get("uid") and \
                        equal_ignore_hash(spec.get("template"), _spec(found).get("template")):
                    created, already = found, True
                else:
                    status = {**_status(d), "collisionCount": int(collisions or 0) + 1}
                    await self._update_status(d, status)
                    raise ApiError(409, "Conflict",
                                   f"hash collision for replica set {name}") from None
            elif exc.code == 403 and "being terminated" in exc.message:
                return None, old_rss, d
            else:
                status = dict(_status(d))
                if has_progress_deadline(d):
                    _set_condition(status, self._condition(
                        "Progressing", "False", "FailedRSCreate",
                        f'Failed to create new replica set "{name}": {exc.message}'))
                    await self._update_status(d, status)
                raise
        replicas = _replicas(created)
        if not already and replicas > 0:
            self.recorder.normal(d, "ScalingReplicaSet",
                                 f"Scaled up replica set {name} to {replicas}")
        status = dict(_status(d))
        d_annotations = dict(meta(d).get("annotations") or {})
        needs_update = d_annotations.get(REVISION) != str(revision)
        d_annotations[REVISION] = str(revision)
        if not already and has_progress_deadline(d):
            _set_condition(status, self._condition("Progressing", "True",
                                                   "NewReplicaSetCreated",
                                                   f'Created new replica set "{name}"'))
            needs_update = True
        if needs_update:
            d = await self._update_status(
                {**d, "metadata": {**meta(d), "annotations": d_annotations}}, status)
        return created, old_rss, d

    def _new_rs_new_replicas(self, d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
        if _rolling(d) is None:
            return _replicas(d)
        current = sum(_replicas(rs) for rs in all_rss)
        total = _replicas(d) + max_surge(d)
        if current >= total:
            return _replicas(new_rs)
        up = min(total - current, _replicas(d) - _replicas(new_rs))
        return _replicas(new_rs) + up

    # -- scaling ---------------------------------------------------------------------------

    async def _scale_rs(self, rs: Obj, size: int, d: Obj, operation: str) -> tuple[bool, Obj]:
        annotations = dict(meta(rs).get("annotations") or {})
        annotations_changed = self._set_replicas_annotations(d, annotations)
        old = _replicas(rs)
        if old == size and not annotations_changed:
            return False, rs
        body = {**rs, "metadata": {**meta(rs), "annotations": annotations},
                "spec": {**_spec(rs), "replicas": size}}
        updated = await self.client.update(REPLICASETS, body)
        if old != size:
            self.recorder.normal(d, "ScalingReplicaSet",
                                 f"Scaled {operation} replica set {meta(rs)['name']} to {size} "
                                 f"from {old}")
            return True, updated
        return False, updated

    async def _scale_and_record(self, rs: Obj, size: int, d: Obj) -> tuple[bool, Obj]:
        if _replicas(rs) == size:
            return False, rs
        return await self._scale_rs(rs, size, d, "up" if _replicas(rs) < size else "down")

    async def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> tuple[bool, Obj]:
        """Whether only ``replicas`` changed (an active ReplicaSet wants another count);
        and the Deployment as now stored."""
        new_rs, old_rss, d = await self._sync_revision(d, rs_list, create=False)
        for rs in _active([*old_rss, *([new_rs] if new_rs else [])]):
            desired = _annotation_int(rs, DESIRED_REPLICAS)
            if desired is not None and desired != _replicas(d):
                return True, d
        return False, d

    async def _sync(self, d: Obj, rs_list: list[Obj]) -> None:
        """A scaling event or a paused Deployment: scale, clean up, report."""
        new_rs, old_rss, d = await self._sync_revision(d, rs_list, create=False)
        await self._scale(d, new_rs, old_rss)
        if _spec(d).get("paused"):
            await self._cleanup(d, old_rss)
        all_rss = self._current([*old_rss, *([new_rs] if new_rs else [])])
        new_rs = self._current([new_rs])[0] if new_rs else None
        await self._sync_status(d, all_rss, new_rs, rollout=False)

    def _current(self, rss: list[Obj]) -> list[Obj]:
        """The cached versions of ``rss`` (those the informer already shows updated)."""
        out = []
        for rs in rss:
            cached = self.replicasets.get(ns_name(rs))
            if cached is not None and meta(cached).get("uid") == meta(rs).get("uid") and \
                    int(meta(cached).get("resourceVersion") or 0) > \
                    int(meta(rs).get("resourceVersion") or 0):
                out.append(cached)
            else:
                out.append(rs)
        return out

    async def _scale(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        old_sorted = sorted(old_rss, key=_created, reverse=True)
        everything = [*old_sorted, *([new_rs] if new_rs else [])]
        active = _active(everything)
        target: Obj | None = None
        if new_rs is not None or old_sorted:
            if not active:
                target = new_rs if new_rs is not None else old_sorted[0]
            elif len(active) == 1:
                target = active[0]
        if target is not None:
            if _replicas(target) != _replicas(d):
                await self._scale_and_record(target, _replicas(d), d)
            return
        if new_rs is not None and _annotation_int(new_rs, DESIRED_REPLICAS) == _replicas(d) \
                and _replicas(new_rs) == _replicas(d) \
                and int(_status(new_rs).get("availableReplicas") or 0) == _replicas(d):
            for rs in _active(old_rss):
                await self._scale_and_record(rs, 0, d)
            return
        if _rolling(d) is None:
            return
        active = _active(everything)
        total = sum(_replicas(rs) for rs in active)
        allowed = _replicas(d) + max_surge(d) if _replicas(d) > 0 else 0
        to_add = allowed - total
        if to_add > 0:
            active.sort(key=lambda rs: (-_replicas(rs), -_created(rs)[0]))
            operation = "up"
        elif to_add < 0:
            active.sort(key=lambda rs: (-_replicas(rs), _created(rs)[0]))
            operation = "down"
        else:
            operation = ""
        added = 0
        sizes: dict[str, int] = {}
        for rs in active:
            if to_add != 0:
                proportion = self._proportion(rs, d, to_add, added)
                sizes[meta(rs)["name"]] = _replicas(rs) + proportion
                added += proportion
            else:
                sizes[meta(rs)["name"]] = _replicas(rs)
        for i, rs in enumerate(active):
            name = meta(rs)["name"]
            if i == 0 and to_add != 0:
                sizes[name] = max(sizes[name] + to_add - added, 0)
            await self._scale_rs(rs, sizes[name], d, operation or "up")

    @staticmethod
    def _proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
        if _replicas(rs) == 0 or to_add == 0 or to_add == added:
            return 0
        if _replicas(d) == 0:
            fraction = -_replicas(rs)
        else:
            deployment_replicas = _replicas(d) + max_surge(d)
            annotated = _annotation_int(rs, MAX_REPLICAS)
            if not annotated:
                annotated = int(_status(d).get("replicas") or 0) or deployment_replicas
            fraction = _round(_replicas(rs) * deployment_replicas / annotated) - _replicas(rs)
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    # -- rolling update --------------------------------------------------------------------

    async def _rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old_rss, d = await self._sync_revision(d, rs_list, create=True)
        if new_rs is None:
            return
        all_rss = [*old_rss, new_rs]
        scaled, new_rs = await self._reconcile_new(d, all_rss, new_rs)
        all_rss = [*old_rss, new_rs]
        if scaled:
            await self._sync_status(d, all_rss, new_rs)
            return
        scaled_down, old_rss = await self._reconcile_old(d, all_rss, _active(old_rss), old_rss,
                                                         new_rs)
        all_rss = [*old_rss, new_rs]
        if scaled_down:
            await self._sync_status(d, all_rss, new_rs)
            return
        status = self._calculate_status(d, all_rss, new_rs)
        if deployment_complete(d, status):
            await self._cleanup(d, old_rss)
        await self._sync_status(d, all_rss, new_rs)

    async def _reconcile_new(self, d: Obj, all_rss: list[Obj], new_rs: Obj
                             ) -> tuple[bool, Obj]:
        if _replicas(new_rs) == _replicas(d):
            return False, new_rs
        if _replicas(new_rs) > _replicas(d):
            return await self._scale_and_record(new_rs, _replicas(d), d)
        count = self._new_rs_new_replicas(d, all_rss, new_rs)
        return await self._scale_and_record(new_rs, count, d)

    async def _reconcile_old(self, d: Obj, all_rss: list[Obj], active_old: list[Obj],
                             old_rss: list[Obj], new_rs: Obj) -> tuple[bool, list[Obj]]:
        old_count = sum(_replicas(rs) for rs in active_old)
        if old_count == 0:
            return False, old_rss
        all_count = sum(_replicas(rs) for rs in all_rss)
        min_available = _replicas(d) - max_unavailable(d)
        new_unavailable = _replicas(new_rs) - _available_of(new_rs)
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False, old_rss
        replaced: dict[str, Obj] = {}
        cleaned = 0
        for rs in sorted(active_old, key=_created):
            if cleaned >= max_scaled_down:
                break
            if _replicas(rs) == 0 or _replicas(rs) == _available_of(rs):
                continue
            down = min(max_scaled_down - cleaned, _replicas(rs) - _available_of(rs))
            new_size = _replicas(rs) - down
            _, updated = await self._scale_and_record(rs, new_size, d)
            replaced[meta(rs)["uid"]] = updated
            cleaned += down
        old_rss = [replaced.get(meta(rs)["uid"], rs) for rs in old_rss]
        all_rss = [*old_rss, new_rs]
        # scale down old ReplicaSets while enough pods stay available
        available = sum(_available_of(rs) for rs in all_rss)
        total_down = available - min_available
        scaled = 0
        if total_down > 0:
            for rs in sorted(_active(old_rss), key=_created):
                if scaled >= total_down:
                    break
                down = min(_replicas(rs), total_down - scaled)
                _, updated = await self._scale_and_record(rs, _replicas(rs) - down, d)
                replaced[meta(rs)["uid"]] = updated
                scaled += down
        old_rss = [replaced.get(meta(rs)["uid"], rs) for rs in old_rss]
        return cleaned + scaled > 0, old_rss

    # -- recreate --------------------------------------------------------------------------

    async def _rollout_recreate(self, d: Obj, rs_list: list[Obj]) -> None:
        new_rs, old_rss, d = await self._sync_revision(d, rs_list, create=False)
        scaled = False
        replaced: dict[str, Obj] = {}
        for rs in _active(old_rss):
            did, updated = await self._scale_and_record(rs, 0, d)
            replaced[meta(rs)["uid"]] = updated
            scaled |= did
        old_rss = [replaced.get(meta(rs)["uid"], rs) for rs in old_rss]
        all_rss = [*old_rss, *([new_rs] if new_rs else [])]
        if scaled or self._old_pods_running(new_rs, old_rss):
            await self._sync_status(d, all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old_rss, d = await self._sync_revision(d, rs_list, create=True)
            if new_rs is None:
                return
        _, new_rs = await self._scale_and_record(new_rs, _replicas(d), d)
        all_rss = [*old_rss, new_rs]
        status = self._calculate_status(d, all_rss, new_rs)
        if deployment_complete(d, status):
            await self._cleanup(d, old_rss)
        await self._sync_status(d, all_rss, new_rs)

    def _old_pods_running(self, new_rs: Obj | None, old_rss: list[Obj]) -> bool:
        if sum(int(_status(rs).get("replicas") or 0) for rs in old_rss) > 0:
            return True
        for rs in old_rss:
            for pod in self.pods_by_controller.get(str(meta(rs).get("uid"))):
                if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    return True
        return False

    # -- cleanup and status ----------------------------------------------------------------

    async def _cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        limit = _spec(d).get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old_rss if meta(rs).get("deletionTimestamp") is None]
        diff = len(alive) - int(limit)
        if diff <= 0:
            return
        alive.sort(key=lambda rs: (_revision(rs), _created(rs)))
        for rs in alive[:diff]:
            status = _status(rs)
            if int(status.get("replicas") or 0) != 0 or _replicas(rs) != 0 or \
                    int(meta(rs).get("generation") or 1) > \
                    int(status.get("observedGeneration") or 0):
                continue
            try:
                await self.client.delete(REPLICASETS, meta(rs)["name"], meta(rs)["namespace"],
                                         preconditions={"uid": meta(rs)["uid"]})
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise

    def _condition(self, kind: str, status: str, reason: str, message: str) -> Obj:
        now = fmt_time(self.clock.now())
        return {"type": kind, "status": status, "lastUpdateTime": now,
                "lastTransitionTime": now, "reason": reason, "message": message}

    def _calculate_status(self, d: Obj, all_rss: list[Obj], new_rs: Obj | None) -> Obj:
        available = sum(int(_status(rs).get("availableReplicas") or 0) for rs in all_rss)
        total = sum(_replicas(rs) for rs in all_rss)
        status: Obj = {
            "observedGeneration": int(meta(d).get("generation") or 1),
            "replicas": sum(int(_status(rs).get("replicas") or 0) for rs in all_rss),
            "updatedReplicas": int(_status(new_rs).get("replicas") or 0) if new_rs else 0,
            "readyReplicas": sum(int(_status(rs).get("readyReplicas") or 0) for rs in all_rss),
            "availableReplicas": available,
            "unavailableReplicas": max(total - available, 0),
        }
        old = _status(d)
        if old.get("collisionCount") is not None:
            status["collisionCount"] = old["collisionCount"]
        if old.get("conditions"):
            status["conditions"] = list(old["conditions"])
        if available >= _replicas(d) - max_unavailable(d):
            _set_condition(status, self._condition("Available", "True",
                                                   "MinimumReplicasAvailable",
                                                   "Deployment has minimum availability."))
        else:
            _set_condition(status, self._condition("Available", "False",
                                                   "MinimumReplicasUnavailable",
                                                   "Deployment does not have minimum "
                                                   "availability."))
        return status

    async def _sync_status(self, d: Obj, all_rss: list[Obj], new_rs: Obj | None, *,
                           rollout: bool = True) -> None:
        status = self._calculate_status(d, all_rss, new_rs)
        if rollout:
            self._progress(d, status, new_rs)
        failure = next((c for rs in all_rss for c in _status(rs).get("conditions") or []
                        if c.get("type") == "ReplicaFailure" and c.get("status") == "True"),
                       None)
        if failure is not None:
            _set_condition(status, {**self._condition("ReplicaFailure", "True",
                                                      failure.get("reason") or "",
                                                      failure.get("message") or "")})
        else:
            _remove_condition(status, "ReplicaFailure")
        if status == _status(d):
            self._requeue_stuck(d, status)
            return
        updated = await self._update_status(d, status)
        self._requeue_stuck(updated, status)

    def _progress(self, d: Obj, status: Obj, new_rs: Obj | None) -> None:
        if not has_progress_deadline(d):
            _remove_condition(status, "Progressing")
            return
        current = condition(d, "Progressing")
        complete = status.get("replicas") == status.get("updatedReplicas") and \
            current is not None and current.get("reason") == "NewReplicaSetAvailable"
        if complete:
            return
        what = f'ReplicaSet "{meta(new_rs)["name"]}"' if new_rs else \
            f'Deployment "{meta(d)["name"]}"'
        if deployment_complete(d, status):
            _set_condition(status, self._condition("Progressing", "True",
                                                   "NewReplicaSetAvailable",
                                                   f"{what} has successfully progressed."))
        elif _progressing(d, status):
            cond = self._condition("Progressing", "True", "ReplicaSetUpdated",
                                   f"{what} is progressing.")
            if current is not None and current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime")
            _remove_condition(status, "Progressing")
            _set_condition(status, cond)
        elif self._timed_out(d, status):
            _set_condition(status, self._condition("Progressing", "False",
                                                   "ProgressDeadlineExceeded",
                                                   f"{what} has timed out progressing."))

    def _timed_out(self, d: Obj, status: Obj) -> bool:
        cond = next((c for c in status.get("conditions") or []
                     if c.get("type") == "Progressing"), None)
        if cond is None or cond.get("reason") == "NewReplicaSetAvailable":
            return False
        if cond.get("reason") == "ProgressDeadlineExceeded":
            return True
        since = parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return False
        deadline = int(_spec(d).get("progressDeadlineSeconds") or 0)
        return (self.clock.now() - since).total_seconds() > deadline

    def _requeue_stuck(self, d: Obj, status: Obj) -> None:
        current = condition(d, "Progressing")
        if not has_progress_deadline(d) or current is None:
            return
        if deployment_complete(d, status) or current.get("reason") == "ProgressDeadlineExceeded":
            return
        since = parse_time(current.get("lastUpdateTime"))
        if since is None:
            return
        deadline = int(_spec(d).get("progressDeadlineSeconds") or 0)
        after = deadline - (self.clock.now() - since).total_seconds()
        self.enqueue_after(d, max(after, 0) + 1.0)

    async def _check_paused_conditions(self, d: Obj) -> Obj:
        if not has_progress_deadline(d):
            return d
        cond = condition(d, "Progressing")
        if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
            return d
        paused_exists = cond is not None and cond.get("reason") == "DeploymentPaused"
        status = dict(_status(d))
        if _spec(d).get("paused") and not paused_exists:
            _set_condition(status, self._condition("Progressing", "Unknown", "DeploymentPaused",
                                                   "Deployment is paused"))
        elif not _spec(d).get("paused") and paused_exists:
            _set_condition(status, self._condition("Progressing", "Unknown",
                                                   "DeploymentResumed",
                                                   "Deployment is resumed"))
        else:
            return d
        return await self._update_status(d, status)

    async def _update_status(self, d: Obj, status: Obj) -> Obj:
        """Write ``status`` (and the annotations of ``d``: the revision) as a status update;
        the Deployment as stored."""
        return await self.client.update_status(DEPLOYMENTS, {**d, "status": status})


def _round(value: float) -> int:
    """Round half away from zero (Go's ``math.Round``)."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)

"""``pods/eviction``: delete a pod unless that would break its PodDisruptionBudget.

What ``kubectl drain`` uses.  ``POST .../pods/<name>/eviction`` with a policy/v1 (or
v1beta1) ``Eviction`` body:

* a pod that is not running yet, has finished, or is already being deleted is deleted
  without looking at budgets;
* otherwise the PodDisruptionBudget selecting it (more than one is an error) must allow a
  disruption: its status must be current (``observedGeneration``) and
  ``disruptionsAllowed`` above zero -- else ``429 TooManyRequests`` with a
  ``DisruptionBudget`` cause, and the client retries later.  An allowed eviction takes one
  disruption from the budget (and records the pod in ``disruptedPods``) before the pod is
  deleted, so two concurrent evictions cannot both use the last one;
* a pod that is not ready may be evicted without using the budget when the budget is met
  anyway (``unhealthyPodEvictionPolicy: IfHealthyBudget``, the default) or always
  (``AlwaysAllow``);
* the pod gets the ``DisruptionTarget`` condition (``EvictionByEvictionAPI``), then is
  deleted with the Eviction's ``deleteOptions``.

The answer is ``201`` with a ``Success`` Status.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from kubeling.api.auth import UserInfo
from kubeling.api.encoding import decode_body, decode_stored
from kubeling.api.errors import ApiError
from kubeling.api.handlers import Target
from kubeling.api.request import ApiRequest, ApiResponse
from kubeling.api.selectors import SelectorError, label_selector_from_dict

if TYPE_CHECKING:
    from kubeling.api.server import ApiServer

__all__ = ["MAX_DISRUPTED_PODS", "handle", "install"]

Obj = dict[str, Any]

MAX_DISRUPTED_PODS = 2000
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
_VERSIONS = ("policy/v1", "policy/v1beta1")


def install(server: ApiServer) -> None:
    """Serve ``pods/eviction`` on ``server``."""
    server.add_subresource_handler("", "pods", "eviction", handle)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _too_many(pdb_name: str, message: str) -> ApiError:
    return ApiError(429, "TooManyRequests", VIOLATION,
                    details={"causes": [{"reason": "DisruptionBudget", "message": message}]},
                    headers={"Retry-After": "10"})


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


async def handle(server: ApiServer, verb: str, t: Target, req: ApiRequest,
                 user: UserInfo) -> ApiResponse:
    """The ``pods/eviction`` subresource handler."""
    if verb != "create":
        raise ApiError.method_not_allowed(req.method, req.path)
    body = decode_body(req.body, (req.header("content-type") or "application/json")
                       .split(";")[0].strip())
    if not isinstance(body, dict):
        raise ApiError.bad_request("the request body must be an Eviction object")
    if body.get("apiVersion") not in (None, "", *_VERSIONS) or \
            body.get("kind") not in (None, "", "Eviction"):
        raise ApiError.bad_request(f"the body must be a policy/v1 Eviction, not "
                                   f"{body.get('apiVersion')} {body.get('kind')}")
    name = (body.get("metadata") or {}).get("name") if isinstance(body.get("metadata"),
                                                                  dict) else None
    if name and name != t.name:
        raise ApiError.bad_request("name in URL does not match name in Eviction object")
    options = dict(body.get("deleteOptions") or {})
    if req.query.get("dryRun"):
        options["dryRun"] = [req.query["dryRun"]]
    dry_run = bool(options.get("dryRun"))
    pod_target = Target(t.kind, t.namespace, t.name, None)
    kv = await server.handlers._read(pod_target)
    pod = decode_stored(kv.value, kv.mod_revision)
    if not _ignores_budgets(pod):
        await _use_budget(server, pod, user, dry_run)
    if not dry_run:
        await _mark(server, t, user)
    await server.handlers.delete_object(pod_target, options, user=user)
    return ApiResponse.json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Success", "code": 201}, 201)


def _ignores_budgets(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or \
        (pod.get("metadata") or {}).get("deletionTimestamp") is not None


def _budgets_of(server: ApiServer, pod: Obj) -> tuple[Any, list[Obj]]:
    kind = server.registry.get("policy", "v1", "poddisruptionbudgets")
    if kind is None:
        return None, []
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    out = []
    prefix = kind.namespace_prefix(meta.get("namespace"))
    for key, cached in list(server.cache_for(kind).objects.items()):
        if not key.startswith(prefix):
            continue
        selector = (cached.obj.get("spec") or {}).get("selector")
        try:
            sel = label_selector_from_dict(selector)
        except SelectorError:
            continue
        if selector is None or sel.empty or not sel.matches(labels):
            continue  # a PDB with a nil or empty selector matches no pod
        out.append(cached.obj)
    return kind, out


async def _use_budget(server: ApiServer, pod: Obj, user: UserInfo, dry_run: bool) -> None:
    kind, budgets = _budgets_of(server, pod)
    if not budgets:
        return
    if len(budgets) > 1:
        raise ApiError(500, "InternalError", "This pod has more than one "
                       "PodDisruptionBudget, which the eviction subresource does not "
                       "support.")
    pod_name = (pod.get("metadata") or {}).get("name") or ""
    pdb_name = budgets[0]["metadata"]["name"]
    target = Target(kind, budgets[0]["metadata"].get("namespace"), pdb_name, "status")
    for _ in range(20):
        kv = await server.handlers._read(Target(kind, target.namespace, pdb_name, None))
        pdb = decode_stored(kv.value, kv.mod_revision)
        status = pdb.get("status") or {}
        spec = pdb.get("spec") or {}
        if not _ready(pod):
            policy = spec.get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
            healthy, desired = status.get("currentHealthy", 0), status.get("desiredHealthy", 0)
            if policy == "AlwaysAllow" or (desired > 0 and healthy >= desired):
                return
        if int(status.get("observedGeneration") or 0) < \
                int((pdb.get("metadata") or {}).get("generation") or 1):
            raise _too_many(pdb_name, f"The disruption budget {pdb_name} is still being "
                                      f"processed by the server.")
        allowed = int(status.get("disruptionsAllowed") or 0)
        if allowed < 0:
            raise ApiError.forbidden("pdb disruptions allowed is negative")
        disrupted = dict(status.get("disruptedPods") or {})
        if len(disrupted) > MAX_DISRUPTED_PODS:
            raise ApiError.forbidden("DisruptedPods map too big - too many evictions not "
                                     "confirmed by PDB controller")
        if allowed == 0:
            raise _too_many(pdb_name, f"The disruption budget {pdb_name} needs "
                                      f"{status.get('desiredHealthy', 0)} healthy pods and "
                                      f"has {status.get('currentHealthy', 0)} currently")
        if dry_run:
            return
        disrupted[pod_name] = _now()
        new_status = {**status, "disruptionsAllowed": allowed - 1,
                      "disruptedPods": disrupted}

        def compute(current: Obj, new_status: Obj = new_status) -> Obj:
            current["status"] = new_status
            return current

        try:
            await server.handlers.update_object(target, compute, user=user,
                                                precondition=pdb["metadata"][
                                                    "resourceVersion"])
            return
        except ApiError as exc:
            if exc.code != 409:
                raise
    raise ApiError(429, "TooManyRequests", "too many concurrent evictions; try again",
                   headers={"Retry-After": "1"})


async def _mark(server: ApiServer, t: Target, user: UserInfo) -> None:
    """Add the DisruptionTarget condition before the pod is deleted."""
    status_target = Target(t.kind, t.namespace, t.name, "status")

    def compute(current: Obj) -> Obj:
        status = current.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or []
                      if c.get("type") != "DisruptionTarget"]
        conditions.append({"type": "DisruptionTarget", "status": "True",
                           "reason": "EvictionByEvictionAPI",
                           "message": "Eviction API: evicting", "lastProbeTime": None,
                           "lastTransitionTime": _now()})
        status["conditions"] = conditions
        return current

    try:
        await server.handlers.update_object(status_target, compute, user=user)
    except ApiError as exc:
        if exc.code != 404:
            raise

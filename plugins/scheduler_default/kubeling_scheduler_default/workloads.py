"""The selectors of the workloads around a pod, for PodTopologySpread's default constraints.

Kubernetes' ``DefaultSelector``: the union of the selectors of every Service in the pod's
namespace that selects the pod, plus the selector of the pod's controller when that is a
ReplicationController, ReplicaSet or StatefulSet.  A pod no Service selects and no such
controller owns gets none, and so no default spreading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeling.api.selectors import (
    LabelSelector,
    SelectorError,
    label_selector_from_dict,
    label_selector_from_set,
)
from kubeling.client.resources import (
    PERSISTENTVOLUMECLAIMS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    SERVICES,
    STATEFULSETS,
)

__all__ = ["PERSISTENTVOLUMECLAIMS", "REPLICATIONCONTROLLERS", "STATEFULSETS",
           "WORKLOAD_RESOURCES", "WorkloadSelectors"]

Obj = dict[str, Any]

WORKLOAD_RESOURCES = (SERVICES, REPLICATIONCONTROLLERS, REPLICASETS, STATEFULSETS)
"""What :class:`WorkloadSelectors` is fed from (one informer each)."""

_OWNER_KINDS = {("v1", "ReplicationController"), ("apps/v1", "ReplicaSet"),
                ("apps/v1", "StatefulSet")}


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


class WorkloadSelectors:
    """Services' and controllers' selectors by namespace, kept current by informers."""

    def __init__(self) -> None:
        self._services: dict[str, dict[str, dict[str, str]]] = {}
        """namespace -> Service name -> its (non-empty) selector map."""
        self._owners: dict[tuple[str, str, str], tuple[str, Any]] = {}
        """(kind, namespace, name) -> (uid, label map or LabelSelector)."""

    def update(self, kind: str, obj: Obj) -> None:
        """An added or changed Service / ReplicationController / ReplicaSet / StatefulSet."""
        m = _meta(obj)
        namespace, name = str(m.get("namespace") or ""), str(m.get("name") or "")
        selector = (obj.get("spec") or {}).get("selector")
        if kind == "Service":
            services = self._services.setdefault(namespace, {})
            if isinstance(selector, dict) and selector:
                services[name] = {str(k): str(v) for k, v in selector.items()}
            else:
                services.pop(name, None)
            return
        parsed: Any = None
        if kind == "ReplicationController":
            parsed = dict(selector) if isinstance(selector, dict) else None
        else:
            try:
                parsed = label_selector_from_dict(selector)
            except SelectorError:
                parsed = None
        if parsed is None:
            self._owners.pop((kind, namespace, name), None)
        else:
            self._owners[(kind, namespace, name)] = (str(m.get("uid") or ""), parsed)

    def delete(self, kind: str, obj: Obj) -> None:
        m = _meta(obj)
        namespace, name = str(m.get("namespace") or ""), str(m.get("name") or "")
        if kind == "Service":
            self._services.get(namespace, {}).pop(name, None)
        else:
            self._owners.pop((kind, namespace, name), None)

    def default_selector(self, pod: Obj) -> LabelSelector | None:
        """Kubernetes' ``DefaultSelector`` for ``pod``; None when it would be empty."""
        m = _meta(pod)
        namespace = str(m.get("namespace") or "")
        labels = m.get("labels") or {}
        merged: dict[str, str] = {}
        for selector in self._services.get(namespace, {}).values():
            if all(labels.get(k) == v for k, v in selector.items()):
                merged.update(selector)
        extra: tuple[Any, ...] = ()
        owner = next((r for r in m.get("ownerReferences") or [] if r.get("controller")), None)
        if owner is not None and (owner.get("apiVersion"), owner.get("kind")) in _OWNER_KINDS:
            found = self._owners.get((str(owner["kind"]), namespace, str(owner.get("name"))))
            if found is not None and found[0] == owner.get("uid"):
                if isinstance(found[1], dict):
                    merged.update(found[1])
                else:
                    extra = found[1].requirements
        if not merged and not extra:
            return None
        unique = {str(r): r for r in (*label_selector_from_set(merged).requirements, *extra)}
        return LabelSelector(unique.values())

"""The shared secondary indexes controllers look objects up by.

``ctx.index(PODS, BY_CONTROLLER, by_controller)`` and friends: every controller asking for
the same name gets the same :class:`~kubeling_controllers_default.base.Index`.
"""

from __future__ import annotations

from typing import Any

from kubeling_controllers_default.util import controller_ref, meta

__all__ = ["BY_CONTROLLER", "BY_NAMESPACE", "BY_NODE", "by_controller", "by_namespace",
           "by_node", "claim_candidates", "orphans_key"]

Obj = dict[str, Any]

BY_CONTROLLER = "by-controller"
BY_NAMESPACE = "by-namespace"
BY_NODE = "by-node"


def orphans_key(namespace: str | None) -> str:
    """The index value of objects without a controller in ``namespace``."""
    return f"orphan:{namespace or ''}"


def by_controller(obj: Obj) -> list[str]:
    """The controller's uid, or :func:`orphans_key` of the object's namespace."""
    ref = controller_ref(obj)
    if ref is not None and ref.get("uid"):
        return [str(ref["uid"])]
    return [orphans_key(meta(obj).get("namespace"))]


def claim_candidates(index: Any, owner: Obj) -> list[Obj]:
    """What ``owner`` may claim from a :data:`BY_CONTROLLER` index: the objects it
    controls and the orphans of its namespace."""
    m = meta(owner)
    return [*index.get(str(m.get("uid"))), *index.get(orphans_key(m.get("namespace")))]


def by_namespace(obj: Obj) -> list[str]:
    return [str(meta(obj).get("namespace") or "")]


def by_node(obj: Obj) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [str(node)] if node else []

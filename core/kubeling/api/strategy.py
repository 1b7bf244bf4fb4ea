"""Strategies: the per-kind rules of the request pipeline.

A strategy works on JSON-shaped dicts (the API server's working form of an object).  The
pipeline calls, in this order:

* create: ``default`` -> (mutating admission) -> ``prepare_for_create`` -> ``validate``
  -> (validating admission) -> storage (Kubernetes' order: defaults at decoding, then
  admission, then the registry's preparation);
* update of the object: ``default`` -> (mutating admission) -> ``prepare_for_update`` ->
  ``validate_update`` -> (validating admission);
* update of ``status``: ``prepare_for_status_update`` -> ``validate_status_update``;
* delete: ``deletion_grace_period`` decides between an immediate delete and a graceful one
  (``deletionTimestamp`` set, the object kept until its owner finishes it), and
  ``prepare_for_delete`` may change the object on the way (a namespace becomes
  ``Terminating``).

The generic parts (metadata, generation, finalizers, resourceVersion) are the pipeline's;
a strategy only says what is specific to its kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubeling.api.errors import Cause
from kubeling.api.validation import is_dns1123_subdomain, validate_object_meta

__all__ = ["Strategy", "TableColumn", "spec_of"]

Obj = dict[str, Any]


class TableColumn:
    """One column of ``kubectl get`` output (meta.k8s.io Table)."""

    __slots__ = ("description", "format", "name", "priority", "type", "value")

    def __init__(self, name: str, value: Callable[[Obj], Any], *, type: str = "string",
                 format: str = "", priority: int = 0, description: str = "") -> None:
        self.name = name
        self.value = value
        self.type = type
        self.format = format
        self.priority = priority
        """0: always shown; 1: shown with ``-o wide``."""
        self.description = description or name


def spec_of(obj: Obj) -> Obj:
    """Everything but metadata and status: what a generation bump watches."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion",
                                                     "kind")}


class Strategy:
    """Default rules; subclass per kind and override what differs."""

    has_status: bool = True
    """The kind has a ``status`` subresource: object updates keep the old status and status
    updates keep everything else."""
    tracks_generation: bool = False
    """``metadata.generation`` starts at 1 and grows on every change outside metadata/status."""
    allow_unconditional_update: bool = True
    """An update without ``metadata.resourceVersion`` is applied to the current object."""
    allow_create_on_update: bool = False
    """A PUT of an absent object creates it (Kubernetes does this for a few kinds)."""
    name_check: Callable[[str], list[str]] | None = staticmethod(is_dns1123_subdomain)
    """Validates ``metadata.name``; ``None`` accepts any non-empty name."""
    default_grace_period: int | None = None
    """When set, a delete is graceful: ``deletionTimestamp`` + this many seconds."""
    return_deleted_object: bool = False
    """A delete that removes the object at once answers with the object, not a Status."""

    # -- create ---------------------------------------------------------------------

    def prepare_for_create(self, obj: Obj) -> None:
        """Reset what a client may not set on create (by default: the whole status)."""
        if self.has_status:
            obj.pop("status", None)

    def default(self, obj: Obj) -> None:
        """Fill in defaults, in place (on create and on every update)."""

    def validate(self, obj: Obj, *, namespaced: bool) -> list[Cause]:
        """Everything wrong with a new object."""
        return validate_object_meta(obj.get("metadata") or {}, namespaced=namespaced,
                                    name_check=self.name_check) + self.validate_spec(obj)

    def validate_spec(self, obj: Obj) -> list[Cause]:
        """Kind-specific checks of a new or updated object."""
        return []

    # -- update ---------------------------------------------------------------------

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Before an update of the object: by default the status cannot change here."""
        if self.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)

    def validate_update(self, new: Obj, old: Obj, *, namespaced: bool) -> list[Cause]:
        """Everything wrong with ``new`` as a replacement of ``old``."""
        return self.validate(new, namespaced=namespaced) + self.validate_immutable(new, old)

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        """Kind-specific fields that may not change."""
        return []

    # -- status -----------------------------------------------------------------------

    def validate_ephemeral_update(self, new: Obj, old: Obj) -> list[Cause]:
        """Checks of an update through ``pods/ephemeralcontainers`` (only ``new``'s
        ``spec.ephemeralContainers`` differs from ``old``); kinds without that subresource
        never get here."""
        return []

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """Before an update of ``status``: everything else stays as it was."""
        for key in list(new):
            if key not in ("status", "metadata", "apiVersion", "kind"):
                del new[key]
        for key, value in old.items():
            if key not in ("status", "metadata"):
                new[key] = value
        meta = dict(old.get("metadata") or {})
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv is not None:
            meta["resourceVersion"] = rv
        else:
            meta.pop("resourceVersion", None)
        new["metadata"] = meta

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return []

    # -- delete -------------------------------------------------------------------------

    def deletion_grace_period(self, obj: Obj, requested: int | None) -> int:
        """Seconds the deletion of ``obj`` may take; 0 deletes at once.

        :param requested: ``gracePeriodSeconds`` from the request, if any.
        """
        if self.default_grace_period is None:
            return 0
        return self.default_grace_period if requested is None else max(requested, 0)

    def prepare_for_delete(self, obj: Obj) -> None:
        """Change the object as it starts terminating (deletionTimestamp already set)."""

    def has_pending_finalizers(self, obj: Obj) -> bool:
        """Whether something must still finish before the object may leave storage."""
        return bool((obj.get("metadata") or {}).get("finalizers"))

    # -- reading --------------------------------------------------------------------------

    def selectable_fields(self, obj: Obj) -> dict[str, str] | None:
        """Field label -> value for field selectors (Kubernetes' ``GetAttrs``), or None to
        resolve each label as a dotted path into the object."""
        return None

    def table_columns(self) -> list[TableColumn]:
        """Columns of ``kubectl get`` besides NAME (and AGE, added by the server)."""
        return []

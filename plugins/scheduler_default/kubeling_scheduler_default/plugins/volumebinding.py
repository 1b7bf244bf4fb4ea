"""VolumeBinding (its claim checks): a pod whose PersistentVolumeClaims are missing, being
deleted or not bound waits, as in Kubernetes without a provisioner for their class.

kubeling binds and provisions no volumes itself (no StorageClasses, no volume binding
controller), so every unbound claim counts as one of an *immediate* class: the pod gets
``pod has unbound immediate PersistentVolumeClaims`` and is retried when a claim is added or
changes.  Pods without claims are skipped at PreFilter (no cost per node).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeling_scheduler_default.framework import CycleState
from kubeling_scheduler_default.podinfo import PodInfo
from kubeling_scheduler_default.status import Status

__all__ = ["ERR_UNBOUND_IMMEDIATE", "VolumeBinding", "claim_names"]

ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"


def claim_names(pod: Mapping[str, Any]) -> list[str]:
    """The claims a pod's volumes name (``persistentVolumeClaim`` and ephemeral ones,
    ``<pod>-<volume>``)."""
    names = []
    pod_name = (pod.get("metadata") or {}).get("name") or ""
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        source = volume.get("persistentVolumeClaim")
        if isinstance(source, dict) and source.get("claimName"):
            names.append(str(source["claimName"]))
        elif isinstance(volume.get("ephemeral"), dict):
            names.append(f"{pod_name}-{volume.get('name', '')}")
    return names


class VolumeBinding:
    """PreFilter plugin (the part of Kubernetes' VolumeBinding that applies without
    StorageClasses)."""

    name = "VolumeBinding"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        del args
        self.handle = handle

    def pre_filter(self, state: CycleState, pod: PodInfo) -> Status | None:
        names = claim_names(pod.pod)
        if not names:
            return Status.skip()
        claims = getattr(self.handle, "claims", None)
        if claims is None:  # no API (algorithm-only): nothing to check against
            return Status.skip()
        unbound = False
        for name in names:
            claim = claims.get(f"{pod.namespace}/{name}")
            if claim is None:
                return Status.unresolvable(f'persistentvolumeclaim "{name}" not found',
                                           plugin=self.name)
            if (claim.get("metadata") or {}).get("deletionTimestamp") is not None:
                return Status.unresolvable(f'persistentvolumeclaim "{name}" is being deleted',
                                           plugin=self.name)
            if not (claim.get("spec") or {}).get("volumeName"):
                unbound = True
        if unbound:
            return Status.unresolvable(ERR_UNBOUND_IMMEDIATE, plugin=self.name)
        return Status.skip()

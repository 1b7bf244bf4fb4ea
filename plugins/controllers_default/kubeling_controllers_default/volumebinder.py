"""The PersistentVolume binder (Kubernetes' ``persistentvolume-binder``, without dynamic
provisioning): PersistentVolumeClaims are bound to PersistentVolumes that exist.

A pending claim gets the smallest Available volume that fits: the same storage class
(``spec.storageClassName``, ``""`` when unset), the same volume mode, every access mode it
asks for, at least the storage it requests, and its ``selector``; a volume pre-bound to the
claim (``claimRef`` naming it) is taken first, and a claim naming a volume
(``spec.volumeName``) gets that one.  Binding writes the volume's ``claimRef`` and phase
``Bound``, then the claim's ``volumeName`` (annotated ``pv.kubernetes.io/bind-completed``)
and status (phase ``Bound``, the volume's capacity and access modes).

When its claim is deleted, a bound volume becomes ``Released`` (reclaim policy
``Retain``, the default for volumes made by hand) or is deleted (``Delete``); a volume
without a claim is ``Available``.  Claims that find no volume stay ``Pending`` with a
``FailedBinding`` event, as in a cluster with no provisioner for their class.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubeling.api.quantity import parse_quantity
from kubeling.api.selectors import SelectorError, label_selector_from_dict
from kubeling.client import ApiError
from kubeling_controllers_default.base import Controller, ControllerContext
from kubeling_controllers_default.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from kubeling_controllers_default.util import meta

__all__ = ["PersistentVolumeBinder", "claim_class", "volume_fits"]

Obj = dict[str, Any]

BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"


def claim_class(obj: Obj) -> str:
    """The storage class of a claim or volume (the beta annotation wins, as in
    Kubernetes)."""
    annotations = meta(obj).get("annotations") or {}
    if BETA_STORAGE_CLASS in annotations:
        return str(annotations[BETA_STORAGE_CLASS])
    return str((obj.get("spec") or {}).get("storageClassName") or "")


def _storage(amounts: Any) -> Decimal:
    try:
        return parse_quantity(str((amounts or {}).get("storage") or 0))
    except (ValueError, ArithmeticError):
        return Decimal(0)


def _phase(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def volume_fits(pv: Obj, pvc: Obj) -> bool:
    """Whether ``pv`` satisfies ``pvc`` (class, mode, access modes, size, selector)."""
    pv_spec, pvc_spec = pv.get("spec") or {}, pvc.get("spec") or {}
    if claim_class(pv) != claim_class(pvc):
        return False
    if (pv_spec.get("volumeMode") or "Filesystem") != \
            (pvc_spec.get("volumeMode") or "Filesystem"):
        return False
    if not set(pvc_spec.get("accessModes") or []) <= set(pv_spec.get("accessModes") or []):
        return False
    if _storage(pv_spec.get("capacity")) < _storage((pvc_spec.get("resources") or {})
                                                    .get("requests")):
        return False
    if pvc_spec.get("selector") is not None:
        try:
            selector = label_selector_from_dict(pvc_spec["selector"])
        except SelectorError:
            return False
        if not selector.matches(meta(pv).get("labels") or {}):
            return False
    return True


def _refers_to(ref: Any, pvc: Obj) -> bool:
    """Whether a volume's ``claimRef`` names ``pvc`` (any uid when it gives none)."""
    if not isinstance(ref, dict):
        return False
    m = meta(pvc)
    return ref.get("namespace") == m.get("namespace") and ref.get("name") == m.get("name") \
        and (not ref.get("uid") or ref.get("uid") == m.get("uid"))


class PersistentVolumeBinder(Controller):
    """Binds claims to volumes and tracks the volumes' phases."""

    name = "persistentvolume-binder"
    component = "persistentvolume-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.workers = 1  # bindings are decided one at a time: no volume is given twice
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.recorder = ctx.recorder(self.component)
        self.claims = self.informer(PERSISTENTVOLUMECLAIMS)
        self.volumes = self.informer(PERSISTENTVOLUMES)
        self.claims.add_handler(on_add=self._claim_changed,
                                on_update=lambda _o, n: self._claim_changed(n),
                                on_delete=self._claim_deleted)
        self.volumes.add_handler(on_add=self._volume_changed,
                                 on_update=lambda _o, n: self._volume_changed(n),
                                 on_delete=lambda pv: None)

    def _claim_changed(self, pvc: Obj) -> None:
        self.enqueue(f"claim:{meta(pvc).get('namespace')}/{meta(pvc).get('name')}")

    def _claim_deleted(self, pvc: Obj) -> None:
        name = (pvc.get("spec") or {}).get("volumeName")
        if name:
            self.enqueue(f"volume:{name}")

    def _volume_changed(self, pv: Obj) -> None:
        self.enqueue(f"volume:{meta(pv).get('name')}")
        if _phase(pv) in ("", "Available", "Pending"):
            for pvc in self.claims.list():  # a volume that became free may fit a claim
                if not (pvc.get("spec") or {}).get("volumeName"):
                    self._claim_changed(pvc)

    async def reconcile(self, key: str) -> None:
        kind, _, name = key.partition(":")
        if kind == "claim":
            pvc = self.claims.get(name)
            if pvc is not None and meta(pvc).get("deletionTimestamp") is None:
                await self._sync_claim(pvc)
        else:
            pv = self.volumes.get(name)
            if pv is not None and meta(pv).get("deletionTimestamp") is None:
                await self._sync_volume(pv)

    # -- claims --------------------------------------------------------------------------

    async def _sync_claim(self, pvc: Obj) -> None:
        wanted = (pvc.get("spec") or {}).get("volumeName")
        if wanted:
            pv = self.volumes.get(str(wanted))
            if pv is None:
                if _phase(pvc) == "Bound":
                    await self._claim_status(pvc, {"phase": "Lost"})
                    self.recorder.warning(pvc, "ClaimLost",
                                          "Bound claim has lost its PersistentVolume. Data "
                                          "on the volume is lost!")
                return
            ref = (pv.get("spec") or {}).get("claimRef")
            if ref is None or _refers_to(ref, pvc):
                await self._bind(pv, pvc)
            return
        chosen = self._find_volume(pvc)
        if chosen is None:
            if _phase(pvc) != "Pending":
                await self._claim_status(pvc, {"phase": "Pending"})
            message = "no persistent volumes available for this claim and no storage " \
                      "class is set" if not claim_class(pvc) else \
                      f'storageclass.storage.k8s.io "{claim_class(pvc)}" not found'
            self.recorder.warning(pvc, "FailedBinding" if not claim_class(pvc)
                                  else "ProvisioningFailed", message)
            return
        await self._bind(chosen, pvc)

    def _find_volume(self, pvc: Obj) -> Obj | None:
        prebound: list[Obj] = []
        free: list[Obj] = []
        for pv in self.volumes.list():
            if meta(pv).get("deletionTimestamp") is not None or \
                    _phase(pv) not in ("", "Available", "Pending"):
                continue
            ref = (pv.get("spec") or {}).get("claimRef")
            if ref is not None and not _refers_to(ref, pvc):
                continue
            if not volume_fits(pv, pvc):
                continue
            (prebound if ref is not None else free).append(pv)
        for group in (prebound, free):
            if group:
                return min(group, key=lambda pv: (_storage((pv.get("spec") or {})
                                                           .get("capacity")),
                                                  str(meta(pv).get("name"))))
        return None

    async def _bind(self, pv: Obj, pvc: Obj) -> None:
        """Point the volume at the claim, then the claim at the volume (each step is
        repeated until both agree, as retries of this key come back here)."""
        m = meta(pvc)
        pv_name = str(meta(pv)["name"])
        ref = {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
               "namespace": m["namespace"], "name": m["name"], "uid": m["uid"],
               "resourceVersion": m.get("resourceVersion")}
        if ((pv.get("spec") or {}).get("claimRef") or {}).get("uid") != m.get("uid"):
            annotations = dict(meta(pv).get("annotations") or {})
            annotations[BOUND_BY_CONTROLLER] = "yes"
            pv = await self.client.update(PERSISTENTVOLUMES, {
                **pv, "metadata": {**meta(pv), "annotations": annotations},
                "spec": {**(pv.get("spec") or {}), "claimRef": ref}})
        if _phase(pv) != "Bound":
            pv = await self.client.update_status(PERSISTENTVOLUMES, {
                **pv, "status": {**(pv.get("status") or {}), "phase": "Bound"}})
        annotations = dict(m.get("annotations") or {})
        if (pvc.get("spec") or {}).get("volumeName") != pv_name or \
                annotations.get(BIND_COMPLETED) != "yes":
            if not (pvc.get("spec") or {}).get("volumeName"):
                annotations[BOUND_BY_CONTROLLER] = "yes"
            annotations[BIND_COMPLETED] = "yes"
            pvc = await self.client.update(PERSISTENTVOLUMECLAIMS, {
                **pvc, "metadata": {**m, "annotations": annotations},
                "spec": {**(pvc.get("spec") or {}), "volumeName": pv_name}})
        pv_spec = pv.get("spec") or {}
        await self._claim_status(pvc, {"phase": "Bound",
                                       "accessModes": list(pv_spec.get("accessModes") or []),
                                       "capacity": dict(pv_spec.get("capacity") or {})})

    async def _claim_status(self, pvc: Obj, status: Obj) -> None:
        old = pvc.get("status") or {}
        if all(old.get(k) == v for k, v in status.items()):
            return
        try:
            await self.client.update_status(PERSISTENTVOLUMECLAIMS,
                                            {**pvc, "status": {**old, **status}})
        except ApiError as exc:
            if exc.code != 404:
                raise

    # -- volumes -------------------------------------------------------------------------

    async def _sync_volume(self, pv: Obj) -> None:
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref is None:
            if _phase(pv) in ("", "Pending", "Released"):
                await self._volume_phase(pv, "Available")
            return
        pvc = self.claims.get(f"{ref.get('namespace')}/{ref.get('name')}")
        if pvc is not None and (not ref.get("uid") or ref.get("uid") == meta(pvc).get("uid")):
            if (pvc.get("spec") or {}).get("volumeName") == meta(pv).get("name") and \
                    _phase(pv) != "Bound":
                await self._volume_phase(pv, "Bound")
            elif not ref.get("uid") and _phase(pv) in ("", "Pending"):
                await self._volume_phase(pv, "Available")  # pre-bound, waiting for it
            return
        if not ref.get("uid"):
            if _phase(pv) in ("", "Pending"):
                await self._volume_phase(pv, "Available")
            return
        # the claim it was bound to is gone
        policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Delete":
            try:
                await self.client.delete(PERSISTENTVOLUMES, str(meta(pv)["name"]),
                                         preconditions={"uid": meta(pv).get("uid")})
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
            return
        if _phase(pv) != "Released":
            await self._volume_phase(pv, "Released")

    async def _volume_phase(self, pv: Obj, phase: str) -> None:
        try:
            await self.client.update_status(PERSISTENTVOLUMES, {
                **pv, "status": {**(pv.get("status") or {}), "phase": phase}})
        except ApiError as exc:
            if exc.code != 404:
                raise

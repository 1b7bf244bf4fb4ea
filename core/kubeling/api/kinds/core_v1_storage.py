"""Strategies of core/v1 PersistentVolume and PersistentVolumeClaim.

The ``persistentvolume-binder`` controller of ``kubeling-controllers-default`` binds claims
to existing volumes; nothing in kubeling provisions or expands storage, or protects claims
in use (no ``kubernetes.io/pvc-protection`` finalizer).

Defaults, validation messages and field paths follow the Kubernetes v1.32 API server, with
the ``VolumeAttributesClass`` and ``RecoverVolumeExpansionFailure`` behaviour of the
releases where those features are on.  The table columns follow ``kubectl get pvc`` and
``kubectl get pv``.
"""

from __future__ import annotations

import copy
import posixpath
from typing import Any

from kubeling.api import quantity
from kubeling.api.errors import Cause
from kubeling.api.kinds._common import (
    AGE,
    BuiltinStrategy,
    Obj,
    as_dict,
    as_list,
    dns_subdomain_causes,
    ensure_dict,
    field_str,
    label_selector_causes,
    meta,
    rfc3339,
    sub,
)
from kubeling.api.kinds._podspec import _diff, _semantic
from kubeling.api.strategy import TableColumn

__all__ = [
    "ACCESS_MODES",
    "PersistentVolumeClaimStrategy",
    "PersistentVolumeStrategy",
    "access_modes_string",
    "default_claim_spec",
    "validate_claim_spec",
]

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
"""Supported access modes, in the (sorted) order Kubernetes lists them in messages."""
VOLUME_MODES = ("Block", "Filesystem")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                   "FileOrCreate", "Socket")
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
PV_SOURCES = (
    "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "fc",
    "flexVolume", "flocker", "gcePersistentDisk", "glusterfs", "hostPath", "iscsi", "local",
    "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos",
    "vsphereVolume",
)
"""The fields of ``PersistentVolumeSource`` (inlined into ``PersistentVolumeSpec``)."""

_SHORT_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                ("ReadWriteOncePod", "RWOP"))


# -- shared by claims, claim templates and volumes ----------------------------------------


def access_modes_string(modes: Any) -> str:
    """kubectl's ACCESS MODES cell: ``RWO,ROX,RWX,RWOP`` (each once, in that order)."""
    present = set(as_list(modes))
    return ",".join(short for mode, short in _SHORT_MODES if mode in present)


def _access_mode_causes(modes: Any, path: str, *, detail: str) -> list[Cause]:
    modes = as_list(modes)
    if not modes:
        return [Cause.required(path, detail)]
    causes: list[Cause] = []
    once_pod = other = False
    for mode in modes:
        if mode not in ACCESS_MODES:
            causes.append(Cause.not_supported(path, mode, ACCESS_MODES))
        elif mode == "ReadWriteOncePod":
            once_pod = True
        else:
            other = True
    if once_pod and other:
        causes.append(Cause.forbidden(path, "may not use ReadWriteOncePod with other access "
                                      "modes"))
    return causes


def _positive_quantity_causes(path: str, amount: Any) -> list[Cause]:
    try:
        value = quantity.parse_quantity(amount)
    except (ValueError, TypeError) as exc:
        return [Cause.invalid(path, amount, str(exc))]
    if value <= 0:
        return [Cause.invalid(path, quantity.canonicalize_quantity(amount),
                              "must be greater than zero")]
    return []


def _class_name_causes(path: str, value: Any) -> list[Cause]:
    """``ValidateClassName``: a storage (or volume attributes) class is a DNS subdomain."""
    return dns_subdomain_causes(path, value)


def default_claim_spec(spec: Any) -> None:
    """``SetDefaults_PersistentVolumeClaimSpec``: ``volumeMode: Filesystem``."""
    if isinstance(spec, dict) and spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"


def _typed_reference_causes(ref: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not ref.get("name"):
        causes.append(Cause.required(f"{path}.name"))
    if not ref.get("kind"):
        causes.append(Cause.required(f"{path}.kind"))
    group = ref.get("apiGroup") or ""
    if not group and ref.get("kind") != "PersistentVolumeClaim":
        causes.append(Cause.invalid(path, ref.get("kind") or "",
                                    "must be 'PersistentVolumeClaim' when referencing the "
                                    "default apiGroup"))
    if group:
        causes.extend(dns_subdomain_causes(f"{path}.apiGroup", group))
    return causes


def validate_claim_spec(spec: Any, path: str) -> list[Cause]:
    """``ValidatePersistentVolumeClaimSpec`` (access modes, a positive storage request,
    class names, volume mode, selector and data sources)."""
    spec = as_dict(spec)
    causes = _access_mode_causes(spec.get("accessModes"), f"{path}.accessModes",
                                 detail="at least 1 access mode is required")
    if spec.get("selector") is not None:
        causes.extend(label_selector_causes(spec["selector"], f"{path}.selector"))
    storage_path = f"{path}.resources[storage]"
    requests = as_dict(sub(spec, "resources", "requests"))
    if "storage" not in requests:
        causes.append(Cause.required(storage_path))
    else:
        causes.extend(_positive_quantity_causes(storage_path, requests["storage"]))
    if spec.get("storageClassName"):
        causes.extend(_class_name_causes(f"{path}.storageClassName", spec["storageClassName"]))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        causes.append(Cause.not_supported(f"{path}.volumeMode", mode, VOLUME_MODES))
    source, source_ref = spec.get("dataSource"), spec.get("dataSourceRef")
    if isinstance(source, dict):
        causes.extend(_typed_reference_causes(source, f"{path}.dataSource"))
    if isinstance(source_ref, dict):
        causes.extend(_typed_reference_causes(source_ref, f"{path}.dataSourceRef"))
        if source_ref.get("namespace"):
            if source is not None:
                causes.append(Cause.invalid(path, f"{path}.dataSource", "may not be specified "
                                            "when dataSourceRef.namespace is specified"))
        elif isinstance(source, dict) and any(
                source.get(k) != source_ref.get(k) for k in ("apiGroup", "kind", "name")):
            causes.append(Cause.invalid(path, f"{path}.dataSource", "must match dataSourceRef"))
    if spec.get("volumeAttributesClassName"):
        causes.extend(_class_name_causes(f"{path}.volumeAttributesClassName",
                                         spec["volumeAttributesClassName"]))
    return causes


def _storage_class(obj: Obj) -> str:
    """``GetPersistentVolume(Claim)Class``: the beta annotation wins over the field."""
    annotations = as_dict(meta(obj).get("annotations"))
    if BETA_STORAGE_CLASS in annotations:
        return str(annotations[BETA_STORAGE_CLASS])
    return str(sub(obj, "spec", "storageClassName") or "")


def _canonical(amount: Any) -> str:
    if amount is None:
        return "0"
    try:
        return quantity.canonicalize_quantity(amount)
    except ValueError:
        return str(amount)


def _phase(obj: Obj) -> str:
    if meta(obj).get("deletionTimestamp"):
        return "Terminating"
    return str(sub(obj, "status", "phase") or "")


def _spec_diff(old: Any, new: Any) -> str:
    lines: list[str] = []
    _diff(old, new, "spec", lines)
    return "\n".join(lines)


# =====================================================================================
# PersistentVolumeClaim
# =====================================================================================


class PersistentVolumeClaimStrategy(BuiltinStrategy):
    """PersistentVolumeClaims: ``Pending`` with ``volumeMode: Filesystem`` on create; the
    spec is immutable except a bound claim's storage request (which may grow) and its
    ``volumeAttributesClassName``; ``volumeName`` may be set once (binding)."""

    field_selectors = ("name",)

    def prepare_for_create(self, obj: Obj) -> None:
        # Kubernetes stores an empty status and defaults the phase whenever it reads one
        obj["status"] = {"phase": "Pending"}

    def default(self, obj: Obj) -> None:
        default_claim_spec(ensure_dict(obj, "spec"))
        status = ensure_dict(obj, "status")
        if not status.get("phase"):
            status["phase"] = "Pending"

    def validate_spec(self, obj: Obj) -> list[Cause]:
        return validate_claim_spec(obj.get("spec"), "spec")

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
        new_clone, old_clone = copy.deepcopy(new_spec), copy.deepcopy(old_spec)
        if not old_spec.get("volumeName"):  # binding sets volumeName once
            _copy_key(new_spec, old_clone, "volumeName")
        old_annotations = as_dict(meta(old).get("annotations"))
        new_annotations = as_dict(meta(new).get("annotations"))
        old_class, new_class = old_spec.get("storageClassName"), new_spec.get("storageClassName")
        if (BETA_STORAGE_CLASS in old_annotations and old_class is None
                and new_class == old_annotations[BETA_STORAGE_CLASS]
                and new_annotations.get(BETA_STORAGE_CLASS, new_class) == new_class):
            new_clone.pop("storageClassName", None)  # annotation -> field upgrade
        else:
            before = old_annotations.get(BETA_STORAGE_CLASS)
            after = new_annotations.get(BETA_STORAGE_CLASS)
            if before != after:
                causes.append(Cause.immutable(f"metadata.annotations.{BETA_STORAGE_CLASS}",
                                              after or ""))
            if new_class is not None and old_class is None and (
                    BETA_STORAGE_CLASS not in old_annotations
                    or new_class == old_annotations[BETA_STORAGE_CLASS]):
                new_clone.pop("storageClassName", None)  # a class set on a class-less claim
        if sub(new, "status", "phase") == "Bound" and \
                isinstance(sub(new_clone, "resources", "requests"), dict):
            requests = new_clone["resources"]["requests"]
            old_request = sub(old_spec, "resources", "requests", "storage")
            if old_request is None:
                requests.pop("storage", None)
            else:
                requests["storage"] = old_request
        _copy_key(old_clone, new_clone, "volumeAttributesClassName")
        if _semantic(new_clone) != _semantic(old_clone):
            causes.append(Cause.forbidden(
                "spec", "spec is immutable after creation except resources.requests and "
                "volumeAttributesClassName for bound claims\n" + _spec_diff(old_clone, new_clone)))
        causes.extend(self._shrink_causes(new, old))
        if new_spec.get("volumeMode") != old_spec.get("volumeMode"):
            causes.append(Cause.immutable("volumeMode", new_spec.get("volumeMode")))
        old_vac = old_spec.get("volumeAttributesClassName")
        new_vac = new_spec.get("volumeAttributesClassName")
        if old_vac is not None and new_vac is None:
            causes.append(Cause.forbidden("spec.volumeAttributesClassName",
                                          "update from non-nil value to nil is forbidden"))
        elif old_vac is not None and new_vac == "":
            causes.append(Cause.forbidden("spec.volumeAttributesClassName",
                                          "update from non-nil value to an empty string is "
                                          "forbidden"))
        return causes

    @staticmethod
    def _shrink_causes(new: Obj, old: Obj) -> list[Cause]:
        """A storage request may only shrink while it stays above ``status.capacity`` (a
        retry after a failed expansion); Kubernetes never shrinks volumes."""
        try:
            new_size = quantity.parse_quantity(
                sub(new, "spec", "resources", "requests", "storage") or 0)
            old_size = quantity.parse_quantity(
                sub(old, "spec", "resources", "requests", "storage") or 0)
            status_size = quantity.parse_quantity(
                sub(old, "status", "capacity", "storage") or 0)
        except (ValueError, TypeError):
            return []
        if new_size < old_size and new_size <= status_size:
            return [Cause.forbidden("spec.resources.requests.storage",
                                    "field can not be less than status.capacity")]
        return []

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        if not as_list(sub(new, "spec", "accessModes")):
            causes.append(Cause.required("Spec.accessModes"))
        for name, amount in as_dict(sub(new, "status", "capacity")).items():
            try:
                value = quantity.parse_quantity(amount)
            except (ValueError, TypeError) as exc:
                causes.append(Cause.invalid(f"status.capacity[{name}]", amount, str(exc)))
                continue
            if value < 0:
                causes.append(Cause.invalid(f"status.capacity[{name}]", _canonical(amount),
                                            "must be a valid resource quantity"))
        return causes

    def kind_fields(self, obj: Obj) -> dict[str, str]:
        return {"name": field_str(meta(obj).get("name"))}

    def table_columns(self) -> list[TableColumn]:
        def bound(o: Obj) -> bool:
            return bool(sub(o, "spec", "volumeName"))

        return [
            TableColumn("Status", _phase, description="The phase of the claim."),
            TableColumn("Volume", lambda o: sub(o, "spec", "volumeName") or "",
                        description="The volume bound to the claim."),
            TableColumn("Capacity", lambda o: _canonical(sub(o, "status", "capacity",
                                                             "storage"))
                        if bound(o) else "", description="The storage of the bound volume."),
            TableColumn("Access Modes", lambda o: access_modes_string(
                sub(o, "status", "accessModes")) if bound(o) else "",
                        description="The access modes of the bound volume."),
            TableColumn("StorageClass", _storage_class, description="StorageClass of the pvc"),
            TableColumn("VolumeAttributesClass",
                        lambda o: _unset(sub(o, "spec", "volumeAttributesClassName")),
                        description="VolumeAttributesClass of the pvc"),
            AGE,
            TableColumn("VolumeMode", lambda o: _unset(sub(o, "spec", "volumeMode")),
                        priority=1, description="Filesystem or Block."),
        ]


def _unset(value: Any) -> str:
    return "<unset>" if value is None else str(value)


def _copy_key(source: Obj, target: Obj, key: str) -> None:
    """``target[key] = source[key]``, or remove it from ``target`` when ``source`` lacks it."""
    if key in source:
        target[key] = copy.deepcopy(source[key])
    else:
        target.pop(key, None)


# =====================================================================================
# PersistentVolume
# =====================================================================================


def _pv_source_causes(kind: str, source: Obj, path: str, spec: Obj) -> list[Cause]:
    """The checks of one volume source that users meet most (required names and paths)."""
    causes: list[Cause] = []
    if kind == "hostPath":
        host_path = source.get("path")
        if not host_path:
            causes.append(Cause.required(f"{path}.path"))
        elif ".." in str(host_path).split("/"):
            causes.append(Cause.invalid(f"{path}.path", host_path, "must not contain '..'"))
        kind_of = source.get("type")
        if kind_of is not None and kind_of not in HOST_PATH_TYPES:
            causes.append(Cause.not_supported(f"{path}.type", kind_of, HOST_PATH_TYPES))
    elif kind == "nfs":
        if not source.get("server"):
            causes.append(Cause.required(f"{path}.server"))
        nfs_path = source.get("path")
        if not nfs_path:
            causes.append(Cause.required(f"{path}.path"))
        elif not str(nfs_path).startswith("/"):
            causes.append(Cause.invalid(f"{path}.path", nfs_path, "must be an absolute path"))
    elif kind == "local":
        if not source.get("path"):
            causes.append(Cause.required(f"{path}.path"))
        if spec.get("nodeAffinity") is None:
            causes.append(Cause.required("spec.nodeAffinity", "Local volume requires node "
                                         "affinity"))
    elif kind == "csi":
        if not source.get("driver"):
            causes.append(Cause.required(f"{path}.driver"))
        if not source.get("volumeHandle"):
            causes.append(Cause.required(f"{path}.volumeHandle"))
    return causes


class PersistentVolumeStrategy(BuiltinStrategy):
    """PersistentVolumes (cluster-scoped): ``Pending`` on create, ``Retain`` and
    ``Filesystem`` by default; the volume source and ``volumeMode`` never change; a phase
    change records ``status.lastPhaseTransitionTime``."""

    field_selectors = ("name",)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": rfc3339()}

    def default(self, obj: Obj) -> None:
        spec = ensure_dict(obj, "spec")
        if not spec.get("persistentVolumeReclaimPolicy"):
            spec["persistentVolumeReclaimPolicy"] = "Retain"
        if spec.get("volumeMode") is None:
            spec["volumeMode"] = "Filesystem"
        host_path = spec.get("hostPath")
        if isinstance(host_path, dict) and host_path.get("type") is None:
            host_path["type"] = ""
        status = ensure_dict(obj, "status")
        if not status.get("phase"):
            status["phase"] = "Pending"

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes = _access_mode_causes(spec.get("accessModes"), "spec.accessModes", detail="")
        capacity = spec.get("capacity")
        if not capacity:
            causes.append(Cause.required("spec.capacity"))
        capacity = as_dict(capacity)
        if "storage" not in capacity or len(capacity) > 1:
            causes.append(Cause.not_supported("spec.capacity", capacity, ("storage",)))
        for name, amount in capacity.items():
            causes.extend(_positive_quantity_causes(f"spec.capacity[{name}]", amount))
        policy = spec.get("persistentVolumeReclaimPolicy")
        if policy and policy not in RECLAIM_POLICIES:
            causes.append(Cause.not_supported("spec.persistentVolumeReclaimPolicy", policy,
                                              RECLAIM_POLICIES))
        sources = [key for key in PV_SOURCES if spec.get(key) is not None]
        if not sources:
            causes.append(Cause.required("spec", "must specify a volume type"))
        for extra in sources[1:]:
            causes.append(Cause.forbidden(f"spec.{extra}",
                                          "may not specify more than 1 volume type"))
        if sources:
            causes.extend(_pv_source_causes(sources[0], as_dict(spec[sources[0]]),
                                            f"spec.{sources[0]}", spec))
        host_path = as_dict(spec.get("hostPath"))
        if host_path.get("path") and posixpath.normpath(str(host_path["path"])) == "/" \
                and policy == "Recycle":
            causes.append(Cause.forbidden("spec.persistentVolumeReclaimPolicy",
                                          "may not be 'recycle' for a hostPath mount of '/'"))
        if spec.get("storageClassName"):
            causes.extend(_class_name_causes("spec.storageClassName", spec["storageClassName"]))
        mode = spec.get("volumeMode")
        if mode is not None and mode not in VOLUME_MODES:
            causes.append(Cause.not_supported("spec.volumeMode", mode, VOLUME_MODES))
        vac = spec.get("volumeAttributesClassName")
        if vac is not None:
            if vac == "":
                causes.append(Cause.required("spec.volumeAttributesClassName",
                                             "an empty string is disallowed"))
            else:
                causes.extend(_class_name_causes("spec.volumeAttributesClassName", vac))
            if spec.get("csi") is None:
                causes.append(Cause.required("spec.csi", "has to be specified when using "
                                             "volumeAttributesClassName"))
        return causes

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
        new_source = {k: new_spec[k] for k in PV_SOURCES if new_spec.get(k) is not None}
        old_source = {k: old_spec[k] for k in PV_SOURCES if old_spec.get(k) is not None}
        csi_new, csi_old = as_dict(new_source.get("csi")), as_dict(old_source.get("csi"))
        if csi_old and "controllerExpandSecretRef" not in csi_old \
                and "controllerExpandSecretRef" in csi_new:  # may be added later
            new_source["csi"] = {k: v for k, v in csi_new.items()
                                 if k != "controllerExpandSecretRef"}
        causes: list[Cause] = []
        if _semantic(new_source) != _semantic(old_source):
            lines: list[str] = []
            _diff(old_source, new_source, "spec", lines)
            causes.append(Cause.forbidden("spec.persistentvolumesource",
                                          "spec.persistentvolumesource is immutable after "
                                          "creation\n" + "\n".join(lines)))
        if new_spec.get("volumeMode") != old_spec.get("volumeMode"):
            causes.append(Cause.immutable("volumeMode", new_spec.get("volumeMode")))
        if old_spec.get("nodeAffinity") is not None \
                and new_spec.get("nodeAffinity") != old_spec.get("nodeAffinity"):
            causes.append(Cause.immutable("nodeAffinity", new_spec.get("nodeAffinity")))
        if old_spec.get("volumeAttributesClassName") is not None \
                and new_spec.get("volumeAttributesClassName") is None:
            causes.append(Cause.forbidden("spec.volumeAttributesClassName",
                                          "update from non-nil value to nil is forbidden"))
        return causes

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_status_update(new, old)
        status, before = as_dict(new.get("status")), as_dict(old.get("status"))
        if status.get("phase") != before.get("phase") and \
                status.get("lastPhaseTransitionTime") in (None,
                                                          before.get("lastPhaseTransitionTime")):
            ensure_dict(new, "status")["lastPhaseTransitionTime"] = rfc3339()

    def kind_fields(self, obj: Obj) -> dict[str, str]:
        return {"name": field_str(meta(obj).get("name"))}

    def table_columns(self) -> list[TableColumn]:
        def claim(o: Obj) -> str:
            ref = sub(o, "spec", "claimRef")
            if not isinstance(ref, dict):
                return ""
            return f"{ref.get('namespace') or ''}/{ref.get('name') or ''}"

        return [
            TableColumn("Capacity", lambda o: _canonical(sub(o, "spec", "capacity", "storage")),
                        description="The storage the volume offers."),
            TableColumn("Access Modes", lambda o: access_modes_string(
                sub(o, "spec", "accessModes")), description="How the volume may be mounted."),
            TableColumn("Reclaim Policy",
                        lambda o: str(sub(o, "spec", "persistentVolumeReclaimPolicy") or ""),
                        description="What happens to the volume when its claim is deleted."),
            TableColumn("Status", _phase, description="The phase of the volume."),
            TableColumn("Claim", claim, description="The claim bound to the volume."),
            TableColumn("StorageClass", _storage_class, description="StorageClass of the pv"),
            TableColumn("VolumeAttributesClass",
                        lambda o: _unset(sub(o, "spec", "volumeAttributesClassName")),
                        description="VolumeAttributesClass of the pv"),
            TableColumn("Reason", lambda o: str(sub(o, "status", "reason") or ""),
                        description="Why the volume is in its phase."),
            AGE,
            TableColumn("VolumeMode", lambda o: _unset(sub(o, "spec", "volumeMode")),
                        priority=1, description="Filesystem or Block."),
        ]

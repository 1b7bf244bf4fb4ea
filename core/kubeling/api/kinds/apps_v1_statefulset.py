"""Strategy of apps/v1 StatefulSet.

Served with ``status`` and ``scale``; the StatefulSet controller of
``kubeling-controllers-default`` runs its pods and creates its claims.  Defaults,
validation messages and field paths follow the Kubernetes v1.32 API server: as there, the
pod template is checked for its labels, annotations, ``restartPolicy`` and
``activeDeadlineSeconds`` only, and after creation only ``replicas``, ``ordinals``,
``template``, ``updateStrategy``, ``persistentVolumeClaimRetentionPolicy`` and
``minReadySeconds`` may change.
"""

from __future__ import annotations

import copy

from kubeling.api.errors import Cause
from kubeling.api.kinds._common import (
    AGE,
    BuiltinStrategy,
    Obj,
    as_dict,
    as_list,
    ensure_dict,
    is_int,
    label_selector_causes,
    non_negative,
    selector_is_empty,
    selector_matches,
    selector_parses,
    sub,
)
from kubeling.api.kinds._podspec import _semantic, default_pod_template
from kubeling.api.kinds.apps_v1 import template_containers, template_images
from kubeling.api.kinds.core_v1_storage import default_claim_spec
from kubeling.api.strategy import TableColumn
from kubeling.api.validation import is_dns1123_label, validate_annotations, validate_labels

__all__ = ["UPDATABLE_FIELDS", "StatefulSetStrategy"]

UPDATABLE_FIELDS = ("replicas", "ordinals", "template", "updateStrategy",
                    "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
"""The spec fields an update may change."""
_UPDATE_FORBIDDEN = ("updates to statefulset spec for fields other than 'replicas', "
                     "'ordinals', 'template', 'updateStrategy', "
                     "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                     "forbidden")
_RETENTION = ("Retain", "Delete")


def _drop_max_unavailable(new: Obj, old: Obj | None) -> None:
    """``rollingUpdate.maxUnavailable`` is behind an alpha gate (off) in v1.32: dropped
    unless the stored object already has it."""
    if old is not None and sub(old, "spec", "updateStrategy", "rollingUpdate",
                               "maxUnavailable") is not None:
        return
    rolling = sub(new, "spec", "updateStrategy", "rollingUpdate")
    if isinstance(rolling, dict):
        rolling.pop("maxUnavailable", None)


class StatefulSetStrategy(BuiltinStrategy):
    """StatefulSets: ``OrderedReady`` pods with ``RollingUpdate`` (partition 0) by default,
    claims retained on delete and scale-down, a required non-empty selector that selects
    the template's labels."""

    name_check = staticmethod(is_dns1123_label)
    tracks_generation = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"replicas": 0, "availableReplicas": 0}
        _drop_max_unavailable(obj, None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        _drop_max_unavailable(new, old)

    def default(self, obj: Obj) -> None:
        spec = ensure_dict(obj, "spec")
        if not spec.get("podManagementPolicy"):
            spec["podManagementPolicy"] = "OrderedReady"
        strategy = ensure_dict(spec, "updateStrategy")
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            if not isinstance(strategy.get("rollingUpdate"), dict):
                strategy["rollingUpdate"] = {}
        rolling = strategy.get("rollingUpdate")
        if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict) \
                and rolling.get("partition") is None:
            rolling["partition"] = 0
        retention = ensure_dict(spec, "persistentVolumeClaimRetentionPolicy")
        for key in ("whenDeleted", "whenScaled"):
            if not retention.get(key):
                retention[key] = "Retain"
        if spec.get("replicas") is None:
            spec["replicas"] = 1
        if spec.get("revisionHistoryLimit") is None:
            spec["revisionHistoryLimit"] = 10
        default_pod_template(spec.get("template"))
        for claim in as_list(spec.get("volumeClaimTemplates")):
            if isinstance(claim, dict):
                default_claim_spec(ensure_dict(claim, "spec"))
                status = ensure_dict(claim, "status")
                if not status.get("phase"):
                    status["phase"] = "Pending"

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes: list[Cause] = []
        policy = spec.get("podManagementPolicy")
        if not policy:
            causes.append(Cause.required("spec.podManagementPolicy"))
        elif policy not in ("OrderedReady", "Parallel"):
            causes.append(Cause.invalid("spec.podManagementPolicy", policy,
                                        "must be 'OrderedReady' or 'Parallel'"))
        causes.extend(_update_strategy_causes(as_dict(spec.get("updateStrategy"))))
        retention = spec.get("persistentVolumeClaimRetentionPolicy")
        if isinstance(retention, dict):
            for key in ("whenDeleted", "whenScaled"):
                if retention.get(key) not in _RETENTION:
                    causes.append(Cause.not_supported(
                        f"spec.persistentVolumeClaimRetentionPolicy.{key}", retention.get(key),
                        _RETENTION))
        causes.extend(non_negative("spec.replicas", spec.get("replicas")))
        causes.extend(non_negative("spec.minReadySeconds", spec.get("minReadySeconds")))
        ordinals = spec.get("ordinals")
        if isinstance(ordinals, dict):
            causes.extend(non_negative("spec.ordinals.start", ordinals.get("start")))
        selector = spec.get("selector")
        if selector is None:
            causes.append(Cause.required("spec.selector"))
        else:
            causes.extend(label_selector_causes(selector, "spec.selector"))
            if selector_is_empty(selector):
                causes.append(Cause.invalid("spec.selector", selector,
                                            "empty selector is invalid for statefulset"))
        template = as_dict(spec.get("template"))
        if not selector_parses(selector):
            causes.append(Cause.invalid("spec.selector", selector, ""))
        else:
            labels = sub(template, "metadata", "labels")
            # an absent selector selects nothing, so it matches no labels either
            if (selector is None or not selector_is_empty(selector)) \
                    and not selector_matches(selector, labels):
                causes.append(Cause.invalid("spec.template.metadata.labels", labels,
                                            "`selector` does not match template `labels`"))
            template_meta = as_dict(template.get("metadata"))
            causes.extend(validate_labels(template_meta.get("labels"), "spec.template.labels"))
            causes.extend(validate_annotations(template_meta.get("annotations"),
                                               "spec.template.annotations"))
        pod_spec = as_dict(template.get("spec"))
        restart = pod_spec.get("restartPolicy")
        if restart != "Always":
            causes.append(Cause.not_supported("spec.template.spec.restartPolicy", restart or "",
                                              ("Always",)))
        if pod_spec.get("activeDeadlineSeconds") is not None:
            causes.append(Cause.forbidden("spec.template.spec.activeDeadlineSeconds",
                                          "activeDeadlineSeconds in StatefulSet is not "
                                          "Supported"))
        return causes

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        new_spec = copy.deepcopy(as_dict(new.get("spec")))
        old_spec = as_dict(old.get("spec"))
        for key in UPDATABLE_FIELDS:
            if key in old_spec:
                new_spec[key] = old_spec[key]
            else:
                new_spec.pop(key, None)
        if _semantic(new_spec) != _semantic(old_spec):
            return [Cause.forbidden("spec", _UPDATE_FORBIDDEN)]
        return []

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = as_dict(new.get("status"))
        causes: list[Cause] = []
        for key in ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
                    "availableReplicas", "observedGeneration", "collisionCount"):
            causes.extend(non_negative(f"status.{key}", status.get(key)))
        replicas = status.get("replicas") or 0
        for key in ("readyReplicas", "currentReplicas", "updatedReplicas",
                    "availableReplicas"):
            value = status.get(key) or 0
            if is_int(value) and is_int(replicas) and value > replicas:
                causes.append(Cause.invalid(f"status.{key}", value,
                                            "cannot be greater than status.replicas"))
        available, ready = status.get("availableReplicas") or 0, status.get("readyReplicas") or 0
        if is_int(available) and is_int(ready) and available > ready:
            causes.append(Cause.invalid("status.availableReplicas", available,
                                        "cannot be greater than status.readyReplicas"))
        before = sub(old, "status", "collisionCount")
        after = status.get("collisionCount")
        if is_int(before) and (after is None or (is_int(after) and after < before)):
            causes.append(Cause.invalid("status.collisionCount", after or 0,
                                        "cannot be decremented"))
        return causes

    def table_columns(self) -> list[TableColumn]:
        return [
            TableColumn("Ready", lambda o: f"{sub(o, 'status', 'readyReplicas') or 0}/"
                                           f"{sub(o, 'spec', 'replicas') or 0}",
                        description="Number of the pod with ready state"),
            AGE,
            TableColumn("Containers", template_containers, priority=1,
                        description="Names of each container in the template."),
            TableColumn("Images", template_images, priority=1,
                        description="Images referenced by each container in the template."),
        ]


def _update_strategy_causes(strategy: Obj) -> list[Cause]:
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    path = "spec.updateStrategy"
    if not kind:
        return [Cause.required(path)]
    if kind == "OnDelete":
        if rolling is not None:
            return [Cause.invalid(f"{path}.rollingUpdate", rolling,
                                  "only allowed for updateStrategy 'RollingUpdate'")]
        return []
    if kind != "RollingUpdate":
        return [Cause.invalid(path, strategy, "must be 'RollingUpdate' or 'OnDelete'")]
    if isinstance(rolling, dict):
        return non_negative(f"{path}.rollingUpdate.partition", rolling.get("partition"))
    return []

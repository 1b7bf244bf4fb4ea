"""Strategy of core/v1 ReplicationController, the predecessor of ReplicaSet.

Served with ``status`` and ``scale``; the ``replicationcontroller`` controller of
``kubeling-controllers-default`` runs its pods with the ReplicaSet logic.  Unlike a
ReplicaSet, its selector is a plain label map, defaulted from the template's labels, and
it may change.  Defaults, messages and field paths follow Kubernetes v1.32.
"""

from __future__ import annotations

from typing import Any

from kubeling.api.errors import Cause
from kubeling.api.kinds._common import (
    AGE,
    BuiltinStrategy,
    Obj,
    as_dict,
    ensure_dict,
    field_str,
    format_labels,
    is_int,
    non_negative,
    sub,
)
from kubeling.api.kinds._podspec import default_pod_template, validate_pod_template
from kubeling.api.kinds.apps_v1 import template_containers, template_images
from kubeling.api.strategy import TableColumn
from kubeling.api.validation import validate_labels

__all__ = ["ReplicationControllerStrategy", "map_selector_string"]


def map_selector_string(selector: Any) -> str:
    """A ``map[string]string`` selector as a label query (``a=b,c=d``, sorted by key)."""
    if not isinstance(selector, dict):
        return ""
    return ",".join(f"{key}={selector[key]}" for key in sorted(selector))


class ReplicationControllerStrategy(BuiltinStrategy):
    """ReplicationControllers: ``replicas`` (default 1) pods matching ``selector`` from a
    pod template; ``selector`` and ``metadata.labels`` default to the template's labels."""

    tracks_generation = True
    field_selectors = ("status.replicas",)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"replicas": 0}

    def default(self, obj: Obj) -> None:
        spec = ensure_dict(obj, "spec")
        template = spec.get("template")
        labels = sub(template, "metadata", "labels")
        if isinstance(labels, dict):
            if not spec.get("selector"):
                spec["selector"] = dict(labels)
            m = ensure_dict(obj, "metadata")
            if not m.get("labels"):
                m["labels"] = dict(labels)
        if spec.get("replicas") is None:
            spec["replicas"] = 1
        default_pod_template(template)

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes = non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
        selector = spec.get("selector")
        if not selector:
            causes.append(Cause.required("spec.selector"))
        else:
            causes.extend(validate_labels(selector, "spec.selector"))
        causes.extend(non_negative("spec.replicas", spec.get("replicas")))
        template = spec.get("template")
        if not isinstance(template, dict):
            causes.append(Cause.required("spec.template"))
            return causes
        labels = as_dict(sub(template, "metadata", "labels"))
        if isinstance(selector, dict) and selector and \
                any(labels.get(key) != value for key, value in selector.items()):
            causes.append(Cause.invalid("spec.template.metadata.labels",
                                        sub(template, "metadata", "labels"),
                                        "`selector` does not match template `labels`"))
        causes.extend(validate_pod_template(template, "spec.template"))
        pod_spec = as_dict(template.get("spec"))
        restart = pod_spec.get("restartPolicy")
        if restart != "Always":
            causes.append(Cause.not_supported("spec.template.spec.restartPolicy", restart,
                                              ("Always",)))
        if pod_spec.get("activeDeadlineSeconds") is not None:
            causes.append(Cause.forbidden("spec.template.spec.activeDeadlineSeconds",
                                          "activeDeadlineSeconds in ReplicationController is "
                                          "not Supported"))
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = as_dict(new.get("status"))
        causes: list[Cause] = []
        counters = ("fullyLabeledReplicas", "readyReplicas", "availableReplicas")
        for key in ("replicas", *counters, "observedGeneration"):
            causes.extend(non_negative(f"status.{key}", status.get(key)))
        replicas = status.get("replicas") or 0
        for key in counters:
            value = status.get(key) or 0
            if is_int(value) and is_int(replicas) and value > replicas:
                causes.append(Cause.invalid(f"status.{key}", value,
                                            "cannot be greater than status.replicas"))
        available, ready = status.get("availableReplicas") or 0, status.get("readyReplicas") or 0
        if is_int(available) and is_int(ready) and available > ready:
            causes.append(Cause.invalid("status.availableReplicas", available,
                                        "cannot be greater than readyReplicas"))
        return causes

    def kind_fields(self, obj: Obj) -> dict[str, str]:
        return {"status.replicas": field_str(sub(obj, "status", "replicas") or 0)}

    def table_columns(self) -> list[TableColumn]:
        return [
            TableColumn("Desired", lambda o: sub(o, "spec", "replicas") or 0, type="integer",
                        description="Number of desired pods."),
            TableColumn("Current", lambda o: sub(o, "status", "replicas") or 0,
                        type="integer", description="Number of pods that exist."),
            TableColumn("Ready", lambda o: sub(o, "status", "readyReplicas") or 0,
                        type="integer", description="Number of ready pods."),
            AGE,
            TableColumn("Containers", template_containers, priority=1,
                        description="Names of each container in the template."),
            TableColumn("Images", template_images, priority=1,
                        description="Images referenced by each container in the template."),
            TableColumn("Selector", lambda o: format_labels(sub(o, "spec", "selector")),
                        priority=1, description="The labels of the pods it manages."),
        ]

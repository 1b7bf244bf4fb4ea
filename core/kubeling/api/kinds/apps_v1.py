"""Strategies of the apps/v1 kinds: ReplicaSet, Deployment, DaemonSet, ControllerRevision.

The workloads carry a pod template (defaulted and validated like a pod spec) and a label
selector that must select the template's labels and may not change; ReplicaSets and
Deployments have a ``replicas`` count served through the ``scale`` subresource.
"""

from __future__ import annotations

import re
from typing import Any

from kubeling.api.errors import Cause
from kubeling.api.kinds._common import (
    AGE,
    BuiltinStrategy,
    Obj,
    as_dict,
    as_list,
    ensure_dict,
    field_str,
    is_int,
    label_selector_causes,
    meta,
    non_negative,
    selector_is_empty,
    selector_matches,
    selector_parses,
    selector_string,
    sub,
)
from kubeling.api.kinds._podspec import default_pod_template, validate_pod_template
from kubeling.api.strategy import TableColumn

__all__ = ["ControllerRevisionStrategy", "DaemonSetStrategy", "DeploymentStrategy",
           "ReplicaSetStrategy", "template_containers", "template_images"]

PERCENT_ERROR = ("a valid percent string must be a numeric string followed by an ending '%' "
                 "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
_PERCENT = re.compile(r"^[0-9]+%$")


def template_containers(obj: Obj) -> str:
    """Names of the template's containers, comma-separated (the CONTAINERS cell)."""
    return ",".join(str(as_dict(c).get("name") or "")
                    for c in as_list(sub(obj, "spec", "template", "spec", "containers")))


def template_images(obj: Obj) -> str:
    """Images of the template's containers, comma-separated (the IMAGES cell)."""
    return ",".join(str(as_dict(c).get("image") or "")
                    for c in as_list(sub(obj, "spec", "template", "spec", "containers")))


def _wide_columns() -> list[TableColumn]:
    return [
        TableColumn("Containers", template_containers, priority=1,
                    description="Names of each container in the template."),
        TableColumn("Images", template_images, priority=1,
                    description="Images referenced by each container in the template."),
        TableColumn("Selector", lambda o: selector_string(sub(o, "spec", "selector")),
                    priority=1, description="The label query over the managed pods."),
    ]


class _WorkloadStrategy(BuiltinStrategy):
    """What ReplicaSets and Deployments share: replicas, selector and pod template."""

    tracks_generation = True
    initial_status: Obj = {}

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = dict(self.initial_status)

    def default(self, obj: Obj) -> None:
        spec = ensure_dict(obj, "spec")
        if spec.get("replicas") is None:
            spec["replicas"] = 1
        default_pod_template(spec.get("template"))

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes = non_negative("spec.replicas", spec.get("replicas"))
        selector = spec.get("selector")
        if selector is None:
            causes.append(Cause.required("spec.selector"))
        else:
            causes.extend(label_selector_causes(selector, "spec.selector"))
            if selector_is_empty(selector):
                causes.append(Cause.invalid("spec.selector", selector,
                                            "empty selector is invalid for deployment"))
        template = spec.get("template")
        if not selector_parses(selector):
            causes.append(Cause.invalid("spec.selector", selector, "invalid label selector"))
        elif not isinstance(template, dict):
            causes.append(Cause.required("spec.template"))
        else:
            labels = sub(template, "metadata", "labels")
            if (selector is None or not selector_is_empty(selector)) \
                    and not selector_matches(selector, labels):
                causes.append(Cause.invalid("spec.template.metadata.labels", labels,
                                            "`selector` does not match template `labels`"))
            causes.extend(validate_pod_template(template, "spec.template"))
            pod_spec = as_dict(template.get("spec"))
            restart = pod_spec.get("restartPolicy")
            if restart != "Always":
                causes.append(Cause.not_supported("spec.template.spec.restartPolicy", restart,
                                                  ("Always",)))
            if pod_spec.get("activeDeadlineSeconds") is not None:
                causes.append(Cause.forbidden("spec.template.spec.activeDeadlineSeconds",
                                              "activeDeadlineSeconds in ReplicaSet is not "
                                              "Supported"))
        causes.extend(non_negative("spec.minReadySeconds", spec.get("minReadySeconds")))
        return causes

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        selector = sub(new, "spec", "selector")
        if selector != sub(old, "spec", "selector"):
            return [Cause.immutable("spec.selector", selector)]
        return []

    def _status_causes(self, status: Obj, counters: tuple[str, ...]) -> list[Cause]:
        causes: list[Cause] = []
        for key in ("observedGeneration", "replicas", *counters, "collisionCount"):
            causes.extend(non_negative(f"status.{key}", status.get(key)))
        replicas = status.get("replicas") or 0
        for key in counters:
            value = status.get(key) or 0
            if is_int(value) and is_int(replicas) and key != "unavailableReplicas" \
                    and value > replicas:
                causes.append(Cause.invalid(f"status.{key}", value,
                                            "cannot be greater than status.replicas"))
        available, ready = status.get("availableReplicas") or 0, status.get("readyReplicas") or 0
        if is_int(available) and is_int(ready) and available > ready:
            causes.append(Cause.invalid("status.availableReplicas", available,
                                        "cannot be greater than readyReplicas"))
        return causes


class ReplicaSetStrategy(_WorkloadStrategy):
    """ReplicaSets: keep ``replicas`` pods matching the selector running."""

    initial_status = {"replicas": 0}
    field_selectors = ("status.replicas",)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self._status_causes(as_dict(new.get("status")),
                                   ("fullyLabeledReplicas", "readyReplicas",
                                    "availableReplicas"))

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
            *_wide_columns(),
        ]


class DeploymentStrategy(_WorkloadStrategy):
    """Deployments: roll a pod template out through ReplicaSets (``RollingUpdate`` with
    25% surge and unavailability by default, or ``Recreate``)."""

    def default(self, obj: Obj) -> None:
        super().default(obj)
        spec = ensure_dict(obj, "spec")
        strategy = ensure_dict(spec, "strategy")
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = ensure_dict(strategy, "rollingUpdate")
            for key in ("maxUnavailable", "maxSurge"):
                if rolling.get(key) is None:
                    rolling[key] = "25%"
        if spec.get("revisionHistoryLimit") is None:
            spec["revisionHistoryLimit"] = 10
        if spec.get("progressDeadlineSeconds") is None:
            spec["progressDeadlineSeconds"] = 600

    def validate_spec(self, obj: Obj) -> list[Cause]:
        causes = super().validate_spec(obj)
        spec = as_dict(obj.get("spec"))
        causes.extend(_strategy_causes(as_dict(spec.get("strategy")), "spec.strategy"))
        causes.extend(non_negative("spec.revisionHistoryLimit",
                                   spec.get("revisionHistoryLimit")))
        deadline = spec.get("progressDeadlineSeconds")
        if deadline is not None:
            causes.extend(non_negative("spec.progressDeadlineSeconds", deadline))
            min_ready = spec.get("minReadySeconds") or 0
            if is_int(deadline) and is_int(min_ready) and deadline <= min_ready:
                causes.append(Cause.invalid("spec.progressDeadlineSeconds", deadline,
                                            "must be greater than minReadySeconds"))
        return causes

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        # annotations are copied onto the ReplicaSets, so changing them is a new generation
        if meta(new).get("annotations") != meta(old).get("annotations"):
            new_meta = ensure_dict(new, "metadata")
            new_meta["generation"] = int(meta(old).get("generation") or 1) + 1

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        # as in Kubernetes, a status update may change the annotations (the deployment
        # controller records the current revision there without a new generation)
        annotations = meta(new).get("annotations")
        super().prepare_for_status_update(new, old)
        new_meta = ensure_dict(new, "metadata")
        if annotations is None:
            new_meta.pop("annotations", None)
        else:
            new_meta["annotations"] = annotations

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self._status_causes(as_dict(new.get("status")),
                                   ("updatedReplicas", "readyReplicas", "availableReplicas",
                                    "unavailableReplicas"))

    def table_columns(self) -> list[TableColumn]:
        return [
            TableColumn("Ready", lambda o: f"{sub(o, 'status', 'readyReplicas') or 0}/"
                                           f"{sub(o, 'spec', 'replicas') or 0}",
                        description="Ready pods out of the desired ones."),
            TableColumn("Up-to-date", lambda o: sub(o, "status", "updatedReplicas") or 0,
                        type="integer", description="Pods running the current template."),
            TableColumn("Available", lambda o: sub(o, "status", "availableReplicas") or 0,
                        type="integer", description="Pods available to users."),
            AGE,
            *_wide_columns(),
        ]


def _int_or_percent(value: Any) -> tuple[int | None, bool]:
    """(the number, whether it is a percentage); None for a malformed value."""
    if is_int(value):
        return value, False
    if isinstance(value, str) and _PERCENT.match(value):
        return int(value[:-1]), True
    return None, isinstance(value, str)


def _strategy_causes(strategy: Obj, path: str) -> list[Cause]:
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [Cause.forbidden(f"{path}.rollingUpdate",
                                    "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if kind != "RollingUpdate":
        return [Cause.not_supported(path, strategy, ("Recreate", "RollingUpdate"))]
    if not isinstance(rolling, dict):
        return [Cause.required(f"{path}.rollingUpdate",
                               "this should be defaulted and never be nil")]
    causes: list[Cause] = []
    numbers = {}
    for key in ("maxUnavailable", "maxSurge"):
        field = f"{path}.rollingUpdate.{key}"
        value = rolling.get(key)
        number, percent = _int_or_percent(value)
        numbers[key] = number
        if number is None:
            causes.append(Cause.invalid(field, value, PERCENT_ERROR if percent else
                                        "must be an integer or percentage (e.g '5%')"))
        elif number < 0:
            causes.append(Cause.invalid(field, value, "must be greater than or equal to 0"))
    if numbers["maxUnavailable"] == 0 and numbers["maxSurge"] == 0:
        causes.append(Cause.invalid(f"{path}.rollingUpdate.maxUnavailable",
                                    rolling.get("maxUnavailable"),
                                    "may not be 0 when `maxSurge` is 0"))
    unavailable, percent = _int_or_percent(rolling.get("maxUnavailable"))
    if percent and unavailable is not None and unavailable > 100:
        causes.append(Cause.invalid(f"{path}.rollingUpdate.maxUnavailable",
                                    rolling.get("maxUnavailable"), "must not be greater than 100%"))
    return causes


# =====================================================================================
# DaemonSet and ControllerRevision
# =====================================================================================


def _selector_template_causes(spec: Obj, what: str) -> list[Cause]:
    """A required, non-empty selector that selects the template's labels; template
    checks; ``restartPolicy: Always`` and no ``activeDeadlineSeconds``."""
    causes: list[Cause] = []
    selector = spec.get("selector")
    if selector is None:
        causes.append(Cause.required("spec.selector"))
    else:
        causes.extend(label_selector_causes(selector, "spec.selector"))
        if selector_is_empty(selector):
            causes.append(Cause.invalid("spec.selector", selector,
                                        f"empty selector is invalid for {what}"))
    template = spec.get("template")
    if not isinstance(template, dict):
        causes.append(Cause.required("spec.template"))
        return causes
    labels = sub(template, "metadata", "labels")
    if (selector is None or not selector_is_empty(selector)) \
            and not selector_matches(selector, labels):
        causes.append(Cause.invalid("spec.template.metadata.labels", labels,
                                    "`selector` does not match template `labels`"))
    causes.extend(validate_pod_template(template, "spec.template"))
    pod_spec = as_dict(template.get("spec"))
    restart = pod_spec.get("restartPolicy")
    if restart != "Always":
        causes.append(Cause.not_supported("spec.template.spec.restartPolicy", restart,
                                          ("Always",)))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        causes.append(Cause.forbidden("spec.template.spec.activeDeadlineSeconds",
                                      f"activeDeadlineSeconds in {what} is not Supported"))
    return causes


class DaemonSetStrategy(BuiltinStrategy):
    """DaemonSets: one pod per eligible node, updated ``RollingUpdate`` (one unavailable
    node at a time by default) or ``OnDelete``."""

    tracks_generation = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                         "desiredNumberScheduled": 0, "numberReady": 0}

    def default(self, obj: Obj) -> None:
        spec = ensure_dict(obj, "spec")
        strategy = ensure_dict(spec, "updateStrategy")
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = ensure_dict(strategy, "rollingUpdate")
            if rolling.get("maxUnavailable") is None:
                rolling["maxUnavailable"] = 1
            if rolling.get("maxSurge") is None:
                rolling["maxSurge"] = 0
        if spec.get("revisionHistoryLimit") is None:
            spec["revisionHistoryLimit"] = 10
        default_pod_template(spec.get("template"))

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes = _selector_template_causes(spec, "daemonset")
        causes.extend(non_negative("spec.minReadySeconds", spec.get("minReadySeconds")))
        causes.extend(non_negative("spec.revisionHistoryLimit",
                                   spec.get("revisionHistoryLimit")))
        strategy = as_dict(spec.get("updateStrategy"))
        kind = strategy.get("type")
        if kind == "OnDelete":
            return causes
        if kind != "RollingUpdate":
            causes.append(Cause.not_supported("spec.updateStrategy", strategy,
                                              ("OnDelete", "RollingUpdate")))
            return causes
        rolling = as_dict(strategy.get("rollingUpdate"))
        numbers = {}
        for key in ("maxUnavailable", "maxSurge"):
            field = f"spec.updateStrategy.rollingUpdate.{key}"
            value = rolling.get(key)
            number, percent = _int_or_percent(value)
            numbers[key] = number
            if number is None:
                causes.append(Cause.invalid(field, value, PERCENT_ERROR if percent else
                                            "must be an integer or percentage (e.g '5%')"))
            elif number < 0:
                causes.append(Cause.invalid(field, value, "must be greater than or equal to 0"))
            elif percent and number > 100:
                causes.append(Cause.invalid(field, value, "must not be greater than 100%"))
        if numbers["maxUnavailable"] == 0 and numbers["maxSurge"] == 0:
            causes.append(Cause.invalid("spec.updateStrategy.rollingUpdate.maxUnavailable",
                                        rolling.get("maxUnavailable"),
                                        "may not be 0 when `maxSurge` is 0"))
        return causes

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        selector = sub(new, "spec", "selector")
        if selector != sub(old, "spec", "selector"):
            return [Cause.immutable("spec.selector", selector)]
        return []

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = as_dict(new.get("status"))
        causes: list[Cause] = []
        for key in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                    "numberReady", "observedGeneration", "updatedNumberScheduled",
                    "numberAvailable", "numberUnavailable", "collisionCount"):
            causes.extend(non_negative(f"status.{key}", status.get(key)))
        return causes

    def table_columns(self) -> list[TableColumn]:
        def count(key: str) -> TableColumn:
            label = {"desiredNumberScheduled": "Desired",
                     "currentNumberScheduled": "Current", "numberReady": "Ready",
                     "updatedNumberScheduled": "Up-to-date",
                     "numberAvailable": "Available"}[key]
            return TableColumn(label, lambda o: sub(o, "status", key) or 0, type="integer",
                               description=f"The {label.lower()} number of pods.")

        def node_selector(o: Obj) -> str:
            selector = as_dict(sub(o, "spec", "template", "spec", "nodeSelector"))
            return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"

        return [
            count("desiredNumberScheduled"), count("currentNumberScheduled"),
            count("numberReady"), count("updatedNumberScheduled"), count("numberAvailable"),
            TableColumn("Node Selector", node_selector,
                        description="The node selector of the pod template."),
            AGE,
            *_wide_columns(),
        ]


class ControllerRevisionStrategy(BuiltinStrategy):
    """ControllerRevisions: an immutable snapshot (``data``) of a controller's template at
    a ``revision`` (DaemonSet and StatefulSet history)."""

    has_status = False

    def validate_spec(self, obj: Obj) -> list[Cause]:
        revision = obj.get("revision")
        if revision is None:
            return [Cause.required("revision")]
        return non_negative("revision", revision)

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        if new.get("data") != old.get("data"):
            return [Cause("data", "field is immutable", "FieldValueInvalid")]
        return []

    def table_columns(self) -> list[TableColumn]:
        def controller(o: Obj) -> str:
            for ref in as_list(meta(o).get("ownerReferences")):
                if as_dict(ref).get("controller"):
                    kind = str(ref.get("kind") or "").lower()
                    group = str(ref.get("apiVersion") or "").rpartition("/")[0]
                    return f"{kind}.{group}/{ref.get('name')}" if group else \
                        f"{kind}/{ref.get('name')}"
            return "<none>"

        return [
            TableColumn("Controller", controller,
                        description="The controller that owns this revision."),
            TableColumn("Revision", lambda o: o.get("revision") or 0, type="integer",
                        description="The revision number."),
            AGE,
        ]

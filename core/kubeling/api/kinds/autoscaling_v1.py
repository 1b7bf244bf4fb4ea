"""Strategy of autoscaling/v1 HorizontalPodAutoscaler (what ``kubectl autoscale`` makes).

Defaults as a Kubernetes v1.32 API server shows a v1 object back: ``minReplicas`` 1 and
``targetCPUUtilizationPercentage`` 80.  Validation messages and field paths follow
Kubernetes; ``kubectl get hpa`` columns are its own (REFERENCE, TARGETS as
``cpu: 12%/80%``, MINPODS, MAXPODS, REPLICAS).  The ``horizontalpodautoscaler``
controller of ``kubeling-controllers-default`` acts on them.
"""

from __future__ import annotations

from typing import Any

from kubeling.api.errors import Cause
from kubeling.api.kinds._common import AGE, BuiltinStrategy, Obj, as_dict, ensure_dict, is_int, sub
from kubeling.api.strategy import TableColumn
from kubeling.api.validation import is_dns1123_subdomain

__all__ = ["DEFAULT_CPU_TARGET", "HorizontalPodAutoscalerStrategy"]

DEFAULT_CPU_TARGET = 80
"""Percent of the pods' CPU requests, when none is given."""


def _targets(obj: Obj) -> str:
    target = sub(obj, "spec", "targetCPUUtilizationPercentage")
    current = sub(obj, "status", "currentCPUUtilizationPercentage")
    shown = f"{current}%" if is_int(current) else "<unknown>"
    return f"cpu: {shown}/{target if target is not None else DEFAULT_CPU_TARGET}%"


def _at_least(path: str, value: Any, low: int, detail: str) -> list[Cause]:
    if value is None:
        return []
    if not is_int(value) or value < low:
        return [Cause.invalid(path, value, detail)]
    return []


class HorizontalPodAutoscalerStrategy(BuiltinStrategy):
    """HorizontalPodAutoscalers (autoscaling/v1)."""

    name_check = staticmethod(is_dns1123_subdomain)
    tracks_generation = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"currentReplicas": 0, "desiredReplicas": 0}

    def default(self, obj: Obj) -> None:
        spec = ensure_dict(obj, "spec")
        if spec.get("minReplicas") is None:
            spec["minReplicas"] = 1
        if spec.get("targetCPUUtilizationPercentage") is None:
            spec["targetCPUUtilizationPercentage"] = DEFAULT_CPU_TARGET

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes: list[Cause] = []
        ref = spec.get("scaleTargetRef")
        if not isinstance(ref, dict):
            causes.append(Cause.required("spec.scaleTargetRef.kind"))
            causes.append(Cause.required("spec.scaleTargetRef.name"))
        else:
            if not ref.get("kind"):
                causes.append(Cause.required("spec.scaleTargetRef.kind"))
            name = ref.get("name")
            if not name:
                causes.append(Cause.required("spec.scaleTargetRef.name"))
            elif "/" in str(name) or "%" in str(name) or name in (".", ".."):
                causes.append(Cause.invalid("spec.scaleTargetRef.name", name,
                                            "may not contain '/' or '%'"))
        low = spec.get("minReplicas")
        causes.extend(_at_least("spec.minReplicas", low, 1,
                                "must be greater than or equal to 1"))
        high = spec.get("maxReplicas")
        if high is None:
            causes.append(Cause.required("spec.maxReplicas"))
        elif not is_int(high) or high < 1:
            causes.append(Cause.invalid("spec.maxReplicas", high, "must be greater than 0"))
        elif is_int(low) and high < low:
            causes.append(Cause.invalid("spec.maxReplicas", high,
                                        "must be greater than or equal to `minReplicas`"))
        causes.extend(_at_least("spec.targetCPUUtilizationPercentage",
                                spec.get("targetCPUUtilizationPercentage"), 1,
                                "must be greater than 0"))
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = as_dict(new.get("status"))
        causes: list[Cause] = []
        for key in ("currentReplicas", "desiredReplicas"):
            causes.extend(_at_least(f"status.{key}", status.get(key), 0,
                                    "must be greater than or equal to 0"))
        return causes

    def table_columns(self) -> list[TableColumn]:
        def reference(o: Obj) -> str:
            ref = as_dict(sub(o, "spec", "scaleTargetRef"))
            return f"{ref.get('kind', '')}/{ref.get('name', '')}"

        def min_pods(o: Obj) -> Any:
            value = sub(o, "spec", "minReplicas")
            return value if value is not None else "<unset>"

        return [
            TableColumn("Reference", reference,
                        description="The workload whose scale is set."),
            TableColumn("Targets", _targets,
                        description="Current and wanted CPU utilization of its pods."),
            TableColumn("MinPods", min_pods, description="Lowest replica count."),
            TableColumn("MaxPods", lambda o: sub(o, "spec", "maxReplicas") or 0,
                        type="integer", description="Highest replica count."),
            TableColumn("Replicas", lambda o: sub(o, "status", "currentReplicas") or 0,
                        type="integer", description="Replicas the workload has."),
            AGE,
        ]

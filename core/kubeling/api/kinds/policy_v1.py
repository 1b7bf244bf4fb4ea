"""Strategy of policy/v1 PodDisruptionBudget: how many selected pods may be disrupted.

The eviction subresource (:mod:`kubeling.api.eviction`) consults it; the disruption
controller keeps its status (expected pods, current and desired healthy pods, disruptions
allowed) current.
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
    is_int,
    label_selector_causes,
    non_negative,
    sub,
)
from kubeling.api.strategy import TableColumn

__all__ = ["PodDisruptionBudgetStrategy"]

_PERCENT = re.compile(r"^[0-9]+%$")
POLICIES = ("AlwaysAllow", "IfHealthyBudget")


def _int_or_percent_causes(field: str, value: Any) -> list[Cause]:
    if value is None:
        return []
    if is_int(value):
        return non_negative(field, value)
    if isinstance(value, str) and _PERCENT.match(value):
        if int(value[:-1]) > 100:
            return [Cause.invalid(field, value, "must not be greater than 100%")]
        return []
    return [Cause.invalid(field, value, "must be an integer or percentage (e.g '5%')")]


class PodDisruptionBudgetStrategy(BuiltinStrategy):
    """PodDisruptionBudgets: ``minAvailable`` or ``maxUnavailable`` of the selected pods."""

    tracks_generation = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                         "expectedPods": 0}

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes: list[Cause] = []
        if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
            causes.append(Cause.invalid("spec", spec,
                                        "minAvailable and maxUnavailable cannot be both set"))
        causes.extend(_int_or_percent_causes("spec.minAvailable", spec.get("minAvailable")))
        causes.extend(_int_or_percent_causes("spec.maxUnavailable",
                                             spec.get("maxUnavailable")))
        causes.extend(label_selector_causes(spec.get("selector"), "spec.selector"))
        policy = spec.get("unhealthyPodEvictionPolicy")
        if policy is not None and policy not in POLICIES:
            causes.append(Cause.not_supported("spec.unhealthyPodEvictionPolicy", policy,
                                              POLICIES))
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = as_dict(new.get("status"))
        causes: list[Cause] = []
        for key in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods",
                    "observedGeneration"):
            causes.extend(non_negative(f"status.{key}", status.get(key)))
        return causes

    def table_columns(self) -> list[TableColumn]:
        return [
            TableColumn("Min Available", lambda o: str(sub(o, "spec", "minAvailable"))
                        if sub(o, "spec", "minAvailable") is not None else "N/A",
                        description="The minimum number or share of available pods."),
            TableColumn("Max Unavailable", lambda o: str(sub(o, "spec", "maxUnavailable"))
                        if sub(o, "spec", "maxUnavailable") is not None else "N/A",
                        description="The maximum number or share of unavailable pods."),
            TableColumn("Allowed Disruptions",
                        lambda o: sub(o, "status", "disruptionsAllowed") or 0, type="integer",
                        description="How many pods may be disrupted now."),
            AGE,
        ]

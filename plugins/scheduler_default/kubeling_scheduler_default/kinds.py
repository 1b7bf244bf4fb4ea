"""scheduling.k8s.io/v1 PriorityClass, served by this plugin through ``kubeling_register_kinds``."""

from __future__ import annotations

from typing import Any

from kubeling.api.errors import Cause
from kubeling.api.registry import KindInfo
from kubeling.api.strategy import Strategy, TableColumn

__all__ = ["HIGHEST_USER_DEFINABLE_PRIORITY", "PriorityClassStrategy", "priority_class_kind"]

Obj = dict[str, Any]

HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_PRIORITY_CLASSES = {"system-cluster-critical": 2_000_000_000,
                           "system-node-critical": 2_000_001_000}
PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")


class PriorityClassStrategy(Strategy):
    """Value required, immutable; no status; ``system-`` names are reserved."""

    has_status = False

    def default(self, obj: Obj) -> None:
        if not obj.get("preemptionPolicy"):
            obj["preemptionPolicy"] = "PreemptLowerPriority"

    def validate_spec(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        name = (obj.get("metadata") or {}).get("name") or ""
        value = obj.get("value")
        if value is None:
            causes.append(Cause.required("value"))
        elif not isinstance(value, int) or isinstance(value, bool):
            causes.append(Cause.invalid("value", value, "must be an integer"))
        elif name in SYSTEM_PRIORITY_CLASSES:
            if value != SYSTEM_PRIORITY_CLASSES[name]:
                causes.append(Cause.forbidden(
                    "value", f"value of {name} must be {SYSTEM_PRIORITY_CLASSES[name]}"))
        elif name.startswith("system-"):
            causes.append(Cause.forbidden("metadata.name", "priority class names with "
                                          "'system-' prefix are reserved"))
        elif value > HIGHEST_USER_DEFINABLE_PRIORITY:
            causes.append(Cause.forbidden(
                "value", f"maximum allowed value of a user defined priority is "
                         f"{HIGHEST_USER_DEFINABLE_PRIORITY}"))
        policy = obj.get("preemptionPolicy")
        if policy is not None and policy not in PREEMPTION_POLICIES:
            causes.append(Cause.not_supported("preemptionPolicy", policy, PREEMPTION_POLICIES))
        default = obj.get("globalDefault")
        if default is not None and not isinstance(default, bool):
            causes.append(Cause.invalid("globalDefault", default, "must be a boolean"))
        return causes

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        causes = []
        if new.get("value") != old.get("value"):
            causes.append(Cause.forbidden("value", "may not be changed in an update."))
        if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
            causes.append(Cause.invalid("preemptionPolicy", new.get("preemptionPolicy"),
                                        "field is immutable"))
        return causes

    def table_columns(self) -> list[TableColumn]:
        return [TableColumn("Value", lambda o: o.get("value"), type="integer",
                            description="The priority pods of this class get."),
                TableColumn("Global-Default", lambda o: bool(o.get("globalDefault")),
                            type="boolean",
                            description="Whether pods naming no class get this one."),
                TableColumn("Preemption-Policy", lambda o: o.get("preemptionPolicy") or "",
                            description="Whether pods of this class may preempt others.")]


def priority_class_kind() -> KindInfo:
    try:
        from kubeling.api.objects.scheduling_v1 import PriorityClass

        model: type | None = PriorityClass
    except ImportError:  # pragma: no cover - the model ships with the core
        model = None
    return KindInfo(group="scheduling.k8s.io", version="v1", kind="PriorityClass",
                    plural="priorityclasses", singular="priorityclass", namespaced=False,
                    model=model, strategy=PriorityClassStrategy(), short_names=("pc",),
                    subresources=())


class PriorityAdmitter:
    """Kubernetes' Priority admission: a new pod gets the priority of its PriorityClass
    (or of the global default class), and naming a class that does not exist is refused."""

    name = "Priority"
    mutating = True
    order = 50

    def admit(self, request: Any) -> None:
        if request.operation != "CREATE" or request.subresource is not None or \
                request.kind.group != "" or request.kind.plural != "pods":
            return
        pod = request.object
        spec = pod.setdefault("spec", {})
        name = spec.get("priorityClassName")
        if name:
            pc = request.get("scheduling.k8s.io", "priorityclasses", None, name)
            if pc is None and name in SYSTEM_PRIORITY_CLASSES:
                pc = {"value": SYSTEM_PRIORITY_CLASSES[name],
                      "preemptionPolicy": "PreemptLowerPriority"}
            if pc is None:
                from kubeling.api.errors import ApiError

                raise ApiError.forbidden(f'pods "{request.name}" is forbidden: no '
                                         f"PriorityClass with name {name} was found")
        else:
            pc = next((p for p in request.list("scheduling.k8s.io", "priorityclasses")
                       if p.get("globalDefault")), None)
            if pc is not None:
                spec["priorityClassName"] = pc["metadata"]["name"]
        spec["priority"] = int(pc.get("value") or 0) if pc is not None else 0
        if pc is not None and pc.get("preemptionPolicy"):
            spec["preemptionPolicy"] = pc["preemptionPolicy"]

"""Strategy of coordination.k8s.io/v1 Lease: the lock leader election and node heartbeats
take turns on."""

from __future__ import annotations

from typing import Any

from kubeling.api.errors import Cause
from kubeling.api.kinds._common import AGE, BuiltinStrategy, Obj, as_dict, is_int, parse_time
from kubeling.api.strategy import TableColumn

__all__ = ["LeaseStrategy"]

LEASE_STRATEGIES = ("OldestEmulationVersion",)


class LeaseStrategy(BuiltinStrategy):
    """Leases: a holder, a duration and renew times; no status, and a PUT of an absent
    lease creates it."""

    has_status = False
    allow_create_on_update = True

    def default(self, obj: Obj) -> None:
        if not isinstance(obj.get("spec"), dict):
            obj["spec"] = {}

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes: list[Cause] = []
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not is_int(duration) or duration <= 0):
            causes.append(Cause.invalid("spec.leaseDurationSeconds", duration,
                                        "must be greater than 0"))
        transitions = spec.get("leaseTransitions")
        if transitions is not None and (not is_int(transitions) or transitions < 0):
            causes.append(Cause.invalid("spec.leaseTransitions", transitions,
                                        "must be greater than or equal to 0"))
        for key in ("acquireTime", "renewTime"):
            causes.extend(_micro_time_causes(f"spec.{key}", spec.get(key)))
        strategy = spec.get("strategy")
        if strategy and strategy not in LEASE_STRATEGIES:
            causes.append(Cause.not_supported("spec.strategy", strategy, LEASE_STRATEGIES))
        if spec.get("preferredHolder") and not strategy:
            causes.append(Cause.forbidden("spec.preferredHolder",
                                          "may only be specified if `strategy` is defined"))
        return causes

    def table_columns(self) -> list[TableColumn]:
        return [TableColumn("Holder",
                            lambda o: as_dict(o.get("spec")).get("holderIdentity") or "",
                            description="The identity of the current holder of the lease."),
                AGE]


def _micro_time_causes(field: str, value: Any) -> list[Cause]:
    if value is None or parse_time(value) is not None:
        return []
    return [Cause.invalid(field, value, "must be an RFC 3339 time, e.g. "
                                        "2006-01-02T15:04:05.000000Z")]

"""SchedulingGates: pods with ``spec.schedulingGates`` wait outside the active queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeling_scheduler_default.podinfo import PodInfo
from kubeling_scheduler_default.status import Code, Status

__all__ = ["SchedulingGates"]


class SchedulingGates:
    """PreEnqueue plugin: a gated pod is not scheduled until its gates are removed."""

    name = "SchedulingGates"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        del args, handle

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        if not pod.scheduling_gates:
            return None
        return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
                      f"waiting for scheduling gates: [{' '.join(pod.scheduling_gates)}]",
                      plugin=self.name)

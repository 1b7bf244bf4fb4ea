"""NodeUnschedulable: cordoned nodes (``spec.unschedulable``) take no new pods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kubeling_scheduler_default.framework import CycleState
from kubeling_scheduler_default.nodeinfo import NodeInfo, NodeTable
from kubeling_scheduler_default.podinfo import PodInfo, Taint, tolerates
from kubeling_scheduler_default.status import Status

__all__ = ["ERR_REASON", "UNSCHEDULABLE_TAINT", "NodeUnschedulable", "fits"]

ERR_REASON = "node(s) were unschedulable"
UNSCHEDULABLE_TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")


def fits(pod: PodInfo, node_info: NodeInfo) -> bool:
    """Pure check: the node is schedulable, or the pod tolerates the unschedulable taint."""
    return not node_info.unschedulable or tolerates(pod.tolerations, UNSCHEDULABLE_TAINT)


class NodeUnschedulable:
    """Filter plugin."""

    name = "NodeUnschedulable"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        del args, handle

    def filter(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> Status | None:
        if fits(pod, node_info):
            return None
        return Status.unresolvable(ERR_REASON, plugin=self.name)

    def filter_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable
                     ) -> np.ndarray | None:
        if tolerates(pod.tolerations, UNSCHEDULABLE_TAINT):
            return None
        return ~table.unschedulable[: table.size]

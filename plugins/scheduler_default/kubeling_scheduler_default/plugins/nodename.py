"""NodeName: a pod that names its node fits only there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kubeling_scheduler_default.framework import CycleState
from kubeling_scheduler_default.nodeinfo import NodeInfo, NodeTable
from kubeling_scheduler_default.podinfo import PodInfo
from kubeling_scheduler_default.status import Status

__all__ = ["ERR_REASON", "NodeName", "fits"]

ERR_REASON = "node(s) didn't match the requested node name"


def fits(pod: PodInfo, node_info: NodeInfo) -> bool:
    """Pure check: no ``spec.nodeName``, or this node's name."""
    return not pod.node_name or pod.node_name == node_info.name


class NodeName:
    """Filter plugin."""

    name = "NodeName"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        del args, handle

    def filter(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> Status | None:
        if fits(pod, node_info):
            return None
        return Status.unresolvable(ERR_REASON, plugin=self.name)

    def filter_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable
                     ) -> np.ndarray | None:
        if not pod.node_name:
            return None
        names = table.names
        return np.fromiter((n == pod.node_name for n in names[: table.size]), dtype=bool,
                           count=table.size)

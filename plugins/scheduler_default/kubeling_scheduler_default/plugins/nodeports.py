"""NodePorts: a host port can be used by one pod per node (per IP and protocol)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from kubeling_scheduler_default.framework import CycleState
from kubeling_scheduler_default.nodeinfo import NodeInfo, NodeTable
from kubeling_scheduler_default.podinfo import PodInfo
from kubeling_scheduler_default.status import Status

__all__ = ["ERR_REASON", "NodePorts", "fits", "ports_conflict"]

ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


def ports_conflict(wanted: Iterable[tuple[str, str, int]],
                   used: Mapping[tuple[str, int], Mapping[str, int]]) -> bool:
    """Whether any wanted (ip, protocol, port) clashes with one in use: same protocol and
    port, and the same IP or either side on 0.0.0.0."""
    for ip, protocol, port in wanted:
        ips = used.get((protocol, port))
        if not ips:
            continue
        if ip == ANY_IP or ANY_IP in ips or ip in ips:
            return True
    return False


def fits(pod: PodInfo, node_info: NodeInfo) -> bool:
    """Pure check: none of the pod's host ports is taken on the node."""
    return not ports_conflict(pod.host_ports, node_info.used_ports)


class NodePorts:
    """PreFilter (skip pods without host ports) and Filter plugin."""

    name = "NodePorts"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        del args, handle

    def pre_filter(self, state: CycleState, pod: PodInfo) -> Status | None:
        if not pod.host_ports:
            return Status.skip()
        return None

    def filter(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> Status | None:
        if fits(pod, node_info):
            return None
        return Status.unschedulable(ERR_REASON, plugin=self.name)

    def filter_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable
                     ) -> np.ndarray | None:
        size = table.size
        mask = np.ones(size, dtype=bool)
        infos = table.infos
        for slot in np.flatnonzero(table.has_ports[:size]).tolist():
            info = infos[slot]
            if info is not None and not fits(pod, info):
                mask[slot] = False
        return mask

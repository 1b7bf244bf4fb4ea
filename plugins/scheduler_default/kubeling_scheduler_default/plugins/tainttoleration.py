"""TaintToleration: NoSchedule/NoExecute taints must be tolerated; PreferNoSchedule ones
that are not lower the score."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from kubeling_scheduler_default.framework import CycleState
from kubeling_scheduler_default.nodeinfo import NodeInfo, NodeTable
from kubeling_scheduler_default.plugins.helpers import default_normalize
from kubeling_scheduler_default.podinfo import PodInfo, Taint, Toleration, tolerates
from kubeling_scheduler_default.status import Status

__all__ = ["TaintToleration", "count_intolerable_prefer_no_schedule", "untolerated_taint"]


def untolerated_taint(taints: Iterable[Taint], tolerations: Iterable[Toleration]
                      ) -> Taint | None:
    """The first NoSchedule or NoExecute taint the tolerations do not tolerate."""
    tolerations = tuple(tolerations)
    for taint in taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return taint
    return None


def count_intolerable_prefer_no_schedule(taints: Iterable[Taint],
                                         tolerations: Iterable[Toleration]) -> int:
    """PreferNoSchedule taints not tolerated by the pod's PreferNoSchedule-or-any
    tolerations (what the score counts)."""
    prefer = tuple(t for t in tolerations if t.effect in ("", "PreferNoSchedule"))
    return sum(1 for taint in taints
               if taint.effect == "PreferNoSchedule" and not tolerates(prefer, taint))


def _reason(taint: Taint) -> str:
    return f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"


class TaintToleration:
    """Filter and Score plugin."""

    name = "TaintToleration"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        del args, handle
        self._cache: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}

    def _groups(self, pod: PodInfo, table: NodeTable) -> tuple[np.ndarray, np.ndarray]:
        """Per taint group: tolerated (bool) and intolerable PreferNoSchedule count."""
        key = (pod.tolerations, len(table.taint_groups))
        found = self._cache.get(key)
        if found is None:
            ok = np.array([untolerated_taint(g, pod.tolerations) is None
                           for g in table.taint_groups], dtype=bool)
            prefer = np.array([count_intolerable_prefer_no_schedule(g, pod.tolerations)
                               for g in table.taint_groups], dtype=np.int64)
            if len(self._cache) > 1024:
                self._cache.clear()
            found = self._cache[key] = (ok, prefer)
        return found

    def filter(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> Status | None:
        taint = untolerated_taint(node_info.taints, pod.tolerations)
        if taint is None:
            return None
        return Status.unresolvable(_reason(taint), plugin=self.name)

    def filter_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable
                     ) -> np.ndarray | None:
        if len(table.taint_groups) == 1:
            return None
        ok, _ = self._groups(pod, table)
        return ok[table.taint_group[: table.size]]

    def score(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> int:
        return count_intolerable_prefer_no_schedule(node_info.taints, pod.tolerations)

    def score_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable,
                    slots: np.ndarray) -> np.ndarray | None:
        if len(table.taint_groups) == 1:
            return None  # no node has taints: the same score everywhere
        _, prefer = self._groups(pod, table)
        return prefer[table.taint_group[slots]]

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: np.ndarray) -> None:
        default_normalize(scores, reverse=True)

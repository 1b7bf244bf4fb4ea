"""NodeAffinity: ``nodeSelector`` and required node affinity filter; preferred terms score.

Args (Kubernetes' NodeAffinityArgs): ``addedAffinity`` — a node affinity every pod of
the profile must also satisfy (``requiredDuringSchedulingIgnoredDuringExecution``) and
prefers (``preferredDuringSchedulingIgnoredDuringExecution``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kubeling_scheduler_default.framework import CycleState
from kubeling_scheduler_default.nodeinfo import NodeInfo, NodeTable
from kubeling_scheduler_default.plugins.helpers import (
    default_normalize,
    node_selector_mask,
    terms_mask,
)
from kubeling_scheduler_default.podinfo import (
    NodeSelector,
    PodInfo,
    PreferredTerm,
    _parse_term,
)
from kubeling_scheduler_default.status import Status

__all__ = ["ERR_REASON_ENFORCED", "ERR_REASON_POD", "NodeAffinity", "matches",
           "preferred_score"]

ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"


def matches(pod: PodInfo, node_info: NodeInfo) -> bool:
    """Pure check of ``nodeSelector`` and required node affinity."""
    return pod.node_selector.matches(node_info.labels, node_info.name)


def preferred_score(terms: tuple[PreferredTerm, ...], node_info: NodeInfo) -> int:
    """Sum of the weights of the preferred terms the node matches."""
    return sum(t.weight for t in terms if t.term.matches(node_info.labels, node_info.name))


class NodeAffinity:
    """PreFilter, Filter, PreScore, Score and NormalizeScore plugin."""

    name = "NodeAffinity"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        args = dict(args or {})
        added = args.pop("addedAffinity", None) or {}
        if args:
            raise ValueError(f"unknown NodeAffinity args: {', '.join(sorted(args))}")
        required = added.get("requiredDuringSchedulingIgnoredDuringExecution")
        self.added_required: NodeSelector | None = None
        if required is not None:
            self.added_required = NodeSelector(
                (), tuple(_parse_term(t) for t in required.get("nodeSelectorTerms") or ()))
        self.added_preferred = tuple(
            PreferredTerm(int(p.get("weight") or 0), _parse_term(p.get("preference") or {}))
            for p in added.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
            if p.get("weight"))
        self._masks: dict[Any, tuple[int, np.ndarray]] = {}

    # -- filter ----------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo) -> Status | None:
        if pod.node_selector.empty and self.added_required is None:
            return Status.skip()
        return None

    def filter(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> Status | None:
        if self.added_required is not None and not self.added_required.matches(
                node_info.labels, node_info.name):
            return Status.unresolvable(ERR_REASON_ENFORCED, plugin=self.name)
        if not matches(pod, node_info):
            return Status.unresolvable(ERR_REASON_POD, plugin=self.name)
        return None

    def _mask(self, table: NodeTable, key: Any, build: Any) -> np.ndarray:
        cached = self._masks.get(key)
        if cached is not None and cached[0] == table.labels_version \
                and len(cached[1]) == table.size:
            return cached[1]
        mask = build()
        if len(self._masks) > 1024:
            self._masks.clear()
        self._masks[key] = (table.labels_version, mask)
        return mask

    def filter_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable
                     ) -> np.ndarray | None:
        mask = self._mask(table, ("pod", pod.node_selector),
                          lambda: node_selector_mask(table, pod.node_selector))
        if self.added_required is not None:
            added = self.added_required
            mask = mask & self._mask(table, ("added",),
                                     lambda: node_selector_mask(table, added))
        return mask

    def node_mask(self, pod: PodInfo, table: NodeTable) -> np.ndarray:
        """Slots matching the pod's selector and required affinity (for PodTopologySpread)."""
        return self._mask(table, ("pod", pod.node_selector),
                          lambda: node_selector_mask(table, pod.node_selector))

    # -- score -----------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, slots: Any) -> Status | None:
        if not pod.preferred_node_terms and not self.added_preferred:
            return Status.skip()
        return None

    def score(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> int:
        return preferred_score(pod.preferred_node_terms + self.added_preferred, node_info)

    def score_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable,
                    slots: np.ndarray) -> np.ndarray:
        terms = pod.preferred_node_terms + self.added_preferred

        def build() -> np.ndarray:
            total = np.zeros(table.size, dtype=np.int64)
            for term in terms:
                total += term.weight * terms_mask(table, (term.term,))
            return total

        return self._mask(table, ("preferred", terms), build)[slots]

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: np.ndarray) -> None:
        default_normalize(scores)

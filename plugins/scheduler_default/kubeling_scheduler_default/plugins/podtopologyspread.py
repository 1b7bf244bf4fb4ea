"""PodTopologySpread: ``topologySpreadConstraints`` (maxSkew, whenUnsatisfiable, minDomains,
node inclusion policies, matchLabelKeys).

DoNotSchedule constraints filter: on a node in domain D the pod may go when
``count(D) + self - globalMin <= maxSkew`` (the global minimum is 0 while fewer than
``minDomains`` domains exist).  ScheduleAnyway constraints score: fewer matching pods in
the node's domain score higher.

Args (PodTopologySpreadArgs): ``defaultConstraints`` and ``defaultingType``.  Pods
without constraints of their own get default ones: with ``System`` (the default) Kubernetes'
``maxSkew: 3`` over ``kubernetes.io/hostname`` and ``maxSkew: 5`` over
``topology.kubernetes.io/zone``, both ``ScheduleAnyway``; with ``List`` the
``defaultConstraints`` given.  Their selector is Kubernetes' ``DefaultSelector`` (the
selectors of the Services selecting the pod and of its ReplicaSet, StatefulSet or
ReplicationController, see :mod:`kubeling_scheduler_default.workloads`); a pod with none
gets no default constraints.  Without an API (algorithm-only runs) ``List`` defaults select
by the pod's own labels and ``System`` ones are off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from kubeling.api.selectors import LabelSelector, label_selector_from_set
from kubeling_scheduler_default.cache import Cache, SlotCounter
from kubeling_scheduler_default.framework import CycleState
from kubeling_scheduler_default.nodeinfo import NodeInfo, NodeTable
from kubeling_scheduler_default.plugins.helpers import node_selector_mask
from kubeling_scheduler_default.plugins.tainttoleration import untolerated_taint
from kubeling_scheduler_default.podinfo import (
    HOSTNAME_LABEL,
    PodInfo,
    TopologySpreadConstraint,
    _parse_spread,
)
from kubeling_scheduler_default.status import Status

__all__ = ["ERR_CONSTRAINTS", "ERR_MISSING_LABEL", "SYSTEM_DEFAULT_CONSTRAINTS",
           "PodTopologySpread", "skew_ok"]

SYSTEM_DEFAULT_CONSTRAINTS = (
    {"maxSkew": 3, "topologyKey": HOSTNAME_LABEL, "whenUnsatisfiable": "ScheduleAnyway"},
    {"maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone",
     "whenUnsatisfiable": "ScheduleAnyway"},
)
"""Kubernetes' default constraints for ``defaultingType: System``."""
ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
MAX_NODE_SCORE = 100
_STATE = "PodTopologySpread/prefilter"
_SCORE = "PodTopologySpread/prescore"


def skew_ok(match_num: int, self_match: bool, min_match: int, max_skew: int) -> bool:
    """Pure check of one constraint on one domain."""
    return match_num + int(self_match) - min_match <= max_skew


class _Hard:
    """One DoNotSchedule constraint's counts over eligible nodes, by domain."""

    __slots__ = ("constraint", "counts", "eligible", "present", "self_match")

    def __init__(self, constraint: TopologySpreadConstraint, counts: np.ndarray,
                 present: np.ndarray, eligible: np.ndarray, self_match: bool) -> None:
        self.constraint = constraint
        self.counts = counts
        self.present = present
        """Domains (ids) that eligible nodes are in."""
        self.eligible = eligible
        self.self_match = self_match

    def clone(self) -> _Hard:
        return _Hard(self.constraint, self.counts.copy(), self.present, self.eligible,
                     self.self_match)

    def min_match(self) -> int:
        c = self.constraint
        if len(self.present) < c.min_domains:
            return 0
        if len(self.present) == 0:
            return 0
        return int(self.counts[self.present].min())


class _State:
    __slots__ = ("hard", "table")

    def __init__(self, table: NodeTable, hard: list[_Hard]) -> None:
        self.table = table
        self.hard = hard

    def clone(self) -> _State:
        return _State(self.table, [h.clone() for h in self.hard])


class PodTopologySpread:
    """PreFilter (with add/remove pod), Filter, PreScore, Score and NormalizeScore."""

    name = "PodTopologySpread"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        args = dict(args or {})
        self.defaulting = args.pop("defaultingType", "System")
        if self.defaulting not in ("System", "List"):
            raise ValueError(f"defaultingType must be System or List, not {self.defaulting!r}")
        raw_defaults = args.pop("defaultConstraints", None) or []
        if args:
            raise ValueError(f"unknown PodTopologySpread args: {', '.join(sorted(args))}")
        for c in raw_defaults:
            if c.get("labelSelector") is not None:
                raise ValueError("defaultConstraints may not set a labelSelector")
        self.default_constraints = raw_defaults if self.defaulting == "List" \
            else SYSTEM_DEFAULT_CONSTRAINTS
        self.handle = handle
        self._masks: dict[Any, tuple[int, np.ndarray]] = {}

    @property
    def cache(self) -> Cache:
        return self.handle.cache

    # -- helpers -------------------------------------------------------------------------------

    def _cached(self, table: NodeTable, key: Any, build: Any) -> np.ndarray:
        found = self._masks.get(key)
        if found is not None and found[0] == table.labels_version and len(found[1]) == table.size:
            return found[1]
        mask = build()
        if len(self._masks) > 1024:
            self._masks.clear()
        self._masks[key] = (table.labels_version, mask)
        return mask

    def _eligible(self, pod: PodInfo, constraints: tuple[TopologySpreadConstraint, ...],
                  c: TopologySpreadConstraint, require_all: bool) -> np.ndarray:
        table = self.cache.table
        size = table.size
        mask = table.valid[:size].copy()
        if require_all:
            for other in constraints:
                mask &= table.domain(other.topology_key).ids[:size] >= 0
        else:
            mask &= table.domain(c.topology_key).ids[:size] >= 0
        if c.node_affinity_policy == "Honor" and not pod.node_selector.empty:
            mask &= self._cached(table, ("aff", pod.node_selector),
                                 lambda: node_selector_mask(table, pod.node_selector))
        if c.node_taints_policy == "Honor" and len(table.taint_groups) > 1:
            ok = np.array([untolerated_taint(g, pod.tolerations) is None
                           for g in table.taint_groups], dtype=bool)
            mask &= ok[table.taint_group[:size]]
        return mask

    def _matching_vector(self, pod: PodInfo, c: TopologySpreadConstraint) -> np.ndarray:
        cache = self.cache
        namespace = pod.namespace
        selector = c.selector

        def pred(g: SlotCounter) -> bool:
            s = g.sample
            return s.namespace == namespace and not s.deleting and selector.matches(s.labels)

        groups = cache.by_labels.matching(("spread", namespace, selector), pred, 0)
        return cache.count_vector(groups)

    def _constraints(self, pod: PodInfo, *, hard: bool) -> tuple[tuple[
            TopologySpreadConstraint, ...], bool]:
        """The pod's constraints of one kind, or the defaults; and whether nodes must
        carry every topology key (only for the pod's own constraints)."""
        if pod.spread_constraints:
            return tuple(c for c in pod.spread_constraints if c.hard == hard), True
        if not self.default_constraints or hard:
            return (), False
        selector = self._default_selector(pod)
        if selector is None:
            return (), False
        parsed = tuple(c._replace(selector=selector)
                       for c in _parse_spread(self.default_constraints, pod.labels))
        return tuple(c for c in parsed if not c.hard), False

    def _default_selector(self, pod: PodInfo) -> LabelSelector | None:
        workloads = getattr(self.handle, "workloads", None)
        if workloads is not None:
            return workloads.default_selector(pod.pod)
        if self.defaulting == "List" and pod.labels:
            return label_selector_from_set(pod.labels)
        return None

    # -- filter ---------------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo) -> Status | None:
        constraints, require_all = self._constraints(pod, hard=True)
        if not constraints:
            return Status.skip()
        table = self.cache.table
        size = table.size
        hard = []
        for c in constraints:
            eligible = self._eligible(pod, constraints, c, require_all)
            index = table.domain(c.topology_key)
            ids = index.ids[:size]
            vec = self._matching_vector(pod, c)[:size]
            in_domains = ids[eligible]
            counts = np.bincount(in_domains, weights=vec[eligible],
                                 minlength=index.size).astype(np.int64)
            present = np.flatnonzero(np.bincount(in_domains, minlength=index.size))
            hard.append(_Hard(c, counts, present, eligible,
                              c.selector.matches(pod.labels)))
        state.write(_STATE, _State(table, hard))
        return None

    def _update(self, state: CycleState, pod: PodInfo, other: PodInfo, node_info: NodeInfo,
                delta: int) -> None:
        st: _State | None = state.read(_STATE)
        if st is None or other.namespace != pod.namespace or other.deleting:
            return
        slot = node_info.slot
        for h in st.hard:
            c = h.constraint
            if slot >= len(h.eligible) or not h.eligible[slot] \
                    or not c.selector.matches(other.labels):
                continue
            ident = st.table.domain(c.topology_key).value_ids.get(
                node_info.labels.get(c.topology_key, ""), -1)
            if 0 <= ident < len(h.counts):
                h.counts[ident] += delta

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node_info: NodeInfo
                ) -> Status | None:
        self._update(state, pod, added, node_info, 1)
        return None

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                   node_info: NodeInfo) -> Status | None:
        self._update(state, pod, removed, node_info, -1)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> Status | None:
        st: _State | None = state.read(_STATE)
        if st is None:
            return None
        for h in st.hard:
            c = h.constraint
            value = node_info.labels.get(c.topology_key)
            if value is None:
                return Status.unresolvable(ERR_MISSING_LABEL, plugin=self.name)
            ident = st.table.domain(c.topology_key).value_ids.get(value, -1)
            match = int(h.counts[ident]) if 0 <= ident < len(h.counts) else 0
            if not skew_ok(match, h.self_match, h.min_match(), c.max_skew):
                return Status.unschedulable(ERR_CONSTRAINTS, plugin=self.name)
        return None

    def filter_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable
                     ) -> np.ndarray | None:
        st: _State | None = state.read(_STATE)
        if st is None:
            return None
        size = table.size
        mask = np.ones(size, dtype=bool)
        for h in st.hard:
            c = h.constraint
            index = table.domain(c.topology_key)
            ids = index.ids[:size]
            ext = np.zeros(max(len(h.counts), index.size) + 1, dtype=np.int64)
            ext[: len(h.counts)] = h.counts
            match = ext[ids]
            ok = (ids >= 0) & (match + int(h.self_match) - h.min_match() <= c.max_skew)
            mask &= ok
        return mask

    # -- score ----------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, slots: np.ndarray) -> Status | None:
        constraints, require_all = self._constraints(pod, hard=False)
        if not constraints:
            return Status.skip()
        table = self.cache.table
        size = table.size
        slots = np.asarray(slots)
        ignored = np.zeros(len(slots), dtype=bool)
        if require_all:
            for c in constraints:
                ignored |= table.domain(c.topology_key).ids[slots] < 0
        kept = slots[~ignored]
        parts = []
        for c in constraints:
            index = table.domain(c.topology_key)
            ids = index.ids[:size]
            vec = self._matching_vector(pod, c)[:size]
            if c.topology_key == HOSTNAME_LABEL:
                size_for_weight = len(kept)
                per_slot = vec
            else:
                kept_ids = ids[kept]
                wanted = np.unique(kept_ids[kept_ids >= 0])
                size_for_weight = len(wanted)
                eligible = self._eligible(pod, constraints, c, require_all)
                counts = np.bincount(ids[eligible], weights=vec[eligible],
                                     minlength=index.size).astype(np.int64)
                ext = np.zeros(index.size + 1, dtype=np.int64)
                ext[wanted] = counts[wanted]
                per_slot = ext[ids]
            weight = math.log(size_for_weight + 2)
            parts.append((c, per_slot, weight))
        state.write(_SCORE, (parts, ignored, slots))
        return None

    def _score_of(self, parts: Any, slot: int, labels: Mapping[str, str]) -> int:
        total = 0.0
        for c, per_slot, weight in parts:
            if c.topology_key in labels:
                total += float(per_slot[slot]) * weight + float(c.max_skew - 1)
        return math.floor(total + 0.5)

    def score(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> int:
        found = state.read(_SCORE)
        if found is None:
            return 0
        parts, ignored, slots = found
        position = np.flatnonzero(slots == node_info.slot)
        if len(position) and ignored[position[0]]:
            return 0
        return self._score_of(parts, node_info.slot, node_info.labels)

    def score_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable,
                    slots: np.ndarray) -> np.ndarray:
        found = state.read(_SCORE)
        if found is None:
            return np.zeros(len(slots), dtype=np.int64)
        parts, ignored, _ = found
        total = np.zeros(len(slots), dtype=np.float64)
        for c, per_slot, weight in parts:
            has = table.domain(c.topology_key).ids[slots] >= 0
            total += np.where(has, per_slot[slots] * weight + (c.max_skew - 1), 0.0)
        out = np.floor(total + 0.5).astype(np.int64)
        out[ignored] = -1
        return out

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: np.ndarray) -> None:
        found = state.read(_SCORE)
        ignored = found[1] if found is not None else np.zeros(len(scores), dtype=bool)
        if len(ignored) != len(scores):
            ignored = scores < 0
        live = scores[~ignored]
        if len(live) == 0:
            scores[:] = 0
            return
        low, high = int(live.min()), int(live.max())
        if high == 0:
            out = np.full(len(scores), MAX_NODE_SCORE, dtype=np.int64)
        else:
            out = MAX_NODE_SCORE * (high + low - scores) // high
        out[ignored] = 0
        scores[:] = out

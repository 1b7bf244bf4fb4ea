"""NodeResourcesFit and NodeResourcesBalancedAllocation.

NodeResourcesFit filters nodes without room for the pod's requests (cpu, memory,
ephemeral-storage, pods and extended resources) and scores by a strategy:
``LeastAllocated`` (default), ``MostAllocated`` or ``RequestedToCapacityRatio``.  Args
are Kubernetes' NodeResourcesFitArgs::

    {ignoredResources: [...], ignoredResourceGroups: [...],
     scoringStrategy: {type: MostAllocated, resources: [{name: cpu, weight: 1}, ...],
                       requestedToCapacityRatio: {shape: [{utilization: 0, score: 10},
                                                          {utilization: 100, score: 0}]}}}

BalancedAllocation prefers nodes whose resource fractions (requested/allocatable, with the
pod) are close to each other.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kubeling_scheduler_default.framework import CycleState
from kubeling_scheduler_default.nodeinfo import NodeInfo, NodeTable
from kubeling_scheduler_default.podinfo import CPU, EPHEMERAL_STORAGE, MEMORY, PodInfo
from kubeling_scheduler_default.status import Status

__all__ = [
    "BalancedAllocation",
    "Fit",
    "balanced_score",
    "insufficient_resources",
    "least_allocated_score",
    "most_allocated_score",
    "requested_to_capacity_ratio_score",
]

MAX_NODE_SCORE = 100
MAX_CUSTOM_SCORE = 10
DEFAULT_RESOURCES = ((CPU, 1), (MEMORY, 1))
_NATIVE = (CPU, MEMORY, EPHEMERAL_STORAGE)


def _is_extended(name: str) -> bool:
    return name not in _NATIVE and "/" in name and not name.startswith("kubernetes.io/")


def insufficient_resources(pod: PodInfo, node_info: NodeInfo, *,
                           ignored: frozenset[str] = frozenset(),
                           ignored_groups: frozenset[str] = frozenset()) -> list[str]:
    """Pure check: the reasons the pod does not fit (``Too many pods``, ``Insufficient
    cpu``, ...), in Kubernetes' order; empty when it fits."""
    reasons: list[str] = []
    if len(node_info.pods) + 1 > node_info.allowed_pods:
        reasons.append("Too many pods")
    alloc = node_info.allocatable
    used = node_info.requested
    ordered = [r for r in _NATIVE if r in pod.requests] + \
        [r for r in pod.requests if r not in _NATIVE]
    for name in ordered:
        amount = pod.requests[name]
        if amount <= 0:
            continue
        if _is_extended(name) and (name in ignored
                                   or name.split("/", 1)[0] in ignored_groups):
            continue
        if amount > alloc.get(name, 0) - used.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


# -- scoring functions (pure, per resource lists) -----------------------------------------------


def least_allocated_score(requested: Sequence[int], allocatable: Sequence[int],
                          weights: Sequence[int]) -> int:
    """Free share of each resource, weighted: ``(alloc - req) * 100 / alloc``."""
    score = weight_sum = 0
    for req, alloc, weight in zip(requested, allocatable, weights, strict=True):
        if alloc == 0:
            continue
        part = 0 if req > alloc else (alloc - req) * MAX_NODE_SCORE // alloc
        score += part * weight
        weight_sum += weight
    return score // weight_sum if weight_sum else 0


def most_allocated_score(requested: Sequence[int], allocatable: Sequence[int],
                         weights: Sequence[int]) -> int:
    """Used share of each resource, weighted: ``req * 100 / alloc`` (capped at alloc)."""
    score = weight_sum = 0
    for req, alloc, weight in zip(requested, allocatable, weights, strict=True):
        if alloc == 0:
            continue
        part = min(req, alloc) * MAX_NODE_SCORE // alloc
        score += part * weight
        weight_sum += weight
    return score // weight_sum if weight_sum else 0


def _shape_score(shape: Sequence[tuple[int, int]], utilization: int) -> int:
    """Broken-line function through (utilization, score) points (scores already 0..100)."""
    if utilization <= shape[0][0]:
        return shape[0][1]
    for (u0, s0), (u1, s1) in itertools.pairwise(shape):
        if utilization <= u1:
            return s0 + (s1 - s0) * (utilization - u0) // (u1 - u0)
    return shape[-1][1]


def requested_to_capacity_ratio_score(requested: Sequence[int], allocatable: Sequence[int],
                                      weights: Sequence[int],
                                      shape: Sequence[tuple[int, int]]) -> int:
    """The shape's score at each resource's utilization, weighted, rounded."""
    score = weight_sum = 0
    for req, alloc, weight in zip(requested, allocatable, weights, strict=True):
        if alloc == 0:
            continue
        utilization = 100 if req > alloc else req * 100 // alloc
        score += _shape_score(shape, utilization) * weight
        weight_sum += weight
    # Kubernetes rounds half away from zero (Go's math.Round), not to even
    return math.floor(score / weight_sum + 0.5) if weight_sum else 0


def balanced_score(requested: Sequence[int], allocatable: Sequence[int]) -> int:
    """``(1 - std(fractions)) * 100`` over resources the node has."""
    fractions = [min(req / alloc, 1.0) for req, alloc in zip(requested, allocatable,
                                                             strict=True) if alloc]
    if len(fractions) == 2:
        std = abs(fractions[0] - fractions[1]) / 2
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    else:
        std = 0.0
    return int((1 - std) * MAX_NODE_SCORE)


def _node_request(node_info: NodeInfo, pod: PodInfo, name: str, *, non_zero: bool
                  ) -> tuple[int, int]:
    """(allocatable, requested including the pod) of one resource on one node."""
    alloc = node_info.allocatable.get(name, 0)
    if non_zero and name == CPU:
        return alloc, node_info.non_zero_cpu + pod.non_zero_cpu
    if non_zero and name == MEMORY:
        return alloc, node_info.non_zero_memory + pod.non_zero_memory
    pod_request = pod.requests.get(name, 0)
    if name not in _NATIVE and pod_request == 0:
        return 0, 0
    return alloc, node_info.requested.get(name, 0) + pod_request


def _parse_resources(items: Any) -> tuple[tuple[str, int], ...]:
    if not items:
        return DEFAULT_RESOURCES
    out = []
    for item in items:
        weight = int(item.get("weight") or 1)
        if weight <= 0 or weight > 100:
            raise ValueError(f"resource weight of {item.get('name')} must be in 1..100")
        out.append((str(item["name"]), weight))
    return tuple(out)


class _Columns:
    """Allocatable and requested (with the pod) of some resources, over some slots."""

    @staticmethod
    def get(table: NodeTable, pod: PodInfo, resources: Sequence[tuple[str, int]],
            slots: np.ndarray, *, non_zero: bool) -> tuple[list[np.ndarray], list[np.ndarray],
                                                          list[int]]:
        allocs, reqs, weights = [], [], []
        for name, weight in resources:
            row = table.res_index.get(name)
            if row is None:
                continue
            alloc = table.alloc[row, slots]
            if non_zero and name == CPU:
                req = table.nz_cpu[slots] + pod.non_zero_cpu
            elif non_zero and name == MEMORY:
                req = table.nz_mem[slots] + pod.non_zero_memory
            else:
                pod_request = pod.requests.get(name, 0)
                if name not in _NATIVE and pod_request == 0:
                    continue
                req = table.req[row, slots] + pod_request
            allocs.append(alloc)
            reqs.append(req)
            weights.append(weight)
        return allocs, reqs, weights


class Fit:
    """NodeResourcesFit: PreFilter, Filter and Score plugin."""

    name = "NodeResourcesFit"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        args = dict(args or {})
        self.ignored = frozenset(args.pop("ignoredResources", None) or ())
        self.ignored_groups = frozenset(args.pop("ignoredResourceGroups", None) or ())
        strategy = args.pop("scoringStrategy", None) or {}
        if args:
            raise ValueError(f"unknown NodeResourcesFit args: {', '.join(sorted(args))}")
        self.strategy = strategy.get("type") or "LeastAllocated"
        if self.strategy not in ("LeastAllocated", "MostAllocated",
                                 "RequestedToCapacityRatio"):
            raise ValueError(f"scoringStrategy.type {self.strategy!r} is not one of "
                             f"LeastAllocated, MostAllocated, RequestedToCapacityRatio")
        self.resources = _parse_resources(strategy.get("resources"))
        shape = ((strategy.get("requestedToCapacityRatio") or {}).get("shape")
                 or [{"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}])
        self.shape = tuple((int(p["utilization"]), int(p["score"]) * MAX_NODE_SCORE
                            // MAX_CUSTOM_SCORE) for p in shape)
        if self.strategy == "RequestedToCapacityRatio" and any(
                b[0] <= a[0] for a, b in itertools.pairwise(self.shape)):
            raise ValueError("requestedToCapacityRatio.shape utilization values must increase")

    # -- filter ----------------------------------------------------------------------------

    def filter(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> Status | None:
        reasons = insufficient_resources(pod, node_info, ignored=self.ignored,
                                         ignored_groups=self.ignored_groups)
        if reasons:
            return Status.unschedulable(*reasons, plugin=self.name)
        return None

    def filter_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable
                     ) -> np.ndarray | None:
        size = table.size
        mask = table.pod_count[:size] + 1 <= table.max_pods[:size]
        for name, amount in pod.requests.items():
            if amount <= 0:
                continue
            if _is_extended(name) and (name in self.ignored
                                       or name.split("/", 1)[0] in self.ignored_groups):
                continue
            row = table.res_index.get(name)
            if row is None:
                return np.zeros(size, dtype=bool)
            mask &= table.alloc[row, :size] - table.req[row, :size] >= amount
        return mask

    # -- score -----------------------------------------------------------------------------

    def score(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> int:
        allocs, reqs, weights = [], [], []
        for name, weight in self.resources:
            alloc, req = _node_request(node_info, pod, name, non_zero=True)
            if alloc == 0:
                continue
            allocs.append(alloc)
            reqs.append(req)
            weights.append(weight)
        if self.strategy == "LeastAllocated":
            return least_allocated_score(reqs, allocs, weights)
        if self.strategy == "MostAllocated":
            return most_allocated_score(reqs, allocs, weights)
        return requested_to_capacity_ratio_score(reqs, allocs, weights, self.shape)

    def score_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable,
                    slots: np.ndarray) -> np.ndarray:
        allocs, reqs, weights = _Columns.get(table, pod, self.resources, slots, non_zero=True)
        if self.strategy != "RequestedToCapacityRatio" and allocs \
                and all(int(a.min()) > 0 for a in allocs):
            # every node has every resource: no per-node weight sums to track
            total = np.zeros(len(slots), dtype=np.int64)
            for alloc, req, weight in zip(allocs, reqs, weights, strict=True):
                used = np.minimum(req, alloc)
                if self.strategy == "LeastAllocated":
                    total += (alloc - used) * (MAX_NODE_SCORE * weight) // alloc \
                        if weight == 1 else (alloc - used) * MAX_NODE_SCORE // alloc * weight
                else:
                    total += used * MAX_NODE_SCORE // alloc * weight
            return total // sum(weights)
        total = np.zeros(len(slots), dtype=np.int64)
        weight_sum = np.zeros(len(slots), dtype=np.int64)
        for alloc, req, weight in zip(allocs, reqs, weights, strict=True):
            has = alloc > 0
            safe = np.where(has, alloc, 1)
            if self.strategy == "LeastAllocated":
                part = np.where(req > alloc, 0, (alloc - req) * MAX_NODE_SCORE // safe)
            elif self.strategy == "MostAllocated":
                part = np.minimum(req, alloc) * MAX_NODE_SCORE // safe
            else:
                util = np.where(req > alloc, 100, req * 100 // safe)
                part = np.array([_shape_score(self.shape, int(u)) for u in util],
                                dtype=np.int64)
            total += np.where(has, part * weight, 0)
            weight_sum += np.where(has, weight, 0)
        safe_sum = np.where(weight_sum > 0, weight_sum, 1)
        if self.strategy == "RequestedToCapacityRatio":
            out = np.floor(total / safe_sum + 0.5).astype(np.int64)
        else:
            out = total // safe_sum
        return np.where(weight_sum > 0, out, 0)


class BalancedAllocation:
    """NodeResourcesBalancedAllocation: PreScore and Score plugin.

    Args: ``resources`` (default cpu and memory, weight 1).
    """

    name = "NodeResourcesBalancedAllocation"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        args = dict(args or {})
        self.resources = _parse_resources(args.pop("resources", None))
        if args:
            raise ValueError(f"unknown NodeResourcesBalancedAllocation args: "
                             f"{', '.join(sorted(args))}")

    def pre_score(self, state: CycleState, pod: PodInfo, slots: Any) -> Status | None:
        if pod.best_effort:
            return Status.skip()
        return None

    def score(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> int:
        reqs, allocs = [], []
        for name, _ in self.resources:
            alloc, req = _node_request(node_info, pod, name, non_zero=False)
            if alloc:
                allocs.append(alloc)
                reqs.append(req)
        return balanced_score(reqs, allocs)

    def score_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable,
                    slots: np.ndarray) -> np.ndarray:
        allocs, reqs, _ = _Columns.get(table, pod, self.resources, slots, non_zero=False)
        n = len(slots)
        if not allocs:
            return np.full(n, MAX_NODE_SCORE, dtype=np.int64)
        if len(allocs) == 2 and int(allocs[0].min()) > 0 and int(allocs[1].min()) > 0:
            f0 = np.minimum(reqs[0] / allocs[0], 1.0)
            f1 = np.minimum(reqs[1] / allocs[1], 1.0)
            return ((1 - np.abs(f0 - f1) / 2) * MAX_NODE_SCORE).astype(np.int64)
        alloc = np.vstack(allocs).astype(np.float64)
        req = np.vstack(reqs).astype(np.float64)
        present = alloc > 0
        fractions = np.where(present, np.minimum(req / np.where(present, alloc, 1), 1.0), 0.0)
        count = present.sum(axis=0)
        safe = np.where(count > 0, count, 1)
        mean = fractions.sum(axis=0) / safe
        dev = np.where(present, (fractions - mean) ** 2, 0.0).sum(axis=0)
        std = np.where(count > 2, np.sqrt(dev / safe), 0.0)
        if len(allocs) >= 2:
            # exactly two resources present: |f1 - f2| / 2, as Kubernetes computes it
            two = count == 2
            if two.any():
                picked = np.where(present, fractions, np.nan)
                ordered = np.sort(picked, axis=0)  # the two values first, NaN last
                std = np.where(two, np.abs(ordered[0] - ordered[1]) / 2, std)
        return ((1 - std) * MAX_NODE_SCORE).astype(np.int64)

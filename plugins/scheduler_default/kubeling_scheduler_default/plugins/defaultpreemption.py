"""DefaultPreemption: make room for a pod by evicting lower-priority pods from one node.

PostFilter plugin, Kubernetes' algorithm: nodes that failed only with ``Unschedulable``
are candidates; on each (a sample of at least 10% / 100 nodes, from a random offset) all
lower-priority pods are taken off, and if the pod then fits, as many as possible are put
back, those a PodDisruptionBudget protects first, then most important first; the victims
are what could not be.  The best node has the fewest budget violations, then the lowest
highest-victim priority, then the lowest priority sum, then the fewest victims,
then the latest start.  The victims are deleted, the pod's ``status.nominatedNodeName``
is set and it waits in the queue for the room to appear.

Args (DefaultPreemptionArgs): ``minCandidateNodesPercentage`` (10),
``minCandidateNodesAbsolute`` (100).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from kubeling.api.selectors import SelectorError, label_selector_from_dict
from kubeling_scheduler_default.framework import CycleState, Diagnosis, fit_error_message
from kubeling_scheduler_default.nodeinfo import NodeInfo
from kubeling_scheduler_default.podinfo import PodInfo
from kubeling_scheduler_default.status import Code, Status

__all__ = ["DefaultPreemption", "Victims", "more_important", "pick_one_node",
           "split_by_budgets"]

NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"


def more_important(a: PodInfo, b: PodInfo) -> bool:
    """Higher priority first; at equal priority the one that started earlier."""
    if a.priority != b.priority:
        return a.priority > b.priority
    return a.start_time < b.start_time


class Victims:
    """Pods to evict on one node, most important first, and how many of them a
    PodDisruptionBudget protects."""

    __slots__ = ("node", "pods", "violations")

    def __init__(self, node: str, pods: list[PodInfo], violations: int = 0) -> None:
        self.node = node
        self.pods = pods
        self.violations = violations

    def __repr__(self) -> str:
        return f"Victims({self.node}, {[p.key for p in self.pods]}, {self.violations})"


def split_by_budgets(pods: list[PodInfo], budgets: list[Mapping[str, Any]]
                     ) -> tuple[list[PodInfo], list[PodInfo]]:
    """Kubernetes' ``filterPodsWithPDBViolation``: (pods whose eviction would take a
    matching budget below zero disruptions allowed, the others), in the given order.
    Pods already in a budget's ``disruptedPods`` do not count against it."""
    allowed = [int((b.get("status") or {}).get("disruptionsAllowed") or 0) for b in budgets]
    selectors = []
    for budget in budgets:
        try:
            selectors.append(label_selector_from_dict((budget.get("spec") or {})
                                                      .get("selector")))
        except SelectorError:
            selectors.append(None)
    violating: list[PodInfo] = []
    others: list[PodInfo] = []
    for pod in pods:
        violated = False
        if pod.labels:
            for i, budget in enumerate(budgets):
                selector = selectors[i]
                meta = budget.get("metadata") or {}
                if meta.get("namespace") != pod.namespace or selector is None or \
                        selector.empty or not selector.matches(pod.labels):
                    continue
                if pod.name in ((budget.get("status") or {}).get("disruptedPods") or {}):
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    violated = True
        (violating if violated else others).append(pod)
    return violating, others


def pick_one_node(candidates: list[Victims]) -> Victims | None:
    """Kubernetes' ``pickOneNodeForPreemption``: fewest budget violations, then the lowest
    highest victim priority, the lowest priority sum, the fewest victims, the latest
    start."""
    if not candidates:
        return None

    def fewest_violations(v: Victims) -> int:
        return -v.violations

    def highest(v: Victims) -> int:
        return -v.pods[0].priority

    def sum_priorities(v: Victims) -> int:
        return -sum(p.priority + 2**31 for p in v.pods)

    def fewest(v: Victims) -> int:
        return -len(v.pods)

    def latest_start(v: Victims) -> float:
        return min(p.start_time for p in v.pods)

    remaining = candidates
    for score in (fewest_violations, highest, sum_priorities, fewest, latest_start):
        best = max(score(v) for v in remaining)
        remaining = [v for v in remaining if score(v) == best]
        if len(remaining) == 1:
            return remaining[0]
    return remaining[0]


class DefaultPreemption:
    """PostFilter plugin."""

    name = "DefaultPreemption"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None,
                 rng: random.Random | None = None) -> None:
        args = dict(args or {})
        self.min_percentage = int(args.pop("minCandidateNodesPercentage", 10))
        self.min_absolute = int(args.pop("minCandidateNodesAbsolute", 100))
        if args:
            raise ValueError(f"unknown DefaultPreemption args: {', '.join(sorted(args))}")
        if not 0 <= self.min_percentage <= 100 or self.min_absolute < 0:
            raise ValueError("minCandidateNodesPercentage must be in 0..100 and "
                             "minCandidateNodesAbsolute not negative")
        self.handle = handle
        self.rng = rng or random.Random()
        self.last_violations = 0
        """Budget-protected victims of the last :meth:`select_victims`."""

    def num_candidates(self, nodes: int) -> int:
        n = nodes * self.min_percentage // 100
        return min(max(n, self.min_absolute), nodes)

    def eligible(self, pod: PodInfo, statuses: Mapping[str, Status]) -> str:
        """Why the pod may not preempt ("" when it may)."""
        if pod.preemption_policy == "Never":
            return "not eligible due to preemptionPolicy=Never."
        nominated = pod.nominated_node_name
        if nominated:
            status = statuses.get(nominated)
            if status is not None and status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                return ""
            info = self.handle.cache.nodes.get(nominated)
            if info is not None:
                for other in info.pods.values():
                    if other.priority < pod.priority and other.deleting:
                        return "not eligible due to a terminating pod on the nominated node."
        return ""

    def select_victims(self, state: CycleState, pod: PodInfo, node_info: NodeInfo
                       ) -> tuple[list[PodInfo], Status]:
        """Victims on one node (``node_info`` and ``state`` are copies, changed here)."""
        fw = self.handle.framework
        potential = [p for p in node_info.pods.values() if p.priority < pod.priority]
        if not potential:
            return [], Status.unresolvable(NO_VICTIMS, plugin=self.name)
        for victim in potential:
            node_info.remove_pod(victim)
            status = fw.run_pre_filter_remove_pod(state, pod, victim, node_info)
            if not status.is_success():
                return [], status
        status = fw.run_filter_with_nominated(state, pod, node_info)
        if not status.is_success():
            return [], status
        import functools

        potential.sort(key=functools.cmp_to_key(
            lambda a, b: -1 if more_important(a, b) else (1 if more_important(b, a) else 0)))
        violating, others = split_by_budgets(potential, self._budgets())
        victims: list[PodInfo] = []
        self.last_violations = 0
        # pods a budget protects are put back first, so they are evicted only when needed
        for group, protected in ((violating, True), (others, False)):
            for candidate in group:
                node_info.add_pod(candidate)
                fw.run_pre_filter_add_pod(state, pod, candidate, node_info)
                if not fw.run_filter_with_nominated(state, pod, node_info).is_success():
                    node_info.remove_pod(candidate)
                    fw.run_pre_filter_remove_pod(state, pod, candidate, node_info)
                    victims.append(candidate)
                    self.last_violations += protected
        victims.sort(key=functools.cmp_to_key(
            lambda a, b: -1 if more_important(a, b) else (1 if more_important(b, a) else 0)))
        return victims, Status()

    def _budgets(self) -> list[Mapping[str, Any]]:
        budgets = getattr(self.handle, "budgets", None)
        return list(budgets.list()) if budgets is not None else []

    def find_candidates(self, state: CycleState, pod: PodInfo,
                        statuses: Mapping[str, Status]) -> tuple[list[Victims], Diagnosis]:
        cache = self.handle.cache
        diagnosis = Diagnosis()
        potential = [name for name, st in statuses.items()
                     if st.code is Code.UNSCHEDULABLE and name in cache.nodes]
        if not potential:
            return [], diagnosis
        wanted = self.num_candidates(len(potential))
        offset = self.rng.randrange(len(potential))
        candidates: list[Victims] = []
        for i in range(len(potential)):
            name = potential[(offset + i) % len(potential)]
            info = cache.nodes[name].clone()
            victims, status = self.select_victims(state.clone(), pod, info)
            if status.is_success() and victims:
                candidates.append(Victims(name, victims, self.last_violations))
                if len(candidates) >= wanted:
                    break
                continue
            if status.is_success():
                status = Status(Code.ERROR, f'expected at least one victim pod on node "{name}"')
            diagnosis.node_statuses[name] = status
        return candidates, diagnosis

    def post_filter(self, state: CycleState, pod: PodInfo, statuses: Mapping[str, Status]
                    ) -> tuple[str | None, Status]:
        why = self.eligible(pod, statuses)
        if why:
            return None, Status.unschedulable(f"preemption: {why}", plugin=self.name)
        cache = self.handle.cache
        candidates, diagnosis = self.find_candidates(state, pod, statuses)
        if not candidates:
            message = fit_error_message(cache.node_count, diagnosis,
                                        absent=Status.unresolvable(NOT_HELPFUL))
            return "", Status.unschedulable(f"preemption: {message}", plugin=self.name)
        best = pick_one_node(candidates)
        assert best is not None
        scheduler = self.handle.scheduler
        if scheduler is not None:
            scheduler.preempt(pod, best.node, best.pods, plugin=self.name)
        return best.node, Status()

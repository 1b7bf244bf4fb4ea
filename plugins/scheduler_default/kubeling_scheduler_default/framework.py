"""The scheduling framework: profiles of plugins run at Kubernetes' extension points.

A plugin is a small object with a ``name`` and one method per extension point it takes
part in (``pre_filter``, ``filter``, ``post_filter``, ``pre_score``, ``score``,
``normalize_score``, ``reserve``, ``unreserve``, ``permit``, ``pre_bind``, ``bind``,
``post_bind``, plus ``pre_enqueue`` and ``less`` for the queue), each returning a
:class:`~kubeling_scheduler_default.status.Status` (or ``None`` for success).  Signatures
are Kubernetes'::

    pre_filter(state, pod) -> Status | None
    filter(state, pod, node_info) -> Status | None
    post_filter(state, pod, statuses) -> (nominated_node | None, Status)
    pre_score(state, pod, node_infos) -> Status | None
    score(state, pod, node_info) -> int  (or (int, Status))
    normalize_score(state, pod, scores) -> Status | None   # scores: int64 array, in place
    reserve(state, pod, node) / unreserve(state, pod, node)
    permit(state, pod, node) -> Status | (Status, timeout_seconds)
    pre_bind / bind / post_bind(state, pod, node)   # may be ``async def``

``pod`` is a :class:`~kubeling_scheduler_default.podinfo.PodInfo` (``pod.pod`` is the API
object), ``node_info`` a :class:`~kubeling_scheduler_default.nodeinfo.NodeInfo`.

Hot loops call plain methods (never a hook): a plugin may also offer the vectorized
``filter_nodes(state, pod, table) -> bool array`` and ``score_nodes(state, pod, table,
slots) -> int array`` over the :class:`~kubeling_scheduler_default.nodeinfo.NodeTable`,
which the framework prefers; the default plugins all do, and agree with their per-node
methods (tests check it).  ``score_nodes`` may return None for "the same score on every
node" (it cannot change the choice), and must return scores already in 0..100 after
``normalize_score``.
"""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from kubeling_scheduler_default.cache import Cache
from kubeling_scheduler_default.config import (
    DEFAULT_PLUGINS,
    EXTENSION_POINTS,
    PluginRef,
    Profile,
    merge_plugin_set,
)
from kubeling_scheduler_default.nodeinfo import NodeInfo, NodeTable
from kubeling_scheduler_default.podinfo import PodInfo
from kubeling_scheduler_default.status import SUCCESS, Code, Status, as_status

__all__ = [
    "MAX_NODE_SCORE",
    "CycleState",
    "Diagnosis",
    "FitError",
    "Framework",
    "Handle",
    "ScheduleResult",
    "num_feasible_nodes_to_find",
]

log = logging.getLogger(__name__)

MAX_NODE_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5

# extension point -> the method a plugin implements for it
_METHODS = {
    "pre_enqueue": "pre_enqueue",
    "queue_sort": "less",
    "pre_filter": "pre_filter",
    "filter": "filter",
    "post_filter": "post_filter",
    "pre_score": "pre_score",
    "score": "score",
    "reserve": "reserve",
    "permit": "permit",
    "pre_bind": "pre_bind",
    "bind": "bind",
    "post_bind": "post_bind",
}


def num_feasible_nodes_to_find(percentage: int, num_all_nodes: int) -> int:
    """How many feasible nodes to find before scoring (Kubernetes' formula).

    Below 100 nodes every node; ``percentage`` 0 means adaptive: 50% minus one point per
    125 nodes, at least 5%; never fewer than 100 nodes.
    """
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    if percentage == 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    found = num_all_nodes * percentage // 100
    return max(found, MIN_FEASIBLE_NODES_TO_FIND)


class CycleState:
    """Data plugins share within one scheduling cycle (Kubernetes' CycleState)."""

    __slots__ = ("data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def read(self, key: str) -> Any:
        return self.data.get(key)

    def write(self, key: str, value: Any) -> None:
        self.data[key] = value

    def clone(self) -> CycleState:
        """A copy for what-if evaluation (preemption): values with ``clone()`` are cloned."""
        other = CycleState()
        for key, value in self.data.items():
            cloner = getattr(value, "clone", None)
            other.data[key] = cloner() if cloner is not None else copy.copy(value)
        other.skip_filter = set(self.skip_filter)
        other.skip_score = set(self.skip_score)
        return other


class Diagnosis:
    """Why a pod fits nowhere: a status per failed node, and the plugins that said no."""

    __slots__ = ("node_statuses", "post_filter_msg", "pre_filter_msg", "unschedulable_plugins")

    def __init__(self) -> None:
        self.node_statuses: dict[str, Status] = {}
        self.unschedulable_plugins: set[str] = set()
        self.pre_filter_msg = ""
        self.post_filter_msg = ""


class FitError(Exception):
    """No node fits; ``str()`` is Kubernetes' FailedScheduling message."""

    def __init__(self, pod: PodInfo, num_all_nodes: int, diagnosis: Diagnosis) -> None:
        super().__init__()
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.diagnosis = diagnosis

    def __str__(self) -> str:
        return fit_error_message(self.num_all_nodes, self.diagnosis)


def fit_error_message(num_all_nodes: int, diagnosis: Diagnosis,
                      absent: Status | None = None) -> str:
    """``0/5 nodes are available: 2 Insufficient cpu, 3 node(s) were unschedulable.``"""
    msg = f"0/{num_all_nodes} nodes are available:"
    if diagnosis.pre_filter_msg:
        msg += f" {diagnosis.pre_filter_msg}."
    else:
        reasons: dict[str, int] = {}
        for status in diagnosis.node_statuses.values():
            for reason in status.reasons:
                reasons[reason] = reasons.get(reason, 0) + 1
        if absent is not None and len(diagnosis.node_statuses) < num_all_nodes:
            for reason in absent.reasons:
                reasons[reason] = reasons.get(reason, 0) + num_all_nodes - len(
                    diagnosis.node_statuses)
        histogram = sorted(f"{count} {reason}" for reason, count in reasons.items())
        if histogram:
            msg += f" {', '.join(histogram)}."
    if diagnosis.post_filter_msg:
        msg += f" {diagnosis.post_filter_msg}"
    return msg


class ScheduleResult:
    """Where the pod goes."""

    __slots__ = ("evaluated_nodes", "feasible_nodes", "node")

    def __init__(self, node: str, evaluated_nodes: int, feasible_nodes: int) -> None:
        self.node = node
        self.evaluated_nodes = evaluated_nodes
        self.feasible_nodes = feasible_nodes

    def __repr__(self) -> str:
        return f"ScheduleResult({self.node}, evaluated={self.evaluated_nodes}, " \
               f"feasible={self.feasible_nodes})"


class Handle:
    """What plugins get besides their args: the cache, the API and the running framework.

    ``client`` is None when the framework runs without an API (algorithm-only benches).
    """

    def __init__(self, cache: Cache, *, client: Any = None, events: Any = None,
                 nominator: Any = None, scheduler: Any = None, workloads: Any = None,
                 claims: Any = None, budgets: Any = None) -> None:
        self.cache = cache
        self.workloads = workloads
        """The Services' and controllers' selectors
        (:class:`kubeling_scheduler_default.workloads.WorkloadSelectors`); None without an
        API."""
        self.claims = claims
        """PersistentVolumeClaims by ``namespace/name`` (an informer: ``get(key)``); None
        without an API."""
        self.budgets = budgets
        """PodDisruptionBudgets (an informer: ``list()``); None without an API."""
        self.client = client
        self.events = events
        self.nominator = nominator
        self.scheduler = scheduler
        self.framework: Framework | None = None
        self.profile_name = ""

    @property
    def table(self) -> NodeTable:
        return self.cache.table


PluginFactory = Callable[[Mapping[str, Any], Handle], Any]


class Framework:
    """One profile: its plugins per extension point, and the scheduling algorithm."""

    def __init__(self, profile: Profile, registry: Mapping[str, PluginFactory], handle: Handle,
                 *, percentage_of_nodes_to_score: int = 0, rng: random.Random | None = None
                 ) -> None:
        self.profile = profile
        self.name = profile.scheduler_name
        self.handle = handle
        handle.framework = self
        handle.profile_name = profile.scheduler_name
        self.percentage = profile.percentage_of_nodes_to_score \
            if profile.percentage_of_nodes_to_score is not None else percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self.instances: dict[str, Any] = {}
        self.points: dict[str, list[Any]] = {p: [] for p in EXTENSION_POINTS}
        self.weights: dict[str, int] = {}
        self._build(profile, registry)
        self.next_start = 0

    # -- building ---------------------------------------------------------------------------

    def _instance(self, name: str, registry: Mapping[str, PluginFactory]) -> Any:
        plugin = self.instances.get(name)
        if plugin is None:
            factory = registry.get(name)
            if factory is None:
                known = ", ".join(sorted(registry))
                raise ValueError(f"profile {self.name!r}: no scheduler plugin named {name!r} "
                                 f"is registered (registered: {known}); install the plugin "
                                 f"that provides it")
            try:
                plugin = factory(self.profile.args_for(name), self.handle)
            except Exception as exc:
                raise ValueError(f"profile {self.name!r}: plugin {name!r} could not be built "
                                 f"from its args: {exc}") from exc
            if not getattr(plugin, "name", None):
                plugin.name = name
            self.instances[name] = plugin
        return plugin

    def _build(self, profile: Profile, registry: Mapping[str, PluginFactory]) -> None:
        plugins = profile.plugins
        defaults = [PluginRef(name=n, weight=w) for n, w in DEFAULT_PLUGINS]
        multi, _ = merge_plugin_set(defaults, plugins.multi_point)
        for point in EXTENSION_POINTS:
            custom = getattr(plugins, point)
            specific, disabled = merge_plugin_set([], custom)
            specific_names = {p.name for p in specific}
            refs: list[PluginRef] = []
            if "*" not in disabled:
                for ref in multi:
                    if ref.name in disabled or ref.name in specific_names:
                        continue
                    plugin = self._instance(ref.name, registry)
                    if callable(getattr(plugin, _METHODS[point], None)):
                        refs.append(ref)
            for ref in specific:
                plugin = self._instance(ref.name, registry)
                if not callable(getattr(plugin, _METHODS[point], None)):
                    raise ValueError(f"profile {self.name!r}: plugin {ref.name!r} cannot be "
                                     f"enabled at {point}: it has no {_METHODS[point]}() "
                                     f"method")
                refs.append(ref)
            seen: set[str] = set()
            for ref in refs:
                if ref.name in seen:
                    raise ValueError(f"profile {self.name!r}: plugin {ref.name!r} is enabled "
                                     f"twice at {point}")
                seen.add(ref.name)
                self.points[point].append(self.instances[ref.name])
                if point == "score":
                    weight = ref.weight if ref.weight else 1
                    if weight < 0:
                        raise ValueError(f"profile {self.name!r}: plugin {ref.name!r} has a "
                                         f"negative weight")
                    self.weights[ref.name] = weight
        if len(self.points["queue_sort"]) > 1:
            raise ValueError(f"profile {self.name!r}: only one queue_sort plugin may be "
                             f"enabled")
        if not self.points["bind"]:
            raise ValueError(f"profile {self.name!r}: at least one bind plugin is needed")
        self._score_entries = [(p, p.name) for p in self.points["score"]]

    def set_weights(self, weights: Mapping[str, int]) -> None:
        """Change score weights in place (live config reload)."""
        for name, weight in weights.items():
            if name in self.weights:
                self.weights[name] = weight

    @property
    def queue_sort(self) -> Any:
        return self.points["queue_sort"][0] if self.points["queue_sort"] else None

    def plugin(self, name: str) -> Any:
        return self.instances.get(name)

    # -- pre-enqueue ---------------------------------------------------------------------------

    def run_pre_enqueue(self, pod: PodInfo) -> Status:
        for plugin in self.points["pre_enqueue"]:
            status = as_status(plugin.pre_enqueue(pod), plugin.name)
            if not status.is_success():
                return status
        return SUCCESS

    # -- filtering -----------------------------------------------------------------------------

    def run_pre_filter(self, state: CycleState, pod: PodInfo) -> Status:
        for plugin in self.points["pre_filter"]:
            try:
                status = as_status(plugin.pre_filter(state, pod), plugin.name)
            except Exception as exc:
                log.exception("pre_filter of %s failed", plugin.name)
                return Status.from_error(exc, plugin.name)
            if status.is_skip():
                state.skip_filter.add(plugin.name)
                continue
            if not status.is_success():
                return status
        return SUCCESS

    def run_filter_plugins(self, state: CycleState, pod: PodInfo, node_info: NodeInfo
                           ) -> Status:
        """Every filter plugin on one node; the first that says no wins."""
        for plugin in self.points["filter"]:
            if plugin.name in state.skip_filter:
                continue
            status = as_status(plugin.filter(state, pod, node_info), plugin.name)
            if not status.is_success():
                return status
        return SUCCESS

    def run_pre_filter_add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo,
                               node_info: NodeInfo) -> Status:
        for plugin in self.points["pre_filter"]:
            if plugin.name in state.skip_filter:
                continue
            add = getattr(plugin, "add_pod", None)
            if add is not None:
                status = as_status(add(state, pod, added, node_info), plugin.name)
                if not status.is_success():
                    return status
        return SUCCESS

    def run_pre_filter_remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                                  node_info: NodeInfo) -> Status:
        for plugin in self.points["pre_filter"]:
            if plugin.name in state.skip_filter:
                continue
            remove = getattr(plugin, "remove_pod", None)
            if remove is not None:
                status = as_status(remove(state, pod, removed, node_info), plugin.name)
                if not status.is_success():
                    return status
        return SUCCESS

    def nominated_pods_for(self, node: str, pod: PodInfo) -> list[PodInfo]:
        nominator = self.handle.nominator
        if nominator is None:
            return []
        return [p for p in nominator.nominated_pods(node)
                if p.priority >= pod.priority and p.uid != pod.uid]

    def run_filter_with_nominated(self, state: CycleState, pod: PodInfo, node_info: NodeInfo
                                  ) -> Status:
        """Filters, counting higher-or-equal priority pods nominated to this node as if
        they ran there (then once more without them, as Kubernetes does)."""
        nominated = self.nominated_pods_for(node_info.name, pod)
        if nominated:
            state2 = state.clone()
            info2 = node_info.clone()
            for other in nominated:
                info2.add_pod(other)
                status = self.run_pre_filter_add_pod(state2, pod, other, info2)
                if not status.is_success():
                    return status
            status = self.run_filter_plugins(state2, pod, info2)
            if not status.is_success():
                return status
        return self.run_filter_plugins(state, pod, node_info)

    def find_feasible(self, state: CycleState, pod: PodInfo, diagnosis: Diagnosis
                      ) -> tuple[np.ndarray, int]:
        """Slots of nodes that pass every filter (at most as many as to score), and how
        many nodes were evaluated."""
        cache = self.handle.cache
        table = cache.table
        size = table.size
        valid = table.valid[:size]
        num_all = int(valid.sum())
        if num_all == 0:
            return np.empty(0, dtype=np.int64), 0
        nominated_node = pod.nominated_node_name
        if nominated_node:
            info = cache.nodes.get(nominated_node)
            if info is not None and info.node is not None:
                status = self.run_filter_with_nominated(state, pod, info)
                if status.is_success():
                    return np.array([info.slot], dtype=np.int64), 1
        to_find = num_feasible_nodes_to_find(self.percentage, num_all)
        mask = valid.copy()
        first_fail = np.full(size, -1, dtype=np.int16)
        filters = [p for p in self.points["filter"] if p.name not in state.skip_filter]
        per_node: list[Any] = []
        for index, plugin in enumerate(filters):
            batch = getattr(plugin, "filter_nodes", None)
            if batch is None:
                per_node.append(plugin)
                continue
            passed = batch(state, pod, table)
            if passed is None:
                continue
            passed = passed[:size]
            failed_now = mask & ~passed
            if failed_now.any():
                first_fail[failed_now] = index
                mask &= passed
        # nodes with nominated pods are judged one by one, with those pods counted
        nominator = self.handle.nominator
        special: list[int] = []
        if nominator is not None and nominator.count:
            for node_name in nominator.nodes():
                info = cache.nodes.get(node_name)
                if info is not None and info.slot < size and mask[info.slot] \
                        and self.nominated_pods_for(node_name, pod):
                    special.append(info.slot)
        candidates = np.flatnonzero(mask)
        start = self.next_start % size if size else 0
        cut = int(np.searchsorted(candidates, start))
        ordered = np.concatenate([candidates[cut:], candidates[:cut]]) if cut else candidates
        if not per_node and not special:
            if len(ordered) > to_find:
                last = int(ordered[to_find - 1])
                processed = (last - start) % size + 1
                ordered = ordered[:to_find]
            else:
                processed = size
            self.next_start = (start + processed) % size if size else 0
            if len(ordered) == 0:
                self._diagnose(state, pod, filters, first_fail, diagnosis)
            return ordered, min(processed, num_all)
        special_set = set(special)
        feasible: list[int] = []
        infos = table.infos
        processed = 0
        for slot in ordered.tolist():
            processed = (slot - start) % size + 1
            info = infos[slot]
            assert info is not None
            status = SUCCESS
            if slot in special_set:
                status = self.run_filter_with_nominated(state, pod, info)
            else:
                for plugin in per_node:
                    status = as_status(plugin.filter(state, pod, info), plugin.name)
                    if not status.is_success():
                        break
            if status.is_success():
                feasible.append(slot)
                if len(feasible) >= to_find:
                    break
            else:
                diagnosis.node_statuses[info.name] = status
                diagnosis.unschedulable_plugins.add(status.plugin)
        else:
            processed = size
        self.next_start = (start + processed) % size if size else 0
        if not feasible:
            self._diagnose(state, pod, filters, first_fail, diagnosis)
        return np.array(feasible, dtype=np.int64), min(processed, num_all)

    def _diagnose(self, state: CycleState, pod: PodInfo, filters: list[Any],
                  first_fail: np.ndarray, diagnosis: Diagnosis) -> None:
        """Ask the plugin that rejected each node why (only when nothing fits)."""
        infos = self.handle.cache.table.infos
        for slot in np.flatnonzero(first_fail >= 0).tolist():
            info = infos[slot]
            if info is None:
                continue
            plugin = filters[int(first_fail[slot])]
            status = as_status(plugin.filter(state, pod, info), plugin.name)
            if status.is_success():  # batch and per-node disagree: report the batch verdict
                status = Status.unschedulable(f"node(s) rejected by {plugin.name}",
                                              plugin=plugin.name)
            diagnosis.node_statuses[info.name] = status
            diagnosis.unschedulable_plugins.add(plugin.name)

    # -- scoring -------------------------------------------------------------------------------

    def run_pre_score(self, state: CycleState, pod: PodInfo, slots: np.ndarray) -> Status:
        for plugin in self.points["pre_score"]:
            status = as_status(plugin.pre_score(state, pod, slots), plugin.name)
            if status.is_skip():
                state.skip_score.add(plugin.name)
                continue
            if not status.is_success():
                return status
        return SUCCESS

    def run_score(self, state: CycleState, pod: PodInfo, slots: np.ndarray
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Weighted total per slot, and each plugin's normalized scores."""
        table = self.handle.cache.table
        total = np.zeros(len(slots), dtype=np.int64)
        each: dict[str, np.ndarray] = {}
        infos = table.infos
        for plugin, name in self._score_entries:
            if name in state.skip_score:
                continue
            batch = getattr(plugin, "score_nodes", None)
            if batch is not None:
                raw = batch(state, pod, table, slots)
                if raw is None:  # the plugin gives every node the same score
                    continue
                scores = np.asarray(raw, dtype=np.int64)
            else:
                values = []
                for slot in slots.tolist():
                    result = plugin.score(state, pod, infos[slot])
                    if isinstance(result, tuple):
                        result, status = result
                        status = as_status(status, name)
                        if not status.is_success():
                            raise RuntimeError(f"score plugin {name}: {status.message()}")
                    values.append(int(result))
                scores = np.array(values, dtype=np.int64)
            normalize = getattr(plugin, "normalize_score", None)
            if normalize is not None:
                status = as_status(normalize(state, pod, scores), name)
                if not status.is_success():
                    raise RuntimeError(f"normalize_score of {name}: {status.message()}")
            if batch is None:
                np.clip(scores, 0, MAX_NODE_SCORE, out=scores)
            each[name] = scores
            total += scores * self.weights.get(name, 1)
        return total, each

    def select_host(self, slots: np.ndarray, totals: np.ndarray) -> int:
        """The best slot; ties broken at random (as Kubernetes' reservoir sampling)."""
        best = totals.max()
        winners = np.flatnonzero(totals == best)
        if len(winners) == 1:
            return int(slots[winners[0]])
        return int(slots[winners[self.rng.randrange(len(winners))]])

    # -- the algorithm -----------------------------------------------------------------------

    def schedule(self, state: CycleState, pod: PodInfo) -> ScheduleResult:
        """Pick a node for ``pod`` (Kubernetes' ``schedulePod``).

        :raises FitError: when no node fits (after PreFilter or Filter).
        :raises RuntimeError: when a plugin fails.
        """
        cache = self.handle.cache
        num_all = cache.node_count
        diagnosis = Diagnosis()
        if num_all == 0:
            raise FitError(pod, 0, diagnosis)
        status = self.run_pre_filter(state, pod)
        if not status.is_success():
            if status.code is Code.ERROR:
                raise RuntimeError(f"running PreFilter plugin {status.plugin!r}: "
                                   f"{status.message()}")
            diagnosis.pre_filter_msg = status.message()
            diagnosis.unschedulable_plugins.add(status.plugin)
            for info in cache.live_nodes():
                diagnosis.node_statuses[info.name] = status
            raise FitError(pod, num_all, diagnosis)
        slots, evaluated = self.find_feasible(state, pod, diagnosis)
        if len(slots) == 0:
            raise FitError(pod, num_all, diagnosis)
        table = cache.table
        if len(slots) == 1:
            return ScheduleResult(table.names[int(slots[0])] or "", evaluated, 1)
        status = self.run_pre_score(state, pod, slots)
        if not status.is_success():
            raise RuntimeError(f"running PreScore plugin {status.plugin!r}: "
                               f"{status.message()}")
        totals, _ = self.run_score(state, pod, slots)
        slot = self.select_host(slots, totals)
        return ScheduleResult(table.names[slot] or "", evaluated, len(slots))

    # -- after a decision --------------------------------------------------------------------

    def run_post_filter(self, state: CycleState, pod: PodInfo, statuses: Mapping[str, Status]
                        ) -> tuple[str | None, Status]:
        """PostFilter plugins in turn until one makes the pod schedulable (preemption)."""
        last = Status.unschedulable()
        reasons: list[str] = []
        for plugin in self.points["post_filter"]:
            result = plugin.post_filter(state, pod, statuses)
            nominated, status = result if isinstance(result, tuple) else (None, result)
            status = as_status(status, plugin.name)
            if status.is_success():
                return nominated, status
            if status.message():
                reasons.append(status.message())
            last = status
            if status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                break
        if reasons:
            last = Status(last.code, " ".join(reasons), plugin=last.plugin)
        return None, last

    def run_reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        for plugin in self.points["reserve"]:
            status = as_status(plugin.reserve(state, pod, node), plugin.name)
            if not status.is_success():
                # as Kubernetes: every reserve plugin's unreserve, in reverse order
                self.run_unreserve(state, pod, node)
                return status
        return SUCCESS

    def run_unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        for plugin in reversed(self.points["reserve"]):
            self._unreserve_one(plugin, state, pod, node)

    @staticmethod
    def _unreserve_one(plugin: Any, state: CycleState, pod: PodInfo, node: str) -> None:
        unreserve = getattr(plugin, "unreserve", None)
        if unreserve is not None:
            try:
                unreserve(state, pod, node)
            except Exception:
                log.exception("unreserve of %s failed", plugin.name)

    def run_permit(self, state: CycleState, pod: PodInfo, node: str
                   ) -> tuple[Status, float]:
        """Success, a rejection, or Wait with the longest timeout any plugin asked for."""
        wait = 0.0
        waiting = False
        for plugin in self.points["permit"]:
            result = plugin.permit(state, pod, node)
            timeout = 0.0
            if isinstance(result, tuple):
                result, timeout = result
            status = as_status(result, plugin.name)
            if status.code is Code.WAIT:
                waiting = True
                wait = max(wait, float(timeout or 0))
                continue
            if not status.is_success():
                return status, 0.0
        if waiting:
            return Status.wait(), wait
        return SUCCESS, 0.0

    def plugin_names(self, point: str) -> list[str]:
        return [p.name for p in self.points[point]]


def build_registry(contributions: Iterable[tuple[str, PluginFactory]]) -> dict[str, PluginFactory]:
    return dict(contributions)

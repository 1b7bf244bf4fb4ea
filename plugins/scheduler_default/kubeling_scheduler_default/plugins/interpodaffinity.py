"""InterPodAffinity: required and preferred pod affinity and anti-affinity by topologyKey.

Counting follows Kubernetes: for the incoming pod, how many existing pods match all its
affinity terms / each anti-affinity term in every topology domain, and in which domains
existing pods have anti-affinity terms matching the incoming pod.  Counts come from the
cache's pod groups (pods sharing namespace and labels), not from every pod.

Args: ``hardPodAffinityWeight`` (default 1), ``ignorePreferredTermsOfExistingPods``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from kubeling_scheduler_default.cache import Cache, SlotCounter
from kubeling_scheduler_default.framework import CycleState
from kubeling_scheduler_default.nodeinfo import NodeInfo, NodeTable
from kubeling_scheduler_default.podinfo import AffinityTerm, PodInfo
from kubeling_scheduler_default.status import Status

__all__ = [
    "ERR_AFFINITY",
    "ERR_ANTI_AFFINITY",
    "ERR_EXISTING_ANTI_AFFINITY",
    "InterPodAffinity",
    "affinity_state_from_nodes",
]

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
MAX_NODE_SCORE = 100
_STATE = "InterPodAffinity/prefilter"
_SCORE = "InterPodAffinity/prescore"


def _matches_all(terms: Iterable[AffinityTerm], pod: PodInfo,
                 ns_labels: Mapping[str, str] | None) -> bool:
    terms = tuple(terms)
    return bool(terms) and all(t.matches(pod.namespace, pod.labels, ns_labels) for t in terms)


class _State:
    """PreFilter state: counts per topology domain (arrays indexed by domain id)."""

    __slots__ = ("aff", "anti", "existing", "self_match", "table")

    def __init__(self, table: NodeTable) -> None:
        self.table = table
        self.aff: list[tuple[AffinityTerm, np.ndarray]] = []
        self.anti: list[tuple[AffinityTerm, np.ndarray]] = []
        self.existing: dict[str, np.ndarray] = {}
        self.self_match = False

    def clone(self) -> _State:
        other = _State(self.table)
        other.aff = [(t, c.copy()) for t, c in self.aff]
        other.anti = [(t, c.copy()) for t, c in self.anti]
        other.existing = {k: c.copy() for k, c in self.existing.items()}
        other.self_match = self.self_match
        return other

    @property
    def aff_any(self) -> bool:
        return any(int(c.sum()) > 0 for _, c in self.aff)

    def _at(self, counts: np.ndarray, key: str, value: str | None) -> int:
        if value is None:
            return 0
        ident = self.table.domain(key).value_ids.get(value, -1)
        return int(counts[ident]) if 0 <= ident < len(counts) else 0

    def bump(self, counts: np.ndarray, key: str, value: str | None, delta: int
             ) -> np.ndarray:
        if value is None:
            return counts
        index = self.table.domain(key)
        ident = index.value_ids.get(value, -1)
        if ident < 0:
            return counts
        if ident >= len(counts):
            counts = np.concatenate([counts, np.zeros(index.size - len(counts),
                                                      dtype=counts.dtype)])
        counts[ident] += delta
        return counts

    # -- the pure per-node check --------------------------------------------------------------

    def check(self, labels: Mapping[str, str]) -> str | None:
        """Which rule a node with these labels breaks, or None."""
        pods_exist = True
        for term, counts in self.aff:
            value = labels.get(term.topology_key)
            if value is None:
                return ERR_AFFINITY
            if self._at(counts, term.topology_key, value) <= 0:
                pods_exist = False
        if not pods_exist and not (not self.aff_any and self.self_match):
            return ERR_AFFINITY
        for term, counts in self.anti:
            if self._at(counts, term.topology_key, labels.get(term.topology_key)) > 0:
                return ERR_ANTI_AFFINITY
        for key, counts in self.existing.items():
            if self._at(counts, key, labels.get(key)) > 0:
                return ERR_EXISTING_ANTI_AFFINITY
        return None


def _per_domain(table: NodeTable, key: str, per_slot: np.ndarray) -> np.ndarray:
    """Slot counts summed into the domains of label ``key`` (live nodes only)."""
    index = table.domain(key)
    size = table.size
    ids = index.ids[:size]
    take = (ids >= 0) & table.valid[:size]
    return np.bincount(ids[take], weights=per_slot[:size][take],
                       minlength=index.size).astype(np.int64)


def _by_slot(table: NodeTable, key: str, per_domain: np.ndarray) -> np.ndarray:
    """Domain values spread back onto slots (0 for slots without the label)."""
    ids = table.domain(key).ids[: table.size]
    ext = np.zeros(max(len(per_domain), table.domain(key).size) + 1, dtype=per_domain.dtype)
    ext[: len(per_domain)] = per_domain
    return ext[ids]  # id -1 reads the trailing 0


def affinity_state_from_nodes(pod: PodInfo, nodes: Iterable[NodeInfo], table: NodeTable,
                              ns_labels: Mapping[str, Mapping[str, str]]) -> _State:
    """The PreFilter state computed the plain way, pod by pod (a reference for tests)."""
    state = _State(table)
    own_ns = ns_labels.get(pod.namespace)
    state.self_match = _matches_all(pod.affinity_terms, pod, own_ns)
    aff = {id(t): np.zeros(table.domain(t.topology_key).size, dtype=np.int64)
           for t in pod.affinity_terms}
    anti = {id(t): np.zeros(table.domain(t.topology_key).size, dtype=np.int64)
            for t in pod.anti_affinity_terms}
    for info in nodes:
        if info.node is None:
            continue
        for other in info.pods.values():
            other_ns = ns_labels.get(other.namespace)
            if pod.affinity_terms and _matches_all(pod.affinity_terms, other, other_ns):
                for t in pod.affinity_terms:
                    aff[id(t)] = state.bump(aff[id(t)], t.topology_key,
                                            info.labels.get(t.topology_key), 1)
            for t in pod.anti_affinity_terms:
                if t.matches(other.namespace, other.labels, other_ns):
                    anti[id(t)] = state.bump(anti[id(t)], t.topology_key,
                                             info.labels.get(t.topology_key), 1)
            for t in other.anti_affinity_terms:
                if t.matches(pod.namespace, pod.labels, own_ns):
                    key = t.topology_key
                    counts = state.existing.get(key)
                    if counts is None:
                        counts = np.zeros(table.domain(key).size, dtype=np.int64)
                    state.existing[key] = state.bump(counts, key, info.labels.get(key), 1)
    state.aff = [(t, aff[id(t)]) for t in pod.affinity_terms]
    state.anti = [(t, anti[id(t)]) for t in pod.anti_affinity_terms]
    return state


class InterPodAffinity:
    """PreFilter (with add/remove pod), Filter, PreScore, Score and NormalizeScore."""

    name = "InterPodAffinity"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        args = dict(args or {})
        self.hard_weight = int(args.pop("hardPodAffinityWeight", 1))
        if not 0 <= self.hard_weight <= 100:
            raise ValueError("hardPodAffinityWeight must be in 0..100")
        self.ignore_existing_preferred = bool(args.pop("ignorePreferredTermsOfExistingPods",
                                                       False))
        if args:
            raise ValueError(f"unknown InterPodAffinity args: {', '.join(sorted(args))}")
        self.handle = handle
        self._anti_memo: dict[Any, tuple[int, int, dict[str, list[SlotCounter]]]] = {}

    @property
    def cache(self) -> Cache:
        return self.handle.cache

    def _ns(self, namespace: str) -> Mapping[str, str] | None:
        return self.cache.namespace_labels.get(namespace)

    def _groups_matching(self, key: Any, pred: Any) -> list[SlotCounter]:
        cache = self.cache
        return cache.by_labels.matching(key, pred, cache.ns_version)

    def _term_counts(self, terms: tuple[AffinityTerm, ...], key: str, tag: str
                     ) -> np.ndarray:
        """Pods matching all ``terms``, per domain of ``key``."""
        ns = self._ns

        def pred(g: SlotCounter) -> bool:
            sample = g.sample
            labels_ns = ns(sample.namespace)
            return all(t.matches(sample.namespace, sample.labels, labels_ns) for t in terms)

        groups = self._groups_matching((tag, terms), pred)
        cache = self.cache
        return _per_domain(cache.table, key, cache.count_vector(groups))

    def _existing_anti(self, pod: PodInfo) -> dict[str, np.ndarray]:
        cache = self.cache
        out: dict[str, np.ndarray] = {}
        if not cache.pods_with_required_anti_affinity:
            return out
        index = cache.by_anti_terms
        memo_key = (pod.namespace, frozenset(pod.labels.items()))
        found = self._anti_memo.get(memo_key)
        if found is not None and found[0] == index.version and found[1] == cache.ns_version:
            per_key = found[2]
        else:
            own_ns = self._ns(pod.namespace)
            per_key = {}
            for group in index.groups.values():
                for term in group.key:  # the group's required anti-affinity terms
                    if term.matches(pod.namespace, pod.labels, own_ns):
                        per_key.setdefault(term.topology_key, []).append(group)
            if len(self._anti_memo) > 4096:
                self._anti_memo.clear()
            self._anti_memo[memo_key] = (index.version, cache.ns_version, per_key)
        for key, groups in per_key.items():
            out[key] = _per_domain(cache.table, key, cache.count_vector(groups))
        return out

    # -- filter --------------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo) -> Status | None:
        cache = self.cache
        if not pod.affinity_terms and not pod.anti_affinity_terms \
                and not cache.pods_with_required_anti_affinity:
            return Status.skip()
        table = cache.table
        st = _State(table)
        st.self_match = _matches_all(pod.affinity_terms, pod, self._ns(pod.namespace))
        for term in pod.affinity_terms:
            st.aff.append((term, self._term_counts(pod.affinity_terms, term.topology_key,
                                                   "aff-all")))
        for term in pod.anti_affinity_terms:
            st.anti.append((term, self._term_counts((term,), term.topology_key, "anti")))
        st.existing = self._existing_anti(pod)
        state.write(_STATE, st)
        return None

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node_info: NodeInfo
                ) -> Status | None:
        self._update(state, pod, added, node_info, 1)
        return None

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                   node_info: NodeInfo) -> Status | None:
        self._update(state, pod, removed, node_info, -1)
        return None

    def _update(self, state: CycleState, pod: PodInfo, other: PodInfo, node_info: NodeInfo,
                delta: int) -> None:
        st: _State | None = state.read(_STATE)
        if st is None:
            return
        labels = node_info.labels
        other_ns = self._ns(other.namespace)
        if pod.affinity_terms and _matches_all(pod.affinity_terms, other, other_ns):
            st.aff = [(t, st.bump(c, t.topology_key, labels.get(t.topology_key), delta))
                      for t, c in st.aff]
        st.anti = [(t, st.bump(c, t.topology_key, labels.get(t.topology_key), delta)
                    if t.matches(other.namespace, other.labels, other_ns) else c)
                   for t, c in st.anti]
        own_ns = self._ns(pod.namespace)
        for t in other.anti_affinity_terms:
            if t.matches(pod.namespace, pod.labels, own_ns):
                key = t.topology_key
                counts = st.existing.get(key)
                if counts is None:
                    counts = np.zeros(st.table.domain(key).size, dtype=np.int64)
                st.existing[key] = st.bump(counts, key, labels.get(key), delta)

    def filter(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> Status | None:
        st: _State | None = state.read(_STATE)
        if st is None:
            return None
        reason = st.check(node_info.labels)
        if reason is None:
            return None
        if reason == ERR_AFFINITY:
            return Status.unresolvable(reason, plugin=self.name)
        return Status.unschedulable(reason, plugin=self.name)

    def filter_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable
                     ) -> np.ndarray | None:
        st: _State | None = state.read(_STATE)
        if st is None:
            return None
        size = table.size
        mask = np.ones(size, dtype=bool)
        if st.aff:
            has_all = np.ones(size, dtype=bool)
            exist = np.ones(size, dtype=bool)
            for term, counts in st.aff:
                has_all &= table.domain(term.topology_key).ids[:size] >= 0
                exist &= _by_slot(table, term.topology_key, counts) > 0
            if not st.aff_any and st.self_match:
                mask &= has_all
            else:
                mask &= has_all & exist
        for term, counts in st.anti:
            mask &= _by_slot(table, term.topology_key, counts) <= 0
        for key, counts in st.existing.items():
            mask &= _by_slot(table, key, counts) <= 0
        return mask

    # -- score ---------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, slots: Any) -> Status | None:
        cache = self.cache
        own = bool(pod.preferred_affinity_terms or pod.preferred_anti_affinity_terms)
        if not own and (self.ignore_existing_preferred or not cache.pods_with_affinity):
            return Status.skip()
        table = cache.table
        scores: dict[str, np.ndarray] = {}

        def add(key: str, per_domain: np.ndarray, weight: int) -> None:
            current = scores.get(key)
            size = table.domain(key).size
            if current is None:
                current = np.zeros(size, dtype=np.int64)
            if len(current) < size:
                current = np.concatenate([current, np.zeros(size - len(current),
                                                            dtype=np.int64)])
            current[: len(per_domain)] += weight * per_domain
            scores[key] = current

        for term in pod.preferred_affinity_terms:
            add(term.topology_key, self._term_counts((term,), term.topology_key, "anti"),
                term.weight)
        for term in pod.preferred_anti_affinity_terms:
            add(term.topology_key, self._term_counts((term,), term.topology_key, "anti"),
                -term.weight)
        if cache.pods_with_affinity:
            own_ns = self._ns(pod.namespace)
            for group in cache.by_affinity_terms.groups.values():
                required, preferred, preferred_anti = group.key
                vec = None
                weighted: list[tuple[AffinityTerm, int]] = []
                if self.hard_weight > 0:
                    weighted += [(t, self.hard_weight) for t in required]
                if not self.ignore_existing_preferred:
                    weighted += [(t, t.weight) for t in preferred]
                    weighted += [(t, -t.weight) for t in preferred_anti]
                for term, weight in weighted:
                    if weight and term.matches(pod.namespace, pod.labels, own_ns):
                        if vec is None:
                            vec = group.vector(table.capacity)
                        add(term.topology_key, _per_domain(table, term.topology_key, vec),
                            weight)
        if not scores:
            return Status.skip()
        state.write(_SCORE, scores)
        return None

    def score(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> int:
        scores: dict[str, np.ndarray] | None = state.read(_SCORE)
        if not scores:
            return 0
        table = self.cache.table
        total = 0
        for key, per_domain in scores.items():
            value = node_info.labels.get(key)
            if value is None:
                continue
            ident = table.domain(key).value_ids.get(value, -1)
            if 0 <= ident < len(per_domain):
                total += int(per_domain[ident])
        return total

    def score_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable,
                    slots: np.ndarray) -> np.ndarray:
        scores: dict[str, np.ndarray] | None = state.read(_SCORE)
        total = np.zeros(len(slots), dtype=np.int64)
        for key, per_domain in (scores or {}).items():
            total += _by_slot(table, key, per_domain)[slots]
        return total

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: np.ndarray) -> None:
        if len(scores) == 0:
            return
        low, high = int(scores.min()), int(scores.max())
        diff = high - low
        if diff > 0:
            scores[:] = (MAX_NODE_SCORE * ((scores - low) / diff)).astype(np.int64)
        else:
            scores[:] = 0

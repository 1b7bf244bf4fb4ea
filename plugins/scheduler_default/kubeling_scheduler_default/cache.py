"""The scheduler's cache: NodeInfos fed by informers, with assumed pods.

A pod the scheduler has decided on is *assumed* on its node at once, so the next pod sees
that decision before the binding reaches the API server; when the bound pod comes back
through the informer the assumption is confirmed, and a failed binding forgets it.

Besides the NodeInfos and their :class:`~kubeling_scheduler_default.nodeinfo.NodeTable`
columns the cache keeps indexes the affinity and spread plugins count with: pods grouped
by (namespace, labels) and by their affinity terms, each group counting its pods per node
slot.  A selector is matched against groups, not against every pod.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import numpy as np

from kubeling_scheduler_default.nodeinfo import NodeInfo, NodeTable
from kubeling_scheduler_default.podinfo import PodInfo

__all__ = ["Cache", "SlotCounter"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class SlotCounter:
    """How many pods of one group sit on each node slot."""

    __slots__ = ("_vec", "_vec_version", "counts", "key", "sample", "total", "version")

    def __init__(self, key: Hashable, sample: PodInfo) -> None:
        self.key = key
        self.sample = sample
        """One pod of the group (all share what the key says)."""
        self.counts: dict[int, int] = {}
        self.total = 0
        self.version = 0
        self._vec: np.ndarray | None = None
        self._vec_version = -1

    def add(self, slot: int, delta: int) -> None:
        left = self.counts.get(slot, 0) + delta
        if left:
            self.counts[slot] = left
        else:
            self.counts.pop(slot, None)
        self.total += delta
        self.version += 1

    def vector(self, capacity: int) -> np.ndarray:
        """Counts as a dense int64 array over slots (cached until the group changes)."""
        vec = self._vec
        if vec is None or self._vec_version != self.version or len(vec) != capacity:
            vec = np.zeros(capacity, dtype=np.int64)
            if self.counts:
                slots = np.fromiter(self.counts.keys(), dtype=np.int64, count=len(self.counts))
                vals = np.fromiter(self.counts.values(), dtype=np.int64,
                                   count=len(self.counts))
                vec[slots] = vals
            self._vec = vec
            self._vec_version = self.version
        return vec


class _GroupIndex:
    """Pods grouped by a key, counted per slot; remembers which groups matched what."""

    def __init__(self, key_of: Callable[[PodInfo], Hashable | None]) -> None:
        self.key_of = key_of
        self.groups: dict[Hashable, SlotCounter] = {}
        self.version = 0
        """Grows when a group appears or disappears."""
        self._matches: dict[Hashable, tuple[int, int, list[SlotCounter]]] = {}

    def add(self, pi: PodInfo, slot: int, delta: int) -> None:
        key = self.key_of(pi)
        if key is None:
            return
        group = self.groups.get(key)
        if group is None:
            if delta < 0:
                return
            group = self.groups[key] = SlotCounter(key, pi)
            self.version += 1
        group.add(slot, delta)
        if group.total <= 0:
            del self.groups[key]
            self.version += 1

    def matching(self, matcher_key: Hashable, predicate: Callable[[SlotCounter], bool],
                 ns_version: int) -> list[SlotCounter]:
        """Groups for which ``predicate`` holds, memoized under ``matcher_key``."""
        found = self._matches.get(matcher_key)
        if found is not None and found[0] == self.version and found[1] == ns_version:
            return found[2]
        groups = [g for g in self.groups.values() if predicate(g)]
        if len(self._matches) > 4096:
            self._matches.clear()
        self._matches[matcher_key] = (self.version, ns_version, groups)
        return groups


def _labels_key(pi: PodInfo) -> Hashable:
    return (pi.namespace, frozenset(pi.labels.items()), pi.deleting)


def _anti_key(pi: PodInfo) -> Hashable | None:
    return pi.anti_affinity_terms or None


def _affinity_key(pi: PodInfo) -> Hashable | None:
    if not (pi.affinity_terms or pi.preferred_affinity_terms
            or pi.preferred_anti_affinity_terms):
        return None
    return (pi.affinity_terms, pi.preferred_affinity_terms, pi.preferred_anti_affinity_terms)


class _PodState:
    __slots__ = ("assumed", "binding_finished", "info", "node")

    def __init__(self, info: PodInfo, node: str, assumed: bool) -> None:
        self.info = info
        self.node = node
        self.assumed = assumed
        self.binding_finished = False


class Cache:
    """NodeInfos by name, their table, assumed pods and the affinity indexes."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.table = NodeTable()
        self._pods: dict[str, _PodState] = {}
        self.by_labels = _GroupIndex(_labels_key)
        self.by_anti_terms = _GroupIndex(_anti_key)
        self.by_affinity_terms = _GroupIndex(_affinity_key)
        self.image_nodes: dict[str, set[str]] = {}
        """Normalized image name -> names of nodes that have it (ImageLocality's spread)."""
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.ns_version = 0
        self.pods_with_affinity = 0
        self.pods_with_required_anti_affinity = 0

    # -- nodes ---------------------------------------------------------------------------------

    def add_node(self, node: Obj) -> NodeInfo:
        name = (node.get("metadata") or {}).get("name") or ""
        info = self.nodes.get(name)
        if info is None:
            info = NodeInfo(node)
            self.nodes[name] = info
            self.table.add(info)
        else:  # a ghost (pods arrived first, or the node came back): fill it in
            self._forget_images(info)
            info.set_node(node)
            self.table.set_node(info)
        self._remember_images(info)
        return info

    def update_node(self, node: Obj) -> NodeInfo:
        name = (node.get("metadata") or {}).get("name") or ""
        info = self.nodes.get(name)
        if info is None:
            return self.add_node(node)
        self._forget_images(info)
        info.set_node(node)
        self.table.set_node(info)
        self._remember_images(info)
        return info

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None:
            return
        self._forget_images(info)
        info.node = None
        if info.pods:  # keep a ghost until its pods are gone, as Kubernetes does
            self.table.set_valid(info.slot, False)
            return
        self.table.release(info.slot)
        del self.nodes[name]

    def _remember_images(self, info: NodeInfo) -> None:
        for image in info.images:
            self.image_nodes.setdefault(image, set()).add(info.name)

    def _forget_images(self, info: NodeInfo) -> None:
        for image in info.images:
            holders = self.image_nodes.get(image)
            if holders is not None:
                holders.discard(info.name)
                if not holders:
                    del self.image_nodes[image]

    def _node_for_pod(self, name: str) -> NodeInfo:
        info = self.nodes.get(name)
        if info is None:
            info = NodeInfo(name=name)
            self.nodes[name] = info
            self.table.add(info)
        return info

    @property
    def node_count(self) -> int:
        """Live nodes (ghosts without a Node object do not count)."""
        return int(self.table.valid[: self.table.size].sum())

    def live_nodes(self) -> list[NodeInfo]:
        return [i for i in self.nodes.values() if i.node is not None]

    # -- pods ----------------------------------------------------------------------------------

    def _place(self, pi: PodInfo, node: str) -> None:
        info = self._node_for_pod(node)
        info.add_pod(pi)
        self.table.add_pod_usage(info.slot, pi, 1)
        slot = info.slot
        self.by_labels.add(pi, slot, 1)
        if pi.anti_affinity_terms:
            self.by_anti_terms.add(pi, slot, 1)
            self.pods_with_required_anti_affinity += 1
        if pi.has_affinity:
            self.by_affinity_terms.add(pi, slot, 1)
            self.pods_with_affinity += 1

    def _unplace(self, pi: PodInfo, node: str) -> None:
        info = self.nodes.get(node)
        if info is None or not info.remove_pod(pi):
            return
        slot = info.slot
        self.table.add_pod_usage(slot, pi, -1)
        self.by_labels.add(pi, slot, -1)
        if pi.anti_affinity_terms:
            self.by_anti_terms.add(pi, slot, -1)
            self.pods_with_required_anti_affinity -= 1
        if pi.has_affinity:
            self.by_affinity_terms.add(pi, slot, -1)
            self.pods_with_affinity -= 1
        if info.node is None and not info.pods:
            self.table.release(slot)
            del self.nodes[node]

    def assume_pod(self, pi: PodInfo, node: str) -> None:
        """Count ``pi`` on ``node`` before its binding lands."""
        if pi.key in self._pods:
            raise ValueError(f"pod {pi.key} is already in the cache")
        pi.node_name = node
        self._pods[pi.key] = _PodState(pi, node, True)
        self._place(pi, node)

    def finish_binding(self, pi: PodInfo) -> None:
        state = self._pods.get(pi.key)
        if state is not None and state.assumed:
            state.binding_finished = True

    def forget_pod(self, pi: PodInfo) -> None:
        """Undo :meth:`assume_pod` (the binding failed)."""
        state = self._pods.get(pi.key)
        if state is None or not state.assumed:
            return
        del self._pods[pi.key]
        self._unplace(state.info, state.node)
        state.info.node_name = ""

    def is_assumed(self, key: str) -> bool:
        state = self._pods.get(key)
        return state is not None and state.assumed

    def add_pod(self, pi: PodInfo) -> None:
        """A bound pod seen through the informer (confirms an assumption)."""
        state = self._pods.get(pi.key)
        if state is not None:
            if state.assumed and state.node == pi.node_name:
                state.assumed = False
                self._swap(state, pi)
                return
            self._unplace(state.info, state.node)
        self._pods[pi.key] = _PodState(pi, pi.node_name, False)
        self._place(pi, pi.node_name)

    def _swap(self, state: _PodState, pi: PodInfo) -> None:
        """Replace the cached PodInfo if anything the plugins count changed."""
        old = state.info
        if (old.requests == pi.requests and old.labels == pi.labels
                and old.deleting == pi.deleting and old.host_ports == pi.host_ports
                and old.has_affinity == pi.has_affinity and old.priority == pi.priority):
            info = self.nodes.get(state.node)
            if info is not None and old.key in info.pods:
                info.pods[old.key] = pi
                if pi.key in info.pods_with_affinity:
                    info.pods_with_affinity[pi.key] = pi
                if pi.key in info.pods_with_required_anti_affinity:
                    info.pods_with_required_anti_affinity[pi.key] = pi
            state.info = pi
            return
        self._unplace(old, state.node)
        state.info = pi
        self._place(pi, state.node)

    def update_pod(self, pi: PodInfo) -> None:
        state = self._pods.get(pi.key)
        if state is None:
            self.add_pod(pi)
            return
        if state.node != pi.node_name:
            self._unplace(state.info, state.node)
            state.node = pi.node_name
            state.info = pi
            state.assumed = False
            self._place(pi, pi.node_name)
            return
        state.assumed = False
        self._swap(state, pi)

    def remove_pod(self, key: str) -> PodInfo | None:
        state = self._pods.pop(key, None)
        if state is None:
            return None
        self._unplace(state.info, state.node)
        return state.info

    def pod(self, key: str) -> PodInfo | None:
        state = self._pods.get(key)
        return state.info if state is not None else None

    def pod_node(self, key: str) -> str | None:
        state = self._pods.get(key)
        return state.node if state is not None else None

    @property
    def pod_count(self) -> int:
        return len(self._pods)

    def assumed_count(self) -> int:
        return sum(1 for s in self._pods.values() if s.assumed)

    # -- namespaces ------------------------------------------------------------------------------

    def set_namespace(self, name: str, labels: dict[str, str] | None) -> None:
        if labels is None:
            if self.namespace_labels.pop(name, None) is not None:
                self.ns_version += 1
            return
        if self.namespace_labels.get(name) != labels:
            self.namespace_labels[name] = dict(labels)
            self.ns_version += 1

    # -- counting helpers for plugins --------------------------------------------------------------

    def count_vector(self, groups: Iterable[Any]) -> np.ndarray:
        """Pods of ``groups`` per slot, summed (length: table capacity)."""
        cap = self.table.capacity
        total: np.ndarray | None = None
        for group in groups:
            vec = group.vector(cap)
            total = vec.copy() if total is None else total + vec
        if total is None:
            return np.zeros(cap, dtype=np.int64)
        return total

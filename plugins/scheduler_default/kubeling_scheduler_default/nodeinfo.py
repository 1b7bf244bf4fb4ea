"""Nodes as the scheduler sees them: :class:`NodeInfo` and the columnar :class:`NodeTable`.

A :class:`NodeInfo` is one node with the pods on it (bound or assumed): what it can hold,
what is requested, the host ports in use, the pods with affinity terms.  The pure
``fits``/``score`` helpers of the default plugins read it.

The :class:`NodeTable` holds the same numbers as numpy columns, one slot per node, so
that the default plugins can filter and score thousands of nodes with a few array
operations per pod (their ``filter_nodes``/``score_nodes`` methods).  The cache keeps
both in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from kubeling_scheduler_default.podinfo import (
    CPU,
    EPHEMERAL_STORAGE,
    MEMORY,
    PODS,
    PodInfo,
    Taint,
    parse_taints,
    quantity,
)

__all__ = ["NAME_DOMAIN", "DomainIndex", "NodeInfo", "NodeTable", "normalized_image_name"]

Obj = dict[str, Any]

NAME_DOMAIN = "metadata.name"
"""Domain key whose values are node names (``matchFields`` of node affinity)."""

BASE_RESOURCES = (CPU, MEMORY, EPHEMERAL_STORAGE)
"""Resource rows every table has; extended resources get rows as they appear."""


def normalized_image_name(name: str) -> str:
    """``nginx`` -> ``nginx:latest`` (how node image lists name tags)."""
    if name.rfind(":") <= name.rfind("/"):
        return name + ":latest"
    return name


class NodeInfo:
    """One node and the pods assigned (or assumed) to it."""

    __slots__ = (
        "allocatable", "generation", "images", "labels", "name", "node", "non_zero_cpu",
        "non_zero_memory", "pods", "pods_with_affinity", "pods_with_required_anti_affinity",
        "requested", "slot", "taints", "unschedulable", "used_ports",
    )

    def __init__(self, node: Obj | None = None, *, name: str = "") -> None:
        self.name = name
        self.node: Obj | None = None
        self.slot = -1
        self.labels: dict[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        self.allocatable: dict[str, int] = {}
        self.images: dict[str, int] = {}
        self.pods: dict[str, PodInfo] = {}
        self.requested: dict[str, int] = {}
        self.non_zero_cpu = 0
        self.non_zero_memory = 0
        self.used_ports: dict[tuple[str, int], dict[str, int]] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, PodInfo] = {}
        self.generation = 0
        if node is not None:
            self.set_node(node)

    # -- the node ---------------------------------------------------------------------------

    def set_node(self, node: Obj) -> None:
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.node = node
        self.name = meta.get("name") or self.name
        self.labels = meta.get("labels") or {}
        self.taints = parse_taints(spec.get("taints"))
        self.unschedulable = bool(spec.get("unschedulable"))
        alloc = status.get("allocatable") or status.get("capacity") or {}
        self.allocatable = {name: quantity(name, amount) for name, amount in alloc.items()}
        images: dict[str, int] = {}
        for image in status.get("images") or ():
            size = int(image.get("sizeBytes") or 0)
            for name in image.get("names") or ():
                images[normalized_image_name(name)] = size
        self.images = images
        self.generation += 1

    @property
    def allowed_pods(self) -> int:
        return self.allocatable.get(PODS, 0)

    # -- pods ---------------------------------------------------------------------------------

    def add_pod(self, pi: PodInfo) -> None:
        self.pods[pi.key] = pi
        req = self.requested
        for name, amount in pi.requests.items():
            req[name] = req.get(name, 0) + amount
        self.non_zero_cpu += pi.non_zero_cpu
        self.non_zero_memory += pi.non_zero_memory
        for ip, protocol, port in pi.host_ports:
            ips = self.used_ports.setdefault((protocol, port), {})
            ips[ip] = ips.get(ip, 0) + 1
        if pi.has_affinity:
            self.pods_with_affinity[pi.key] = pi
        if pi.anti_affinity_terms:
            self.pods_with_required_anti_affinity[pi.key] = pi
        self.generation += 1

    def remove_pod(self, pi: PodInfo) -> bool:
        """Take a pod off; False when it was not here."""
        current = self.pods.pop(pi.key, None)
        if current is None:
            return False
        req = self.requested
        for name, amount in current.requests.items():
            left = req.get(name, 0) - amount
            if left:
                req[name] = left
            else:
                req.pop(name, None)
        self.non_zero_cpu -= current.non_zero_cpu
        self.non_zero_memory -= current.non_zero_memory
        for ip, protocol, port in current.host_ports:
            ips = self.used_ports.get((protocol, port))
            if ips is not None:
                ips[ip] = ips.get(ip, 0) - 1
                if ips[ip] <= 0:
                    del ips[ip]
                if not ips:
                    del self.used_ports[(protocol, port)]
        self.pods_with_affinity.pop(pi.key, None)
        self.pods_with_required_anti_affinity.pop(pi.key, None)
        self.generation += 1
        return True

    def clone(self) -> NodeInfo:
        """A copy whose pods can be added and removed without touching this one."""
        other = NodeInfo.__new__(NodeInfo)
        other.name = self.name
        other.node = self.node
        other.slot = self.slot
        other.labels = self.labels
        other.taints = self.taints
        other.unschedulable = self.unschedulable
        other.allocatable = self.allocatable
        other.images = self.images
        other.pods = dict(self.pods)
        other.requested = dict(self.requested)
        other.non_zero_cpu = self.non_zero_cpu
        other.non_zero_memory = self.non_zero_memory
        other.used_ports = {k: dict(v) for k, v in self.used_ports.items()}
        other.pods_with_affinity = dict(self.pods_with_affinity)
        other.pods_with_required_anti_affinity = dict(self.pods_with_required_anti_affinity)
        other.generation = self.generation
        return other

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)})"


class DomainIndex:
    """The value of one label key on every slot, as small integer ids (-1: no label)."""

    __slots__ = ("ids", "key", "value_ids", "values")

    def __init__(self, key: str, capacity: int) -> None:
        self.key = key
        self.ids = np.full(capacity, -1, dtype=np.int32)
        self.values: list[str] = []
        self.value_ids: dict[str, int] = {}

    def id_of(self, value: str | None, *, add: bool = False) -> int:
        if value is None:
            return -1
        found = self.value_ids.get(value)
        if found is None:
            if not add:
                return -1
            found = len(self.values)
            self.values.append(value)
            self.value_ids[value] = found
        return found

    @property
    def size(self) -> int:
        return len(self.values)

    def grow(self, capacity: int) -> None:
        extra = np.full(capacity - len(self.ids), -1, dtype=np.int32)
        self.ids = np.concatenate([self.ids, extra])


class NodeTable:
    """numpy columns of every node slot: allocatable, requested, flags, label domains.

    Slot ``i`` belongs to ``names[i]``; ``valid[i]`` says the slot holds a live node.
    Columns are views of length ``capacity``; use ``[:size]`` for the used part.
    """

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self.size = 0
        """Slots ever used (the high-water mark)."""
        self.names: list[str | None] = []
        self.infos: list[NodeInfo | None] = []
        self.free: list[int] = []
        self.resources: list[str] = list(BASE_RESOURCES)
        self.res_index = {name: i for i, name in enumerate(self.resources)}
        self.valid = np.zeros(capacity, dtype=bool)
        self.alloc = np.zeros((len(self.resources), capacity), dtype=np.int64)
        self.req = np.zeros((len(self.resources), capacity), dtype=np.int64)
        self.nz_cpu = np.zeros(capacity, dtype=np.int64)
        self.nz_mem = np.zeros(capacity, dtype=np.int64)
        self.pod_count = np.zeros(capacity, dtype=np.int64)
        self.max_pods = np.zeros(capacity, dtype=np.int64)
        self.unschedulable = np.zeros(capacity, dtype=bool)
        self.has_ports = np.zeros(capacity, dtype=bool)
        self.taint_group = np.zeros(capacity, dtype=np.int32)
        self.taint_groups: list[tuple[Taint, ...]] = [()]
        self._taint_group_ids: dict[tuple[Taint, ...], int] = {(): 0}
        self.domains: dict[str, DomainIndex] = {}
        self.labels_version = 0
        """Grows whenever any node's labels (or the set of nodes) change."""
        self.usage_version = 0

    # -- slots ------------------------------------------------------------------------------

    def _grow(self) -> None:
        new = self.capacity * 2

        def widen(arr: np.ndarray) -> np.ndarray:
            shape = (*arr.shape[:-1], new)
            out = np.zeros(shape, dtype=arr.dtype)
            out[..., : self.capacity] = arr
            return out

        for attr in ("valid", "alloc", "req", "nz_cpu", "nz_mem", "pod_count", "max_pods",
                     "unschedulable", "has_ports", "taint_group"):
            setattr(self, attr, widen(getattr(self, attr)))
        for index in self.domains.values():
            index.grow(new)
        self.capacity = new

    def _resource_row(self, name: str) -> int:
        row = self.res_index.get(name)
        if row is None:
            row = len(self.resources)
            self.resources.append(name)
            self.res_index[name] = row
            self.alloc = np.vstack([self.alloc, np.zeros((1, self.capacity), dtype=np.int64)])
            self.req = np.vstack([self.req, np.zeros((1, self.capacity), dtype=np.int64)])
        return row

    def add(self, info: NodeInfo) -> int:
        if self.free:
            slot = self.free.pop()
        else:
            if self.size >= self.capacity:
                self._grow()
            slot = self.size
            self.size += 1
            self.names.append(None)
            self.infos.append(None)
        info.slot = slot
        self.names[slot] = info.name
        self.infos[slot] = info
        self.set_node(info)
        self.set_usage(info)
        return slot

    def release(self, slot: int) -> None:
        self.valid[slot] = False
        self.names[slot] = None
        self.infos[slot] = None
        self.alloc[:, slot] = 0
        self.req[:, slot] = 0
        self.pod_count[slot] = 0
        self.max_pods[slot] = 0
        self.nz_cpu[slot] = 0
        self.nz_mem[slot] = 0
        for index in self.domains.values():
            index.ids[slot] = -1
        self.free.append(slot)
        self.labels_version += 1

    def set_valid(self, slot: int, valid: bool) -> None:
        if bool(self.valid[slot]) != valid:
            self.valid[slot] = valid
            self.labels_version += 1

    # -- per-node updates ---------------------------------------------------------------------

    def set_node(self, info: NodeInfo) -> None:
        """Copy the node's own fields (allocatable, flags, labels) into its slot."""
        slot = info.slot
        self.valid[slot] = info.node is not None
        self.alloc[:, slot] = 0
        for name, amount in info.allocatable.items():
            if name == PODS:
                continue
            self.alloc[self._resource_row(name), slot] = amount
        self.max_pods[slot] = info.allocatable.get(PODS, 0)
        self.unschedulable[slot] = info.unschedulable
        relevant = tuple(t for t in info.taints if t.effect in ("NoSchedule", "NoExecute",
                                                                 "PreferNoSchedule"))
        group = self._taint_group_ids.get(relevant)
        if group is None:
            group = len(self.taint_groups)
            self.taint_groups.append(relevant)
            self._taint_group_ids[relevant] = group
        self.taint_group[slot] = group
        for key, index in self.domains.items():
            index.ids[slot] = index.id_of(_domain_value(info, key), add=True)
        self.labels_version += 1

    def set_usage(self, info: NodeInfo) -> None:
        """Copy what the node's pods request into its slot."""
        slot = info.slot
        self.req[:, slot] = 0
        for name, amount in info.requested.items():
            self.req[self._resource_row(name), slot] = amount
        self.nz_cpu[slot] = info.non_zero_cpu
        self.nz_mem[slot] = info.non_zero_memory
        self.pod_count[slot] = len(info.pods)
        self.has_ports[slot] = bool(info.used_ports)
        self.usage_version += 1

    def add_pod_usage(self, slot: int, pi: PodInfo, sign: int = 1) -> None:
        """Fast path of :meth:`set_usage` for one pod more (or less, ``sign=-1``)."""
        index = self.res_index
        req = self.req
        for name, amount in pi.requests.items():
            row = index.get(name)
            if row is None:
                row = self._resource_row(name)
                req = self.req
            req[row, slot] += sign * amount
        self.nz_cpu[slot] += sign * pi.non_zero_cpu
        self.nz_mem[slot] += sign * pi.non_zero_memory
        self.pod_count[slot] += sign
        if pi.host_ports:
            info = self.infos[slot]
            self.has_ports[slot] = bool(info.used_ports) if info is not None else False
        self.usage_version += 1

    # -- label domains --------------------------------------------------------------------------

    def domain(self, key: str) -> DomainIndex:
        """The per-slot values of label ``key`` (built on first use, then kept current)."""
        index = self.domains.get(key)
        if index is None:
            index = DomainIndex(key, self.capacity)
            for slot in range(self.size):
                info = self.infos[slot]
                if info is not None:
                    index.ids[slot] = index.id_of(_domain_value(info, key), add=True)
            self.domains[key] = index
        return index

    def slot_of(self, name: str) -> int:
        for slot, info in enumerate(self.infos):
            if info is not None and info.name == name:
                return slot
        return -1

    def live_infos(self) -> Iterable[NodeInfo]:
        return (i for i in self.infos if i is not None and i.node is not None)


def _domain_value(info: NodeInfo, key: str) -> str | None:
    if key == NAME_DOMAIN:
        return info.name
    return info.labels.get(key)


def resources_of(mapping: Mapping[str, Any]) -> dict[str, int]:
    return {name: quantity(name, amount) for name, amount in mapping.items()}

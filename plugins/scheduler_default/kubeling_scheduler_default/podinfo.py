"""Pods as the scheduler reads them: requests, ports, affinity terms, tolerations, spread.

:class:`PodInfo` is parsed once per pod version from the JSON-shaped dict the informer
holds and then used by every plugin; nothing here talks to the API.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from kubeling.api.quantity import milli_value, value
from kubeling.api.selectors import (
    IN,
    NOT_IN,
    LabelSelector,
    Requirement,
    SelectorError,
    label_selector_from_dict,
)

__all__ = [
    "CPU",
    "DEFAULT_MEMORY_REQUEST",
    "DEFAULT_MILLI_CPU_REQUEST",
    "EPHEMERAL_STORAGE",
    "MEMORY",
    "PODS",
    "AffinityTerm",
    "NodeSelector",
    "PodInfo",
    "Taint",
    "Toleration",
    "TopologySpreadConstraint",
    "pod_key",
    "quantity",
]

Obj = dict[str, Any]

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"
DEFAULT_MILLI_CPU_REQUEST = 100
"""What scoring assumes for a container without a cpu request (0.1 core)."""
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
"""What scoring assumes for a container without a memory request (200 MB)."""

HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"


@lru_cache(maxsize=8192)
def quantity(resource: str, text: str | int | float) -> int:
    """A resource amount as the scheduler counts it: millicores for cpu, else units."""
    try:
        return milli_value(text) if resource == CPU else value(text)
    except (ValueError, ArithmeticError):
        return 0


def pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"


def _container_requests(container: Mapping[str, Any]) -> dict[str, int]:
    requests = ((container.get("resources") or {}).get("requests")) or {}
    return {name: quantity(name, amount) for name, amount in requests.items()}


def _add(into: dict[str, int], more: Mapping[str, int]) -> None:
    for name, amount in more.items():
        into[name] = into.get(name, 0) + amount


def _max(into: dict[str, int], more: Mapping[str, int]) -> None:
    for name, amount in more.items():
        if amount > into.get(name, 0):
            into[name] = amount


def pod_requests(spec: Mapping[str, Any], *, non_missing: bool = False) -> dict[str, int]:
    """What a pod asks for, as Kubernetes computes it for scheduling.

    The sum of the app containers and of restartable (sidecar) init containers, or the
    largest need of any one init container (with the sidecars started before it) if that
    is bigger, plus ``spec.overhead``.

    :param non_missing: count a container without a cpu or memory request as asking for
        the scoring defaults (:data:`DEFAULT_MILLI_CPU_REQUEST`, :data:`DEFAULT_MEMORY_REQUEST`).
    """
    total: dict[str, int] = {}
    for container in spec.get("containers") or ():
        reqs = _container_requests(container)
        if non_missing:
            reqs.setdefault(CPU, DEFAULT_MILLI_CPU_REQUEST)
            reqs.setdefault(MEMORY, DEFAULT_MEMORY_REQUEST)
        _add(total, reqs)
    init = spec.get("initContainers") or ()
    if init:
        sidecars: dict[str, int] = {}
        init_max: dict[str, int] = {}
        for container in init:
            reqs = _container_requests(container)
            if non_missing:
                reqs.setdefault(CPU, DEFAULT_MILLI_CPU_REQUEST)
                reqs.setdefault(MEMORY, DEFAULT_MEMORY_REQUEST)
            if container.get("restartPolicy") == "Always":
                _add(total, reqs)
                _add(sidecars, reqs)
                _max(init_max, sidecars)
            else:
                need = dict(sidecars)
                _add(need, reqs)
                _max(init_max, need)
        _max(total, init_max)
    overhead = spec.get("overhead") or {}
    if overhead:
        _add(total, {name: quantity(name, amount) for name, amount in overhead.items()})
    return total


# -- taints and tolerations ----------------------------------------------------------------


class Taint(NamedTuple):
    """A node taint."""

    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        return f"{{{self.key}: {self.value}}}"


class Toleration(NamedTuple):
    """A pod toleration; :meth:`tolerates` is Kubernetes' ``ToleratesTaint``."""

    key: str
    operator: str
    value: str
    effect: str

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator in ("", "Equal"):
            return self.value == taint.value
        return self.operator == "Exists"


def parse_taints(items: Iterable[Mapping[str, Any]] | None) -> tuple[Taint, ...]:
    return tuple(Taint(str(t.get("key") or ""), str(t.get("value") or ""),
                       str(t.get("effect") or "")) for t in items or () if isinstance(t, dict))


def parse_tolerations(items: Iterable[Mapping[str, Any]] | None) -> tuple[Toleration, ...]:
    return tuple(Toleration(str(t.get("key") or ""), str(t.get("operator") or ""),
                            str(t.get("value") or ""), str(t.get("effect") or ""))
                 for t in items or () if isinstance(t, dict))


def tolerates(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    return any(t.tolerates(taint) for t in tolerations)


# -- node selectors (nodeSelector, node affinity) --------------------------------------------


class NodeSelectorRequirement(NamedTuple):
    """One ``matchExpressions``/``matchFields`` requirement of a node selector term."""

    key: str
    operator: str
    values: tuple[str, ...]
    field: bool = False
    """A ``matchFields`` requirement (only ``metadata.name`` exists)."""

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        if self.field:
            actual: str | None = name if self.key == "metadata.name" else None
        else:
            actual = labels.get(self.key)
        op = self.operator
        if op == "In":
            return actual is not None and actual in self.values
        if op == "NotIn":
            return actual is None or actual not in self.values
        if op == "Exists":
            return actual is not None
        if op == "DoesNotExist":
            return actual is None
        if op in ("Gt", "Lt"):
            if actual is None or len(self.values) != 1:
                return False
            try:
                have, want = int(actual), int(self.values[0])
            except ValueError:
                return False
            return have > want if op == "Gt" else have < want
        return False


class NodeSelectorTerm(NamedTuple):
    """Requirements that must all hold (an empty term matches no node)."""

    requirements: tuple[NodeSelectorRequirement, ...]

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        # an empty term matches no objects
        if not self.requirements:
            return False
        return all(r.matches(labels, name) for r in self.requirements)


def _parse_term(term: Mapping[str, Any]) -> NodeSelectorTerm:
    reqs: list[NodeSelectorRequirement] = []
    for expr in term.get("matchExpressions") or ():
        reqs.append(NodeSelectorRequirement(str(expr.get("key") or ""),
                                            str(expr.get("operator") or ""),
                                            tuple(str(v) for v in expr.get("values") or ())))
    for expr in term.get("matchFields") or ():
        reqs.append(NodeSelectorRequirement(str(expr.get("key") or ""),
                                            str(expr.get("operator") or ""),
                                            tuple(str(v) for v in expr.get("values") or ()),
                                            field=True))
    return NodeSelectorTerm(tuple(reqs))


class NodeSelector(NamedTuple):
    """``nodeSelector`` labels AND (required terms ORed); hashable, so results cache."""

    labels: tuple[tuple[str, str], ...] = ()
    terms: tuple[NodeSelectorTerm, ...] | None = None
    """None: no required node affinity."""

    @property
    def empty(self) -> bool:
        return not self.labels and self.terms is None

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        for key, want in self.labels:
            if labels.get(key) != want:
                return False
        if self.terms is None:
            return True
        return any(term.matches(labels, name) for term in self.terms)


class PreferredTerm(NamedTuple):
    """A weighted preferred node-affinity term."""

    weight: int
    term: NodeSelectorTerm


# -- pod (anti-)affinity -------------------------------------------------------------------------


class AffinityTerm:
    """A pod affinity or anti-affinity term, compiled; ``weight`` for preferred ones."""

    __slots__ = ("namespace_selector", "namespaces", "selector", "topology_key", "weight")

    def __init__(self, *, selector: LabelSelector, namespaces: frozenset[str],
                 namespace_selector: LabelSelector | None, topology_key: str,
                 weight: int = 0) -> None:
        self.selector = selector
        self.namespaces = namespaces
        self.namespace_selector = namespace_selector
        self.topology_key = topology_key
        self.weight = weight

    def matches(self, namespace: str, labels: Mapping[str, str],
                ns_labels: Mapping[str, str] | None) -> bool:
        """Whether a pod in ``namespace`` with ``labels`` is selected by this term."""
        if namespace not in self.namespaces and not (
                self.namespace_selector is not None and ns_labels is not None
                and self.namespace_selector.matches(ns_labels)):
            return False
        return self.selector.matches(labels)

    def key(self) -> tuple[Any, ...]:
        return (self.selector, self.namespaces, self.namespace_selector, self.topology_key,
                self.weight)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AffinityTerm) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return (f"AffinityTerm(selector={self.selector!s}, topology_key={self.topology_key!r}, "
                f"namespaces={sorted(self.namespaces)})")


def _with_label_keys(selector: LabelSelector, labels: Mapping[str, str],
                     match_keys: Iterable[str], mismatch_keys: Iterable[str]) -> LabelSelector:
    extra: list[Requirement] = []
    for key in match_keys or ():
        if key in labels:
            extra.append(Requirement(key, IN, (labels[key],)))
    for key in mismatch_keys or ():
        if key in labels:
            extra.append(Requirement(key, NOT_IN, (labels[key],)))
    if not extra or selector.matches_nothing:
        return selector
    return LabelSelector((*selector.requirements, *extra))


def _parse_affinity_term(term: Mapping[str, Any], namespace: str, labels: Mapping[str, str],
                         weight: int = 0) -> AffinityTerm:
    try:
        selector = label_selector_from_dict(term.get("labelSelector"))
    except SelectorError:
        selector = label_selector_from_dict(None)
    selector = _with_label_keys(selector, labels, term.get("matchLabelKeys") or (),
                                term.get("mismatchLabelKeys") or ())
    namespaces = frozenset(str(n) for n in term.get("namespaces") or ())
    ns_selector_raw = term.get("namespaceSelector")
    ns_selector = None
    if ns_selector_raw is not None:
        try:
            ns_selector = label_selector_from_dict(ns_selector_raw)
        except SelectorError:
            ns_selector = None
    if not namespaces and ns_selector_raw is None:
        namespaces = frozenset((namespace,))
    return AffinityTerm(selector=selector, namespaces=namespaces, namespace_selector=ns_selector,
                        topology_key=str(term.get("topologyKey") or ""), weight=weight)


# -- topology spread -----------------------------------------------------------------------------


class TopologySpreadConstraint(NamedTuple):
    """One ``topologySpreadConstraints`` entry, with its selector compiled."""

    max_skew: int
    topology_key: str
    when_unsatisfiable: str
    selector: LabelSelector
    min_domains: int
    node_affinity_policy: str
    node_taints_policy: str

    @property
    def hard(self) -> bool:
        return self.when_unsatisfiable == "DoNotSchedule"


def _parse_spread(items: Iterable[Mapping[str, Any]], labels: Mapping[str, str]
                  ) -> tuple[TopologySpreadConstraint, ...]:
    out = []
    for c in items:
        try:
            selector = label_selector_from_dict(c.get("labelSelector"))
        except SelectorError:
            selector = label_selector_from_dict(None)
        selector = _with_label_keys(selector, labels, c.get("matchLabelKeys") or (), ())
        out.append(TopologySpreadConstraint(
            max_skew=int(c.get("maxSkew") or 1), topology_key=str(c.get("topologyKey") or ""),
            when_unsatisfiable=str(c.get("whenUnsatisfiable") or "DoNotSchedule"),
            selector=selector, min_domains=int(c.get("minDomains") or 1),
            node_affinity_policy=str(c.get("nodeAffinityPolicy") or "Honor"),
            node_taints_policy=str(c.get("nodeTaintsPolicy") or "Ignore")))
    return tuple(out)


# -- the pod ------------------------------------------------------------------------------------

_EMPTY: tuple[Any, ...] = ()


def _parse_time(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class PodInfo:
    """Everything the scheduling framework needs of one pod, parsed once."""

    __slots__ = (
        "affinity_terms", "anti_affinity_terms", "creation", "deleting", "host_ports",
        "images", "key", "labels", "name", "namespace", "node_name", "node_selector",
        "nominated_node_name", "non_zero_cpu", "non_zero_memory", "pod", "preemption_policy",
        "preferred_affinity_terms", "preferred_anti_affinity_terms", "preferred_node_terms",
        "priority", "requests", "scheduler_name", "scheduling_gates", "spread_constraints",
        "start_time", "tolerations", "uid",
    )

    def __init__(self, pod: Obj, *, priority: int | None = None) -> None:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        self.pod = pod
        self.name: str = meta.get("name") or ""
        self.namespace: str = meta.get("namespace") or "default"
        self.key = f"{self.namespace}/{self.name}"
        self.uid: str = meta.get("uid") or ""
        self.labels: dict[str, str] = meta.get("labels") or {}
        self.deleting = meta.get("deletionTimestamp") is not None
        self.creation = meta.get("creationTimestamp") or ""
        self.start_time = _parse_time(status.get("startTime") or self.creation)
        self.node_name: str = spec.get("nodeName") or ""
        self.nominated_node_name: str = status.get("nominatedNodeName") or ""
        self.scheduler_name: str = spec.get("schedulerName") or "default-scheduler"
        self.scheduling_gates = tuple(g.get("name", "") for g in spec.get("schedulingGates")
                                      or () if isinstance(g, dict))
        if priority is None:
            priority = spec.get("priority")
        self.priority: int = int(priority or 0)
        self.preemption_policy: str = spec.get("preemptionPolicy") or "PreemptLowerPriority"
        self.requests = pod_requests(spec)
        self.non_zero_cpu, self.non_zero_memory = _non_zero(spec, self.requests)
        ports: list[tuple[str, str, int]] = []
        images: list[str] = []
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or ():
                image = container.get("image")
                if image:
                    images.append(image)
                for port in container.get("ports") or ():
                    host_port = port.get("hostPort")
                    if host_port:
                        ports.append((port.get("hostIP") or "0.0.0.0",
                                      port.get("protocol") or "TCP", int(host_port)))
        self.host_ports: tuple[tuple[str, str, int], ...] = tuple(ports)
        self.images: tuple[str, ...] = tuple(images)
        self.tolerations = parse_tolerations(spec.get("tolerations")) \
            if spec.get("tolerations") else _EMPTY
        affinity = spec.get("affinity") or {}
        node_aff = affinity.get("nodeAffinity") or {}
        required = node_aff.get("requiredDuringSchedulingIgnoredDuringExecution")
        node_selector = spec.get("nodeSelector") or {}
        terms = None
        if required is not None:
            terms = tuple(_parse_term(t) for t in required.get("nodeSelectorTerms") or ())
        self.node_selector = NodeSelector(tuple(sorted(node_selector.items())), terms)
        self.preferred_node_terms = tuple(
            PreferredTerm(int(p.get("weight") or 0), _parse_term(p.get("preference") or {}))
            for p in node_aff.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
            if p.get("weight") and ((p.get("preference") or {}).get("matchExpressions")
                                    or (p.get("preference") or {}).get("matchFields")))
        self.affinity_terms = self.anti_affinity_terms = _EMPTY
        self.preferred_affinity_terms = self.preferred_anti_affinity_terms = _EMPTY
        pod_aff = affinity.get("podAffinity")
        ns, labels = self.namespace, self.labels
        if pod_aff:
            self.affinity_terms = tuple(
                _parse_affinity_term(t, ns, labels)
                for t in pod_aff.get("requiredDuringSchedulingIgnoredDuringExecution") or ())
            self.preferred_affinity_terms = tuple(
                _parse_affinity_term(w.get("podAffinityTerm") or {}, ns, labels,
                                     int(w.get("weight") or 0))
                for w in pod_aff.get("preferredDuringSchedulingIgnoredDuringExecution") or ())
        pod_anti = affinity.get("podAntiAffinity")
        if pod_anti:
            self.anti_affinity_terms = tuple(
                _parse_affinity_term(t, ns, labels)
                for t in pod_anti.get("requiredDuringSchedulingIgnoredDuringExecution") or ())
            self.preferred_anti_affinity_terms = tuple(
                _parse_affinity_term(w.get("podAffinityTerm") or {}, ns, labels,
                                     int(w.get("weight") or 0))
                for w in pod_anti.get("preferredDuringSchedulingIgnoredDuringExecution") or ())
        spread = spec.get("topologySpreadConstraints")
        self.spread_constraints = _parse_spread(spread, labels) if spread else _EMPTY

    @property
    def has_affinity(self) -> bool:
        """Any pod affinity or anti-affinity term, required or preferred."""
        return bool(self.affinity_terms or self.anti_affinity_terms
                    or self.preferred_affinity_terms or self.preferred_anti_affinity_terms)

    @property
    def has_required_anti_affinity(self) -> bool:
        return bool(self.anti_affinity_terms)

    @property
    def best_effort(self) -> bool:
        return not any(self.requests.values())

    def __repr__(self) -> str:
        return f"PodInfo({self.key}, priority={self.priority})"


def _non_zero(spec: Mapping[str, Any], requests: Mapping[str, int]) -> tuple[int, int]:
    """cpu and memory with the scoring defaults for containers that request none."""
    containers = spec.get("containers") or ()
    if not spec.get("initContainers") and not spec.get("overhead"):
        cpu = memory = 0
        for container in containers:
            reqs = (container.get("resources") or {}).get("requests") or {}
            c = reqs.get(CPU)
            m = reqs.get(MEMORY)
            cpu += quantity(CPU, c) if c is not None else DEFAULT_MILLI_CPU_REQUEST
            memory += quantity(MEMORY, m) if m is not None else DEFAULT_MEMORY_REQUEST
        return cpu, memory
    full = pod_requests(spec, non_missing=True)
    return full.get(CPU, 0), full.get(MEMORY, 0)

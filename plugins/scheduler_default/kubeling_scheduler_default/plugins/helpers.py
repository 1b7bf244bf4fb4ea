"""Helpers the default plugins share: score normalization, label-domain masks."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from kubeling_scheduler_default.nodeinfo import NAME_DOMAIN, NodeTable
from kubeling_scheduler_default.podinfo import NodeSelector, NodeSelectorRequirement

__all__ = ["MAX_NODE_SCORE", "default_normalize", "node_selector_mask", "requirement_mask"]

MAX_NODE_SCORE = 100


def default_normalize(scores: np.ndarray, *, reverse: bool = False,
                      max_priority: int = MAX_NODE_SCORE) -> None:
    """Kubernetes' ``DefaultNormalizeScore``, in place: scale to 0..max by the maximum,
    optionally reversed (all max when every score is 0 and ``reverse``)."""
    if len(scores) == 0:
        return
    top = int(scores.max())
    if top <= 0:
        if reverse:
            scores[:] = max_priority
        return
    scaled = max_priority * scores // top
    scores[:] = max_priority - scaled if reverse else scaled


def requirement_mask(table: NodeTable, req: NodeSelectorRequirement) -> np.ndarray:
    """Slots whose node satisfies one node-selector requirement (length: table.size)."""
    key = NAME_DOMAIN if req.field else req.key
    if req.field and req.key != NAME_DOMAIN:
        return np.zeros(table.size, dtype=bool)
    index = table.domain(key)
    ids = index.ids[: table.size]
    op = req.operator
    if op == "Exists":
        return ids >= 0
    if op == "DoesNotExist":
        return ids < 0
    if op in ("In", "NotIn"):
        wanted = [index.value_ids[v] for v in req.values if v in index.value_ids]
        hit = np.isin(ids, wanted) if wanted else np.zeros(len(ids), dtype=bool)
        return hit if op == "In" else ~hit
    if op in ("Gt", "Lt"):
        allowed = [i for i, value in enumerate(index.values)
                   if req.matches({req.key: value}, value)]
        return np.isin(ids, allowed) if allowed else np.zeros(len(ids), dtype=bool)
    return np.zeros(len(ids), dtype=bool)


def node_selector_mask(table: NodeTable, selector: NodeSelector) -> np.ndarray:
    """Slots whose node matches ``nodeSelector`` labels and required affinity terms."""
    mask = np.ones(table.size, dtype=bool)
    for key, want in selector.labels:
        mask &= requirement_mask(table, NodeSelectorRequirement(key, "In", (want,)))
    if selector.terms is not None:
        mask &= terms_mask(table, selector.terms)
    return mask


def terms_mask(table: NodeTable, terms: Iterable[object]) -> np.ndarray:
    """ORed node-selector terms (an empty term matches nothing)."""
    any_term = np.zeros(table.size, dtype=bool)
    for term in terms:
        reqs = term.requirements  # type: ignore[attr-defined]
        if not reqs:
            continue
        one = np.ones(table.size, dtype=bool)
        for req in reqs:
            one &= requirement_mask(table, req)
        any_term |= one
    return any_term

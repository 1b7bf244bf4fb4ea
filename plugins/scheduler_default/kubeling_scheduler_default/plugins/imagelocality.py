"""ImageLocality: prefer nodes that already have the pod's images (by size, weighted by
how many nodes have them, so one popular image does not pull every pod to one node)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kubeling_scheduler_default.framework import CycleState
from kubeling_scheduler_default.nodeinfo import NodeInfo, NodeTable, normalized_image_name
from kubeling_scheduler_default.podinfo import PodInfo

__all__ = ["ImageLocality", "image_score"]

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB
MAX_NODE_SCORE = 100


def image_score(pod: PodInfo, node_info: NodeInfo, total_nodes: int,
                nodes_with: Mapping[str, int]) -> int:
    """Pure score: sum over the pod's images present on the node of size times the
    share of nodes holding it, clamped to [23 MB, 1000 MB x containers], scaled to 0..100.

    :param nodes_with: normalized image name -> number of nodes that have it.
    """
    total = 0
    for image in pod.images:
        name = normalized_image_name(image)
        size = node_info.images.get(name)
        if size is not None and total_nodes:
            total += int(size * (nodes_with.get(name, 0) / total_nodes))
    return _priority(total, len(pod.images))


def _priority(total: int, containers: int) -> int:
    max_threshold = MAX_CONTAINER_THRESHOLD * max(containers, 1)
    total = min(max(total, MIN_THRESHOLD), max_threshold)
    return MAX_NODE_SCORE * (total - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)


class ImageLocality:
    """Score plugin."""

    name = "ImageLocality"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        del args
        self.handle = handle

    def score(self, state: CycleState, pod: PodInfo, node_info: NodeInfo) -> int:
        cache = self.handle.cache
        return image_score(pod, node_info, cache.node_count,
                           {normalized_image_name(i): len(cache.image_nodes.get(
                               normalized_image_name(i), ())) for i in pod.images})

    def score_nodes(self, state: CycleState, pod: PodInfo, table: NodeTable,
                    slots: np.ndarray) -> np.ndarray | None:
        cache = self.handle.cache
        if not cache.image_nodes or not pod.images:
            return None  # no node has any image: the same score everywhere
        total_nodes = cache.node_count
        sums = np.zeros(table.size, dtype=np.int64)
        for image in pod.images:
            name = normalized_image_name(image)
            holders = cache.image_nodes.get(name)
            if not holders:
                continue
            spread = len(holders) / total_nodes if total_nodes else 0.0
            for node in holders:
                info = cache.nodes.get(node)
                if info is not None and info.slot < table.size:
                    sums[info.slot] += int(info.images.get(name, 0) * spread)
        containers = max(len(pod.images), 1)
        max_threshold = MAX_CONTAINER_THRESHOLD * containers
        clamped = np.clip(sums[slots], MIN_THRESHOLD, max_threshold)
        return MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)

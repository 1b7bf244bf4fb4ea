"""PrioritySort: the active queue pops higher priority first, then older first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PrioritySort"]


class PrioritySort:
    """QueueSort plugin: ``less(a, b)`` on queued pods (priority, then enqueue time)."""

    name = "PrioritySort"

    def __init__(self, args: Mapping[str, Any] | None = None, handle: Any = None) -> None:
        del args, handle

    @staticmethod
    def less(a: Any, b: Any) -> bool:
        if a.pod.priority != b.pod.priority:
            return a.pod.priority > b.pod.priority
        return a.timestamp < b.timestamp

    @staticmethod
    def sort_key(qpi: Any) -> tuple[int, float]:
        """The same order as :meth:`less`, as a key (the queue's fast path)."""
        return (-qpi.pod.priority, qpi.timestamp)

"""The scheduling queue: active (by priority, then age), backoff, and unschedulable pods.

* **active**: a heap ordered by the profile's QueueSort plugin (PrioritySort: higher
  priority first, then earlier enqueued);
* **backoff**: pods that failed, each waiting ``initial * 2**(attempts-1)`` seconds (1 s
  to 10 s by default) before going back to active;
* **unschedulable**: pods no node fits; a cluster event that could help them (a node
  added or changed, an assigned pod deleted, ...) moves them back, as does having waited
  five minutes;
* **gated**: pods a PreEnqueue plugin holds (scheduling gates) until they change.

A pod that fails while an event arrived during its cycle goes to backoff, not to
unschedulable, so the event is not lost.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any

from kubeling_scheduler_default.podinfo import PodInfo
from kubeling_scheduler_default.status import Status

__all__ = ["EVENT_INTERESTS", "QueuedPodInfo", "SchedulingQueue"]

# cluster event -> default plugins whose rejection it may resolve (others: always move)
EVENT_INTERESTS: dict[str, frozenset[str]] = {
    "NodeAdd": frozenset({"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity",
                          "NodePorts", "NodeResourcesFit", "PodTopologySpread",
                          "InterPodAffinity", "DefaultPreemption"}),
    "NodeUpdate": frozenset({"NodeUnschedulable", "TaintToleration", "NodeAffinity",
                             "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity",
                             "NodePorts"}),
    "NodeDelete": frozenset({"PodTopologySpread"}),
    "AssignedPodAdd": frozenset({"InterPodAffinity", "PodTopologySpread"}),
    "AssignedPodUpdate": frozenset({"InterPodAffinity", "PodTopologySpread",
                                    "NodeResourcesFit"}),
    "AssignedPodDelete": frozenset({"NodeResourcesFit", "NodePorts", "InterPodAffinity",
                                    "PodTopologySpread", "DefaultPreemption"}),
    "NamespaceUpdate": frozenset({"InterPodAffinity"}),
    "PvcChange": frozenset({"VolumeBinding"}),
    "PriorityClassChange": frozenset(),
}
_KNOWN = frozenset().union(*EVENT_INTERESTS.values()) | {"SchedulingGates", "PrioritySort",
                                                         "ImageLocality", "DefaultBinder",
                                                         "NodeResourcesBalancedAllocation"}


class QueuedPodInfo:
    """A pod in the queue, with its attempts and who rejected it last."""

    __slots__ = ("attempts", "backoff_until", "gated_by", "initial_attempt", "pod",
                 "sort_key", "timestamp", "unschedulable_plugins", "unschedulable_since")

    def __init__(self, pod: PodInfo, now: float) -> None:
        self.pod = pod
        self.timestamp = now
        self.initial_attempt = 0.0
        self.attempts = 0
        self.unschedulable_plugins: set[str] = set()
        self.unschedulable_since = 0.0
        self.backoff_until = 0.0
        self.gated_by: Status | None = None
        self.sort_key: Any = None

    def __repr__(self) -> str:
        return f"QueuedPodInfo({self.pod.key}, attempts={self.attempts})"


class SchedulingQueue:
    """Priority queue with backoff and an unschedulable pool."""

    def __init__(self, *, less: Callable[[QueuedPodInfo, QueuedPodInfo], bool] | None = None,
                 sort_key: Callable[[QueuedPodInfo], Any] | None = None,
                 pre_enqueue: Callable[[PodInfo], Status] | None = None,
                 initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 max_unschedulable: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if sort_key is None:
            if less is None:
                def sort_key(q: QueuedPodInfo) -> Any:
                    return (-q.pod.priority, q.timestamp)
            else:
                cmp = functools.cmp_to_key(lambda a, b: -1 if less(a, b) else
                                           (1 if less(b, a) else 0))

                def sort_key(q: QueuedPodInfo) -> Any:
                    return cmp(q)
        self._sort_key = sort_key
        self._pre_enqueue = pre_enqueue
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self.clock = clock
        self._seq = itertools.count()
        self._active: list[tuple[Any, int, QueuedPodInfo]] = []
        self._in_active: dict[str, QueuedPodInfo] = {}
        self._backoff: list[tuple[float, int, QueuedPodInfo]] = []
        self._in_backoff: dict[str, QueuedPodInfo] = {}
        self.unschedulable: dict[str, QueuedPodInfo] = {}
        self.gated: dict[str, QueuedPodInfo] = {}
        self.in_flight: dict[str, QueuedPodInfo] = {}
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._wakeup = asyncio.Event()
        self.closed = False

    # -- sizes ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._in_active) + len(self._in_backoff) + len(self.unschedulable) \
            + len(self.gated)

    @property
    def active_count(self) -> int:
        return len(self._in_active)

    @property
    def backoff_count(self) -> int:
        return len(self._in_backoff)

    def __contains__(self, key: str) -> bool:
        return key in self._in_active or key in self._in_backoff \
            or key in self.unschedulable or key in self.gated or key in self.in_flight

    def pending(self) -> dict[str, list[str]]:
        """Keys per sub-queue (for debugging and tests)."""
        return {"active": sorted(self._in_active), "backoff": sorted(self._in_backoff),
                "unschedulable": sorted(self.unschedulable), "gated": sorted(self.gated)}

    # -- adding --------------------------------------------------------------------------------

    def _push_active(self, q: QueuedPodInfo) -> None:
        q.sort_key = self._sort_key(q)
        self._in_active[q.pod.key] = q
        heapq.heappush(self._active, (q.sort_key, next(self._seq), q))
        self._wakeup.set()

    def _push_backoff(self, q: QueuedPodInfo) -> None:
        self._in_backoff[q.pod.key] = q
        heapq.heappush(self._backoff, (q.backoff_until, next(self._seq), q))

    def _gate(self, q: QueuedPodInfo) -> bool:
        """Run PreEnqueue; True when the pod may enter the active queue."""
        if self._pre_enqueue is None:
            return True
        status = self._pre_enqueue(q.pod)
        if status.is_success():
            q.gated_by = None
            return True
        q.gated_by = status
        self.gated[q.pod.key] = q
        return False

    def add(self, pod: PodInfo) -> None:
        """A new pending pod."""
        key = pod.key
        if key in self:
            self.update(pod)
            return
        q = QueuedPodInfo(pod, self.clock())
        if self._gate(q):
            self._push_active(q)

    def _remove(self, key: str) -> QueuedPodInfo | None:
        q = self._in_active.pop(key, None)
        if q is None:
            q = self._in_backoff.pop(key, None)
        if q is None:
            q = self.unschedulable.pop(key, None)
        if q is None:
            q = self.gated.pop(key, None)
        return q  # heap entries of removed pods are skipped lazily

    def update(self, pod: PodInfo, *, requeue: bool = True) -> None:
        """A pending pod changed: keep its place, or give it a new chance.

        :param requeue: whether an unschedulable pod gets a new try (not for status-only
            changes).
        """
        key = pod.key
        if key in self.in_flight:
            self.in_flight[key].pod = pod
            return
        if key in self._in_active:
            q = self._in_active[key]
            old_key = q.sort_key
            q.pod = pod
            if self._sort_key(q) != old_key:
                self._remove(key)
                self._push_active(q)
            return
        if key in self._in_backoff:
            self._in_backoff[key].pod = pod
            return
        q = self.gated.pop(key, None)
        if q is not None:
            q.pod = pod
            if self._gate(q):
                self._push_active(q)
            return
        q = self.unschedulable.get(key)
        if q is not None:
            q.pod = pod
            if requeue:
                del self.unschedulable[key]
                self._requeue(q)
            return
        self.add(pod)

    def delete(self, key: str) -> None:
        self._remove(key)
        self.in_flight.pop(key, None)

    # -- popping -------------------------------------------------------------------------------

    def pop_nowait(self) -> QueuedPodInfo | None:
        while self._active:
            _, _, q = heapq.heappop(self._active)
            if self._in_active.get(q.pod.key) is q:
                del self._in_active[q.pod.key]
                q.attempts += 1
                if not q.initial_attempt:
                    q.initial_attempt = self.clock()
                self.scheduling_cycle += 1
                self.in_flight[q.pod.key] = q
                return q
        return None

    async def pop(self) -> QueuedPodInfo:
        """The next pod to schedule (waits while the active queue is empty)."""
        while True:
            q = self.pop_nowait()
            if q is not None:
                return q
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, key: str) -> None:
        """The pod's scheduling cycle is over (whatever the outcome)."""
        self.in_flight.pop(key, None)

    # -- failures ------------------------------------------------------------------------------

    def backoff_duration(self, attempts: int) -> float:
        duration = self.initial_backoff
        for _ in range(1, attempts):
            if duration > self.max_backoff - duration:
                return self.max_backoff
            duration += duration
        return min(duration, self.max_backoff)

    def add_unschedulable(self, q: QueuedPodInfo, cycle: int, plugins: set[str] | None = None,
                          *, error: bool = False) -> None:
        """Put a pod whose cycle failed back: unschedulable, or backoff for errors and when
        an event moved pods during its cycle."""
        key = q.pod.key
        self.in_flight.pop(key, None)
        if key in self._in_active or key in self._in_backoff or key in self.unschedulable:
            return
        q.unschedulable_plugins = set(plugins or ())
        q.backoff_until = self.clock() + self.backoff_duration(q.attempts)
        if error or self.move_request_cycle >= cycle:
            self._push_backoff(q)
        else:
            q.unschedulable_since = self.clock()
            self.unschedulable[key] = q

    def _requeue(self, q: QueuedPodInfo) -> None:
        if q.backoff_until > self.clock():
            self._push_backoff(q)
        else:
            self._push_active(q)

    # -- cluster events ------------------------------------------------------------------------

    def move_all(self, event: str, predicate: Callable[[QueuedPodInfo], bool] | None = None
                 ) -> int:
        """Move unschedulable pods an ``event`` may help back to active/backoff."""
        self.move_request_cycle = self.scheduling_cycle
        if not self.unschedulable:
            return 0
        interested = EVENT_INTERESTS.get(event)
        moved = []
        for key, q in self.unschedulable.items():
            plugins = q.unschedulable_plugins
            if interested is not None and plugins and not (plugins & interested) \
                    and plugins <= _KNOWN:
                continue
            if predicate is not None and not predicate(q):
                continue
            moved.append(key)
        for key in moved:
            self._requeue(self.unschedulable.pop(key))
        return len(moved)

    def activate(self, keys: list[str]) -> None:
        """Move these pods to the active queue now (ignoring backoff)."""
        for key in keys:
            q = self.unschedulable.pop(key, None) or self._in_backoff.pop(key, None)
            if q is not None:
                self._push_active(q)

    def flush_backoff(self) -> float | None:
        """Move pods whose backoff ended to active; seconds until the next one ends."""
        now = self.clock()
        while self._backoff:
            until, _, q = self._backoff[0]
            if self._in_backoff.get(q.pod.key) is not q:
                heapq.heappop(self._backoff)
                continue
            if until > now:
                return until - now
            heapq.heappop(self._backoff)
            del self._in_backoff[q.pod.key]
            self._push_active(q)
        return None

    def flush_unschedulable_leftover(self) -> None:
        now = self.clock()
        old = [k for k, q in self.unschedulable.items()
               if now - q.unschedulable_since > self.max_unschedulable]
        for key in old:
            self._requeue(self.unschedulable.pop(key))

    async def run_flushes(self) -> None:
        """Background task: backoff expiry (as it happens) and the 5-minute leftovers."""
        last_leftover = self.clock()
        while True:
            wait = self.flush_backoff()
            if self.clock() - last_leftover > 30:
                self.flush_unschedulable_leftover()
                last_leftover = self.clock()
            await asyncio.sleep(min(wait if wait is not None else 1.0, 1.0) + 0.001)

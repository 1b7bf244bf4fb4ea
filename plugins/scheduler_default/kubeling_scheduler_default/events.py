"""Events the scheduler writes (``Scheduled``, ``FailedScheduling``, ``Preempted``).

Writes happen off the scheduling loop, in a few worker tasks.  A repeat of the same event
on the same pod (same reason and message) bumps ``count`` and ``lastTimestamp`` of the
first one, as Kubernetes' event correlator does, instead of creating another.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import secrets
from collections import OrderedDict
from typing import Any

from kubeling.api.errors import ApiError
from kubeling.client.resources import EVENTS

__all__ = ["EventRecorder"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Queues events and writes them with ``workers`` tasks."""

    def __init__(self, client: Any, *, workers: int = 8, max_pending: int = 50_000,
                 instance: str = "") -> None:
        self.client = client
        self.workers = workers
        self.instance = instance or f"kubeling-scheduler-{secrets.token_hex(3)}"
        self._queue: asyncio.Queue[tuple[Obj, str, str, str, str]] = asyncio.Queue(max_pending)
        self._seen: OrderedDict[tuple[str, str, str, str], tuple[str, int]] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.written = 0

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work(), name=f"events {i}")
                           for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued event is written (tests)."""
        async with asyncio.timeout(timeout):
            await self._queue.join()

    def record(self, obj: Obj, event_type: str, reason: str, message: str,
               component: str = "default-scheduler") -> None:
        """Queue one event about ``obj`` (an API object); never blocks."""
        if self.client is None:
            return
        try:
            self._queue.put_nowait((obj, event_type, reason, message, component))
        except asyncio.QueueFull:
            self.dropped += 1

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._write(*item)
                self.written += 1
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.code != 404:  # the namespace or the object went away: nothing to say
                    log.warning("event %s not written: %s", item[2], exc)
            except Exception:
                log.exception("event %s not written", item[2])
            finally:
                self._queue.task_done()

    async def _write(self, obj: Obj, event_type: str, reason: str, message: str,
                     component: str) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid") or meta.get("name") or "", reason, message, component)
        now = _now()
        seen = self._seen.get(key)
        if seen is not None:
            name, count = seen
            try:
                await self.client.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": now},
                                        namespace)
                self._seen[key] = (name, count + 1)
                self._seen.move_to_end(key)
                return
            except ApiError as exc:
                if exc.code != 404:
                    raise
                del self._seen[key]
        name = f"{meta.get('name')}.{secrets.token_hex(8)}"
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"apiVersion": obj.get("apiVersion") or "v1",
                               "kind": obj.get("kind") or "Pod", "namespace": namespace,
                               "name": meta.get("name"), "uid": meta.get("uid"),
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message, "type": event_type,
            "source": {"component": component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": component, "reportingInstance": self.instance,
        }
        await self.client.create(EVENTS, event, namespace)
        self._seen[key] = (name, 1)
        if len(self._seen) > 10_000:
            self._seen.popitem(last=False)

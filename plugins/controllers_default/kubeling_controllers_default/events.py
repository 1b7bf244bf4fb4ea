"""Events about what controllers do, written as core/v1 Events with Kubernetes' correlation.

A controller calls ``recorder.event(obj, "Normal", "SuccessfulCreate", "Created pod: x")``;
the call returns at once and a background task writes the Event.  Repeats are correlated as
client-go's recorder does:

* **dedupe**: the same event again (same object, type, reason, message, source) patches the
  existing Event's ``count`` and ``lastTimestamp`` instead of creating another;
* **aggregation**: more than 10 events within 10 minutes that differ only in their message
  become one Event whose message starts ``(combined from similar events):``, counted;
* **spam filter**: a token bucket per object and source (25 events, then one per 5
  minutes by default) drops the excess.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import attrs

from kubeling.client import ApiError, Client
from kubeling.client.resources import EVENTS
from kubeling_controllers_default.queue import TokenBucket

log = logging.getLogger(__name__)

__all__ = ["NORMAL", "WARNING", "EventRecorder", "EventSink"]

Obj = dict[str, Any]

NORMAL = "Normal"
WARNING = "Warning"
MAX_SIMILAR = 10
"""Events differing only in message before they are aggregated (client-go's maxEvents)."""
AGGREGATE_WINDOW = 600.0
CACHE_SIZE = 4096
COMBINED_PREFIX = "(combined from similar events): "


def _rfc3339(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.define
class _Logged:
    name: str
    namespace: str
    count: int
    first: str


@attrs.define
class _Similar:
    messages: set[str]
    last: float


class EventSink:
    """Writes events for every recorder of one controller manager, in a background task."""

    def __init__(self, client: Client, *, host: str | None = None, qps: float = 1.0 / 300,
                 burst: int = 25, clock: Callable[[], datetime.datetime] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.host = host if host is not None else socket.gethostname()
        self.qps = qps
        self.burst = burst
        self.clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self.monotonic = monotonic
        self._queue: asyncio.Queue[Obj | None] = asyncio.Queue()
        self._logged: collections.OrderedDict[tuple[Any, ...], _Logged] = \
            collections.OrderedDict()
        self._similar: collections.OrderedDict[tuple[Any, ...], _Similar] = \
            collections.OrderedDict()
        self._buckets: collections.OrderedDict[tuple[Any, ...], TokenBucket] = \
            collections.OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0

    def recorder(self, component: str) -> EventRecorder:
        """A recorder that reports as ``component`` (``replicaset-controller``...)."""
        return EventRecorder(self, component)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-sink")

    async def close(self) -> None:
        """Write what is queued (briefly), then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5.0)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._task = None

    async def flush(self) -> None:
        """Wait until every event queued so far has been written (tests)."""
        await self._queue.join()

    def submit(self, event: Obj) -> None:
        self._queue.put_nowait(event)

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                if event is None:
                    return
                await self._write(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event %s/%s not written: %s", event and event.get("reason"),
                            event and event["involvedObject"].get("name"), exc)
            finally:
                self._queue.task_done()

    # -- correlation -----------------------------------------------------------------------

    @staticmethod
    def _lru_put(cache: collections.OrderedDict[Any, Any], key: Any, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)

    def _correlate(self, event: Obj) -> tuple[tuple[Any, ...], Obj] | None:
        """The event to write and its dedupe key; None when the spam filter drops it."""
        involved = event["involvedObject"]
        source = (event["source"].get("component"), event["source"].get("host"))
        obj_key = (*source, involved.get("kind"), involved.get("namespace"),
                   involved.get("name"), involved.get("uid"), involved.get("apiVersion"))
        bucket = self._buckets.get(obj_key)
        if bucket is None:
            bucket = TokenBucket(self.qps, self.burst, clock=self.monotonic)
        self._lru_put(self._buckets, obj_key, bucket)
        if bucket.reserve() > 0:
            self.dropped += 1
            return None
        aggregate_key = (*obj_key, event.get("type"), event.get("reason"))
        now = self.monotonic()
        similar = self._similar.get(aggregate_key)
        if similar is None or now - similar.last > AGGREGATE_WINDOW:
            similar = _Similar(set(), now)
        similar.messages.add(event["message"])
        similar.last = now
        self._lru_put(self._similar, aggregate_key, similar)
        if len(similar.messages) > MAX_SIMILAR:
            event = {**event, "message": COMBINED_PREFIX + event["message"]}
            return (*aggregate_key, "combined"), event
        return (*aggregate_key, event["message"]), event

    async def _write(self, event: Obj) -> None:
        correlated = self._correlate(event)
        if correlated is None:
            return
        key, event = correlated
        seen = self._logged.get(key)
        if seen is not None:
            count = seen.count + 1
            patch = {"count": count, "lastTimestamp": event["lastTimestamp"],
                     "message": event["message"]}
            try:
                await self.client.patch(EVENTS, seen.name, patch, seen.namespace,
                                        type="strategic")
                seen.count = count
                self._logged.move_to_end(key)
                self.written += 1
                return
            except ApiError as exc:
                if exc.code != 404:
                    raise
                event = {**event, "count": count, "firstTimestamp": seen.first}
        namespace = event["metadata"]["namespace"]
        try:
            created = await self.client.create(EVENTS, event, namespace)
        except ApiError as exc:
            if exc.code == 403 or exc.code == 404:  # namespace terminating or gone
                return
            raise
        self._lru_put(self._logged, key, _Logged(created["metadata"]["name"], namespace,
                                                 int(created.get("count") or 1),
                                                 created.get("firstTimestamp") or ""))
        self.written += 1


class EventRecorder:
    """Records events as one component; cheap to call from a reconcile."""

    def __init__(self, sink: EventSink, component: str) -> None:
        self.sink = sink
        self.component = component

    def event(self, obj: Obj, type: str, reason: str, message: str) -> None:
        """Record that ``reason`` happened to ``obj`` (``type`` is Normal or Warning)."""
        meta = obj.get("metadata") or {}
        kind = obj.get("kind") or ""
        api_version = obj.get("apiVersion") or ""
        namespace = meta.get("namespace") or ""
        now = self.sink.clock()
        stamp = _rfc3339(now)
        name = meta.get("name") or "unknown"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{time.time_ns():x}",
                         "namespace": namespace or "default"},
            "involvedObject": {"kind": kind, "namespace": namespace, "name": name,
                               "uid": meta.get("uid", ""), "apiVersion": api_version,
                               "resourceVersion": meta.get("resourceVersion", "")},
            "reason": reason,
            "message": message[:4096],
            "source": {"component": self.component, "host": self.sink.host},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": type,
            "reportingComponent": self.component,
            "reportingInstance": self.sink.host,
        }
        if not namespace:
            del event["involvedObject"]["namespace"]
        self.sink.submit(event)

    def normal(self, obj: Obj, reason: str, message: str) -> None:
        self.event(obj, NORMAL, reason, message)

    def warning(self, obj: Obj, reason: str, message: str) -> None:
        self.event(obj, WARNING, reason, message)

"""The watch cache: one storage watch per resource, fanned out to every client watch.

Each served resource has a :class:`WatchCache` holding the current objects (decoded, and
encoded with their resourceVersion) and a ring of recent events.  Client watches are
:class:`Watcher` objects fed from the ring and then live; lists with
``resourceVersion=0`` (what informers send) are served from the cache without touching
storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from bisect import bisect_left
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from kubeling.api.encoding import decode_stored, stored_with_rv
from kubeling.api.registry import KindInfo
from kubeling.api.selectors import FieldSelector, LabelSelector
from kubeling.storage import CompactedError, Event, EventType, Storage, StorageError

log = logging.getLogger(__name__)

__all__ = ["CachedObject", "ObjectFilter", "WatchCache", "WatchEvent", "Watcher"]

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


class CachedObject:
    """One object as the cache holds it."""

    __slots__ = ("_obj", "key", "raw", "rev")

    def __init__(self, key: str, obj: dict[str, Any] | None, raw: bytes, rev: int) -> None:
        self.key = key
        self._obj = obj
        self.raw = raw
        """JSON bytes with resourceVersion."""
        self.rev = rev

    @property
    def obj(self) -> dict[str, Any]:
        """Decoded, with resourceVersion (decoded on first use); shared, never mutate it."""
        if self._obj is None:
            self._obj = orjson.loads(self.raw)
        return self._obj


class WatchEvent:
    """One change, as the cache saw it."""

    __slots__ = ("cur", "prev", "rev", "type")

    def __init__(self, type: str, cur: CachedObject, prev: CachedObject | None,
                 rev: int) -> None:
        self.type = type
        self.cur = cur
        """For DELETED: the last state, at the delete's revision."""
        self.prev = prev
        self.rev = rev


class ObjectFilter:
    """Which objects a list or watch wants: namespace, name, label and field selectors."""

    __slots__ = ("field", "fields_of", "label", "name", "namespace")

    def __init__(self, *, namespace: str | None = None, name: str | None = None,
                 label: LabelSelector | None = None, field: FieldSelector | None = None,
                 fields_of: Callable[[dict[str, Any]], dict[str, str] | None] | None = None
                 ) -> None:
        self.namespace = namespace or None
        self.name = name or None
        self.label = label if label is not None and not label.empty else None
        self.field = field if field is not None and not field.empty else None
        self.fields_of = fields_of
        """The kind's selectable fields (its strategy's), when it defines them."""

    @property
    def everything(self) -> bool:
        return self.namespace is None and self.name is None and self.label is None \
            and self.field is None

    def matches(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if self.name is not None and meta.get("name") != self.name:
            return False
        if self.label is not None and not self.label.matches(meta.get("labels") or {}):
            return False
        if self.field is None:
            return True
        fields = self.fields_of(obj) if self.fields_of is not None else None
        if fields is None:
            return self.field.matches_object(obj)
        return self.field.matches(fields.get)


class Watcher:
    """One client watch: a queue of (type, CachedObject) items, ended by ``None``."""

    MAX_PENDING = 100_000

    def __init__(self, flt: ObjectFilter, after_rev: int) -> None:
        self.filter = flt
        self.after_rev = after_rev
        self._items: deque[tuple[str, CachedObject] | None] = deque()
        self._wakeup = asyncio.Event()
        self.closed = False
        self.error: str | None = None

    def offer(self, event: WatchEvent) -> None:
        """Deliver one event, translated for this watcher's filter."""
        if self.closed or event.rev <= self.after_rev:
            return
        flt = self.filter
        if flt.everything:
            self._push((event.type, event.cur))
            return
        now = event.type != DELETED and flt.matches(event.cur.obj)
        before = event.prev is not None and flt.matches(event.prev.obj)
        if event.type == DELETED:
            if flt.matches(event.cur.obj):
                self._push((DELETED, event.cur))
        elif now and before:
            self._push((MODIFIED, event.cur))
        elif now:
            self._push((ADDED, event.cur))
        elif before:
            self._push((DELETED, event.cur))

    def _push(self, item: tuple[str, CachedObject]) -> None:
        if len(self._items) >= self.MAX_PENDING:
            self.close("the watcher fell too far behind; start a new watch")
            return
        self._items.append(item)
        self._wakeup.set()

    def close(self, error: str | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        self.error = error
        self._items.append(None)
        self._wakeup.set()

    async def next_batch(self, timeout: float | None) -> list[tuple[str, CachedObject] | None]:
        """Everything pending (waiting up to ``timeout`` for something); [] on timeout."""
        if not self._items:
            self._wakeup.clear()
            if timeout is None:
                await self._wakeup.wait()
            else:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancel that lands as the event fires, leaving a stopped watch hanging
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wakeup.wait()
        items = list(self._items)
        self._items.clear()
        return items


class WatchCache:
    """Current objects and recent events of one resource, fed by one storage watch."""

    def __init__(self, kind: KindInfo, storage: Storage, *, capacity: int = 10_000) -> None:
        self.kind = kind
        self.storage = storage
        self.prefix = kind.key_prefix
        self.capacity = capacity
        self.objects: dict[str, CachedObject] = {}
        self.revision = 0
        """Every event of this resource up to here has been applied."""
        self.floor = 0
        """Every event after this revision is in the ring."""
        self._ring: deque[WatchEvent] = deque()
        self._watchers: set[Watcher] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._sorted_keys: list[str] | None = None
        self.listeners: list[Callable[[WatchEvent], None]] = []
        """Called synchronously for every event (the server's own indexes use it)."""

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"watchcache {self.prefix}")
        await self._ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for watcher in list(self._watchers):
            watcher.close()
        self._watchers.clear()

    async def _run(self) -> None:
        while True:
            try:
                await self._relist()
                self._ready.set()
                async for batch in self.storage.watch(self.prefix, after_revision=self.revision):
                    self._apply(batch)
                log.warning("storage watch of %s ended; restarting", self.prefix)
            except CompactedError:
                log.info("watch cache %s fell behind compaction; relisting", self.prefix)
            except asyncio.CancelledError:
                raise
            except StorageError as exc:
                log.warning("watch cache %s: storage error %s; retrying", self.prefix, exc)
                await asyncio.sleep(0.5)
            except Exception:  # keep serving; a bug here must not kill the server
                log.exception("watch cache %s failed; relisting", self.prefix)
                await asyncio.sleep(0.5)

    async def _relist(self) -> None:
        result = await self.storage.range(self.prefix)
        objects = {}
        for kv in result.kvs:
            objects[kv.key] = CachedObject(kv.key, decode_stored(kv.value, kv.mod_revision),
                                           stored_with_rv(kv.value, kv.mod_revision),
                                           kv.mod_revision)
        had_state = bool(self.objects) or self.revision > 0
        old = self.objects
        self.objects = objects
        self._sorted_keys = None
        self.revision = max(self.revision, result.revision)
        # Watchers cannot be told what changed in between: they must start over.
        if had_state:
            for watcher in list(self._watchers):
                watcher.close("the watch cache was rebuilt; start a new watch")
            self._watchers.clear()
            del old
        self._ring.clear()
        self.floor = self.revision
        self._notify_progress()

    def _apply(self, batch: list[Event]) -> None:
        for ev in batch:
            kv = ev.kv
            rev = kv.mod_revision
            prev = self.objects.get(kv.key)
            if ev.type is EventType.DELETE:
                cur = CachedObject(kv.key, decode_stored(kv.value, rev),
                                   stored_with_rv(kv.value, rev), rev)
                if self.objects.pop(kv.key, None) is not None:
                    self._sorted_keys = None
                event = WatchEvent(DELETED, cur, prev, rev)
            else:
                cur = CachedObject(kv.key, decode_stored(kv.value, rev),
                                   stored_with_rv(kv.value, rev), rev)
                if prev is None:
                    self._sorted_keys = None
                self.objects[kv.key] = cur
                event = WatchEvent(ADDED if prev is None else MODIFIED, cur, prev, rev)
            self._ring.append(event)
            if len(self._ring) > self.capacity:
                self.floor = self._ring.popleft().rev
            for watcher in self._watchers:
                watcher.offer(event)
            for listener in self.listeners:
                listener(event)
            self.revision = rev
        self._notify_progress()

    def _notify_progress(self) -> None:
        if not self._waiting:
            return
        still = []
        for revision, future in self._waiting:
            if revision <= self.revision:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((revision, future))
        self._waiting = still

    async def wait_for(self, revision: int, timeout: float) -> bool:
        """Wait until the cache has applied ``revision``; False on timeout."""
        if self.revision >= revision:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (revision, future)
        self._waiting.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            return False
        finally:
            if entry in self._waiting:
                self._waiting.remove(entry)
        return True

    # -- reading --------------------------------------------------------------------------

    def get(self, key: str) -> CachedObject | None:
        return self.objects.get(key)

    def list(self, flt: ObjectFilter) -> list[CachedObject]:
        """Matching objects in key order."""
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self.objects)
        keys = self._sorted_keys
        objects = self.objects
        if flt.namespace is not None and self.kind.namespaced:
            prefix = f"{self.prefix}{flt.namespace}/"
            start = bisect_left(keys, prefix)
            end = bisect_left(keys, prefix[:-1] + "0")  # '0' sorts right after '/'
            keys = keys[start:end]
            flt = ObjectFilter(name=flt.name, label=flt.label, field=flt.field,
                               fields_of=flt.fields_of)
        if flt.everything:
            return [objects[k] for k in keys]
        return [o for k in keys if flt.matches((o := objects[k]).obj)]

    # -- watching -------------------------------------------------------------------------

    def can_replay_from(self, revision: int) -> bool:
        return revision >= self.floor

    def watch(self, flt: ObjectFilter, after_rev: int, *, initial: bool) -> Watcher:
        """Start a client watch.

        :param after_rev: deliver events after this revision (ignored with ``initial``).
        :param initial: first deliver every current object as ADDED (RV unset or "0").
        """
        if initial:
            watcher = Watcher(flt, self.revision)
            for obj in self.list(flt):
                watcher._push((ADDED, obj))
        else:
            watcher = Watcher(flt, after_rev)
            for event in self._ring:
                if event.rev > after_rev:
                    watcher.offer(event)
        self._watchers.add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)
        watcher.close()

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)


async def storage_events(storage: Storage, kind: KindInfo, flt: ObjectFilter,
                         after_rev: int) -> AsyncIterator[tuple[str, CachedObject]]:
    """A client watch served straight from storage history (older than the cache's ring).

    :raises CompactedError: ``after_rev`` is older than the storage keeps.
    """
    prefix = kind.namespace_prefix(flt.namespace)
    async for batch in storage.watch(prefix, after_revision=after_rev):
        for ev in batch:
            kv = ev.kv
            rev = kv.mod_revision
            cur = CachedObject(kv.key, decode_stored(kv.value, rev),
                               stored_with_rv(kv.value, rev), rev)
            prev = None
            if ev.prev_kv is not None:
                pkv = ev.prev_kv
                prev = CachedObject(pkv.key, decode_stored(pkv.value, pkv.mod_revision),
                                    b"", pkv.mod_revision)
            if ev.type is EventType.DELETE:
                if flt.matches(cur.obj):
                    yield DELETED, cur
                continue
            now = flt.matches(cur.obj)
            before = prev is not None and flt.matches(prev.obj)
            if now and before:
                yield MODIFIED, cur
            elif now:
                yield ADDED, cur
            elif before:
                yield DELETED, cur

"""Shared informers: list once, then watch into a local cache; relist on 410.

Every component sees the cluster through informers (client-go's pattern).  Handlers run
in the informer's task, in event order, and must be quick: controllers only enqueue keys.
Cached objects are shared dicts: never mutate one; copy it to change it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from kubeling.api.errors import ApiError
from kubeling.api.registry import Resource
from kubeling.client.client import Client

log = logging.getLogger(__name__)

__all__ = ["Informer", "InformerFactory", "object_key"]

Obj = dict[str, Any]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]


def object_key(obj: Obj) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else meta["name"]


class Informer:
    """A list+watch cache of one resource (optionally one namespace / selected objects)."""

    def __init__(self, client: Client, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 watch_timeout: int = 300) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout = watch_timeout
        self.store: dict[str, Obj] = {}
        self.resource_version = ""
        self._handlers: list[tuple[AddHandler | None, UpdateHandler | None,
                                   DeleteHandler | None]] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.relists = 0

    # -- handlers and reads ---------------------------------------------------------------

    def add_handler(self, on_add: AddHandler | None = None, on_update: UpdateHandler | None = None,
                    on_delete: DeleteHandler | None = None) -> None:
        """Register callbacks; objects already cached are replayed to ``on_add``."""
        self._handlers.append((on_add, on_update, on_delete))
        if on_add is not None:
            for obj in list(self.store.values()):
                on_add(obj)

    def get(self, key: str) -> Obj | None:
        return self.store.get(key)

    def list(self) -> list[Obj]:
        return list(self.store.values())

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await self._synced.wait()

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer {self.resource.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        """List and watch until cancelled."""
        backoff = 0.2
        need_list = not self._synced.is_set()  # a restarted informer resumes its watch
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.code == 410:
                    log.info("informer %s: resourceVersion %s is too old; relisting",
                             self.resource.plural, self.resource_version)
                    need_list = True
                    continue
                log.warning("informer %s: %s; retrying", self.resource.plural, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception as exc:
                log.warning("informer %s: %s: %s; retrying", self.resource.plural,
                            type(exc).__name__, exc)
                await asyncio.sleep(backoff * (1 + random.random()))
                backoff = min(backoff * 2, 10.0)

    async def _relist(self) -> None:
        items: list[Obj] = []
        token = None
        rv = ""
        while True:
            result = await self.client.list(
                self.resource, self.namespace, label_selector=self.label_selector,
                field_selector=self.field_selector, limit=1000 if self.relists else None,
                continue_=token, resource_version=None if token or self.relists else "0")
            items.extend(result.get("items") or [])
            meta = result.get("metadata") or {}
            rv = meta.get("resourceVersion") or rv
            token = meta.get("continue")
            if not token:
                break
        self.relists += 1
        fresh = {object_key(o): o for o in items}
        old = self.store
        self.store = fresh
        self.resource_version = rv
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self._emit_add(obj)
            elif before["metadata"].get("resourceVersion") != obj["metadata"].get(
                    "resourceVersion"):
                self._emit_update(before, obj)
        for key, obj in old.items():
            if key not in fresh:
                self._emit_delete(obj)
        self._synced.set()

    async def _watch(self) -> None:
        async for event in self.client.watch(
                self.resource, self.namespace, resource_version=self.resource_version,
                label_selector=self.label_selector, field_selector=self.field_selector,
                timeout_seconds=self.watch_timeout, allow_bookmarks=True):
            obj = event.object
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = rv
            if event.type == "BOOKMARK":
                continue
            key = object_key(obj)
            if event.type == "DELETED":
                gone = self.store.pop(key, None)
                self._emit_delete(gone if gone is not None else obj)
                continue
            before = self.store.get(key)
            self.store[key] = obj
            if before is None:
                self._emit_add(obj)
            else:
                self._emit_update(before, obj)

    def _emit_add(self, obj: Obj) -> None:
        for on_add, _, _ in self._handlers:
            if on_add is not None:
                self._safe(on_add, obj)

    def _emit_update(self, old: Obj, new: Obj) -> None:
        for _, on_update, _ in self._handlers:
            if on_update is not None:
                self._safe(on_update, old, new)

    def _emit_delete(self, obj: Obj) -> None:
        for _, _, on_delete in self._handlers:
            if on_delete is not None:
                self._safe(on_delete, obj)

    def _safe(self, handler: Callable[..., None], *args: Obj) -> None:
        try:
            handler(*args)
        except Exception:
            log.exception("informer %s: handler %r failed", self.resource.plural, handler)


class InformerFactory:
    """One informer per (resource, namespace, selectors), shared by every component."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[tuple[Any, ...], Informer] = {}

    def informer(self, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None
                 ) -> Informer:
        key = (resource, namespace, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, resource, namespace=namespace,
                                label_selector=label_selector, field_selector=field_selector)
            self._informers[key] = informer
        return informer

    def start(self) -> None:
        for informer in self._informers.values():
            informer.start()

    async def wait_for_sync(self, timeout: float | None = None) -> None:
        await asyncio.gather(*(i.wait_synced(timeout) for i in self._informers.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(i.stop() for i in self._informers.values()))

"""What every controller shares: the context it is built with and the sample-controller loop.

:class:`ControllerContext` is what a controller factory registered through
``kubeling_register_controllers`` receives.  :class:`Controller` is the base of ours (and
may be of anyone's): informer handlers call :meth:`Controller.enqueue`; ``workers`` tasks
pop keys and call :meth:`Controller.reconcile`; a transient failure requeues the key with
per-item exponential backoff, a permanent one is logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import attrs

from kubeling.api.registry import Resource
from kubeling.client import ApiError, Client, Informer, InformerFactory, object_key
from kubeling.config import Config
from kubeling_controllers_default.config import ControllersConfig
from kubeling_controllers_default.events import EventRecorder, EventSink
from kubeling_controllers_default.queue import RateLimitingQueue

log = logging.getLogger(__name__)

__all__ = [
    "Clock",
    "Controller",
    "ControllerContext",
    "Index",
    "PermanentError",
    "Requeue",
]

Obj = dict[str, Any]


class Clock:
    """Wall-clock time for timestamps and monotonic time for delays (tests replace it)."""

    def now(self) -> datetime.datetime:
        """The current time, in UTC."""
        return datetime.datetime.now(datetime.UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class PermanentError(Exception):
    """A reconcile failure that retrying cannot fix: logged, and the key dropped."""


class Requeue(Exception):
    """Raised by ``reconcile`` to be called again for the key after ``after`` seconds
    (without counting a failure)."""

    def __init__(self, after: float = 0.0) -> None:
        super().__init__(after)
        self.after = after


class Index:
    """A secondary index of one informer's cache: ``values(obj)`` -> objects by value.

    Kept current by informer handlers, so controllers find a ReplicaSet's pods or a node's
    pods without scanning every pod.
    """

    def __init__(self, informer: Informer, values: Callable[[Obj], Iterable[str]]) -> None:
        self.informer = informer
        self.values = values
        self._by_value: dict[str, dict[str, Obj]] = {}
        self._of_key: dict[str, tuple[str, ...]] = {}
        informer.add_handler(on_add=self._set, on_update=lambda _old, new: self._set(new),
                             on_delete=self._remove)

    def _set(self, obj: Obj) -> None:
        key = object_key(obj)
        values = tuple(self.values(obj))
        previous = self._of_key.get(key, ())
        for value in previous:
            if value not in values:
                bucket = self._by_value.get(value)
                if bucket is not None:
                    bucket.pop(key, None)
                    if not bucket:
                        del self._by_value[value]
        for value in values:
            self._by_value.setdefault(value, {})[key] = obj
        if values:
            self._of_key[key] = values
        else:
            self._of_key.pop(key, None)

    def _remove(self, obj: Obj) -> None:
        key = object_key(obj)
        for value in self._of_key.pop(key, ()):
            bucket = self._by_value.get(value)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self._by_value[value]

    def get(self, value: str) -> list[Obj]:
        """Objects (shared, never to be mutated) indexed under ``value``."""
        return list(self._by_value.get(value, {}).values())

    def count(self, value: str) -> int:
        return len(self._by_value.get(value, ()))

    def indexed_values(self) -> list[str]:
        return list(self._by_value)


@attrs.define(kw_only=True)
class ControllerContext:
    """What a controller factory receives (``factory(ctx)``).

    One per controller manager term: every controller built from it shares its informers
    and indexes, and they all go away when the term ends (leadership lost, shutdown).
    """

    config: Config
    """The whole validated config."""
    settings: ControllersConfig
    """The ``controllers`` section."""
    informers: InformerFactory
    """The manager's shared informers (started by the controllers that use them)."""
    client_factory: Callable[[str], Client]
    events: EventSink
    clock: Clock = attrs.field(factory=Clock)
    _clients: dict[str, Client] = attrs.field(factory=dict)
    _indexes: dict[tuple[Any, ...], Index] = attrs.field(factory=dict)

    def client(self, user_agent: str = "kubeling-controller-manager") -> Client:
        """An API client (one per user agent, shared)."""
        client = self._clients.get(user_agent)
        if client is None:
            client = self.client_factory(user_agent)
            self._clients[user_agent] = client
        return client

    def recorder(self, component: str) -> EventRecorder:
        """An event recorder reporting as ``component``."""
        return self.events.recorder(component)

    def section(self, path: str) -> Any:
        return self.config.section(path)

    def informer(self, resource: Resource, **kw: Any) -> Informer:
        """The shared informer of ``resource`` (started at once)."""
        informer = self.informers.informer(resource, **kw)
        informer.start()
        return informer

    def index(self, resource: Resource, name: str, values: Callable[[Obj], Iterable[str]]
              ) -> Index:
        """The shared index ``name`` over ``resource``'s informer (built on first use)."""
        key = (resource, name)
        index = self._indexes.get(key)
        if index is None:
            index = Index(self.informer(resource), values)
            self._indexes[key] = index
        return index

    async def close(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.close()
        self._clients.clear()


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may help: conflicts, throttling, server errors, lost connections."""
    if isinstance(exc, PermanentError):
        return False
    if isinstance(exc, ApiError):
        return exc.code in (409, 429) or exc.code >= 500 or exc.code == 0
    return True


class Controller:
    """The sample-controller loop; subclasses set ``name`` and implement :meth:`reconcile`.

    Subclasses register informer handlers in ``__init__`` (handlers only :meth:`enqueue`),
    list the informers they need synced in ``self.synced`` and may override
    :meth:`on_synced` (called once the caches are full, before workers start) and
    :meth:`background` (extra periodic work, run beside the workers).
    """

    name: ClassVar[str] = "controller"

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.clock = ctx.clock
        self.log = logging.getLogger(f"kubeling.controllers.{self.name}")
        self.queue = RateLimitingQueue(
            self.name, base_delay=ctx.settings.queue_base_delay_seconds,
            max_delay=ctx.settings.queue_max_delay_seconds,
            qps=ctx.settings.queue_retry_qps, burst=ctx.settings.queue_retry_burst)
        self.workers = ctx.settings.workers_for(self.name)
        self.synced: list[Informer] = []
        self.reconciles = 0
        self.failures = 0
        self.busy_seconds = 0.0
        """Time spent inside :meth:`reconcile` (awaits included)."""

    # -- for subclasses --------------------------------------------------------------------

    def informer(self, resource: Resource, **kw: Any) -> Informer:
        """A shared informer this controller waits for before reconciling."""
        informer = self.ctx.informer(resource, **kw)
        if informer not in self.synced:
            self.synced.append(informer)
        return informer

    def enqueue(self, obj_or_key: Obj | str) -> None:
        """Queue a ``ns/name`` key (or an object's key)."""
        key = obj_or_key if isinstance(obj_or_key, str) else object_key(obj_or_key)
        self.queue.add(key)

    def enqueue_after(self, obj_or_key: Obj | str, delay: float) -> None:
        key = obj_or_key if isinstance(obj_or_key, str) else object_key(obj_or_key)
        self.queue.add_after(key, delay)

    async def reconcile(self, key: str) -> None:
        """Bring the object named ``key`` to its desired state (NotFound means done)."""
        raise NotImplementedError

    async def on_synced(self) -> None:
        """Called once the informers are synced, before the workers start."""

    async def background(self) -> None:
        """Extra work beside the workers (periodic checks); runs until cancelled."""

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the caches, then reconcile until cancelled."""
        try:
            await asyncio.gather(*(i.wait_synced() for i in self.synced))
            await self.on_synced()
            tasks = [asyncio.create_task(self._worker(), name=f"{self.name} worker {n}")
                     for n in range(self.workers)]
            tasks.append(asyncio.create_task(self.background(), name=f"{self.name} background"))
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        finally:
            self.queue.shut_down()

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            assert isinstance(key, str)
            await self.process(key)

    async def process(self, key: str) -> None:
        """Reconcile one key and decide its fate (forget, requeue with backoff, drop)."""
        started = time.monotonic()
        try:
            self.reconciles += 1
            await self.reconcile(key)
            self.queue.forget(key)
        except asyncio.CancelledError:
            raise
        except Requeue as again:
            self.queue.forget(key)
            self.queue.add_after(key, again.after)
        except Exception as exc:
            self.failures += 1
            self._failed(key, exc)
        finally:
            self.busy_seconds += time.monotonic() - started
            self.queue.done(key)

    def _failed(self, key: str, exc: Exception) -> None:
        retries = self.queue.num_requeues(key)
        if not is_transient(exc):
            self.log.warning("%s %s: %s (not retried)", self.name, key, exc)
            self.queue.forget(key)
            return
        if retries >= self.settings.max_retries:
            self.log.error("%s %s: dropped after %d retries: %s", self.name, key, retries,
                           exc)
            self.queue.forget(key)
            return
        if isinstance(exc, ApiError):
            self.log.info("%s %s: %s; retrying", self.name, key, exc)
        else:
            self.log.warning("%s %s: retrying after an error", self.name, key,
                             exc_info=exc)
        self.queue.add_rate_limited(key)

"""A rate-limited work queue of keys, client-go's ``workqueue`` in asyncio.

* **Dedupe:** a key waiting in the queue is held once, however often it is added.
* **One worker per key:** a key being processed is not handed to another worker; adding it
  meanwhile marks it dirty, and it is queued again when the worker calls :meth:`done`.
* **Delays:** :meth:`add_after` queues a key later (the earliest pending delay wins).
* **Per-item exponential backoff:** :meth:`add_rate_limited` delays a key by
  ``base * 2**failures`` (capped), and by an overall token bucket when one is set;
  :meth:`forget` resets a key's failures after it succeeds.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Hashable

__all__ = ["RateLimitingQueue", "TokenBucket"]


class TokenBucket:
    """``qps`` tokens a second, at most ``burst`` saved; :meth:`reserve` says how long the
    caller must wait for its token (0 when one is at hand)."""

    def __init__(self, qps: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = qps
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def try_take(self) -> float:
        """Take a token if one is at hand (0.0); else take none and say how long until
        one will be."""
        if self.qps <= 0:
            return 0.0
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.qps

    def reserve(self) -> float:
        """Take one token; the delay until it is really available."""
        if self.qps <= 0:
            return 0.0
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps


class RateLimitingQueue:
    """Keys waiting to be reconciled; see the module docstring for the rules."""

    def __init__(self, name: str = "", *, base_delay: float = 0.005, max_delay: float = 1000.0,
                 qps: float = 10.0, burst: int = 100) -> None:
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.bucket = TokenBucket(qps, burst) if qps > 0 else None
        self._queue: collections.deque[Hashable] = collections.deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._delayed: dict[Hashable, tuple[float, asyncio.TimerHandle]] = {}
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._shutting_down = False
        self.adds = 0
        """Keys handed to workers so far (for metrics and benchmarks)."""

    # -- adding ----------------------------------------------------------------------------

    def add(self, key: Hashable) -> None:
        """Queue ``key`` now (no-op if it is already waiting)."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake()

    def add_after(self, key: Hashable, delay: float) -> None:
        """Queue ``key`` once ``delay`` seconds have passed (the earliest request wins)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        pending = self._delayed.get(key)
        if pending is not None:
            if pending[0] <= when:
                return
            pending[1].cancel()
        handle = loop.call_at(when, self._fire, key)
        self._delayed[key] = (when, handle)

    def _fire(self, key: Hashable) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    def when(self, key: Hashable) -> float:
        """The backoff delay for ``key``'s next retry, counting this failure."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self.base_delay * (2 ** min(failures, 62)), self.max_delay)
        if self.bucket is not None:
            delay = max(delay, self.bucket.reserve())
        return delay

    def add_rate_limited(self, key: Hashable) -> None:
        """Queue ``key`` after its backoff delay (it failed once more)."""
        self.add_after(key, self.when(key))

    def forget(self, key: Hashable) -> None:
        """``key`` succeeded: its next failure starts the backoff again."""
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        """Failures of ``key`` since it last succeeded."""
        return self._failures.get(key, 0)

    # -- taking ----------------------------------------------------------------------------

    async def get(self) -> Hashable | None:
        """The next key to process; ``None`` once the queue is shut down."""
        while not self._queue:
            if self._shutting_down:
                return None
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._getters:
                    self._getters.remove(waiter)
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        self.adds += 1
        return key

    def done(self, key: Hashable) -> None:
        """The worker finished ``key``; queue it again if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake()

    def _wake(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # -- state -----------------------------------------------------------------------------

    def __len__(self) -> int:
        """Keys waiting now (not the delayed ones, not those being processed)."""
        return len(self._queue)

    @property
    def pending_delayed(self) -> int:
        return len(self._delayed)

    @property
    def processing(self) -> int:
        return len(self._processing)

    def shut_down(self) -> None:
        """Stop handing out keys: waiting workers get ``None``."""
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        self._queue.clear()
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

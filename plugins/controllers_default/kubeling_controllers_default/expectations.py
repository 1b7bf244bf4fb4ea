"""Expectations: what a controller has asked for and not yet seen in its informers.

A ReplicaSet that creates 5 pods records "expect 5 creations"; until its pod informer has
shown those 5 pods (or the record has expired) it does not act on the replica count again,
so it never over-creates while its own writes are in flight (Kubernetes'
``ControllerExpectations``).  Deletions are tracked by pod key
(:class:`UIDTrackingExpectations`), so a pod that disappears for another reason is not
mistaken for the one deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import attrs

__all__ = ["Expectations", "UIDTrackingExpectations"]


@attrs.define
class _Record:
    add: int
    delete: int
    timestamp: float


class Expectations:
    """Pending creations and deletions per controller key."""

    def __init__(self, ttl: float = 300.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._records: dict[str, _Record] = {}

    def satisfied(self, key: str) -> bool:
        """True when ``key`` may act: nothing pending, everything observed, or expired."""
        record = self._records.get(key)
        if record is None:
            return True
        if record.add <= 0 and record.delete <= 0:
            return True
        return self.clock() - record.timestamp > self.ttl

    def set(self, key: str, add: int = 0, delete: int = 0) -> None:
        """Replace ``key``'s expectations (and restart its expiry clock)."""
        self._records[key] = _Record(add, delete, self.clock())

    def expect_creations(self, key: str, count: int) -> None:
        self.set(key, add=count)

    def expect_deletions(self, key: str, count: int) -> None:
        self.set(key, delete=count)

    def lower(self, key: str, add: int = 0, delete: int = 0) -> None:
        """Forget ``add`` creations and ``delete`` deletions (they failed, or were seen)."""
        record = self._records.get(key)
        if record is not None:
            record.add -= add
            record.delete -= delete

    def raise_(self, key: str, add: int = 0, delete: int = 0) -> None:
        """Expect more (without restarting the clock)."""
        record = self._records.get(key)
        if record is None:
            self.set(key, add, delete)
        else:
            record.add += add
            record.delete += delete

    def creation_observed(self, key: str) -> None:
        self.lower(key, add=1)

    def deletion_observed(self, key: str) -> None:
        self.lower(key, delete=1)

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected."""
        record = self._records.get(key)
        return (record.add, record.delete) if record is not None else (0, 0)

    def delete(self, key: str) -> None:
        """Drop ``key`` (its controller object is gone)."""
        self._records.pop(key, None)


class UIDTrackingExpectations(Expectations):
    """Expectations that also remember *which* objects are expected to go away."""

    def __init__(self, ttl: float = 300.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(ttl, clock=clock)
        self._deleting: dict[str, set[str]] = {}

    def expect_deletions_of(self, key: str, object_keys: Iterable[str]) -> None:
        """Expect the objects named by ``object_keys`` (``ns/name``) to be deleted."""
        keys = set(object_keys)
        self._deleting[key] = keys
        self.set(key, delete=len(keys))

    def deletion_observed_of(self, key: str, object_key: str) -> None:
        """``object_key`` went away (or started terminating): count it once."""
        pending = self._deleting.get(key)
        if pending is not None and object_key in pending:
            pending.discard(object_key)
            self.lower(key, delete=1)

    def delete(self, key: str) -> None:
        super().delete(key)
        self._deleting.pop(key, None)

"""The Storage interface every storage plugin implements.

Storage is a revisioned key-value store in the shape of etcd v3 (and of k3s's kine):

* one global revision, strictly increasing, advanced by every successful write; the
  revision of a write is the ``resourceVersion`` the API server reports for the object;
* ``create`` only succeeds when the key is absent; ``update`` and ``delete`` are
  compare-and-swap operations on the key's current ``mod_revision``;
* ``get`` and ``range`` read the latest state or the state *at* an older revision (which
  is how paginated lists stay consistent across pages);
* ``watch`` streams every change under a prefix that happened *after* a revision;
* ``compact(R)`` forgets history before revision ``R``: reading at a revision below ``R``, or
  watching from a revision below ``R`` (``after_revision < R``), raises :class:`CompactedError`.

Keys are ``str`` (``/registry/<resource>/<namespace>/<name>``); values are opaque ``bytes``.
Only the API server talks to storage.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator

import attrs

__all__ = [
    "CompactedError",
    "ConflictError",
    "Event",
    "EventType",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "RangeResult",
    "Storage",
    "StorageError",
    "StorageUnavailableError",
    "prefix_end",
]


@attrs.frozen(kw_only=True)
class KeyValue:
    """One key at one revision."""

    key: str
    value: bytes
    create_revision: int
    """Revision of the write that created the key (stays the same across updates)."""
    mod_revision: int
    """Revision of the last write to the key (for a delete event: the delete's revision)."""


class EventType(enum.Enum):
    PUT = "PUT"
    DELETE = "DELETE"


@attrs.frozen(kw_only=True)
class Event:
    """One change seen by a watch.

    For ``PUT`` events ``kv`` is the new value and ``prev_kv`` the value it replaced (``None``
    for a create).  For ``DELETE`` events ``kv.value`` is the last value the key held and
    ``kv.mod_revision`` is the revision of the delete; ``prev_kv`` is that same last value at
    its own mod revision.
    """

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def created(self) -> bool:
        return self.type is EventType.PUT and self.prev_kv is None


@attrs.frozen(kw_only=True)
class RangeResult:
    """The answer to :meth:`Storage.range`."""

    kvs: list[KeyValue]
    revision: int
    """The revision the range was read at (the current revision when none was asked for)."""
    more: bool = False
    """True when ``limit`` cut the answer short: more keys follow the last one returned."""


class StorageError(Exception):
    """Base class of every storage error."""


class KeyExistsError(StorageError):
    """``create`` of a key that already exists."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} already exists")
        self.key = key


class KeyNotFoundError(StorageError):
    """``update``/``delete`` of a key that does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} not found")
        self.key = key


class ConflictError(StorageError):
    """A compare-and-swap lost: the key's mod revision is not the expected one.

    ``current`` is the key's current value, so the caller can retry without another read.
    """

    def __init__(self, key: str, expected: int, current: KeyValue | None) -> None:
        actual = current.mod_revision if current else None
        super().__init__(f"key {key!r}: expected mod revision {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.current = current


class CompactedError(StorageError):
    """A read or watch asked for a revision older than the compacted revision."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted; the oldest available revision is "
            f"{compacted}"
        )
        self.requested = requested
        self.compacted = compacted


class StorageUnavailableError(StorageError):
    """The backend cannot be reached or has been closed."""


def prefix_end(prefix: str) -> str:
    """The smallest key greater than every key starting with ``prefix`` (etcd's range end)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else ""


class Storage(abc.ABC):
    """A revisioned key-value store.  All methods are coroutines except :meth:`watch`,
    which returns an async iterator.

    Implementations must be safe to call concurrently from many tasks of one event loop.
    A write method returns (or raises) only once the outcome is durable: a write whose
    revision was returned survives ``kill -9`` of the process.
    """

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the backend (files, connections); called once before any other method."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release everything; watches end; writes in flight either complete or fail with
        StorageUnavailableError, and later calls fail with it."""

    @abc.abstractmethod
    async def current_revision(self) -> int:
        """The revision of the newest committed write (0 for an empty store)."""

    @abc.abstractmethod
    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        """The key's value at ``revision`` (0: now), or ``None`` when absent then.

        :raises CompactedError: ``revision`` is below the compacted revision.
        """

    @abc.abstractmethod
    async def range(
        self,
        prefix: str,
        *,
        start_key: str | None = None,
        revision: int = 0,
        limit: int = 0,
    ) -> RangeResult:
        """Keys starting with ``prefix``, in key order, as they were at ``revision`` (0: now).

        :param prefix: every returned key starts with it.
        :param start_key: if given, only keys ``>= start_key`` are returned (pagination).
        :param revision: read the state at this revision; 0 reads the current state.
        :param limit: at most this many keys (0: no limit); ``more`` tells if some were left.
        :raises CompactedError: ``revision`` is below the compacted revision.
        """

    @abc.abstractmethod
    async def count(self, prefix: str) -> int:
        """How many keys currently start with ``prefix``."""

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> int:
        """Create ``key``; returns the revision of the write.

        :raises KeyExistsError: the key exists.
        """

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, *, mod_revision: int) -> int:
        """Replace ``key``'s value if its mod revision is ``mod_revision``; returns the new
        revision.

        :raises KeyNotFoundError: the key does not exist.
        :raises ConflictError: the key's mod revision differs (carries the current value).
        """

    @abc.abstractmethod
    async def delete(self, key: str, *, mod_revision: int = 0) -> KeyValue:
        """Delete ``key`` (if its mod revision is ``mod_revision``, when that is not 0).

        Returns the deleted value with ``mod_revision`` set to the revision of the delete.

        :raises KeyNotFoundError: the key does not exist.
        :raises ConflictError: ``mod_revision`` was given and differs.
        """

    @abc.abstractmethod
    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[list[Event]]:
        """Every change to keys under ``prefix`` with revision ``> after_revision``, in order.

        Yields non-empty batches of events; a batch never splits one revision.  Iteration
        ends when the storage is closed; the consumer cancels it to stop watching.

        :raises CompactedError: (on first iteration) ``after_revision`` is below the compacted
            revision.
        """

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history before ``revision``: the state at ``revision`` and later stays
        readable, older states and events are gone.  Current values are always kept."""

    @abc.abstractmethod
    async def compacted_revision(self) -> int:
        """The revision of the last compaction (0 if never compacted)."""

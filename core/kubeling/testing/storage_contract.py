"""The conformance suite every storage plugin passes: :class:`StorageContract`.

It checks each clause of :class:`kubeling.storage.Storage` against a real backend: the
global revision, create / compare-and-swap update / delete, reads at older revisions,
prefix ranges and pagination, watches (replay, live, ordering, fan-out), compaction,
concurrency, ``close()``, and optionally persistence across close and reopen.

Using it from a plugin (ours or a third party's) takes a few lines::

    # tests/test_contract.py
    import pytest

    from kubeling.testing.storage_contract import StorageContract
    from kubeling_mystore import MyStorage


    class TestMyStorageContract(StorageContract):
        @pytest.fixture
        def make_storage(self, tmp_path):
            # A zero-argument callable returning a new, *not yet started* Storage (it may
            # also be a coroutine function).  Each test gets its own empty data.
            return lambda: MyStorage(tmp_path / "data")

        # Optional: enables the persistence tests.  A callable that opens a new Storage over
        # the same data as the one make_storage() opened (after that one was closed).
        @pytest.fixture
        def reopen(self, make_storage):
            return make_storage

Instead of ``make_storage`` a subclass may override the ``storage`` fixture to yield a
started Storage itself; the tests that need to open a second instance (close and reopen
tests) are then skipped.  A suite test that does not apply to a backend can be switched off
in the subclass with ``test_name = None``.

The tests are coroutines marked ``asyncio`` (pytest-asyncio), so the suite runs whether the
project uses pytest-asyncio's ``auto`` or ``strict`` mode.  Every wait is bounded, so a
broken backend fails a test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from kubeling.storage import (
    CompactedError,
    ConflictError,
    Event,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
    Storage,
    StorageUnavailableError,
)

__all__ = ["StorageContract", "StorageFactory", "WatchCollector"]

StorageFactory = Callable[[], "Storage | Awaitable[Storage]"]
"""What the ``make_storage`` and ``reopen`` fixtures return."""

TIMEOUT = 10.0
"""Seconds any single wait in the suite may take before the test fails."""

PODS = "/registry/pods/"
OTHER = "/registry/podsx/"  # shares "/registry/pods" but not "/registry/pods/"


def pod(name: str) -> str:
    """A key under :data:`PODS`."""
    return f"{PODS}default/{name}"


async def _build(factory: StorageFactory) -> Storage:
    made = factory()
    if inspect.isawaitable(made):
        made = await made
    assert isinstance(made, Storage), f"the factory returned {made!r}, not a Storage"
    return made


class WatchCollector:
    """Consumes a watch in a background task and records what it yields.

    ``batches`` holds every batch as yielded, ``events`` all events in order; ``ended``
    tells whether iteration finished, ``error`` what it raised (if anything).
    """

    def __init__(self, watch: AsyncIterator[list[Event]]) -> None:
        self.batches: list[list[Event]] = []
        self.ended = False
        self.error: BaseException | None = None
        self._watch = watch
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]

    async def _run(self) -> None:
        try:
            async for batch in self._watch:
                self.batches.append(list(batch))
                self._changed.set()
        except Exception as exc:
            self.error = exc
        finally:
            self.ended = True
            self._changed.set()

    async def wait_for(self, count: int, timeout: float = TIMEOUT) -> list[Event]:
        """Wait until at least ``count`` events arrived; returns all events so far."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.events) < count and not self.ended:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"watch delivered {len(self.events)} events within {timeout}s, expected "
                f"{count}: {_describe(self.events)}"
            ) from None
        if self.error is not None and len(self.events) < count:
            raise AssertionError(f"watch failed after {len(self.events)} events") from self.error
        assert len(self.events) >= count, (
            f"watch ended after {len(self.events)} events, expected {count}"
        )
        return self.events

    async def wait_ended(self, timeout: float = TIMEOUT) -> None:
        """Wait until iteration has finished."""
        try:
            async with asyncio.timeout(timeout):
                while not self.ended:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"watch did not end within {timeout}s") from None

    async def stop(self) -> None:
        """Cancel the consumer and close the watch."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        aclose = getattr(self._watch, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


@contextlib.asynccontextmanager
async def collecting(watch: AsyncIterator[list[Event]]) -> AsyncIterator[WatchCollector]:
    """``async with collecting(storage.watch(...)) as w:`` -- a :class:`WatchCollector`
    that is stopped on exit."""
    collector = WatchCollector(watch)
    try:
        yield collector
    finally:
        await collector.stop()


def _describe(events: list[Event]) -> str:
    return ", ".join(f"{e.type.value} {e.kv.key}@{e.kv.mod_revision}" for e in events) or "none"


def _kv(key: str, value: bytes, create: int, mod: int) -> KeyValue:
    return KeyValue(key=key, value=value, create_revision=create, mod_revision=mod)


async def _first_batch(watch: AsyncIterator[list[Event]]) -> list[Event]:
    async with asyncio.timeout(TIMEOUT):
        return await anext(watch)


async def _close_watch(watch: AsyncIterator[list[Event]]) -> None:
    aclose = getattr(watch, "aclose", None)
    if aclose is not None:
        await aclose()


class StorageContract:
    """The shared conformance suite for :class:`kubeling.storage.Storage` backends.

    Subclass it in a test module (the class name must start with ``Test``) and provide the
    ``make_storage`` fixture, or override ``storage``; see the module docstring.
    """

    pytestmark = [pytest.mark.asyncio]

    # -- fixtures a subclass provides -------------------------------------------------

    @pytest.fixture
    def make_storage(self) -> StorageFactory | None:
        """Override: a callable returning a new, not yet started Storage over fresh data."""
        return None

    @pytest.fixture
    def reopen(self) -> StorageFactory | None:
        """Override to enable the persistence tests: a callable returning a new, not yet
        started Storage over the same data as the last one ``make_storage`` returned."""
        return None

    @pytest_asyncio.fixture
    async def storage(self, make_storage: StorageFactory | None) -> AsyncIterator[Storage]:
        """A started Storage over fresh data, closed after the test."""
        if make_storage is None:
            pytest.fail(
                f"{type(self).__name__} must define the make_storage fixture (or override "
                "the storage fixture); see kubeling.testing.storage_contract"
            )
        store = await _build(make_storage)
        await store.start()
        try:
            yield store
        finally:
            await store.close()

    # -- helpers ------------------------------------------------------------------------

    async def _open(self, factory: StorageFactory | None, what: str = "make_storage") -> Storage:
        if factory is None:
            pytest.skip(f"this backend's tests do not provide the {what} fixture")
        store = await _build(factory)
        await store.start()
        return store

    # ===================================================================================
    # revisions and writes
    # ===================================================================================

    async def test_fresh_store_is_empty(self, storage: Storage) -> None:
        assert await storage.current_revision() == 0
        assert await storage.compacted_revision() == 0
        assert await storage.get(pod("a")) is None
        result = await storage.range("")
        assert result.kvs == []
        assert result.more is False
        assert await storage.count("") == 0

    async def test_revision_strictly_increases_across_keys(self, storage: Storage) -> None:
        r1 = await storage.create(pod("a"), b"1")
        r2 = await storage.create(pod("b"), b"1")
        r3 = await storage.update(pod("a"), b"2", mod_revision=r1)
        r4 = (await storage.delete(pod("b"))).mod_revision
        r5 = await storage.create(f"{OTHER}x", b"1")
        r6 = await storage.update(pod("a"), b"3", mod_revision=r3)
        assert 0 < r1 < r2 < r3 < r4 < r5 < r6
        assert await storage.current_revision() == r6

    async def test_create_then_get(self, storage: Storage) -> None:
        rev = await storage.create(pod("a"), b"hello")
        assert await storage.get(pod("a")) == _kv(pod("a"), b"hello", rev, rev)
        assert await storage.current_revision() == rev

    async def test_create_existing_key_raises_key_exists(self, storage: Storage) -> None:
        rev = await storage.create(pod("a"), b"first")
        with pytest.raises(KeyExistsError) as info:
            await storage.create(pod("a"), b"second")
        assert info.value.key == pod("a")
        assert await storage.get(pod("a")) == _kv(pod("a"), b"first", rev, rev)
        assert await storage.current_revision() == rev, "a failed create advanced the revision"

    async def test_create_after_delete_starts_a_new_key(self, storage: Storage) -> None:
        r1 = await storage.create(pod("a"), b"old")
        deleted = await storage.delete(pod("a"))
        r3 = await storage.create(pod("a"), b"new")
        assert r1 < deleted.mod_revision < r3
        assert await storage.get(pod("a")) == _kv(pod("a"), b"new", r3, r3)

    async def test_update_keeps_create_revision(self, storage: Storage) -> None:
        r1 = await storage.create(pod("a"), b"1")
        r2 = await storage.update(pod("a"), b"2", mod_revision=r1)
        r3 = await storage.update(pod("a"), b"3", mod_revision=r2)
        assert r1 < r2 < r3
        assert await storage.get(pod("a")) == _kv(pod("a"), b"3", r1, r3)

    async def test_update_with_stale_mod_revision_conflicts(self, storage: Storage) -> None:
        r1 = await storage.create(pod("a"), b"1")
        r2 = await storage.update(pod("a"), b"2", mod_revision=r1)
        with pytest.raises(ConflictError) as info:
            await storage.update(pod("a"), b"lost", mod_revision=r1)
        assert info.value.key == pod("a")
        assert info.value.expected == r1
        assert info.value.current == _kv(pod("a"), b"2", r1, r2)
        assert await storage.get(pod("a")) == _kv(pod("a"), b"2", r1, r2)
        assert await storage.current_revision() == r2

    async def test_update_with_future_mod_revision_conflicts(self, storage: Storage) -> None:
        r1 = await storage.create(pod("a"), b"1")
        with pytest.raises(ConflictError) as info:
            await storage.update(pod("a"), b"x", mod_revision=r1 + 100)
        assert info.value.current == _kv(pod("a"), b"1", r1, r1)

    async def test_update_missing_key_raises_not_found(self, storage: Storage) -> None:
        with pytest.raises(KeyNotFoundError) as info:
            await storage.update(pod("nope"), b"x", mod_revision=1)
        assert info.value.key == pod("nope")
        rev = await storage.create(pod("gone"), b"x")
        await storage.delete(pod("gone"))
        with pytest.raises(KeyNotFoundError):
            await storage.update(pod("gone"), b"y", mod_revision=rev)
        assert await storage.get(pod("gone")) is None

    async def test_delete_returns_last_value_at_delete_revision(self, storage: Storage) -> None:
        r1 = await storage.create(pod("a"), b"1")
        r2 = await storage.update(pod("a"), b"2", mod_revision=r1)
        deleted = await storage.delete(pod("a"))
        assert deleted.key == pod("a")
        assert deleted.value == b"2"
        assert deleted.create_revision == r1
        assert deleted.mod_revision > r2
        assert await storage.current_revision() == deleted.mod_revision
        assert await storage.get(pod("a")) is None
        assert await storage.count(PODS) == 0

    async def test_delete_missing_key_raises_not_found(self, storage: Storage) -> None:
        with pytest.raises(KeyNotFoundError) as info:
            await storage.delete(pod("nope"))
        assert info.value.key == pod("nope")
        await storage.create(pod("a"), b"1")
        await storage.delete(pod("a"))
        rev = await storage.current_revision()
        with pytest.raises(KeyNotFoundError):
            await storage.delete(pod("a"))
        assert await storage.current_revision() == rev

    async def test_delete_with_matching_mod_revision(self, storage: Storage) -> None:
        r1 = await storage.create(pod("a"), b"1")
        r2 = await storage.update(pod("a"), b"2", mod_revision=r1)
        deleted = await storage.delete(pod("a"), mod_revision=r2)
        assert deleted.value == b"2"
        assert deleted.mod_revision > r2
        assert await storage.get(pod("a")) is None

    async def test_delete_with_stale_mod_revision_conflicts(self, storage: Storage) -> None:
        r1 = await storage.create(pod("a"), b"1")
        r2 = await storage.update(pod("a"), b"2", mod_revision=r1)
        with pytest.raises(ConflictError) as info:
            await storage.delete(pod("a"), mod_revision=r1)
        assert info.value.expected == r1
        assert info.value.current == _kv(pod("a"), b"2", r1, r2)
        assert await storage.get(pod("a")) == _kv(pod("a"), b"2", r1, r2)
        assert await storage.current_revision() == r2

    async def test_values_are_opaque_bytes(self, storage: Storage) -> None:
        values = {
            pod("all-bytes"): bytes(range(256)) * 4,
            pod("empty"): b"",
            pod("nul"): b"\x00",
            pod("big"): random.Random(7).randbytes(1 << 20),
        }
        after = await storage.current_revision()
        for key, value in values.items():
            await storage.create(key, value)
        for key, value in values.items():
            got = await storage.get(key)
            assert got is not None and got.value == value and type(got.value) is bytes
        ranged = {kv.key: kv.value for kv in (await storage.range(PODS)).kvs}
        assert ranged == values
        watch = storage.watch(PODS, after_revision=after)
        async with collecting(watch) as w:
            events = await w.wait_for(len(values))
        assert {e.kv.key: e.kv.value for e in events} == values

    # ===================================================================================
    # reads at older revisions
    # ===================================================================================

    async def _history(self, storage: Storage) -> dict[str, int]:
        """filler@r0, a=v1@r1, a=v2@r2, b@r3, b deleted@r4, c@r5."""
        r0 = await storage.create(f"{OTHER}filler", b"f")
        r1 = await storage.create(pod("a"), b"v1")
        r2 = await storage.update(pod("a"), b"v2", mod_revision=r1)
        r3 = await storage.create(pod("b"), b"b")
        r4 = (await storage.delete(pod("b"))).mod_revision
        r5 = await storage.create(pod("c"), b"c")
        return {"r0": r0, "r1": r1, "r2": r2, "r3": r3, "r4": r4, "r5": r5}

    async def test_get_at_older_revision(self, storage: Storage) -> None:
        r = await self._history(storage)
        a, b, c = pod("a"), pod("b"), pod("c")
        assert await storage.get(a, revision=r["r0"]) is None, "key seen before its creation"
        assert await storage.get(a, revision=r["r1"]) == _kv(a, b"v1", r["r1"], r["r1"])
        assert await storage.get(a, revision=r["r2"]) == _kv(a, b"v2", r["r1"], r["r2"])
        assert await storage.get(a, revision=r["r4"]) == _kv(a, b"v2", r["r1"], r["r2"])
        assert await storage.get(b, revision=r["r3"]) == _kv(b, b"b", r["r3"], r["r3"])
        assert await storage.get(b, revision=r["r4"]) is None, "deleted key seen after delete"
        assert await storage.get(b) is None
        assert await storage.get(c, revision=r["r4"]) is None, "later-created key seen"
        assert await storage.get(c, revision=r["r5"]) == _kv(c, b"c", r["r5"], r["r5"])

    async def test_range_at_older_revision(self, storage: Storage) -> None:
        r = await self._history(storage)
        a, b, c = pod("a"), pod("b"), pod("c")

        at_r1 = await storage.range(PODS, revision=r["r1"])
        assert at_r1.revision == r["r1"]
        assert at_r1.kvs == [_kv(a, b"v1", r["r1"], r["r1"])]

        at_r3 = await storage.range(PODS, revision=r["r3"])
        assert at_r3.revision == r["r3"]
        assert at_r3.kvs == [_kv(a, b"v2", r["r1"], r["r2"]), _kv(b, b"b", r["r3"], r["r3"])]

        at_r4 = await storage.range(PODS, revision=r["r4"])
        assert at_r4.kvs == [_kv(a, b"v2", r["r1"], r["r2"])]

        now = await storage.range(PODS)
        assert now.revision == r["r5"]
        assert now.kvs == [_kv(a, b"v2", r["r1"], r["r2"]), _kv(c, b"c", r["r5"], r["r5"])]

    async def test_range_reports_current_revision(self, storage: Storage) -> None:
        assert (await storage.range(PODS)).revision == 0
        await storage.create(pod("a"), b"1")
        rev = await storage.create(f"{OTHER}x", b"1")
        result = await storage.range(PODS)
        assert result.revision == rev == await storage.current_revision()

    async def test_paginated_list_at_fixed_revision_is_consistent(
        self, storage: Storage
    ) -> None:
        revs = {}
        for i in range(10):
            revs[pod(f"k{i}")] = await storage.create(pod(f"k{i}"), b"v%d" % i)
        first = await storage.range(PODS, limit=5)
        assert first.more is True
        assert [kv.key for kv in first.kvs] == [pod(f"k{i}") for i in range(5)]
        # Writes between the pages: the second page must still show the first page's state.
        await storage.update(pod("k6"), b"changed", mod_revision=revs[pod("k6")])
        await storage.delete(pod("k7"))
        await storage.create(pod("k5a"), b"new")
        second = await storage.range(
            PODS, start_key=first.kvs[-1].key + "\x00", revision=first.revision, limit=5
        )
        assert second.revision == first.revision
        assert second.more is False
        assert second.kvs == [
            _kv(pod(f"k{i}"), b"v%d" % i, revs[pod(f"k{i}")], revs[pod(f"k{i}")])
            for i in range(5, 10)
        ]

    # ===================================================================================
    # ranges: prefix, order, pagination, count
    # ===================================================================================

    async def test_range_honours_prefix_boundaries(self, storage: Storage) -> None:
        keys = [
            "/registry/pods",
            "/registry/pods/ns/a",
            "/registry/pods/ns/b",
            "/registry/pods.x/a",
            "/registry/pods0/a",
            "/registry/podsx/a",
            "/registry/pod/a",
            "/registry/services/ns/a",
        ]
        for key in keys:
            await storage.create(key, key.encode())
        inside = ["/registry/pods/ns/a", "/registry/pods/ns/b"]
        assert [kv.key for kv in (await storage.range(PODS)).kvs] == inside
        assert await storage.count(PODS) == 2
        assert [kv.key for kv in (await storage.range("/registry/podsx/")).kvs] == [
            "/registry/podsx/a"
        ]
        wider = sorted(k for k in keys if k.startswith("/registry/pods"))
        assert [kv.key for kv in (await storage.range("/registry/pods")).kvs] == wider
        assert await storage.count("/registry/pods") == len(wider)
        assert (await storage.range("/registry/nothing/")).kvs == []
        assert await storage.count("/registry/nothing/") == 0

    async def test_range_empty_prefix_returns_every_key(self, storage: Storage) -> None:
        keys = ["/a", "/registry/pods/x", "/registry/services/y", "/z"]
        for key in reversed(keys):
            await storage.create(key, b"v")
        assert [kv.key for kv in (await storage.range("")).kvs] == keys
        assert await storage.count("") == len(keys)

    async def test_range_returns_keys_in_order(self, storage: Storage) -> None:
        names = [
            "a", "b", "B", "Z", "0", "9", "-", ".", "_", "~", "aa", "a-b", "a.b", "a0",
            "\u00e9", "\u65e5\u672c", "\U0001f600", "z" * 200,
        ]
        keys = [pod(n) for n in names]
        random.Random(42).shuffle(keys)
        await asyncio.gather(*(storage.create(k, k.encode()) for k in keys))
        got = [kv.key for kv in (await storage.range(PODS)).kvs]
        assert got == sorted(keys), "keys must come back in (code point / UTF-8 byte) order"

    async def test_range_pagination_with_start_key_and_limit(self, storage: Storage) -> None:
        keys = [pod(f"p{i:02d}") for i in range(25)]
        for key in reversed(keys):
            await storage.create(key, b"v")
        await storage.create(f"{OTHER}after", b"v")
        pages: list[RangeResult] = []
        start: str | None = None
        while True:
            page = await storage.range(PODS, start_key=start, limit=10)
            pages.append(page)
            if not page.more:
                break
            start = page.kvs[-1].key + "\x00"
            assert len(pages) < 10, "pagination does not terminate"
        assert [len(p.kvs) for p in pages] == [10, 10, 5]
        assert [p.more for p in pages] == [True, True, False]
        assert [kv.key for p in pages for kv in p.kvs] == keys
        assert len({p.revision for p in pages}) == 1

    async def test_range_limit_edges(self, storage: Storage) -> None:
        for i in range(5):
            await storage.create(pod(f"k{i}"), b"v")
        exact = await storage.range(PODS, limit=5)
        assert (len(exact.kvs), exact.more) == (5, False)
        larger = await storage.range(PODS, limit=50)
        assert (len(larger.kvs), larger.more) == (5, False)
        smaller = await storage.range(PODS, limit=4)
        assert (len(smaller.kvs), smaller.more) == (4, True)
        unlimited = await storage.range(PODS, limit=0)
        assert (len(unlimited.kvs), unlimited.more) == (5, False)

    async def test_range_start_key_is_inclusive_and_clamped(self, storage: Storage) -> None:
        keys = [pod(f"k{i}") for i in range(5)]
        for key in keys:
            await storage.create(key, b"v")
        await storage.create("/registry/a-before", b"v")
        await storage.create("/registry/z-after", b"v")
        assert [kv.key for kv in (await storage.range(PODS, start_key=keys[2])).kvs] == keys[2:]
        before = await storage.range(PODS, start_key="/registry/")
        assert [kv.key for kv in before.kvs] == keys, "start_key below the prefix leaks keys"
        assert (await storage.range(PODS, start_key="/registry/q")).kvs == []

    async def test_count(self, storage: Storage) -> None:
        for i in range(7):
            await storage.create(pod(f"k{i}"), b"v")
        for i in range(3):
            await storage.create(f"{OTHER}k{i}", b"v")
        assert await storage.count(PODS) == 7
        assert await storage.count(OTHER) == 3
        assert await storage.count("/registry/") == 10
        await storage.delete(pod("k0"))
        k1 = await storage.get(pod("k1"))
        assert k1 is not None
        await storage.update(pod("k1"), b"w", mod_revision=k1.mod_revision)
        assert await storage.count(PODS) == 6

    # ===================================================================================
    # watch
    # ===================================================================================

    async def test_watch_yields_put_update_delete_in_order(self, storage: Storage) -> None:
        await storage.create(pod("before"), b"x")
        start = await storage.current_revision()
        a = pod("a")
        async with collecting(storage.watch(PODS, after_revision=start)) as w:
            r1 = await storage.create(a, b"v1")
            r2 = await storage.update(a, b"v2", mod_revision=r1)
            await storage.create(f"{OTHER}x", b"not mine")
            deleted = await storage.delete(a)
            r4 = deleted.mod_revision
            marker = await storage.create(pod("marker"), b"m")  # proves nothing else came
            events = await w.wait_for(4)
        assert events == [
            Event(type=EventType.PUT, kv=_kv(a, b"v1", r1, r1)),
            Event(type=EventType.PUT, kv=_kv(a, b"v2", r1, r2), prev_kv=_kv(a, b"v1", r1, r1)),
            Event(type=EventType.DELETE, kv=_kv(a, b"v2", r1, r4), prev_kv=_kv(a, b"v2", r1, r2)),
            Event(type=EventType.PUT, kv=_kv(pod("marker"), b"m", marker, marker)),
        ], _describe(events)
        assert events[0].created and not events[1].created and not events[2].created
        assert [e.revision for e in events] == [r1, r2, r4, marker]

    async def test_watch_from_the_past_replays_then_continues_live(
        self, storage: Storage
    ) -> None:
        a, b = pod("a"), pod("b")
        r1 = await storage.create(a, b"1")
        r2 = await storage.create(b, b"1")
        r3 = await storage.update(a, b"2", mod_revision=r1)
        r4 = (await storage.delete(b)).mod_revision
        r5 = await storage.update(a, b"3", mod_revision=r3)
        async with collecting(storage.watch(PODS, after_revision=r2)) as w:
            replayed = await w.wait_for(3)
            assert [e.revision for e in replayed] == [r3, r4, r5]
            assert replayed[0].prev_kv == _kv(a, b"1", r1, r1)
            assert replayed[1].type is EventType.DELETE
            assert replayed[1].kv == _kv(b, b"1", r2, r4)
            assert replayed[1].prev_kv == _kv(b, b"1", r2, r2)
            r6 = await storage.update(a, b"4", mod_revision=r5)
            r7 = await storage.create(b, b"again")
            events = await w.wait_for(5)
        assert [e.revision for e in events] == [r3, r4, r5, r6, r7], _describe(events)
        assert events[3].prev_kv == _kv(a, b"3", r1, r5)
        assert events[4].created

    async def test_watch_from_zero_replays_everything(self, storage: Storage) -> None:
        revs = [await storage.create(pod(f"k{i}"), b"v") for i in range(5)]
        revs.append((await storage.delete(pod("k0"))).mod_revision)
        async with collecting(storage.watch(PODS, after_revision=0)) as w:
            events = await w.wait_for(6)
            marker = await storage.create(pod("marker"), b"m")
            events = await w.wait_for(7)
        assert [e.revision for e in events] == [*revs, marker], _describe(events)

    async def test_watch_batches_are_nonempty_ordered_and_whole(self, storage: Storage) -> None:
        start = await storage.current_revision()
        async with collecting(storage.watch(PODS, after_revision=start)) as w:
            revs = await asyncio.gather(*(storage.create(pod(f"k{i}"), b"v") for i in range(100)))
            await w.wait_for(100)
        assert all(w.batches), "a watch yielded an empty batch"
        flat = [e.revision for batch in w.batches for e in batch]
        assert flat == sorted(revs), "events out of order, missing or duplicated"
        owner: dict[int, int] = {}
        for index, batch in enumerate(w.batches):
            for event in batch:
                assert owner.setdefault(event.revision, index) == index, "revision split"

    async def test_concurrent_watchers_each_get_everything(self, storage: Storage) -> None:
        start = await storage.current_revision()
        async with contextlib.AsyncExitStack() as stack:
            early = [
                await stack.enter_async_context(
                    collecting(storage.watch(PODS, after_revision=start))
                )
                for _ in range(3)
            ]
            creates = await asyncio.gather(
                *(storage.create(pod(f"k{i}"), b"0") for i in range(50))
            )
            updates = await asyncio.gather(
                *(
                    storage.update(pod(f"k{i}"), b"1", mod_revision=rev)
                    for i, rev in enumerate(creates)
                )
            )
            late = [  # started after the writes: replay
                await stack.enter_async_context(
                    collecting(storage.watch(PODS, after_revision=start))
                )
                for _ in range(2)
            ]
            expected = sorted(creates + updates)
            results = [await w.wait_for(len(expected)) for w in early + late]
        for events in results:
            assert [e.revision for e in events] == expected
            assert events == results[0]

    async def test_watch_sees_every_acknowledged_concurrent_write(
        self, storage: Storage
    ) -> None:
        start = await storage.current_revision()
        async with collecting(storage.watch(PODS, after_revision=start)) as w:
            revs = await asyncio.gather(
                *(storage.create(pod(f"k{i:03d}"), b"%d" % i) for i in range(200))
            )
            events = await w.wait_for(200)
        assert [e.revision for e in events] == sorted(revs)
        assert {e.kv.key: e.kv.mod_revision for e in events} == {
            pod(f"k{i:03d}"): rev for i, rev in enumerate(revs)
        }

    async def test_slow_watcher_misses_nothing(self, storage: Storage) -> None:
        start = await storage.current_revision()
        watch = storage.watch(PODS, after_revision=start)
        try:
            first = await storage.create(pod("first"), b"v")
            assert [e.revision for e in await _first_batch(watch)] == [first]
            revs: list[int] = []
            for chunk in range(20):  # 2,000 writes while the consumer sleeps
                revs += await asyncio.gather(
                    *(storage.create(pod(f"k{chunk}-{i}"), b"v") for i in range(100))
                )
            seen: list[int] = []
            async with asyncio.timeout(TIMEOUT):
                while len(seen) < len(revs):
                    seen += [e.revision for e in await anext(watch)]
            assert seen == sorted(revs)
        finally:
            await _close_watch(watch)

    async def test_cancelled_watch_does_not_disturb_others(self, storage: Storage) -> None:
        start = await storage.current_revision()
        async with collecting(storage.watch(PODS, after_revision=start)) as keep:
            doomed = WatchCollector(storage.watch(PODS, after_revision=start))
            await storage.create(pod("a"), b"1")
            await doomed.wait_for(1)
            await doomed.stop()
            r2 = await storage.create(pod("b"), b"1")
            events = await keep.wait_for(2)
        assert events[-1].revision == r2
        assert await storage.get(pod("b")) is not None

    # ===================================================================================
    # compaction
    # ===================================================================================

    async def test_compaction(self, storage: Storage) -> None:
        a, b, c = pod("a"), pod("b"), pod("c")
        r1 = await storage.create(a, b"1")
        r2 = await storage.update(a, b"2", mod_revision=r1)
        r3 = await storage.create(b, b"b")
        r4 = (await storage.delete(b)).mod_revision
        r5 = await storage.create(c, b"c")
        await storage.compact(r5)
        r6 = await storage.update(a, b"3", mod_revision=r2)
        assert await storage.compacted_revision() == r5

        for old in (r1, r3, r4):
            with pytest.raises(CompactedError) as info:
                await storage.get(a, revision=old)
            assert (info.value.requested, info.value.compacted) == (old, r5)
            with pytest.raises(CompactedError):
                await storage.range(PODS, revision=old)
        with pytest.raises(CompactedError) as winfo:
            await _first_batch(storage.watch(PODS, after_revision=r4))
        assert winfo.value.compacted == r5
        with pytest.raises(CompactedError):
            await _first_batch(storage.watch(PODS, after_revision=0))

        # The state at the compacted revision and later stays readable.
        assert await storage.get(a, revision=r5) == _kv(a, b"2", r1, r2)
        assert await storage.get(b, revision=r5) is None
        at_r5 = await storage.range(PODS, revision=r5)
        assert at_r5.kvs == [_kv(a, b"2", r1, r2), _kv(c, b"c", r5, r5)]
        # Current values remain.
        assert (await storage.range(PODS)).kvs == [_kv(a, b"3", r1, r6), _kv(c, b"c", r5, r5)]
        # Events after the compacted revision remain, with their previous values.
        async with collecting(storage.watch(PODS, after_revision=r5)) as w:
            events = await w.wait_for(1)
        assert events == [
            Event(type=EventType.PUT, kv=_kv(a, b"3", r1, r6), prev_kv=_kv(a, b"2", r1, r2))
        ]

    async def test_compaction_keeps_long_untouched_keys(self, storage: Storage) -> None:
        old = await storage.create(pod("old"), b"old")
        rev = 0
        for i in range(20):
            rev = await storage.create(pod(f"k{i}"), b"v")
            rev = await storage.update(pod(f"k{i}"), b"w", mod_revision=rev)
            await storage.delete(pod(f"k{i}"))
        current = await storage.current_revision()
        await storage.compact(current)
        assert await storage.compacted_revision() == current
        assert await storage.get(pod("old")) == _kv(pod("old"), b"old", old, old)
        assert (await storage.range(PODS, revision=current)).kvs == [
            _kv(pod("old"), b"old", old, old)
        ]
        assert await storage.count(PODS) == 1
        with pytest.raises(CompactedError):
            await storage.get(pod("k0"), revision=rev)
        # Writing and watching go on from the compacted revision.
        async with collecting(storage.watch(PODS, after_revision=current)) as w:
            deleted = await storage.delete(pod("old"), mod_revision=old)
            events = await w.wait_for(1)
        assert events == [
            Event(
                type=EventType.DELETE,
                kv=_kv(pod("old"), b"old", old, deleted.mod_revision),
                prev_kv=_kv(pod("old"), b"old", old, old),
            )
        ]

    async def test_compaction_while_writing(self, storage: Storage) -> None:
        revs = {pod(f"k{i}"): await storage.create(pod(f"k{i}"), b"0") for i in range(50)}
        target = await storage.current_revision()

        async def churn() -> None:
            for round_ in range(5):
                for key in list(revs):
                    revs[key] = await storage.update(key, b"%d" % round_, mod_revision=revs[key])

        await asyncio.gather(churn(), storage.compact(target))
        assert await storage.compacted_revision() == target
        now = await storage.range(PODS)
        assert {kv.key: kv.mod_revision for kv in now.kvs} == revs
        assert all(kv.value == b"4" for kv in now.kvs)

    # ===================================================================================
    # concurrency
    # ===================================================================================

    async def test_200_concurrent_creates(self, storage: Storage) -> None:
        keys = [pod(f"k{i:03d}") for i in range(200)]
        revs = await asyncio.gather(*(storage.create(k, k.encode()) for k in keys))
        assert len(set(revs)) == 200, "two writes got the same revision"
        for key, rev in zip(keys, revs, strict=True):
            assert await storage.get(key) == _kv(key, key.encode(), rev, rev)
        assert await storage.current_revision() == max(revs)
        assert await storage.count(PODS) == 200
        assert [kv.key for kv in (await storage.range(PODS)).kvs] == keys

    async def test_50_concurrent_cas_updates_exactly_one_wins(self, storage: Storage) -> None:
        base = await storage.create(pod("a"), b"base")
        results = await asyncio.gather(
            *(storage.update(pod("a"), b"w%d" % i, mod_revision=base) for i in range(50)),
            return_exceptions=True,
        )
        wins = [(i, r) for i, r in enumerate(results) if isinstance(r, int)]
        assert len(wins) == 1, f"{len(wins)} compare-and-swaps from one revision succeeded"
        losses = [r for r in results if not isinstance(r, int)]
        assert all(isinstance(r, ConflictError) for r in losses), losses[:3]
        winner, rev = wins[0]
        current = _kv(pod("a"), b"w%d" % winner, base, rev)
        assert await storage.get(pod("a")) == current
        assert all(r.current == current for r in losses)  # type: ignore[union-attr]

    async def test_concurrent_creates_of_one_key_exactly_one_wins(self, storage: Storage) -> None:
        results = await asyncio.gather(
            *(storage.create(pod("a"), b"%d" % i) for i in range(20)), return_exceptions=True
        )
        wins = [r for r in results if isinstance(r, int)]
        assert len(wins) == 1
        assert all(isinstance(r, KeyExistsError) for r in results if not isinstance(r, int))

    # ===================================================================================
    # close
    # ===================================================================================

    async def test_close_ends_watches(self, make_storage: StorageFactory | None) -> None:
        store = await self._open(make_storage)
        try:
            live = WatchCollector(store.watch(PODS, after_revision=0))
            await store.create(pod("a"), b"1")
            await live.wait_for(1)
        finally:
            await store.close()
        await live.wait_ended()
        assert live.error is None, f"watch raised {live.error!r} instead of ending"

    async def test_calls_after_close_raise_unavailable(
        self, make_storage: StorageFactory | None
    ) -> None:
        store = await self._open(make_storage)
        rev = await store.create(pod("a"), b"1")
        await store.close()
        with pytest.raises(StorageUnavailableError):
            await store.create(pod("b"), b"1")
        with pytest.raises(StorageUnavailableError):
            await store.update(pod("a"), b"2", mod_revision=rev)
        with pytest.raises(StorageUnavailableError):
            await store.delete(pod("a"))

    async def test_close_with_writes_in_flight(
        self, make_storage: StorageFactory | None, reopen: StorageFactory | None
    ) -> None:
        store = await self._open(make_storage)
        try:
            writes = [asyncio.create_task(store.create(pod(f"k{i}"), b"v")) for i in range(100)]
            await asyncio.sleep(0)
        finally:
            async with asyncio.timeout(TIMEOUT):
                await store.close()
        async with asyncio.timeout(TIMEOUT):
            results = await asyncio.gather(*writes, return_exceptions=True)
        odd = [r for r in results if not isinstance(r, int | StorageUnavailableError)]
        assert not odd, (
            "writes pending at close() must succeed or fail with StorageUnavailableError, "
            f"got {odd[:3]!r}"
        )
        if reopen is None:
            return
        again = await self._open(reopen, "reopen")
        try:
            for i, result in enumerate(results):
                if isinstance(result, int):
                    got = await again.get(pod(f"k{i}"))
                    assert got is not None and got.mod_revision == result, "acknowledged write lost"
        finally:
            await again.close()

    # ===================================================================================
    # persistence (needs the reopen fixture)
    # ===================================================================================

    async def test_reopen_keeps_data_and_revision(
        self, make_storage: StorageFactory | None, reopen: StorageFactory | None
    ) -> None:
        if reopen is None:
            pytest.skip("this backend's tests do not provide the reopen fixture")
        store = await self._open(make_storage)
        try:
            r = await self._history(store)
            before = await store.range("")
        finally:
            await store.close()
        store = await self._open(reopen, "reopen")
        try:
            assert await store.current_revision() == r["r5"]
            assert await store.range("") == before
            assert await store.get(pod("a"), revision=r["r1"]) == _kv(
                pod("a"), b"v1", r["r1"], r["r1"]
            )
            async with collecting(store.watch(PODS, after_revision=r["r2"])) as w:
                events = await w.wait_for(3)
            assert [e.revision for e in events] == [r["r3"], r["r4"], r["r5"]]
            assert events[1].type is EventType.DELETE and events[1].kv.value == b"b"
            assert await store.create(pod("new"), b"n") > r["r5"]
        finally:
            await store.close()

    async def test_reopen_keeps_compaction(
        self, make_storage: StorageFactory | None, reopen: StorageFactory | None
    ) -> None:
        if reopen is None:
            pytest.skip("this backend's tests do not provide the reopen fixture")
        store = await self._open(make_storage)
        try:
            r = await self._history(store)
            await store.compact(r["r4"])
        finally:
            await store.close()
        store = await self._open(reopen, "reopen")
        try:
            assert await store.compacted_revision() == r["r4"]
            with pytest.raises(CompactedError):
                await store.get(pod("a"), revision=r["r2"])
            assert await store.get(pod("a"), revision=r["r4"]) == _kv(
                pod("a"), b"v2", r["r1"], r["r2"]
            )
            assert await store.current_revision() == r["r5"]
        finally:
            await store.close()

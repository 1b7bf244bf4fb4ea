"""What is particular to the SQLite backend: its file, its plugin wiring, its group commit."""

from __future__ import annotations

import asyncio
import fcntl
import importlib.metadata
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
from kubeling_storage_sqlite import SqliteStorage, hooks

from kubeling.storage import CompactedError, StorageError, StorageUnavailableError

PODS = "/registry/pods/"


@pytest.fixture
async def storage(tmp_path: Path) -> Any:
    store = SqliteStorage(tmp_path / "state.db")
    await store.start()
    yield store
    await store.close()


def rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Query the file with a plain sqlite3 connection of its own."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# -- plugin wiring ---------------------------------------------------------------------


def test_entry_point_names_the_hooks_module() -> None:
    eps = importlib.metadata.entry_points(group="kubeling")
    found = {ep.name: ep.value for ep in eps}
    assert found.get("storage_sqlite") == "kubeling_storage_sqlite.hooks"


def test_hook_registers_the_sqlite_backend_with_settings() -> None:
    calls: list[tuple[Any, ...]] = []

    def register(name: str, factory: Any, *, settings: type | None = None) -> None:
        calls.append((name, factory, settings))

    hooks.kubeling_register_storages(register)
    assert calls == [("sqlite", hooks.factory, hooks.SqliteSettings)]


def test_settings_have_defaults_and_validate() -> None:
    settings = hooks.SqliteSettings()
    assert (settings.path, settings.synchronous, settings.busy_timeout_ms) == (None, "FULL", 5000)
    assert all(field.default is not attrs.NOTHING for field in attrs.fields(hooks.SqliteSettings))
    with pytest.raises(ValueError, match="synchronous"):
        hooks.SqliteSettings(synchronous="SOMETIMES")
    with pytest.raises(ValueError):
        hooks.SqliteSettings(busy_timeout_ms=-1)


def test_factory_places_the_file_in_the_data_dir(tmp_path: Path) -> None:
    ctx = SimpleNamespace(data_dir=tmp_path)
    default = hooks.factory(hooks.SqliteSettings(), ctx)  # type: ignore[arg-type]
    assert isinstance(default, SqliteStorage)
    assert default.path == tmp_path / "state.db"
    assert default.synchronous == "FULL"
    relative = hooks.factory(hooks.SqliteSettings(path="sub/x.db"), ctx)  # type: ignore[arg-type]
    assert relative.path == tmp_path / "sub" / "x.db"
    absolute = hooks.factory(
        hooks.SqliteSettings(path="/srv/k.db", synchronous="normal"), ctx  # type: ignore[arg-type]
    )
    assert (absolute.path, absolute.synchronous) == (Path("/srv/k.db"), "NORMAL")


def test_constructor_rejects_unknown_synchronous_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStorage(tmp_path / "x.db", synchronous="MAYBE")


# -- the file --------------------------------------------------------------------------


async def test_file_is_wal_and_log_ids_are_revisions(
    tmp_path: Path, storage: SqliteStorage
) -> None:
    db = tmp_path / "state.db"
    r1 = await storage.create(PODS + "a", b"1")
    r2 = await storage.update(PODS + "a", b"2", mod_revision=r1)
    r3 = (await storage.delete(PODS + "a")).mod_revision
    r4 = await storage.create(PODS + "a", b"3")
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    assert rows(
        db, "SELECT id, name, created, deleted, create_revision, prev_revision, value FROM log"
    ) == [
        (r1, PODS + "a", 1, 0, r1, 0, b"1"),
        (r2, PODS + "a", 0, 0, r1, r1, b"2"),
        (r3, PODS + "a", 0, 1, r1, r2, b""),
        (r4, PODS + "a", 1, 0, r4, r3, b"3"),
    ]
    assert rows(db, "SELECT name, id FROM current") == [(PODS + "a", r4)]


async def test_unique_name_prev_revision_turns_a_second_writer_into_a_conflict(
    tmp_path: Path, storage: SqliteStorage
) -> None:
    db = tmp_path / "state.db"
    r1 = await storage.create(PODS + "a", b"1")
    await storage.update(PODS + "a", b"2", mod_revision=r1)
    conn = sqlite3.connect(db)
    try:  # another update from r1, as a second writer that lost the race would write it
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO log VALUES (?, ?, 0, 0, ?, ?, ?)", (r1 + 10, PODS + "a", r1, r1, b"x")
            )
    finally:
        conn.close()


async def test_write_is_committed_before_it_is_acknowledged(
    tmp_path: Path, storage: SqliteStorage
) -> None:
    db = tmp_path / "state.db"
    revs = await asyncio.gather(*(storage.create(PODS + f"k{i}", b"v") for i in range(50)))
    # A fresh connection (another "process") already sees every acknowledged write.
    on_disk = {rev for (rev,) in rows(db, "SELECT id FROM log")}
    assert set(revs) <= on_disk


async def test_concurrent_writes_share_transactions(storage: SqliteStorage) -> None:
    await asyncio.gather(*(storage.create(PODS + f"k{i}", b"v") for i in range(500)))
    stats = storage.stats()
    assert stats["writes"] == 500
    assert stats["batches"] <= 50, f"group commit did not group: {stats}"


async def test_second_instance_is_locked_out(tmp_path: Path, storage: SqliteStorage) -> None:
    other = SqliteStorage(tmp_path / "state.db")
    with pytest.raises(StorageUnavailableError, match="in use"):
        await other.start()
    await storage.create(PODS + "a", b"1")
    await storage.close()
    again = SqliteStorage(tmp_path / "state.db")
    await again.start()
    try:
        assert (await again.get(PODS + "a")) is not None
    finally:
        await again.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StorageUnavailableError, match="schema version 99"):
        await SqliteStorage(db).start()
    # The failed start released its lock.
    with open(f"{db}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(lock, fcntl.LOCK_UN)


# -- revisions across reopen ------------------------------------------------------------


async def test_revision_continues_after_reopen_when_last_write_was_a_delete(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    async with SqliteStorage(db) as store:
        r1 = await store.create(PODS + "a", b"1")
        last = (await store.delete(PODS + "a", mod_revision=r1)).mod_revision
        await store.compact(last)
    async with SqliteStorage(db) as store:
        assert await store.current_revision() == last
        assert await store.compacted_revision() == last
        assert await store.create(PODS + "a", b"2") == last + 1
        assert await store.count(PODS) == 1


# -- compaction ---------------------------------------------------------------------------


async def test_compaction_deletes_superseded_and_deleted_rows(
    tmp_path: Path, storage: SqliteStorage
) -> None:
    db = tmp_path / "state.db"
    r1 = await storage.create(PODS + "a", b"1")
    r2 = await storage.update(PODS + "a", b"2", mod_revision=r1)
    r3 = await storage.create(PODS + "b", b"1")
    r4 = (await storage.delete(PODS + "b")).mod_revision
    r5 = await storage.create(PODS + "c", b"1")
    r6 = await storage.update(PODS + "c", b"2", mod_revision=r5)
    r7 = await storage.update(PODS + "a", b"3", mod_revision=r2)
    await storage.compact(r6)
    # a@r1 superseded by r2 <= r6; b's rows (deleted before r6) gone; c@r5 superseded by r6.
    # a@r2 is the state at r6 and stays; r6 and later stay.
    assert [rev for (rev,) in rows(db, "SELECT id FROM log ORDER BY id")] == [r2, r6, r7]
    assert rows(db, "SELECT value FROM meta WHERE key = 'compacted'") == [(r6,)]
    assert r3 < r4


async def test_compaction_in_many_chunks(tmp_path: Path, storage: SqliteStorage) -> None:
    storage.COMPACT_CHUNK = 7
    revs = {}
    for i in range(30):
        revs[i] = await storage.create(PODS + f"k{i:02d}", b"0")
    for i in range(0, 30, 2):
        revs[i] = await storage.update(PODS + f"k{i:02d}", b"1", mod_revision=revs[i])
    target = await storage.current_revision()
    await storage.compact(target)
    assert len(rows(tmp_path / "state.db", "SELECT id FROM log")) == 30
    now = await storage.range(PODS, revision=target)
    assert {kv.key: kv.mod_revision for kv in now.kvs} == {
        PODS + f"k{i:02d}": rev for i, rev in revs.items()
    }


async def test_compaction_at_an_older_revision_is_a_no_op(storage: SqliteStorage) -> None:
    r1 = await storage.create(PODS + "a", b"1")
    r2 = await storage.update(PODS + "a", b"2", mod_revision=r1)
    await storage.compact(r2)
    await storage.compact(r1)
    assert await storage.compacted_revision() == r2


async def test_future_revisions_are_refused(storage: SqliteStorage) -> None:
    rev = await storage.create(PODS + "a", b"1")
    with pytest.raises(StorageError, match="future"):
        await storage.compact(rev + 1)
    with pytest.raises(StorageError, match="future"):
        await storage.get(PODS + "a", revision=rev + 1)
    with pytest.raises(StorageError, match="future"):
        await storage.range(PODS, revision=rev + 1)
    assert await storage.compacted_revision() == 0


async def test_compaction_overtaking_a_replaying_watch_fails_it(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "state.db")
    store.REPLAY_PAGE = 5
    async with store:
        for i in range(40):
            await store.create(PODS + f"k{i:02d}", b"v")
        watch = store.watch(PODS, after_revision=0)
        first = await anext(watch)
        assert [e.revision for e in first] == [1, 2, 3, 4, 5]
        await store.compact(30)
        with pytest.raises(CompactedError) as info:
            await anext(watch)
        assert (info.value.requested, info.value.compacted) == (5, 30)


# -- cancellation and the event loop ----------------------------------------------------------


async def test_cancelled_writers_leave_a_consistent_store(storage: SqliteStorage) -> None:
    tasks = [asyncio.create_task(storage.create(PODS + f"k{i:03d}", b"v")) for i in range(100)]
    await asyncio.sleep(0)
    for task in tasks[::2]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await storage.create(PODS + "marker", b"m")  # the writer has drained the queue
    present = {kv.key for kv in (await storage.range(PODS)).kvs}
    for i, task in enumerate(tasks):
        if not task.cancelled():
            assert PODS + f"k{i:03d}" in present
    assert await storage.count(PODS) == len(present)
    for i in range(100):
        key = PODS + f"k{i:03d}"
        if key not in present:
            await storage.create(key, b"late")
    assert await storage.count(PODS) == 101


async def test_range_of_10000_current_keys_takes_milliseconds(storage: SqliteStorage) -> None:
    for start in range(0, 10_000, 1000):
        await asyncio.gather(
            *(storage.create(PODS + f"ns/p{i:05d}", b"x" * 300) for i in range(start, start + 1000))
        )
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        result = await storage.range(PODS)
        best = min(best, time.perf_counter() - began)
    assert len(result.kvs) == 10_000
    assert best < 0.02, f"a 10,000-key range took {best * 1000:.1f} ms"


async def test_a_failing_write_does_not_take_its_group_down(
    tmp_path: Path, storage: SqliteStorage
) -> None:
    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)
    conn.execute(  # stands in for an I/O error hitting one write of a group
        "CREATE TRIGGER boom BEFORE INSERT ON current WHEN NEW.name LIKE '%boom' "
        "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"
    )
    conn.close()
    start = await storage.current_revision()
    watch = storage.watch(PODS, after_revision=start)
    keys = [PODS + f"k{i}" for i in range(20)]
    results = await asyncio.gather(
        *(storage.create(k, b"v") for k in keys[:10]),
        storage.create(PODS + "boom", b"v"),
        *(storage.create(k, b"v") for k in keys[10:]),
        return_exceptions=True,
    )
    failed = results.pop(10)
    assert isinstance(failed, StorageUnavailableError)
    assert all(isinstance(r, int) for r in results), results
    assert await storage.get(PODS + "boom") is None
    assert [kv.key for kv in (await storage.range(PODS)).kvs] == sorted(keys)
    assert rows(db, "SELECT count(*) FROM log WHERE name LIKE '%boom'") == [(0,)]
    # Revisions stay dense and the watchers saw exactly the committed writes.
    assert sorted(results) == list(range(start + 1, start + 21))  # type: ignore[type-var]
    seen: list[int] = []
    async with asyncio.timeout(5):
        while len(seen) < 20:
            seen += [e.revision for e in await anext(watch)]
    assert seen == sorted(results)  # type: ignore[type-var]
    await watch.aclose()  # type: ignore[attr-defined]

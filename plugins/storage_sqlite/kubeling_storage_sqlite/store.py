"""SQLite storage: an append-only revision log, group commit, and watches pushed from memory.

Schema (kine's shape)::

    log(id INTEGER PRIMARY KEY,        -- the revision of the write
        name TEXT, created, deleted,   -- key; 1 if the row creates / deletes the key
        create_revision,               -- revision that created the key
        prev_revision,                 -- id of the key's previous row (0 for a first create)
        value BLOB,                    -- new value ('' for a delete row)
        UNIQUE(name, prev_revision))   -- two writes that raced from one row: one loses
    current(name PRIMARY KEY, id)      -- each live key -> its newest log row
    meta(key PRIMARY KEY, value)       -- 'compacted' -> the compacted revision

Along one key's chain of rows ``prev_revision`` strictly increases, so the unique index also
finds a key's newest row (``ORDER BY prev_revision DESC LIMIT 1``) and, read at a revision
``R``, the row of a key that was newest at ``R`` (no successor with ``id <= R``).

Writes go through one writer thread that owns the only writing connection.  Callers queue
their operation and await a future; the writer takes everything queued, runs it in one
transaction (each operation checks its own precondition against the state left by the ones
before it), commits, and only then resolves the futures and hands the committed events to
the in-process watchers (``loop.call_soon_threadsafe``).  The revision of a write is its log
id, assigned by the writer.

The current state is also kept in memory (like etcd's in-memory key index, but with the
values): a dict of key -> :class:`KeyValue` and a sorted list of keys, loaded from the
``current`` table on start and updated on the event loop, in revision order, from the
events of each commit before its writers are answered.  Reads of the current state (and of
the revision it is at) are answered from it without touching SQLite: a 10,000-key range is
a slice.  Reads at an older revision query the log on their own connections (WAL readers
never wait for the writer): point reads on the event loop thread, ranges on a small reader
thread pool.

A watch first replays the log after its revision, page by page, while already registered
for live events; then it serves live events, skipping those the replay already yielded.
A watcher that falls too far behind drops its buffer and catches up from the log again, so
a slow consumer costs disk reads, never unbounded memory.

A lock file (``<path>.lock``, ``flock``) keeps a second process (or a second instance) from
writing the same database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Final, TypeVar

from sortedcontainers import SortedList

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
    StorageError,
    StorageUnavailableError,
    prefix_end,
)

__all__ = ["SYNCHRONOUS_MODES", "SqliteStorage"]

log = logging.getLogger(__name__)

T = TypeVar("T")

SYNCHRONOUS_MODES: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
"""Accepted values of SQLite's ``PRAGMA synchronous`` (see the SQLite docs)."""

SCHEMA_VERSION: Final = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL,
    UNIQUE (name, prev_revision)
);
CREATE TABLE IF NOT EXISTS current (
    name TEXT PRIMARY KEY,
    id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

# The key's newest row (a delete row if the key is deleted).
_SQL_LATEST = (
    "SELECT id, deleted, create_revision, value FROM log WHERE name = ? "
    "ORDER BY prev_revision DESC LIMIT 1"
)
_SQL_INSERT = (
    "INSERT INTO log (id, name, created, deleted, create_revision, prev_revision, value) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# The key's row that was newest at a revision: the newest row with id <= revision.
_SQL_GET_AT = (
    "SELECT value, create_revision, id, deleted FROM log WHERE name = ? AND +id <= ? "
    "ORDER BY prev_revision DESC LIMIT 1"
)
_SQL_MAX_ID = "SELECT coalesce(max(id), 0) FROM log"

_OP_CREATE: Final = 0
_OP_UPDATE: Final = 1
_OP_DELETE: Final = 2
_OP_COMPACT_MARK: Final = 3
_OP_COMPACT_CHUNK: Final = 4
_WRITE_OPS: Final = frozenset((_OP_CREATE, _OP_UPDATE, _OP_DELETE))

_STOP: Final = object()

# (kind, key, value, expected mod revision / args, future)
_Op = tuple[int, str, bytes, Any, "asyncio.Future[Any]"]
# (future, result or exception, is_error)
_Result = tuple["asyncio.Future[Any]", Any, bool]


class _Watcher:
    """The live side of one watch: a bounded buffer of batches the writer pushed."""

    __slots__ = ("_waiter", "closed", "count", "limit", "overflowed", "pending")

    def __init__(self, limit: int) -> None:
        self.pending: deque[list[Event]] = deque()
        self.count = 0
        self.limit = limit
        self.overflowed = False
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    def push(self, events: list[Event]) -> None:
        if self.overflowed or self.closed:
            return
        if self.count + len(events) > self.limit:
            # Too far behind: forget the buffer; the watch catches up from the log.
            self.overflowed = True
            self.pending.clear()
            self.count = 0
        else:
            self.pending.append(events)
            self.count += len(events)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def reset(self) -> None:
        self.overflowed = False
        self.pending.clear()
        self.count = 0

    def take(self) -> list[list[Event]]:
        batches = list(self.pending)
        self.pending.clear()
        self.count = 0
        return batches

    async def wait(self) -> None:
        while not (self.pending or self.overflowed or self.closed):
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class SqliteStorage(Storage):
    """A :class:`~kubeling.storage.Storage` in one SQLite file (WAL mode).

    :param path: the database file; created (with its directory) on :meth:`start`.
    :param synchronous: SQLite's ``PRAGMA synchronous`` for the writer.  ``FULL`` (the
        default) makes every acknowledged write survive power loss; ``NORMAL`` survives
        ``kill -9`` of the process but not an OS crash.
    :param busy_timeout_ms: how long a connection waits for a lock held by someone else.
    :param readers: size of the reader thread pool used by ranges, counts and replays.
    :param max_batch: most operations committed in one transaction.
    :param watch_buffer: events a watcher may have pending before it falls back to
        replaying from the log.
    """

    REPLAY_PAGE: int = 1000
    """Rows read per query when a watch replays history."""

    COMPACT_CHUNK: int = 10_000
    """Revisions examined per compaction transaction (writes interleave between chunks)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        readers: int = 4,
        max_batch: int = 1000,
        watch_buffer: int = 10_000,
    ) -> None:
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, not {synchronous!r}"
            )
        self.path = Path(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self._n_readers = max(1, readers)
        self._max_batch = max(1, max_batch)
        self._watch_buffer = max(1, watch_buffer)

        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._closed = False
        self._lock_fd: int | None = None
        self._wconn: sqlite3.Connection | None = None
        self._lconn: sqlite3.Connection | None = None
        self._rconns: list[sqlite3.Connection] = []
        self._rconns_lock = threading.Lock()
        self._local = threading.local()
        self._readers: concurrent.futures.ThreadPoolExecutor | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_done: asyncio.Future[None] | None = None
        self._compact_lock = asyncio.Lock()
        self._watchers: dict[str, set[_Watcher]] = {}

        # The current state, owned by the event loop (see the module docstring).
        self._kvs: dict[str, KeyValue] = {}
        self._keys: SortedList = SortedList()
        self._applied = 0

        # Owned by the writer thread once started (read elsewhere as plain ints).
        self._rev = 0
        self._compacted = 0
        self._batches = 0
        self._writes = 0

    def __repr__(self) -> str:
        return f"SqliteStorage({str(self.path)!r}, synchronous={self.synchronous!r})"

    async def __aenter__(self) -> SqliteStorage:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Lock and open the database file (creating it), then start the writer thread.

        :raises StorageUnavailableError: another process or instance holds the database.
        """
        if self._started:
            raise RuntimeError("SqliteStorage.start() called twice")
        if self._closed:
            raise StorageUnavailableError("storage is closed")
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._open)
        self._started = True
        self._lconn = self._connect(readonly=True)
        self._readers = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._n_readers,
            thread_name_prefix="kubeling-sqlite-reader",
            initializer=self._init_reader,
        )
        self._writer_done = self._loop.create_future()
        self._writer = threading.Thread(
            target=self._writer_main, name="kubeling-sqlite-writer", daemon=True
        )
        self._writer.start()
        log.info(
            "sqlite storage %s opened at revision %d (compacted %d, synchronous=%s)",
            self.path, self._rev, self._compacted, self.synchronous,
        )

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = f"{self.path}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageUnavailableError(
                f"{self.path} is in use by another process or storage instance "
                f"(lock {lock_path})"
            ) from None
        self._lock_fd = fd
        try:
            conn = self._connect(readonly=False)
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StorageUnavailableError(f"{self.path}: cannot use WAL mode ({mode})")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StorageUnavailableError(
                        f"{self.path} has schema version {version}; this kubeling-storage-sqlite "
                        f"understands up to {SCHEMA_VERSION}"
                    )
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                self._rev = conn.execute(_SQL_MAX_ID).fetchone()[0]
                row = conn.execute("SELECT value FROM meta WHERE key = 'compacted'").fetchone()
                self._compacted = row[0] if row else 0
                self._applied = self._rev
                self._kvs = {
                    name: KeyValue(
                        key=name, value=value, create_revision=create_rev, mod_revision=mod_rev
                    )
                    for name, value, create_rev, mod_rev in conn.execute(
                        "SELECT c.name, l.value, l.create_revision, l.id "
                        "FROM current AS c JOIN log AS l ON l.id = c.id"
                    )
                }
                self._keys = SortedList(self._kvs)
            except BaseException:
                conn.close()
                raise
            self._wconn = conn
        except BaseException:
            self._unlock()
            raise

    def _connect(self, *, readonly: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self.busy_timeout_ms / 1000,
        )
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        if readonly:
            conn.execute("PRAGMA query_only=1")
        else:
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    def _init_reader(self) -> None:
        conn = self._connect(readonly=True)
        self._local.conn = conn
        with self._rconns_lock:
            self._rconns.append(conn)

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    async def close(self) -> None:
        """Finish the writes already queued, end every watch, close the files.

        Writes queued before ``close`` are committed (and acknowledged) as usual; later
        calls raise :class:`StorageUnavailableError`.  Closing twice is harmless.
        """
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        assert self._loop is not None and self._writer_done is not None
        self._queue.put(_STOP)
        await self._writer_done
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.close()
        if self._readers is not None:
            await self._loop.run_in_executor(None, self._readers.shutdown)
        with self._rconns_lock:
            for conn in self._rconns:
                conn.close()
            self._rconns.clear()
        if self._lconn is not None:
            self._lconn.close()
        self._unlock()
        log.info("sqlite storage %s closed at revision %d", self.path, self._rev)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageUnavailableError("storage is closed")
        if not self._started:
            raise StorageUnavailableError("storage is not started")

    def stats(self) -> dict[str, int]:
        """Counters for benchmarks and debugging: transactions and writes committed."""
        return {"batches": self._batches, "writes": self._writes, "revision": self._rev}

    # -- reads -----------------------------------------------------------------------

    async def current_revision(self) -> int:
        """The revision of the newest committed write (0 for an empty store)."""
        self._check_open()
        return self._applied

    async def compacted_revision(self) -> int:
        """The revision of the last compaction (0 if never compacted)."""
        self._check_open()
        return self._compacted

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        """The key's value at ``revision`` (0: now), or ``None`` when absent then.

        :raises CompactedError: ``revision`` is below the compacted revision.
        :raises StorageError: ``revision`` is newer than the current revision.
        """
        self._check_open()
        if revision == 0 or revision == self._applied:
            return self._kvs.get(key)
        if revision < 0:
            raise ValueError("revision must not be negative")
        conn = self._lconn
        assert conn is not None
        self._check_revision(revision)
        with _snapshot(conn):
            _check_future(revision, conn.execute(_SQL_MAX_ID).fetchone()[0])
            row = conn.execute(_SQL_GET_AT, (key, revision)).fetchone()
        self._check_revision(revision)  # a compaction may have run during the read
        if row is None or row[3]:
            return None
        return KeyValue(key=key, value=row[0], create_revision=row[1], mod_revision=row[2])

    async def range(
        self,
        prefix: str,
        *,
        start_key: str | None = None,
        revision: int = 0,
        limit: int = 0,
    ) -> RangeResult:
        """Keys starting with ``prefix``, in key order, as they were at ``revision`` (0: now).

        :raises CompactedError: ``revision`` is below the compacted revision.
        :raises StorageError: ``revision`` is newer than the current revision.
        """
        if revision < 0 or limit < 0:
            raise ValueError("revision and limit must not be negative")
        self._check_open()
        if revision == 0 or revision == self._applied:
            return self._range_current(prefix, start_key, limit)
        self._check_revision(revision)
        result = await self._read(_range, prefix, start_key, revision, limit)
        self._check_revision(revision)
        return result

    def _range_current(self, prefix: str, start_key: str | None, limit: int) -> RangeResult:
        low, high = _bounds(prefix, start_key)
        keys = self._keys
        begin = keys.bisect_left(low)
        end = len(keys) if high is None else keys.bisect_left(high)
        more = False
        if limit and end - begin > limit:
            end = begin + limit
            more = True
        kvs = self._kvs
        return RangeResult(
            kvs=[kvs[k] for k in keys[begin:end]], revision=self._applied, more=more
        )

    async def count(self, prefix: str) -> int:
        """How many keys currently start with ``prefix``."""
        self._check_open()
        low, high = _bounds(prefix)
        keys = self._keys
        end = len(keys) if high is None else keys.bisect_left(high)
        return end - keys.bisect_left(low)

    def _check_revision(self, revision: int) -> None:
        compacted = self._compacted
        if revision and revision < compacted:
            raise CompactedError(revision, compacted)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        self._check_open()
        assert self._loop is not None and self._readers is not None
        try:
            return await self._loop.run_in_executor(self._readers, self._call_reader, fn, args)
        except RuntimeError as exc:  # the pool was shut down by close()
            if self._closed:
                raise StorageUnavailableError("storage is closed") from exc
            raise

    def _call_reader(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        return fn(self._local.conn, *args)

    # -- writes ----------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> int:
        """Create ``key``; returns the revision of the write (durable when returned).

        :raises KeyExistsError: the key exists.
        """
        return await self._submit(_OP_CREATE, key, _as_bytes(value), 0)

    async def update(self, key: str, value: bytes, *, mod_revision: int) -> int:
        """Replace ``key``'s value if its mod revision is ``mod_revision``; returns the new
        revision (durable when returned).

        :raises KeyNotFoundError: the key does not exist.
        :raises ConflictError: the key's mod revision differs (carries the current value).
        """
        return await self._submit(_OP_UPDATE, key, _as_bytes(value), mod_revision)

    async def delete(self, key: str, *, mod_revision: int = 0) -> KeyValue:
        """Delete ``key`` (if its mod revision is ``mod_revision``, when that is not 0).

        Returns the deleted value with ``mod_revision`` set to the revision of the delete.

        :raises KeyNotFoundError: the key does not exist.
        :raises ConflictError: ``mod_revision`` was given and differs.
        """
        return await self._submit(_OP_DELETE, key, b"", mod_revision)

    async def compact(self, revision: int) -> None:
        """Forget history before ``revision``.

        The compacted revision is recorded (durably) first, so reads and watches below it
        fail from then on; then superseded rows and rows of deleted keys below it are
        deleted, a chunk of revisions per transaction so writes go on meanwhile.  Compacting
        at or below the last compacted revision does nothing.

        :raises StorageError: ``revision`` is newer than the current revision.
        """
        self._check_open()
        async with self._compact_lock:
            if revision <= self._compacted:
                return
            _check_future(revision, self._applied)
            await self._submit(_OP_COMPACT_MARK, "", b"", revision)
            assert self._lconn is not None
            low = self._lconn.execute("SELECT coalesce(min(id), 0) FROM log").fetchone()[0]
            removed = 0
            while low < revision:
                high = min(low + self.COMPACT_CHUNK, revision)
                removed += await self._submit(_OP_COMPACT_CHUNK, "", b"", (low, high, revision))
                low = high
            log.info("compacted %s at revision %d: %d rows removed", self.path, revision, removed)

    async def _submit(self, kind: int, key: str, value: bytes, arg: Any) -> Any:
        self._check_open()
        if not isinstance(key, str):
            raise TypeError(f"key must be str, not {type(key).__name__}")
        assert self._loop is not None
        future: asyncio.Future[Any] = self._loop.create_future()
        self._queue.put((kind, key, value, arg, future))
        return await future

    # -- the writer thread -----------------------------------------------------------

    def _writer_main(self) -> None:
        conn = self._wconn
        assert conn is not None
        stop = False
        try:
            while not stop:
                first = self._queue.get()
                if first is _STOP:
                    break
                batch: list[_Op] = [first]
                while len(batch) < self._max_batch:
                    try:
                        op = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if op is _STOP:
                        stop = True
                        break
                    batch.append(op)
                self._run(conn, batch)
        except BaseException:  # pragma: no cover - a bug; never leave callers hanging
            log.exception("sqlite writer thread crashed")
            self._fail_queued()
            raise
        finally:
            conn.close()
            self._call_soon(_set_result, self._writer_done, None)

    def _fail_queued(self) -> None:
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                return
            if op is not _STOP:
                self._call_soon(
                    self._deliver, [(op[4], StorageUnavailableError("writer stopped"), True)], []
                )

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("event loop closed; dropping writer callback")

    def _run(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        writes: list[_Op] = []
        for op in batch:
            if op[0] in _WRITE_OPS:
                writes.append(op)
                continue
            if writes:
                self._commit_writes(conn, writes)
                writes = []
            self._run_admin(conn, op)
        if writes:
            self._commit_writes(conn, writes)

    def _commit_writes(self, conn: sqlite3.Connection, ops: list[_Op]) -> None:
        results: list[_Result] = []
        events: list[Event] = []
        rev = self._rev
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for kind, key, value, arg, future in ops:
                    try:
                        result, event = _apply(conn, kind, key, value, arg, rev + 1)
                    except StorageError as exc:
                        results.append((future, exc, True))
                        continue
                    rev += 1
                    results.append((future, result, False))
                    events.append(event)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            if len(ops) > 1:
                # Whatever failed (one poisonous write, or the disk) rolled back the whole
                # group: retry each write alone so the innocent ones still go through.
                log.warning("group commit of %d writes failed (%s); retrying one by one",
                            len(ops), exc)
                for op in ops:
                    self._commit_writes(conn, [op])
                return
            if isinstance(exc, sqlite3.Error):
                log.error("sqlite write to %r failed: %s", ops[0][1], exc)
            else:  # a bug; fail this write but keep serving the others
                log.exception("unexpected error writing %r", ops[0][1])
            failed: list[_Result] = []
            for op in ops:
                error = StorageUnavailableError(f"{self.path}: write failed: {exc}")
                error.__cause__ = exc
                failed.append((op[4], error, True))
            self._call_soon(self._deliver, failed, [])
            return
        self._rev = rev
        self._batches += 1
        self._writes += len(events)
        self._call_soon(self._deliver, results, events)

    def _run_admin(self, conn: sqlite3.Connection, op: _Op) -> None:
        kind, _key, _value, arg, future = op
        try:
            if kind == _OP_COMPACT_MARK:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('compacted', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (arg,),
                )
                conn.execute("COMMIT")
                # Published before any row is deleted: readers re-check it after reading.
                self._compacted = arg
                result: Any = None
            elif kind == _OP_COMPACT_CHUNK:
                low, high, revision = arg
                conn.execute("BEGIN IMMEDIATE")
                ids = conn.execute(
                    "SELECT id FROM log WHERE id >= ? AND id < ? AND (deleted = 1 OR EXISTS ("
                    "SELECT 1 FROM log AS s WHERE s.name = log.name "
                    "AND s.prev_revision = log.id AND +s.id <= ?))",
                    (low, high, revision),
                ).fetchall()
                conn.executemany("DELETE FROM log WHERE id = ?", ids)
                conn.execute("COMMIT")
                result = len(ids)
            else:  # pragma: no cover
                raise AssertionError(f"unknown operation {kind}")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.error("sqlite compaction step failed: %s", exc)
            error = StorageUnavailableError(f"{self.path}: compaction failed: {exc}")
            error.__cause__ = exc
            self._call_soon(self._deliver, [(future, error, True)], [])
            return
        self._call_soon(self._deliver, [(future, result, False)], [])

    # -- back on the event loop ------------------------------------------------------

    def _deliver(self, results: list[_Result], events: list[Event]) -> None:
        """Apply committed events to the in-memory state, push them to the watchers, then
        answer the writers (in that order, so an answered writer reads its own write)."""
        try:
            if events:
                self._apply_events(events)
        finally:
            for future, value, is_error in results:
                if future.done():  # the caller was cancelled; the write happened anyway
                    continue
                if is_error:
                    future.set_exception(value)
                else:
                    future.set_result(value)

    def _apply_events(self, events: list[Event]) -> None:
        kvs = self._kvs
        keys = self._keys
        for event in events:
            kv = event.kv
            if event.type is EventType.DELETE:
                del kvs[kv.key]
                keys.remove(kv.key)
            else:
                if event.prev_kv is None:
                    keys.add(kv.key)
                kvs[kv.key] = kv
        self._applied = events[-1].kv.mod_revision
        for prefix, watchers in self._watchers.items():
            matched = [e for e in events if e.kv.key.startswith(prefix)] if prefix else events
            if matched:
                for watcher in watchers:
                    watcher.push(matched)

    # -- watch -----------------------------------------------------------------------

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[list[Event]]:
        """Every change to keys under ``prefix`` with revision ``> after_revision``, in order.

        Replays history from the log, then streams the events the writer pushes.  Ends when
        the storage is closed.

        :raises CompactedError: (on first iteration) ``after_revision`` is below the compacted
            revision, or compaction overtook a watch that was replaying history.
        """
        return self._watch(prefix, after_revision)

    async def _watch(self, prefix: str, after_revision: int) -> AsyncIterator[list[Event]]:
        self._check_open()
        compacted = self._compacted
        if after_revision < compacted:
            raise CompactedError(after_revision, compacted)
        watcher = _Watcher(self._watch_buffer)
        self._watchers.setdefault(prefix, set()).add(watcher)
        last = after_revision
        try:
            while True:
                # Catch up from the log.  Registered already, so every event committed
                # from now on is pushed to the watcher; the replay sees everything
                # committed before; duplicates are skipped by revision.
                watcher.reset()
                while True:
                    try:
                        events, more = await self._read(_replay, prefix, last, self.REPLAY_PAGE)
                    except StorageUnavailableError:
                        if self._closed:
                            return
                        raise
                    except CompactedError:  # a row this replay needed was compacted away
                        raise CompactedError(last, self._compacted) from None
                    compacted = self._compacted
                    if compacted > last:
                        raise CompactedError(last, compacted)
                    if events:
                        yield events
                        last = events[-1].kv.mod_revision
                    if not more:
                        break
                # Live.
                while True:
                    await watcher.wait()
                    if watcher.overflowed and not watcher.closed:
                        log.debug("watch on %r fell behind at %d; replaying", prefix, last)
                        break
                    for batch in watcher.take():
                        fresh = [e for e in batch if e.kv.mod_revision > last]
                        if fresh:
                            yield fresh
                            last = fresh[-1].kv.mod_revision
                    if watcher.closed:
                        return
        finally:
            watchers = self._watchers.get(prefix)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[prefix]


# -- helpers used on reader threads and the writer thread --------------------------------


def _as_bytes(value: bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"value must be bytes, not {type(value).__name__}")


def _set_result(future: asyncio.Future[None] | None, value: None) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def _check_future(revision: int, current: int) -> None:
    if revision > current:
        raise StorageError(f"revision {revision} is in the future (current revision {current})")


@contextlib.contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction: every statement inside sees the same committed state."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _bounds(prefix: str, start_key: str | None = None) -> tuple[str, str | None]:
    low = prefix if start_key is None or start_key < prefix else start_key
    return low, (prefix_end(prefix) or None)


def _apply(
    conn: sqlite3.Connection, kind: int, key: str, value: bytes, expected: int, rev: int
) -> tuple[Any, Event]:
    """Run one write inside the writer's transaction at revision ``rev``."""
    row = conn.execute(_SQL_LATEST, (key,)).fetchone()
    if kind == _OP_CREATE:
        if row is not None and not row[1]:
            raise KeyExistsError(key)
        try:
            conn.execute(_SQL_INSERT, (rev, key, 1, 0, rev, row[0] if row else 0, value))
        except sqlite3.IntegrityError:  # someone else wrote the key: a lost race
            raise KeyExistsError(key) from None
        conn.execute("INSERT INTO current (name, id) VALUES (?, ?)", (key, rev))
        kv = KeyValue(key=key, value=value, create_revision=rev, mod_revision=rev)
        return rev, Event(type=EventType.PUT, kv=kv)

    if row is None or row[1]:
        raise KeyNotFoundError(key)
    old_rev, _, create_rev, old_value = row
    old = KeyValue(key=key, value=old_value, create_revision=create_rev, mod_revision=old_rev)
    if (expected or kind == _OP_UPDATE) and expected != old_rev:
        raise ConflictError(key, expected, old)
    deleted = kind == _OP_DELETE
    try:
        conn.execute(
            _SQL_INSERT, (rev, key, 0, int(deleted), create_rev, old_rev, b"" if deleted else value)
        )
    except sqlite3.IntegrityError:
        raise ConflictError(key, expected, old) from None
    if deleted:
        conn.execute("DELETE FROM current WHERE name = ?", (key,))
        kv = KeyValue(key=key, value=old_value, create_revision=create_rev, mod_revision=rev)
        return kv, Event(type=EventType.DELETE, kv=kv, prev_kv=old)
    conn.execute("UPDATE current SET id = ? WHERE name = ?", (rev, key))
    kv = KeyValue(key=key, value=value, create_revision=create_rev, mod_revision=rev)
    return rev, Event(type=EventType.PUT, kv=kv, prev_kv=old)


def _range(
    conn: sqlite3.Connection, prefix: str, start_key: str | None, revision: int, limit: int
) -> RangeResult:
    low, high = _bounds(prefix, start_key)
    upper = "" if high is None else " AND {col} < :high"
    params: dict[str, Any] = {"low": low, "high": high, "rev": revision, "limit": limit + 1}
    with _snapshot(conn):
        current = conn.execute(_SQL_MAX_ID).fetchone()[0]
        if revision == 0 or revision == current:
            sql = (
                "SELECT c.name, l.value, l.create_revision, l.id "
                "FROM current AS c JOIN log AS l ON l.id = c.id "
                "WHERE c.name >= :low" + upper.format(col="c.name") + " ORDER BY c.name"
            )
        else:
            _check_future(revision, current)
            sql = (
                "SELECT l.name, l.value, l.create_revision, l.id FROM log AS l "
                "WHERE l.name >= :low" + upper.format(col="l.name") + " AND +l.id <= :rev "
                "AND NOT EXISTS (SELECT 1 FROM log AS s WHERE s.name = l.name "
                "AND s.prev_revision = l.id AND +s.id <= :rev) AND l.deleted = 0 "
                "ORDER BY l.name"
            )
        if limit:
            sql += " LIMIT :limit"
        rows = conn.execute(sql, params).fetchall()
    more = bool(limit) and len(rows) > limit
    if more:
        del rows[limit:]
    kvs = [
        KeyValue(key=name, value=value, create_revision=create_rev, mod_revision=mod_rev)
        for name, value, create_rev, mod_rev in rows
    ]
    return RangeResult(kvs=kvs, revision=revision or current, more=more)


def _replay(
    conn: sqlite3.Connection, prefix: str, after: int, limit: int
) -> tuple[list[Event], bool]:
    """Up to ``limit`` events under ``prefix`` after revision ``after``, and whether more
    may follow.  Scans the log in revision order (``+name`` keeps SQLite off the name index).
    """
    low, high = _bounds(prefix)
    sql = (
        "SELECT l.id, l.name, l.created, l.deleted, l.create_revision, l.prev_revision, "
        "l.value, p.value FROM log AS l "
        "LEFT JOIN log AS p ON p.id = l.prev_revision AND l.created = 0 "
        "WHERE l.id > :after AND +l.name >= :low"
        + ("" if high is None else " AND +l.name < :high")
        + " ORDER BY l.id LIMIT :limit"
    )
    rows = conn.execute(
        sql, {"after": after, "low": low, "high": high, "limit": limit}
    ).fetchall()
    events: list[Event] = []
    for rev, name, created, deleted, create_rev, prev_rev, value, prev_value in rows:
        if created:
            kv = KeyValue(key=name, value=value, create_revision=rev, mod_revision=rev)
            events.append(Event(type=EventType.PUT, kv=kv))
            continue
        if prev_value is None:  # the previous row is gone: history was compacted
            raise CompactedError(rev - 1, rev)
        prev = KeyValue(
            key=name, value=prev_value, create_revision=create_rev, mod_revision=prev_rev
        )
        if deleted:
            kv = KeyValue(key=name, value=prev_value, create_revision=create_rev, mod_revision=rev)
            events.append(Event(type=EventType.DELETE, kv=kv, prev_kv=prev))
        else:
            kv = KeyValue(key=name, value=value, create_revision=create_rev, mod_revision=rev)
            events.append(Event(type=EventType.PUT, kv=kv, prev_kv=prev))
    return events, len(rows) == limit

"""Benchmark kubeling-storage-sqlite against raw SQLite commits on the same disk.

Prints, from one run:

* raw SQLite: one ``INSERT`` + ``COMMIT`` per row (WAL, same ``synchronous``, same directory)
  -- the rate at which a durable one-write-per-transaction store can go;
* SqliteStorage creates/s with N concurrent creators (group commit) and with one creator,
  and their ratios to the raw rate;
* the time of a 10,000-key range (current state, at an older revision, and paged by 500),
  a point get, and the longest event-loop stall seen while an older-revision range runs.

Usage: ``python bench/storage_sqlite.py [--keys 10000] [--concurrency 32] [--synchronous FULL]``
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from kubeling_storage_sqlite import SqliteStorage

PREFIX = "/registry/pods/bench/"


def raw_commits_per_second(db: Path, synchronous: str, rows: int, value: bytes) -> float:
    """One INSERT and one COMMIT per row, like a store without group commit."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, value BLOB)")
    began = time.perf_counter()
    for i in range(rows):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", (i + 1, f"{PREFIX}raw{i:06d}", value))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    return rows / elapsed


async def creates_per_second(
    storage: SqliteStorage, keys: int, concurrency: int, value: bytes, tag: str
) -> float:
    numbers = iter(range(keys))

    async def creator() -> None:
        for i in numbers:
            await storage.create(f"{PREFIX}{tag}{i:06d}", value)

    began = time.perf_counter()
    await asyncio.gather(*(creator() for _ in range(concurrency)))
    return keys / (time.perf_counter() - began)


async def timed(fn: Callable[[], Awaitable[object]], repeat: int = 7) -> float:
    """Median seconds of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


async def max_loop_stall(fn: Callable[[], Awaitable[object]]) -> float:
    """The longest the event loop went without running a 1 ms ticker while ``fn`` ran."""
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last - 0.001)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    await fn()
    done = True
    await task
    return worst


async def list_all_pages(storage: SqliteStorage, revision: int, page: int) -> int:
    start: str | None = None
    count = 0
    while True:
        result = await storage.range(PREFIX + "c", start_key=start, revision=revision, limit=page)
        count += len(result.kvs)
        if not result.more:
            return count
        start = result.kvs[-1].key + "\x00"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--synchronous", default="FULL")
    parser.add_argument("--value-size", type=int, default=1024)
    parser.add_argument("--raw-rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serial-keys", type=int, default=1000)
    parser.add_argument("--dir", default=None, help="where the files go (default: a temp dir)")
    args = parser.parse_args()
    value = b"x" * args.value_size
    sync = args.synchronous.upper()

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="kubeling-bench-") as tmp:
        root = Path(tmp)
        print(f"files in {root}; synchronous={sync}; values of {args.value_size} bytes")

        # The disk's fsync latency drifts, so the measurements are interleaved over a few
        # rounds and the medians compared.
        raws: list[float] = []
        rates: list[float] = []
        serials: list[float] = []
        async with SqliteStorage(root / "state.db", synchronous=sync) as storage:
            for round_ in range(args.rounds):
                raws.append(
                    raw_commits_per_second(root / f"raw{round_}.db", sync, args.raw_rows, value)
                )
                if round_ == 0:
                    before = storage.stats()
                tag = "c" if round_ == 0 else f"r{round_}-"  # the first round's keys: ranges
                rates.append(
                    await creates_per_second(storage, args.keys, args.concurrency, value, tag)
                )
                if round_ == 0:
                    after = storage.stats()
                serials.append(
                    await creates_per_second(storage, args.serial_keys, 1, value, f"s{round_}-")
                )
            raw = statistics.median(raws)
            rate = statistics.median(rates)
            serial = statistics.median(serials)
            per_commit = (after["writes"] - before["writes"]) / (
                after["batches"] - before["batches"]
            )
            print(f"medians of {args.rounds} interleaved rounds (min-max in brackets)")
            print(
                f"raw SQLite, INSERT+COMMIT per row:        {raw:8.0f} commits/s "
                f"[{min(raws):.0f}-{max(raws):.0f}]"
            )
            print(
                f"SqliteStorage, {args.keys} creates x {args.concurrency} concurrent:"
                f" {rate:8.0f} creates/s [{min(rates):.0f}-{max(rates):.0f}]"
                f"  = {rate / raw:.1f}x raw ({per_commit:.1f} writes per commit)"
            )
            print(
                f"SqliteStorage, {args.serial_keys} creates, one at a time:  "
                f"{serial:8.0f} creates/s [{min(serials):.0f}-{max(serials):.0f}]"
                f"  = {serial / raw:.2f}x raw"
            )

            old_revision = await storage.current_revision()
            # Change a tenth of the keys so that the older revision differs from now.
            current = await storage.range(PREFIX + "c")
            await asyncio.gather(
                *(
                    storage.update(kv.key, b"y" * args.value_size, mod_revision=kv.mod_revision)
                    for kv in current.kvs[::10]
                )
            )

            now = await timed(lambda: storage.range(PREFIX + "c"))
            old = await timed(lambda: storage.range(PREFIX + "c", revision=old_revision), 3)
            paged = await timed(lambda: list_all_pages(storage, old_revision, 500), 3)
            one = current.kvs[len(current.kvs) // 2].key
            get_now = await timed(lambda: storage.get(one), 101)
            get_old = await timed(lambda: storage.get(one, revision=old_revision), 101)
            stall = await max_loop_stall(
                lambda: storage.range(PREFIX + "c", revision=old_revision)
            )
            n = len(current.kvs)
            print(f"range of {n} keys, current state:       {now * 1000:8.2f} ms")
            print(f"range of {n} keys, at an older revision: {old * 1000:8.2f} ms "
                  f"(event loop stalled at most {stall * 1000:.1f} ms meanwhile)")
            print(f"same, paged by 500 at that revision:     {paged * 1000:8.2f} ms")
            print(f"get, current / at an older revision:     {get_now * 1e6:8.1f} us / "
                  f"{get_old * 1e6:.1f} us")


if __name__ == "__main__":
    asyncio.run(main())

"""Child process of test_durability: writes as fast as it can and reports every ack.

Usage: ``python durability_child.py DB SYNCHRONOUS WORKERS``.  Each worker loops: create a
key, update it, and for every third key delete it; after each write returns it prints
``<op> <key> <revision>`` and flushes, so every line the parent reads was acknowledged.
A side task compacts every 20 ms to 100 revisions behind.  Runs until killed.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

from kubeling_storage_sqlite import SqliteStorage


async def main(path: str, synchronous: str, workers: int) -> None:
    storage = SqliteStorage(path, synchronous=synchronous)
    await storage.start()
    numbers = itertools.count()
    out = sys.stdout

    def ack(op: str, key: str, rev: int) -> None:
        out.write(f"{op} {key} {rev}\n")
        out.flush()

    async def worker() -> None:
        while True:
            i = next(numbers)
            key = f"/registry/pods/d/k{i:08d}"
            rev = await storage.create(key, b"created %d" % i)
            ack("create", key, rev)
            rev = await storage.update(key, b"updated %d" % i, mod_revision=rev)
            ack("update", key, rev)
            if i % 3 == 0:
                deleted = await storage.delete(key, mod_revision=rev)
                ack("delete", key, deleted.mod_revision)

    async def compactor() -> None:
        while True:
            await asyncio.sleep(0.02)
            current = await storage.current_revision()
            if current > 100:
                await storage.compact(current - 100)

    await asyncio.gather(compactor(), *(worker() for _ in range(workers)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))

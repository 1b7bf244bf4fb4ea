"""API server throughput: creates/s, list latency, watch event latency.

Starts a real ``kubeling up`` (SQLite storage) in a subprocess, then from this process:

* creates N ConfigMaps over HTTP with C concurrent clients -> creates/s;
* lists them all (consistent read, and resourceVersion=0 from the watch cache) -> latency;
* watches while creating more -> event latency p50/p99 (request sent -> event received);
* raw SQLite single-row commits/s on the same file system, in the same run -> the ratio.

Usage: ``python bench/api.py [--objects 10000] [--concurrency 32]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from kubeling.testing.cluster import KubelingProcess


def raw_sqlite_commits(directory: Path, count: int = 2000) -> float:
    """Single-row INSERT + COMMIT per row, WAL, synchronous=FULL: what one durable write
    costs on this file system."""
    path = directory / "raw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE kv (id INTEGER PRIMARY KEY, name TEXT, value BLOB)")
    value = b"x" * 300
    started = time.perf_counter()
    for i in range(count):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO kv (name, value) VALUES (?, ?)", (f"k{i}", value))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def configmap(name: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "labels": {"bench": "api"}},
                       "data": {"key": "value " * 20}}).encode()


async def create_all(url: str, names: list[str], concurrency: int) -> float:
    path = f"{url}/api/v1/namespaces/default/configmaps"
    queue: asyncio.Queue[str] = asyncio.Queue()
    for name in names:
        queue.put_nowait(name)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                name = queue.get_nowait()
                async with session.post(path, data=configmap(name),
                                        headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                    if resp.status != 201:
                        raise RuntimeError(f"create {name}: HTTP {resp.status}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def list_latency(url: str, runs: int, params: dict[str, str]) -> tuple[float, int]:
    path = f"{url}/api/v1/namespaces/default/configmaps"
    times = []
    count = 0
    async with aiohttp.ClientSession() as session:
        for _ in range(runs):
            started = time.perf_counter()
            async with session.get(path, params=params) as resp:
                body = await resp.read()
            times.append(time.perf_counter() - started)
            count = len(json.loads(body)["items"])
    return statistics.median(times), count


async def watch_latency(url: str, count: int, concurrency: int) -> list[float]:
    path = f"{url}/api/v1/namespaces/default/configmaps"
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        async with session.get(path, params={"limit": "1"}) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]

        async def watcher() -> None:
            params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "300"}
            async with session.get(path, params=params) as resp:
                buffer = b""
                async for chunk in resp.content.iter_any():
                    now = time.perf_counter()
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        name = json.loads(line)["object"]["metadata"]["name"]
                        if name in sent:
                            latencies.append(now - sent.pop(name))
                    if len(latencies) >= count:
                        done.set()
                        return

        task = asyncio.create_task(watcher())
        await asyncio.sleep(0.2)
        names = [f"watched-{i:05d}" for i in range(count)]
        semaphore = asyncio.Semaphore(concurrency)

        async def create(name: str) -> None:
            async with semaphore:
                sent[name] = time.perf_counter()
                async with session.post(path, data=configmap(name),
                                        headers={"Content-Type": "application/json"}) as r:
                    await r.read()

        await asyncio.gather(*(create(n) for n in names))
        await asyncio.wait_for(done.wait(), 60)
        task.cancel()
    return latencies


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def main_async(args: argparse.Namespace, url: str) -> dict[str, float]:
    names = [f"cm-{i:05d}" for i in range(args.objects)]
    elapsed = await create_all(url, names, args.concurrency)
    creates = args.objects / elapsed
    consistent, n1 = await list_latency(url, 5, {})
    cached, n2 = await list_latency(url, 5, {"resourceVersion": "0"})
    assert n1 == n2 == args.objects, (n1, n2)
    latencies = await watch_latency(url, args.watch_events, 8)
    return {"creates_per_s": creates, "list_consistent_ms": consistent * 1000,
            "list_cached_ms": cached * 1000,
            "watch_p50_ms": pct(latencies, 0.5) * 1000,
            "watch_p99_ms": pct(latencies, 0.99) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--watch-events", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubeling-bench-") as tmp:
        directory = Path(tmp)
        raw = raw_sqlite_commits(directory)
        proc = KubelingProcess(directory / "cluster").start()
        try:
            figures = asyncio.run(main_async(args, proc.url))
        finally:
            proc.stop()
        raw_after = raw_sqlite_commits(directory / "cluster", 1000)
    raw_commits = (raw + raw_after) / 2
    print(f"objects                         {args.objects} ConfigMaps, "
          f"{args.concurrency} concurrent HTTP clients")
    print(f"creates/s                       {figures['creates_per_s']:,.0f}")
    print(f"raw SQLite commits/s (same fs)  {raw_commits:,.0f}  "
          f"(before {raw:,.0f}, after {raw_after:,.0f})")
    print(f"ratio creates/s / raw commits/s {figures['creates_per_s'] / raw_commits:.2f}")
    print(f"list {args.objects} (consistent)     {figures['list_consistent_ms']:.0f} ms")
    print(f"list {args.objects} (watch cache)    {figures['list_cached_ms']:.0f} ms")
    print(f"watch event latency p50         {figures['watch_p50_ms']:.1f} ms")
    print(f"watch event latency p99         {figures['watch_p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()

"""The watch cache fans one storage watch out to every client watch; informers on top."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kubeling_storage_sqlite.store import SqliteStorage

from kubeling.api.server import ServerSettings
from kubeling.client import Informer
from kubeling.client.resources import CONFIGMAPS
from kubeling.storage import Event, Storage
from kubeling.testing.cluster import api_server


class CountingStorage(Storage):
    """The real SQLite storage, counting the watches opened on it."""

    def __init__(self, inner: SqliteStorage) -> None:
        self.inner = inner
        self.watches: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if name in ("inner", "watches", "watch"):
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "inner"), name)

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[list[Event]]:
        self.watches.append(prefix)
        return self.inner.watch(prefix, after_revision=after_revision)

    # the abstract methods are served by __getattribute__ from the real storage
    start = close = current_revision = get = range = count = create = update = delete = \
        compact = compacted_revision = None  # type: ignore[assignment]


async def test_one_storage_watch_serves_every_client_watch(tmp_path: Path) -> None:
    storage = CountingStorage(SqliteStorage(tmp_path / "state.db"))
    async with api_server(tmp_path, storage=storage) as api:
        client = api.client()
        before = storage.watches.count("/registry/configmaps/")
        assert before == 1
        listing = await client.list(CONFIGMAPS, "default")
        rv = listing["metadata"]["resourceVersion"]

        async def watch_one() -> list[str]:
            names = []
            events = client.watch(CONFIGMAPS, "default", resource_version=rv,
                                  timeout_seconds=2, allow_bookmarks=False)
            async with contextlib.aclosing(events):  # closing it ends the server's watch
                async for event in events:
                    names.append(event.object["metadata"]["name"])
                    if len(names) == 3:
                        break
            return names

        watchers = [asyncio.create_task(watch_one()) for _ in range(20)]
        await asyncio.sleep(0.1)
        for i in range(3):
            await client.create(CONFIGMAPS, {"metadata": {"name": f"c{i}"}}, "default")
        results = await asyncio.gather(*watchers)
        assert all(r == ["c0", "c1", "c2"] for r in results)
        assert storage.watches.count("/registry/configmaps/") == 1
        assert api.server.cache_for(api.server.registry.get("", "v1", "configmaps")
                                    ).watcher_count == 0  # all released


async def test_informer_lists_watches_and_relists_after_410(tmp_path: Path) -> None:
    settings = ServerSettings(watch_cache_events=3, compaction_interval_seconds=0)
    async with api_server(tmp_path, settings=settings) as api:
        client = api.client()
        await client.create(CONFIGMAPS, {"metadata": {"name": "before"}}, "default")
        seen: list[tuple[str, str]] = []
        informer = Informer(client, CONFIGMAPS, namespace="default", watch_timeout=1)
        informer.add_handler(
            on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
            on_update=lambda old, new: seen.append(("update", new["metadata"]["name"])),
            on_delete=lambda o: seen.append(("delete", o["metadata"]["name"])))
        informer.start()
        try:
            await informer.wait_synced(5)
            assert seen == [("add", "before")]
            await client.patch(CONFIGMAPS, "before", {"data": {"a": "b"}}, "default")
            await _until(lambda: ("update", "before") in seen)
            # stop the informer, change what it cannot replay, compact: when it resumes its
            # watch the server answers 410 Gone and the informer must relist
            await informer.stop()
            relists = informer.relists
            resume_from = informer.resource_version
            await client.delete(CONFIGMAPS, "before", "default")
            for i in range(6):
                await client.create(CONFIGMAPS, {"metadata": {"name": f"gap{i}"}}, "default")
            await api.storage.compact(await api.storage.current_revision())
            assert int(resume_from) < await api.storage.compacted_revision()
            informer.start()
            await _until(lambda: ("delete", "before") in seen and len(informer.store) == 6)
            assert informer.relists == relists + 1
            assert sorted(informer.store) == [f"default/gap{i}" for i in range(6)]
        finally:
            await informer.stop()


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_a_cancelled_watch_stops_even_when_an_event_arrives_at_once() -> None:
    """On Python 3.11, asyncio.wait_for swallowed a cancel that landed as the awaited event
    fired: a stopped informer's watch then hung and `kubeling up` never exited."""
    from kubeling.api.watch import ObjectFilter, Watcher

    for _ in range(20):
        watcher = Watcher(ObjectFilter(), 0)
        task = asyncio.create_task(watcher.next_batch(10.0))
        await asyncio.sleep(0)  # the task now waits for the wake-up event
        watcher._push(("ADDED", None))  # type: ignore[arg-type]
        task.cancel()  # ...and is cancelled in the same loop iteration
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), 2)
        assert task.cancelled()


async def test_a_client_that_goes_away_releases_its_watch(tmp_path: Path) -> None:
    """With nothing to send, only handler cancellation notices a closed connection."""
    import aiohttp

    async with api_server(tmp_path) as api:
        cache = api.server.cache_for(api.server.registry.get("", "v1", "configmaps"))
        async with aiohttp.ClientSession() as session:
            resp = await session.get(f"{api.url}/api/v1/namespaces/default/configmaps",
                                     params={"watch": "true", "resourceVersion": "0"})
            await _until(lambda: cache.watcher_count == 1)
            resp.close()  # the client goes away; the server has nothing to write
        await _until(lambda: cache.watcher_count == 0, timeout=5)

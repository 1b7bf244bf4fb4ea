"""Fixtures for end-to-end scheduler tests: a real API server (SQLite), the scheduler
component and hollow nodes, all in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubeling_hollow_nodes import HollowNodes
from kubeling_scheduler_default.config import SchedulerSettings
from kubeling_scheduler_default.scheduler import Scheduler

from kubeling.client import InformerFactory
from kubeling.client.resources import EVENTS, PODS
from kubeling.testing.cluster import api_server


class Env:
    """An API server with helpers to run schedulers and hollow nodes against it."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.client = api.client()
        self._tasks: list[asyncio.Task[Any]] = []
        self._schedulers: list[Scheduler] = []
        self._fleets: list[HollowNodes] = []

    def registry(self) -> dict[str, Any]:
        return {name: c.value for name, c in
                self.api.host.contributions.family("scheduler-plugin").items()}

    async def scheduler(self, settings: SchedulerSettings | None = None) -> Scheduler:
        client = self.api.client()
        sched = Scheduler(client=client, settings=settings or SchedulerSettings(
            pod_initial_backoff_seconds=0.1, pod_max_backoff_seconds=0.5),
            registry=self.registry(), informers=InformerFactory(client))
        self._schedulers.append(sched)
        self._tasks.append(asyncio.create_task(sched.run()))
        await asyncio.wait_for(sched.started.wait(), 10)
        return sched

    async def nodes(self, count: int, **settings: Any) -> HollowNodes:
        settings.setdefault("renew_interval_seconds", 30.0)
        fleet = HollowNodes(self.api.client(), count=count, **settings)
        await fleet.start()
        self._fleets.append(fleet)
        return fleet

    async def pod(self, name: str, *, cpu: str | None = "100m", memory: str | None = None,
                  labels: dict[str, str] | None = None, namespace: str = "default",
                  **spec: Any) -> dict[str, Any]:
        requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
        body = {"metadata": {"name": name, "labels": labels or {}},
                "spec": {"containers": [{"name": "c", "image": "registry.local/app:1",
                                         "resources": {"requests": requests}}], **spec}}
        return await self.client.create(PODS, body, namespace)

    async def wait_pod(self, name: str, condition: Callable[[dict[str, Any]], bool], *,
                       namespace: str = "default", timeout: float = 10.0) -> dict[str, Any]:
        return await self.client.wait_for(PODS, name, namespace, condition, timeout=timeout)

    async def bound(self, name: str, **kw: Any) -> str:
        pod = await self.wait_pod(name, lambda p: bool(p["spec"].get("nodeName")), **kw)
        return pod["spec"]["nodeName"]

    async def running(self, name: str, **kw: Any) -> dict[str, Any]:
        return await self.wait_pod(name, lambda p: p["status"].get("phase") == "Running", **kw)

    async def events(self, name: str, reason: str | None = None, namespace: str = "default"
                     ) -> list[dict[str, Any]]:
        for sched in self._schedulers:
            await sched.events.flush()
        items = (await self.client.list(EVENTS, namespace,
                                        field_selector=f"involvedObject.name={name}"))["items"]
        return [e for e in items if reason is None or e["reason"] == reason]

    async def wait_event(self, name: str, reason: str, *, timeout: float = 10.0,
                         namespace: str = "default") -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                found = await self.events(name, reason, namespace)
                if found:
                    return found[-1]
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for sched in self._schedulers:
            await sched.close()
            for informer in list(sched.informers._informers.values()):
                await informer.stop()
        for fleet in self._fleets:
            await fleet.stop()


@pytest.fixture
async def env(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    extra = getattr(request, "param", ())
    async with api_server(tmp_path, extra_plugins=extra) as api:
        e = Env(api)
        try:
            yield e
        finally:
            await e.close()

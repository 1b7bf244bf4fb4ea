"""Resource usage of the node and its pods, for the metrics API (``kubectl top``).

Every ``kubelet.metrics_interval_seconds`` the sampler reads the node's CPU time
(``/proc/stat``) and memory (``/proc/meminfo``: total minus available) and each running
container's CPU time and working set from the runtime; CPU usage is the rate between the
last two samples, so figures appear from the second sample on.  The agent serves the
latest snapshot at ``GET /stats/usage``.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubeling.runtime import ContainerRuntimeError, ContainerState, ContainerStatus

if TYPE_CHECKING:
    from kubeling_kubelet.agent import Kubelet

log = logging.getLogger(__name__)

__all__ = ["UsageSampler", "node_cpu_ns", "node_memory_working_set"]

Obj = dict[str, Any]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def node_cpu_ns(stat: Path = Path("/proc/stat")) -> int:
    """CPU time the node spent busy (not idle, not waiting for IO), in nanoseconds."""
    fields = stat.read_text().splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    busy = sum(ticks[:8]) - idle  # guest time is already in user
    return busy * 1_000_000_000 // _TICKS


def node_memory_working_set(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Bytes in use: MemTotal - MemAvailable."""
    values: dict[str, int] = {}
    for line in meminfo.read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            values[key] = int(parts[0]) * 1024
    return max(values.get("MemTotal", 0) - values.get("MemAvailable", 0), 0)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class UsageSampler:
    """Samples usage on a timer and keeps the latest rates."""

    def __init__(self, agent: Kubelet, interval: float) -> None:
        self.agent = agent
        self.interval = interval
        self._node_last: tuple[float, int] | None = None
        self._last: dict[str, tuple[float, int]] = {}
        """container id -> (monotonic time, cumulative CPU ns) of its last sample."""
        self.snapshot: Obj = {"node": None, "pods": []}

    async def run(self) -> None:
        while True:
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let metrics take the agent down
                log.warning("sampling resource usage failed: %s", exc)
            await asyncio.sleep(self.interval)

    async def sample(self) -> Obj:
        """Take one sample; returns (and keeps) the snapshot."""
        now = time.monotonic()
        stamp = _now()
        cpu = await asyncio.to_thread(node_cpu_ns)
        node: Obj | None = None
        if self._node_last is not None and now > self._node_last[0]:
            rate = (cpu - self._node_last[1]) / (now - self._node_last[0])
            node = {"timestamp": stamp, "window": f"{self._window(now):g}s",
                    "cpu_nanocores": max(int(rate), 0),
                    "memory_working_set_bytes": await asyncio.to_thread(
                        node_memory_working_set)}
        self._node_last = (now, cpu)
        pods: list[Obj] = []
        seen: set[str] = set()
        running = await self._running_by_pod()
        for worker in list(self.agent.workers.values()):
            meta = worker.pod.get("metadata") or {}
            containers = await self._containers(running.get(worker.uid, []), now, seen)
            if containers:
                pods.append({"namespace": meta.get("namespace") or "default",
                             "name": meta.get("name") or "", "labels": meta.get("labels") or {},
                             "timestamp": stamp, "window": f"{self.interval:g}s",
                             "containers": containers})
        self._last = {k: v for k, v in self._last.items() if k in seen}
        self.snapshot = {"node": node, "pods": pods}
        return self.snapshot

    def _window(self, now: float) -> float:
        assert self._node_last is not None
        return round(now - self._node_last[0], 1)

    async def _running_by_pod(self) -> dict[str, list[ContainerStatus]]:
        """This node's running containers by pod uid (one runtime call)."""
        from kubeling_kubelet.worker import LABEL_POD_UID

        try:
            listed = await self.agent.runtime.list_containers(labels=self.agent.scope_labels)
        except ContainerRuntimeError:
            return {}
        out: dict[str, list[ContainerStatus]] = {}
        for status in listed:
            if status.state == ContainerState.RUNNING and status.labels.get(LABEL_POD_UID):
                out.setdefault(status.labels[LABEL_POD_UID], []).append(status)
        return out

    async def _containers(self, running: list[ContainerStatus], now: float, seen: set[str]
                          ) -> list[Obj]:
        stats_of = getattr(self.agent.runtime, "container_stats", None)
        if stats_of is None:
            return []
        out = []
        for status in running:
            try:
                stats = await stats_of(status.id)
            except ContainerRuntimeError:
                continue
            seen.add(status.id)
            last = self._last.get(status.id)
            self._last[status.id] = (now, stats.cpu_usage_ns)
            if last is None or now <= last[0]:
                continue
            rate = (stats.cpu_usage_ns - last[1]) / (now - last[0])
            out.append({"name": status.name, "cpu_nanocores": max(int(rate), 0),
                        "memory_working_set_bytes": stats.memory_working_set_bytes})
        return out

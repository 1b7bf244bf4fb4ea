"""The hollow node fleet: registration, heartbeats and the pod lifecycle without containers."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import attrs

from kubeling.api.errors import ApiError
from kubeling.client import Informer
from kubeling.client.resources import LEASES, NODES, PODS

__all__ = ["LEASE_NAMESPACE", "HollowNodeSettings", "HollowNodes"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

LEASE_NAMESPACE = "kube-node-lease"
HOLLOW_LABEL = "kubeling.io/hollow"
ZONE_LABEL = "topology.kubernetes.io/zone"


@attrs.frozen(kw_only=True)
class HollowNodeSettings:
    """The ``hollow_nodes`` config section (and the options of ``kubeling simulate``)."""

    count: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    """How many nodes to simulate (0: none, the component does not start)."""
    name_prefix: str = "hollow-node-"
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    zones: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    """Spread nodes over this many ``topology.kubernetes.io/zone`` values (0: no zone)."""
    labels: dict[str, str] = attrs.field(factory=dict)
    """Extra labels on every node."""
    lease_duration_seconds: int = 40
    renew_interval_seconds: float = 10.0
    """How often each node renews its Lease (renewals are spread over the interval)."""
    status_interval_seconds: float = 300.0
    """How often each node re-reports its status (Ready condition heartbeat)."""
    run_pods: bool = True
    """Turn pods bound to the nodes Running (and finish their deletion)."""
    concurrency: int = attrs.field(default=32, validator=attrs.validators.ge(1))
    """API writes in flight at once."""


def micro_time(moment: float | None = None) -> str:
    dt = datetime.datetime.fromtimestamp(time.time() if moment is None else moment,
                                         datetime.UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339(moment: float | None = None) -> str:
    dt = datetime.datetime.fromtimestamp(time.time() if moment is None else moment,
                                         datetime.UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class HollowNodes:
    """``count`` simulated nodes talking to the API through ``client``."""

    def __init__(self, client: Any, settings: HollowNodeSettings | None = None,
                 **overrides: Any) -> None:
        settings = settings or HollowNodeSettings()
        if overrides:
            settings = attrs.evolve(settings, **overrides)
        self.client = client
        self.settings = settings
        width = max(len(str(max(settings.count - 1, 0))), 1)
        self.names = [f"{settings.name_prefix}{i:0{width}d}" for i in range(settings.count)]
        self._index = {name: i for i, name in enumerate(self.names)}
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._tasks: list[asyncio.Task[Any]] = []
        self._informer: Informer | None = None
        self._pod_queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._next_ip: dict[str, int] = {}
        self.running: set[str] = set()
        """Keys of pods this fleet has turned Running."""
        self.started_pods = 0
        self.finished_deletions = 0
        self.renewals = 0
        self.registered = asyncio.Event()
        self._changed = asyncio.Event()

    # -- objects ---------------------------------------------------------------------------------

    def _ip(self, name: str, host: int) -> str:
        i = self._index.get(name, 0)
        return f"10.{(i >> 8) & 255}.{i & 255}.{host}"

    def node_object(self, name: str) -> Obj:
        s = self.settings
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", HOLLOW_LABEL: "true", **s.labels}
        if s.zones:
            labels[ZONE_LABEL] = f"zone-{self._index[name] % s.zones}"
        i = self._index[name]
        cidr = f"10.{(i >> 8) & 255}.{i & 255}.0/24"
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": labels},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}

    def node_status(self, name: str) -> Obj:
        s = self.settings
        now = rfc3339()
        capacity = {"cpu": s.cpu, "memory": s.memory, "pods": str(s.pods),
                    "ephemeral-storage": s.ephemeral_storage}

        def condition(kind: str, status: str, reason: str, message: str) -> Obj:
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": now, "lastTransitionTime": now}

        return {
            "capacity": capacity, "allocatable": dict(capacity),
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                          "hollow node has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                          "hollow node has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID",
                          "hollow node has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "hollow node is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": self._ip(name, 1)},
                          {"type": "Hostname", "address": name}],
            "nodeInfo": {"machineID": f"hollow-{name}", "systemUUID": f"hollow-{name}",
                         "bootID": f"hollow-{name}", "kernelVersion": "hollow",
                         "osImage": "kubeling hollow node", "containerRuntimeVersion":
                         "hollow://0.1.0", "kubeletVersion": "v1.32.0-kubeling-hollow",
                         "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": "amd64"},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        }

    def lease_object(self, name: str, node_uid: str | None = None) -> Obj:
        meta: Obj = {"name": name, "namespace": LEASE_NAMESPACE}
        if node_uid:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name,
                                        "uid": node_uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": name,
                         "leaseDurationSeconds": self.settings.lease_duration_seconds,
                         "renewTime": micro_time()}}

    # -- registration ----------------------------------------------------------------------------

    async def _limited(self, coro: Any) -> Any:
        async with self._slots:
            return await coro

    async def _register_one(self, name: str) -> None:
        try:
            node = await self.client.create(NODES, self.node_object(name))
        except ApiError as exc:
            if exc.code != 409:
                raise
            node = await self.client.get(NODES, name)
        await self.client.patch(NODES, name, {"status": self.node_status(name)},
                                subresource="status")
        try:
            await self.client.create(LEASES, self.lease_object(
                name, (node.get("metadata") or {}).get("uid")), LEASE_NAMESPACE)
        except ApiError as exc:
            if exc.code != 409:
                raise
            await self._renew(name)

    async def register(self) -> None:
        """Create (or take over) every node and its Lease."""
        await asyncio.gather(*(self._limited(self._register_one(n)) for n in self.names))
        self.registered.set()
        log.info("hollow nodes: %d registered", len(self.names))

    async def _renew(self, name: str) -> None:
        await self.client.patch(LEASES, name, {"spec": {
            "holderIdentity": name, "renewTime": micro_time(),
            "leaseDurationSeconds": self.settings.lease_duration_seconds}}, LEASE_NAMESPACE)
        self.renewals += 1

    async def _every(self, interval: float, action: Any) -> None:
        """Run ``action(name)`` for every node once per ``interval``, spread evenly."""
        if not self.names or interval <= 0:
            return
        step = interval / len(self.names)
        await asyncio.sleep(random.random() * step)
        while True:
            started = time.monotonic()
            for i, name in enumerate(self.names):
                due = started + i * step
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    await self._limited(action(name))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("hollow node %s: heartbeat failed: %s", name, exc)
            rest = started + interval - time.monotonic()
            if rest > 0:
                await asyncio.sleep(rest)

    async def _report_status(self, name: str) -> None:
        await self.client.patch(NODES, name, {"status": self.node_status(name)},
                                subresource="status")

    # -- pods ------------------------------------------------------------------------------------

    def _wants(self, obj: Obj) -> bool:
        return (obj.get("spec") or {}).get("nodeName") in self._index

    def _enqueue(self, obj: Obj) -> None:
        if not self._wants(obj):
            return
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        if key not in self._queued:
            self._queued.add(key)
            self._pod_queue.put_nowait(key)

    def _forget(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        if key in self.running:
            self.running.discard(key)
            self._changed.set()

    async def _pod_worker(self) -> None:
        assert self._informer is not None
        while True:
            key = await self._pod_queue.get()
            self._queued.discard(key)
            obj = self._informer.get(key)
            if obj is None:
                continue
            try:
                await self._sync_pod(obj)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.code not in (404, 409):
                    log.warning("hollow node: pod %s: %s", key, exc)
            except Exception:
                log.exception("hollow node: pod %s", key)

    async def _sync_pod(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        key = f"{namespace}/{name}"
        if meta.get("deletionTimestamp"):
            # no containers to stop: the deletion is finished at once
            await self.client.delete(PODS, name, namespace, grace_period_seconds=0,
                                     preconditions={"uid": meta.get("uid")})
            self.finished_deletions += 1
            self._forget(obj)
            return
        if status.get("phase") in ("Running", "Succeeded", "Failed"):
            if status.get("phase") == "Running" and key not in self.running:
                self.running.add(key)
                self._changed.set()
            return
        node = spec.get("nodeName")
        host = self._next_ip.get(node, 1) % 250 + 2
        self._next_ip[node] = host
        now = rfc3339()
        pod_ip = self._ip(node, host)
        containers = [{"name": c.get("name"), "image": c.get("image"),
                       "imageID": f"hollow://{c.get('image')}",
                       "containerID": f"hollow://{meta.get('uid')}/{c.get('name')}",
                       "ready": True, "started": True, "restartCount": 0,
                       "state": {"running": {"startedAt": now}}}
                      for c in spec.get("containers") or ()]
        conditions = [{"type": t, "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": now}
                      for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                                "ContainersReady", "PodScheduled")]
        patch = {"status": {"phase": "Running", "hostIP": self._ip(node, 1),
                            "hostIPs": [{"ip": self._ip(node, 1)}], "podIP": pod_ip,
                            "podIPs": [{"ip": pod_ip}], "startTime": now,
                            "conditions": conditions, "containerStatuses": containers,
                            "qosClass": status.get("qosClass") or "BestEffort"}}
        async with self._slots:
            await self.client.patch(PODS, name, patch, namespace, subresource="status")
        self.started_pods += 1
        self.running.add(key)
        self._changed.set()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, informer: Informer | None = None) -> None:
        """Register the nodes, then heartbeat and run pods in background tasks.

        :param informer: a pods informer to share (one is made otherwise).
        """
        await self.register()
        s = self.settings
        self._tasks.append(asyncio.create_task(self._every(s.renew_interval_seconds,
                                                           self._renew), name="hollow leases"))
        self._tasks.append(asyncio.create_task(
            self._every(s.status_interval_seconds, self._report_status), name="hollow status"))
        if s.run_pods:
            self._informer = informer or Informer(self.client, PODS)
            self._informer.add_handler(self._enqueue, lambda old, new: self._enqueue(new),
                                       self._forget)
            for i in range(min(8, s.concurrency)):
                self._tasks.append(asyncio.create_task(self._pod_worker(),
                                                       name=f"hollow pods {i}"))
            if informer is None:
                self._informer.start()
            await self._informer.wait_synced()

    async def stop(self, *, delete: bool = False) -> None:
        """Stop heartbeats and pod handling; optionally delete the nodes and Leases."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._informer is not None:
            await self._informer.stop()
            self._informer = None
        if delete:
            async def remove(name: str) -> None:
                for resource, ns in ((NODES, None), (LEASES, LEASE_NAMESPACE)):
                    with contextlib.suppress(ApiError):
                        await self.client.delete(resource, name, ns)
            await asyncio.gather(*(self._limited(remove(n)) for n in self.names))

    async def run(self) -> None:
        """Component entry point: start, then run until cancelled."""
        try:
            await self.start()
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def close(self) -> None:
        await self.stop()

    async def wait_running(self, count: int, timeout: float = 60.0) -> None:
        """Wait until at least ``count`` pods run on these nodes."""
        async with asyncio.timeout(timeout):
            while len(self.running) < count:
                self._changed.clear()
                await self._changed.wait()


def settings_from(values: Mapping[str, Any]) -> HollowNodeSettings:
    return HollowNodeSettings(**{k: v for k, v in values.items() if v is not None})

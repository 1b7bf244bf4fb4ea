"""Test and benchmark helpers: stand-in nodes and an in-process cluster with controllers.

:class:`StandInNodes` plays the node side of a cluster through the API only: it registers
Node objects, renews their Leases, binds pending pods to a fitting node (nodeSelector,
required node affinity, taints, cordon -- a tiny scheduler), marks bound pods Running and
Ready through the status subresource (or Succeeded/Failed, for pods that finish), and
finishes graceful deletions as a node agent does.  It binds pods only to its own nodes,
so several stand-ins (one per test) can share a cluster.  :meth:`StandInNodes.kill` stops one
node's agent: its Lease stops being renewed and its pods are left as they are.

It stands in for the real node agent and scheduler, which are tested on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from kubeling.client import ApiError, Client, InformerFactory, object_key
from kubeling.client.resources import LEASES, NODES, PODS
from kubeling_controllers_default.base import Clock
from kubeling_controllers_default.util import (
    condition,
    fmt_micro,
    fmt_time,
    meta,
    node_matches_pod,
    tolerates,
)

log = logging.getLogger(__name__)

__all__ = ["OffsetClock", "Outcome", "StandInNodes", "controller_cluster", "eventually"]

Obj = dict[str, Any]
NODE_LEASE_NAMESPACE = "kube-node-lease"


class OffsetClock(Clock):
    """A wall clock standing still (half a minute past the minute it was made in) until
    :meth:`advance` moves it; delays still use real monotonic time (CronJob tests)."""

    def __init__(self, start: datetime.datetime | None = None) -> None:
        real = _now()
        self.current = start or real.replace(second=30, microsecond=0)

    def now(self) -> datetime.datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += datetime.timedelta(seconds=seconds)

    def set(self, when: datetime.datetime) -> None:
        self.current = when


@attrs.frozen
class Outcome:
    """How a stand-in node runs a pod: the phase it reaches and after how long."""

    phase: str = "Running"
    """``Running`` (and Ready), ``Succeeded`` or ``Failed``."""
    after: float = 0.0
    """Seconds Running before a ``Succeeded``/``Failed`` pod finishes."""
    ready: bool = True
    exit_code: int = 0


def default_outcome(pod: Obj) -> Outcome:
    """Pods that may finish (restartPolicy Never/OnFailure) succeed at once; others run."""
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if policy in ("Never", "OnFailure"):
        return Outcome("Succeeded")
    return Outcome("Running")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@attrs.define
class _Node:
    name: str
    index: int
    alive: bool = True
    next_ip: int = 1
    lease_failures: int = 0


class StandInNodes:
    """Fake nodes and a fake scheduler speaking only the API (see the module docstring)."""

    def __init__(self, client: Client, *, lease_interval: float = 1.0,
                 lease_duration: int = 40, bind: bool = True,
                 outcome: Callable[[Obj], Outcome] = default_outcome,
                 workers: int = 16) -> None:
        self.client = client
        self.lease_interval = lease_interval
        self.lease_duration = lease_duration
        self.bind = bind
        self.outcome = outcome
        self.workers = workers
        self.nodes: dict[str, _Node] = {}
        self._indexes = itertools.count()
        self._factory = InformerFactory(client)
        self.pods = self._factory.informer(PODS)
        self.node_informer = self._factory.informer(NODES)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._placed: dict[str, str] = {}
        self._load: dict[str, int] = {}
        self._bound_to: dict[str, str] = {}
        """pod key -> node chosen, until the informer shows the binding."""
        self.binds = 0
        self.status_updates = 0
        self.finalized = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> StandInNodes:
        self.pods.add_handler(on_add=self._pod_event,
                              on_update=lambda _o, n: self._pod_event(n),
                              on_delete=self._pod_gone)
        self.node_informer.add_handler(on_add=self._node_event,
                                       on_update=lambda _o, n: self._node_event(n))
        self._factory.start()
        await self._factory.wait_for_sync()
        self._tasks.append(asyncio.create_task(self._renew_loop(), name="standin leases"))
        for n in range(self.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"standin {n}"))
        return self

    async def stop(self) -> None:
        for handle in self._timers:
            handle.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self._factory.stop()

    async def __aenter__(self) -> StandInNodes:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- nodes -----------------------------------------------------------------------------

    async def add(self, name: str, *, labels: Mapping[str, str] | None = None,
                  taints: list[Obj] | None = None, ready: bool = True,
                  unschedulable: bool = False, pods: int = 110) -> Obj:
        """Register node ``name`` (and its Lease) and start acting as its agent."""
        index = next(self._indexes)
        state = _Node(name, index)
        self.nodes[name] = state
        now = fmt_time(_now())
        node_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", **(labels or {})}
        ip = f"10.0.{index // 250}.{index % 250 + 1}"
        body: Obj = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": node_labels},
            "spec": {"taints": list(taints or []), "unschedulable": unschedulable},
            "status": {
                "conditions": [self._ready_condition(ready, now)],
                "capacity": {"cpu": "8", "memory": "32Gi", "pods": str(pods)},
                "addresses": [{"type": "InternalIP", "address": ip},
                              {"type": "Hostname", "address": name}],
                "nodeInfo": {"kubeletVersion": "v1.32.0-standin", "osImage": "stand-in",
                             "kernelVersion": "0", "containerRuntimeVersion": "standin://1",
                             "operatingSystem": "linux", "architecture": "amd64",
                             "machineID": "", "systemUUID": "", "bootID": "",
                             "kubeProxyVersion": ""},
            },
        }
        if not taints:
            del body["spec"]["taints"]
        node = await self.client.create(NODES, body)
        await self._renew(state, node)
        return node

    @staticmethod
    def _ready_condition(ready: bool, now: str) -> Obj:
        return {"type": "Ready", "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else "KubeletNotReady",
                "message": "kubelet is posting ready status" if ready
                else "container runtime is down",
                "lastHeartbeatTime": now, "lastTransitionTime": now}

    def kill(self, name: str) -> None:
        """Stop node ``name``'s agent: no more Lease renewals, its pods left alone."""
        self.nodes[name].alive = False

    async def revive(self, name: str) -> None:
        """Start node ``name``'s agent again: Ready, Lease renewed, its pods handled."""
        state = self.nodes[name]
        state.alive = True
        await self.set_ready(name, True)
        await self._renew(state)
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") == name:
                self._enqueue(object_key(pod))

    async def set_ready(self, name: str, ready: bool) -> None:
        """Report the node Ready or NotReady, as its agent would."""
        now = fmt_time(_now())
        await self.client.patch(NODES, name, {"status": {"conditions": [
            self._ready_condition(ready, now)]}}, type="strategic", subresource="status")

    async def _renew(self, state: _Node, node: Obj | None = None) -> None:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": state.name, "namespace": NODE_LEASE_NAMESPACE},
                "spec": {"holderIdentity": state.name,
                         "leaseDurationSeconds": self.lease_duration,
                         "renewTime": fmt_micro(_now())}}
        try:
            await self.client.patch(LEASES, state.name, {"spec": body["spec"]},
                                    NODE_LEASE_NAMESPACE)
        except ApiError as exc:
            if exc.code != 404:
                raise
            if node is None:
                node = await self.client.get(NODES, state.name)
            body["metadata"]["ownerReferences"] = [{
                "apiVersion": "v1", "kind": "Node", "name": state.name,
                "uid": meta(node)["uid"]}]
            await self.client.create(LEASES, body, NODE_LEASE_NAMESPACE)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_interval)
            live = [s for s in self.nodes.values() if s.alive]
            results = await asyncio.gather(*(self._renew(s) for s in live),
                                           return_exceptions=True)
            for state, result in zip(live, results, strict=True):
                if isinstance(result, Exception):
                    log.debug("lease of %s not renewed: %s", state.name, result)

    def _node_event(self, node: Obj) -> None:
        # a node turning ready or schedulable may take pending pods
        if self.bind and self._schedulable(node):
            for pod in self.pods.list():
                if not (pod.get("spec") or {}).get("nodeName"):
                    self._enqueue(object_key(pod))

    # -- pods ------------------------------------------------------------------------------

    def _pod_event(self, pod: Obj) -> None:
        key = object_key(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if node and meta(pod).get("deletionTimestamp") is None and \
                (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            self._place(key, node)
        else:
            self._place(key, None)
        self._enqueue(key)

    def _pod_gone(self, pod: Obj) -> None:
        self._place(object_key(pod), None)

    def _place(self, key: str, node: str | None) -> None:
        """Keep the per-node pod counts the stand-in scheduler balances by."""
        before = self._placed.get(key)
        if before == node:
            return
        if before is not None:
            self._load[before] -= 1
        if node is None:
            self._placed.pop(key, None)
        else:
            self._placed[key] = node
            self._load[node] = self._load.get(node, 0) + 1

    def _enqueue(self, key: str) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def _later(self, key: str, delay: float) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self._enqueue(key)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            pod = self.pods.get(key)
            if pod is None:
                continue
            try:
                await self._handle(key, pod)
            except ApiError as exc:
                if exc.code in (404,):
                    continue
                if exc.code == 409:
                    self._later(key, 0.05)
                    continue
                log.warning("stand-in node: pod %s: %s", key, exc)
            except Exception:
                log.exception("stand-in node: pod %s", key)

    async def _handle(self, key: str, pod: Obj) -> None:
        spec = pod.get("spec") or {}
        m = meta(pod)
        node_name = spec.get("nodeName")
        if not node_name:
            if self.bind and m.get("deletionTimestamp") is None and key not in self._bound_to:
                await self._schedule(key, pod)
            return
        self._bound_to.pop(key, None)
        state = self.nodes.get(node_name)
        if state is None or not state.alive:
            return
        if m.get("deletionTimestamp") is not None:
            try:
                await self.client.delete(PODS, m["name"], m["namespace"],
                                         grace_period_seconds=0,
                                         preconditions={"uid": m.get("uid")})
                self.finalized += 1
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
            return
        status = pod.get("status") or {}
        phase = status.get("phase")
        if phase in ("Succeeded", "Failed"):
            return
        outcome = self.outcome(pod)
        if phase != "Running":
            await self._set_running(state, pod, outcome)
            if outcome.phase != "Running":
                self._later(key, outcome.after)
            return
        if outcome.phase != "Running":
            await self._set_finished(pod, outcome)

    async def _set_running(self, state: _Node, pod: Obj, outcome: Outcome) -> None:
        now = fmt_time(_now())
        ip = f"10.{244 + state.index // 250}.{state.index % 250}.{state.next_ip % 250 + 1}"
        state.next_ip += 1
        ready = outcome.ready
        node = self.node_informer.get(state.name) or {}
        host_ip = next((a.get("address") for a in (node.get("status") or {}).get("addresses")
                        or [] if a.get("type") == "InternalIP"), "10.0.0.1")
        containers = (pod.get("spec") or {}).get("containers") or []
        flag = "True" if ready else "False"
        status = {
            "phase": "Running",
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now,
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True",
                 "lastTransitionTime": now, "lastProbeTime": None},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now,
                 "lastProbeTime": None},
                {"type": "Ready", "status": flag, "lastTransitionTime": now,
                 "lastProbeTime": None},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": now,
                 "lastProbeTime": None},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now,
                 "lastProbeTime": None},
            ],
            "containerStatuses": [
                {"name": c.get("name"), "image": c.get("image"), "imageID": "",
                 "ready": ready, "started": True, "restartCount": 0,
                 "containerID": f"standin://{meta(pod).get('uid')}-{c.get('name')}",
                 "state": {"running": {"startedAt": now}}} for c in containers],
        }
        m = meta(pod)
        await self.client.patch(PODS, m["name"], {"status": status}, m["namespace"],
                                subresource="status")
        self.status_updates += 1

    async def _set_finished(self, pod: Obj, outcome: Outcome) -> None:
        now = fmt_time(_now())
        containers = (pod.get("spec") or {}).get("containers") or []
        reason = "Completed" if outcome.phase == "Succeeded" else "Error"
        status = {
            "phase": outcome.phase,
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "PodCompleted",
                 "lastTransitionTime": now, "lastProbeTime": None},
                {"type": "ContainersReady", "status": "False", "reason": "PodCompleted",
                 "lastTransitionTime": now, "lastProbeTime": None},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now,
                 "lastProbeTime": None},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now,
                 "lastProbeTime": None},
            ],
            "containerStatuses": [
                {"name": c.get("name"), "image": c.get("image"), "imageID": "",
                 "ready": False, "started": False, "restartCount": 0,
                 "state": {"terminated": {"exitCode": outcome.exit_code, "reason": reason,
                                          "startedAt": now, "finishedAt": now}}}
                for c in containers],
        }
        m = meta(pod)
        await self.client.patch(PODS, m["name"], {"status": status}, m["namespace"],
                                subresource="status")
        self.status_updates += 1

    # -- scheduling ------------------------------------------------------------------------

    @staticmethod
    def _schedulable(node: Obj) -> bool:
        ready = condition(node, "Ready")
        return ready is not None and ready.get("status") == "True"

    def fits(self, pod: Obj, node: Obj) -> bool:
        """Whether the stand-in scheduler may put ``pod`` on ``node``."""
        if not self._schedulable(node):
            return False
        spec = pod.get("spec") or {}
        tolerations = spec.get("tolerations") or []
        if (node.get("spec") or {}).get("unschedulable") and not tolerates(
                tolerations, {"key": "node.kubernetes.io/unschedulable",
                              "effect": "NoSchedule"}):
            return False
        for taint in (node.get("spec") or {}).get("taints") or []:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and \
                    not tolerates(tolerations, taint):
                return False
        return node_matches_pod(spec, node)

    async def _schedule(self, key: str, pod: Obj) -> None:
        candidates = [n for n in self.node_informer.list()
                      if meta(n).get("name") in self.nodes and self.fits(pod, n)]
        if not candidates:
            return
        target = min(candidates, key=lambda n: (self._load.get(meta(n)["name"], 0),
                                                 meta(n)["name"]))
        name = meta(target)["name"]
        m = meta(pod)
        self._bound_to[key] = name
        self._place(key, name)  # counted at once, so concurrent binds spread out
        try:
            await self.client.create(PODS, {"apiVersion": "v1", "kind": "Binding",
                                            "metadata": {"name": m["name"], "uid": m["uid"]},
                                            "target": {"kind": "Node", "name": name}},
                                     m["namespace"], name=m["name"], subresource="binding")
            self.binds += 1
        except ApiError:
            self._bound_to.pop(key, None)
            self._place(key, None)
            raise


@contextlib.asynccontextmanager
async def controller_cluster(data_dir: Path, *, settings: Mapping[str, Any] | None = None,
                             controllers: list[str] | None = None,
                             clock: Any = None) -> AsyncIterator[Any]:
    """An API server on SQLite with the controller manager running, in this event loop.

    Yields a handle with ``client`` (in process), ``api`` (the
    :func:`kubeling.testing.cluster.api_server` handle), ``manager``, ``config`` and
    ``nodes(**kw)`` to start :class:`StandInNodes`.

    :param settings: the ``controllers`` config section.
    :param controllers: run only these controllers (others are disabled).
    """
    from kubeling.config import load_config
    from kubeling.context import Context
    from kubeling.testing.cluster import api_server
    from kubeling_controllers_default.manager import ControllerManager

    async with api_server(data_dir, listen=True) as api:
        section = dict(settings or {})
        if controllers is not None:
            every = list(api.host.contributions.family("controller"))
            section["disabled"] = [n for n in every if n not in controllers]
        config = load_config({"controllers": section, "data_dir": str(data_dir)},
                             api.host.config_class)
        ctx = Context(config=config, host=api.host, server=api.server, api_url=api.url)
        manager = ControllerManager(ctx, clock=clock)
        task = asyncio.create_task(manager.run(), name="controller-manager")
        standins: list[StandInNodes] = []

        class Handle:
            def __init__(self) -> None:
                self.api = api
                self.client = api.client()
                self.manager = manager
                self.config = config
                self.ctx = ctx

            async def nodes(self, *names: str, **kw: Any) -> StandInNodes:
                nodes = StandInNodes(api.client(), **kw)
                await nodes.start()
                standins.append(nodes)
                for name in names:
                    await nodes.add(name)
                return nodes

        try:
            await manager.wait_started(30)
            yield Handle()
        finally:
            for nodes in standins:
                await nodes.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await ctx.close()


async def eventually(check: Callable[[], Any], timeout: float = 10.0,
                     interval: float = 0.05) -> Any:
    """Call ``check`` (sync or async) until it returns something truthy; its value.

    An ``AssertionError`` inside ``check`` counts as not yet; after ``timeout`` seconds
    the last value (or assertion) is reported.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        try:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            last = value
            if value:
                return value
        except AssertionError as exc:
            last = exc
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)

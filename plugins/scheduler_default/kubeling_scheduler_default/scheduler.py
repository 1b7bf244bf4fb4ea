"""The scheduler component: informers in, bindings out.

One loop pops a pod, runs its profile's framework synchronously (filter, score, reserve,
permit) against the cache and assumes the result; binding (PreBind, Bind, PostBind) runs
in its own task, so the loop goes on with the next pod while the API write is in flight.
Failures become ``FailedScheduling`` events and a ``PodScheduled=False`` condition; the
pod waits in the queue for an event that may help it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubeling import hookimpl
from kubeling.api.errors import ApiError
from kubeling.api.registry import Resource
from kubeling.client.resources import NAMESPACES, NODES, PODDISRUPTIONBUDGETS, PODS
from kubeling_scheduler_default.cache import Cache
from kubeling_scheduler_default.config import Profile, SchedulerSettings
from kubeling_scheduler_default.events import EventRecorder
from kubeling_scheduler_default.framework import (
    CycleState,
    FitError,
    Framework,
    Handle,
    PluginFactory,
)
from kubeling_scheduler_default.podinfo import PodInfo
from kubeling_scheduler_default.queue import QueuedPodInfo, SchedulingQueue
from kubeling_scheduler_default.status import Code, Status
from kubeling_scheduler_default.workloads import (
    PERSISTENTVOLUMECLAIMS,
    WORKLOAD_RESOURCES,
    WorkloadSelectors,
)

__all__ = ["PRIORITY_CLASSES", "Nominator", "Scheduler"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

PRIORITY_CLASSES = Resource(group="scheduling.k8s.io", version="v1", plural="priorityclasses",
                            kind="PriorityClass", namespaced=False)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Nominator:
    """Pods nominated to nodes by preemption (``status.nominatedNodeName``)."""

    def __init__(self) -> None:
        self._by_node: dict[str, dict[str, PodInfo]] = {}
        self._node_of: dict[str, str] = {}

    @property
    def count(self) -> int:
        return len(self._node_of)

    def nodes(self) -> list[str]:
        return list(self._by_node)

    def nominated_pods(self, node: str) -> list[PodInfo]:
        return list(self._by_node.get(node, {}).values())

    def set(self, pod: PodInfo, node: str) -> None:
        self.delete(pod.key)
        if node:
            self._by_node.setdefault(node, {})[pod.key] = pod
            self._node_of[pod.key] = node

    def delete(self, key: str) -> None:
        node = self._node_of.pop(key, None)
        if node is not None:
            pods = self._by_node.get(node)
            if pods is not None:
                pods.pop(key, None)
                if not pods:
                    del self._by_node[node]

    def node_of(self, key: str) -> str | None:
        return self._node_of.get(key)


class _WaitingPod:
    """A pod a Permit plugin asked to wait; ``allow``/``reject`` decide."""

    def __init__(self, pod: PodInfo, node: str) -> None:
        self.pod = pod
        self.node = node
        self.future: asyncio.Future[Status] = asyncio.get_running_loop().create_future()

    def allow(self) -> None:
        if not self.future.done():
            self.future.set_result(Status())

    def reject(self, message: str, plugin: str = "") -> None:
        if not self.future.done():
            self.future.set_result(Status.unschedulable(message, plugin=plugin))


class Scheduler:
    """The ``scheduler`` component (leader-elected, role control-plane)."""

    def __init__(self, *, client: Any, settings: SchedulerSettings,
                 registry: Mapping[str, PluginFactory], informers: Any = None,
                 config_section: str = "scheduler") -> None:
        self.client = client
        self.settings = settings
        self.registry = dict(registry)
        self.informers = informers
        self.config_section = config_section
        self.cache = Cache()
        self.nominator = Nominator()
        self.workloads = WorkloadSelectors()
        self.claims = informers.informer(PERSISTENTVOLUMECLAIMS) if informers is not None \
            else None
        """PersistentVolumeClaims (VolumeBinding); None without an API."""
        self.budgets = informers.informer(PODDISRUPTIONBUDGETS) if informers is not None \
            else None
        """PodDisruptionBudgets (DefaultPreemption); None without an API."""
        self.events = EventRecorder(client, workers=settings.event_workers)
        self.profiles: dict[str, Framework] = self.build_profiles(settings)
        first = next(iter(self.profiles.values()))
        sort = first.queue_sort
        self.queue = SchedulingQueue(
            less=getattr(sort, "less", None), sort_key=getattr(sort, "sort_key", None),
            pre_enqueue=self._pre_enqueue, initial_backoff=settings.pod_initial_backoff_seconds,
            max_backoff=settings.pod_max_backoff_seconds,
            max_unschedulable=settings.pod_max_in_unschedulable_pods_seconds)
        self.priority_classes: dict[str, Obj] = {}
        self.waiting: dict[str, _WaitingPod] = {}
        self._bind_slots = asyncio.Semaphore(max(1, settings.bind_concurrency))
        self._tasks: set[asyncio.Task[Any]] = set()
        self.scheduled = 0
        self.failed = 0
        self.bind_errors = 0
        self.cycle_seconds = 0.0
        self.started = asyncio.Event()
        self.on_bound: Callable[[PodInfo, str], None] | None = None
        """Called after every successful binding (benches count with it)."""

    # -- profiles ------------------------------------------------------------------------------

    def build_profiles(self, settings: SchedulerSettings) -> dict[str, Framework]:
        """A framework per profile; ValueError names the first problem."""
        if not settings.profiles:
            raise ValueError("scheduler.profiles: at least one profile is needed")
        profiles: dict[str, Framework] = {}
        sort_names = set()
        for profile in settings.profiles:
            if profile.scheduler_name in profiles:
                raise ValueError(f"scheduler.profiles: scheduler_name "
                                 f"{profile.scheduler_name!r} is used twice")
            handle = Handle(self.cache, client=self.client, events=self.events,
                            nominator=self.nominator, scheduler=self,
                            workloads=self.workloads, claims=self.claims,
                            budgets=self.budgets)
            fw = Framework(profile, self.registry, handle,
                           percentage_of_nodes_to_score=settings.percentage_of_nodes_to_score)
            profiles[profile.scheduler_name] = fw
            sort_names.add(tuple(fw.plugin_names("queue_sort")))
        if len(sort_names) > 1:
            raise ValueError("scheduler.profiles: every profile must use the same queue_sort "
                             "plugin")
        return profiles

    def apply_settings(self, settings: SchedulerSettings) -> None:
        """Install changed settings: score weights in place when only they changed,
        otherwise new frameworks for every profile.  Invalid settings raise ValueError and
        leave the running ones alone."""
        old = self.settings
        if _only_weights_changed(old, settings):
            fresh = self.build_profiles(settings)  # resolves weights exactly as at start
            for name, fw in self.profiles.items():
                built = fresh.get(name)
                if built is not None:
                    fw.profile = built.profile
                    fw.weights = dict(built.weights)
                    fw.percentage = built.percentage
            self.settings = settings
            log.info("scheduler: score weights updated")
            return
        profiles = self.build_profiles(settings)
        self.profiles = profiles
        self.settings = settings
        log.info("scheduler: profiles rebuilt (%s)", ", ".join(profiles))
        self._requeue_all_pending()

    def _requeue_all_pending(self) -> None:
        if self.informers is None:
            return
        informer = self.informers.informer(PODS)
        for obj in informer.list():
            self._on_pod_add(obj)
        self.queue.move_all("ProfileChange")

    @hookimpl
    def kubeling_config_changed(self, old: Any, new: Any) -> None:
        """Apply a changed ``scheduler`` section (score weights change live)."""
        section = new.section(self.config_section)
        if section is None or section == old.section(self.config_section):
            return
        try:
            self.apply_settings(section)
        except ValueError as exc:
            log.error("scheduler config change ignored: %s", exc)

    # -- pods as the scheduler sees them ---------------------------------------------------------

    def _priority(self, obj: Obj) -> tuple[int | None, str | None]:
        spec = obj.get("spec") or {}
        if spec.get("priority") is not None:
            return None, None
        name = spec.get("priorityClassName")
        pc = self.priority_classes.get(name) if name else None
        if pc is None and not name:
            pc = next((p for p in self.priority_classes.values() if p.get("globalDefault")),
                      None)
        if pc is None:
            return 0, None
        return int(pc.get("value") or 0), pc.get("preemptionPolicy")

    def pod_info(self, obj: Obj) -> PodInfo:
        priority, policy = self._priority(obj)
        pi = PodInfo(obj, priority=priority)
        if policy:
            pi.preemption_policy = policy
        return pi

    def responsible_for(self, obj: Obj) -> bool:
        spec = obj.get("spec") or {}
        return (spec.get("schedulerName") or "default-scheduler") in self.profiles

    def _pre_enqueue(self, pod: PodInfo) -> Status:
        fw = self.profiles.get(pod.scheduler_name)
        return fw.run_pre_enqueue(pod) if fw is not None else Status()

    # -- informer handlers -----------------------------------------------------------------------

    def _on_pod_add(self, obj: Obj) -> None:
        spec = obj.get("spec") or {}
        if spec.get("nodeName"):
            pi = self.pod_info(obj)
            self.queue.delete(pi.key)
            self.nominator.delete(pi.key)
            self.cache.add_pod(pi)
            if self.queue.unschedulable:
                self.queue.move_all("AssignedPodAdd")
            return
        if (obj.get("metadata") or {}).get("deletionTimestamp") or not self.responsible_for(obj):
            return
        status = obj.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        pi = self.pod_info(obj)
        if pi.nominated_node_name:
            self.nominator.set(pi, pi.nominated_node_name)
        self.queue.add(pi)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        new_spec = new.get("spec") or {}
        node = new_spec.get("nodeName")
        if node:
            old_node = (old.get("spec") or {}).get("nodeName")
            meta, old_meta = new.get("metadata") or {}, old.get("metadata") or {}
            key = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
            same = (meta.get("labels") == old_meta.get("labels")
                    and meta.get("deletionTimestamp") == old_meta.get("deletionTimestamp"))
            if old_node == node and same and self.cache.pod_node(key) == node:
                return  # a status change: nothing the scheduler counts
            if not old_node:
                self.queue.delete(key)
                self.nominator.delete(key)
                if same and self.cache.is_assumed(key) and self.cache.pod_node(key) == node:
                    pi = self.cache.pod(key)
                    assert pi is not None
                    pi.pod = new
                    self.cache.add_pod(pi)  # confirms the assumption
                    return
            self.cache.update_pod(self.pod_info(new))
            if self.queue.unschedulable:
                self.queue.move_all("AssignedPodUpdate")
            return
        if not self.responsible_for(new):
            return
        if (new.get("metadata") or {}).get("deletionTimestamp"):
            key = PodInfo(new).key
            self.queue.delete(key)
            self.nominator.delete(key)
            return
        pi = self.pod_info(new)
        if pi.nominated_node_name:
            self.nominator.set(pi, pi.nominated_node_name)
        else:
            self.nominator.delete(pi.key)
        # a status-only change (our own PodScheduled condition, a nomination) must not
        # give an unschedulable pod another try: nothing it asks for changed
        self.queue.update(pi, requeue=_scheduling_relevant(old) != _scheduling_relevant(new))

    def _on_pod_delete(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
        self.queue.delete(key)
        self.nominator.delete(key)
        waiting = self.waiting.get(key)
        if waiting is not None:
            waiting.reject("pod deleted")
        if self.cache.remove_pod(key) is not None:
            self.queue.move_all("AssignedPodDelete")

    def _on_node_add(self, obj: Obj) -> None:
        self.cache.add_node(obj)
        self.queue.move_all("NodeAdd")

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        if old.get("spec") == new.get("spec") and (old.get("metadata") or {}).get("labels") \
                == (new.get("metadata") or {}).get("labels") and _node_capacity(old) \
                == _node_capacity(new):
            return  # heartbeats and conditions
        self.cache.update_node(new)
        self.queue.move_all("NodeUpdate")

    def _on_node_delete(self, obj: Obj) -> None:
        self.cache.remove_node((obj.get("metadata") or {}).get("name") or "")
        self.queue.move_all("NodeDelete")

    def _on_namespace(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self.cache.set_namespace(meta.get("name") or "", meta.get("labels") or {})
        self.queue.move_all("NamespaceUpdate")

    def _on_namespace_delete(self, obj: Obj) -> None:
        self.cache.set_namespace((obj.get("metadata") or {}).get("name") or "", None)

    def _on_priority_class(self, obj: Obj) -> None:
        self.priority_classes[(obj.get("metadata") or {}).get("name") or ""] = obj

    def _on_priority_class_delete(self, obj: Obj) -> None:
        self.priority_classes.pop((obj.get("metadata") or {}).get("name") or "", None)

    # -- running ---------------------------------------------------------------------------------

    async def start_informers(self) -> None:
        informers = self.informers
        pcs = informers.informer(PRIORITY_CLASSES)
        pcs.add_handler(self._on_priority_class,
                        lambda old, new: self._on_priority_class(new),
                        self._on_priority_class_delete)
        namespaces = informers.informer(NAMESPACES)
        namespaces.add_handler(self._on_namespace, lambda old, new: self._on_namespace(new),
                               self._on_namespace_delete)
        nodes = informers.informer(NODES)
        nodes.add_handler(self._on_node_add, self._on_node_update, self._on_node_delete)
        workloads = []
        for resource in WORKLOAD_RESOURCES:  # PodTopologySpread's default selectors
            informer = informers.informer(resource)
            kind = resource.kind
            informer.add_handler(lambda obj, k=kind: self.workloads.update(k, obj),
                                 lambda _old, new, k=kind: self.workloads.update(k, new),
                                 lambda obj, k=kind: self.workloads.delete(k, obj))
            workloads.append(informer)
        claims = self.claims  # VolumeBinding
        assert claims is not None
        claims.add_handler(lambda _obj: self.queue.move_all("PvcChange"),
                           lambda _old, _new: self.queue.move_all("PvcChange"), None)
        budgets = self.budgets
        assert budgets is not None
        for informer in (pcs, namespaces, nodes, claims, budgets, *workloads):
            informer.start()
        await asyncio.gather(*(i.wait_synced() for i in (pcs, namespaces, nodes, claims,
                                                         budgets, *workloads)))
        pods = informers.informer(PODS)
        pods.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        pods.start()
        await pods.wait_synced()

    async def run(self) -> None:
        """Watch the cluster and schedule until cancelled."""
        self.events.start()
        flusher = asyncio.create_task(self.queue.run_flushes(), name="scheduler queue flush")
        try:
            if self.informers is not None:
                await self.start_informers()
            self.started.set()
            log.info("scheduler: running profiles %s", ", ".join(self.profiles))
            await self.loop()
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher

    async def loop(self) -> None:
        queue = self.queue
        while True:
            q = queue.pop_nowait()
            if q is None:
                q = await queue.pop()
            self.schedule_one(q)
            # let informers, bindings and the API server (when in process) run
            await asyncio.sleep(0)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.events.stop()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- one pod ---------------------------------------------------------------------------------

    def schedule_one(self, q: QueuedPodInfo) -> str | None:
        """Run one scheduling cycle; returns the chosen node (binding continues in a task)."""
        pod = q.pod
        cycle = self.queue.scheduling_cycle
        fw = self.profiles.get(pod.scheduler_name)
        if fw is None or pod.deleting or self.cache.pod_node(pod.key) is not None:
            self.queue.done(pod.key)
            return None
        started = time.perf_counter()
        state = CycleState()
        try:
            result = fw.schedule(state, pod)
        except FitError as err:
            nominated: str | None = None
            if fw.points["post_filter"] and err.diagnosis.node_statuses:
                try:
                    nominated, status = fw.run_post_filter(state, pod,
                                                           err.diagnosis.node_statuses)
                except Exception as exc:  # a broken PostFilter must not stop the scheduler
                    log.exception("post_filter failed for %s", pod.key)
                    status = Status.from_error(exc)
                if not status.is_success() and status.message():
                    err.diagnosis.post_filter_msg = status.message()
            self.cycle_seconds += time.perf_counter() - started
            self.handle_failure(fw, q, cycle, str(err), "Unschedulable",
                                err.diagnosis.unschedulable_plugins, nominated=nominated)
            return None
        except Exception as exc:
            log.exception("scheduling %s failed", pod.key)
            self.cycle_seconds += time.perf_counter() - started
            self.handle_failure(fw, q, cycle, str(exc), "SchedulerError", set(), error=True)
            return None
        node = result.node
        self.cache.assume_pod(pod, node)
        status = fw.run_reserve(state, pod, node)
        if not status.is_success():
            self.cache.forget_pod(pod)
            self.cycle_seconds += time.perf_counter() - started
            self.handle_failure(fw, q, cycle, f"running Reserve plugin {status.plugin!r}: "
                                f"{status.message()}", "SchedulerError", {status.plugin},
                                error=status.code is Code.ERROR)
            return None
        permit, timeout = fw.run_permit(state, pod, node)
        if not permit.is_success() and permit.code is not Code.WAIT:
            fw.run_unreserve(state, pod, node)
            self.cache.forget_pod(pod)
            self.cycle_seconds += time.perf_counter() - started
            self.handle_failure(fw, q, cycle, f"running Permit plugin {permit.plugin!r}: "
                                f"{permit.message()}", "Unschedulable", {permit.plugin},
                                error=permit.code is Code.ERROR)
            return None
        waiting = None
        if permit.code is Code.WAIT:
            waiting = self.waiting[pod.key] = _WaitingPod(pod, node)
        self.queue.done(pod.key)
        if self.nominator.node_of(pod.key) is not None:
            self.nominator.delete(pod.key)
        self.cycle_seconds += time.perf_counter() - started
        self._spawn(self._binding_cycle(fw, state, q, node, waiting, timeout),
                    f"bind {pod.key}")
        return node

    async def _binding_cycle(self, fw: Framework, state: CycleState, q: QueuedPodInfo,
                             node: str, waiting: _WaitingPod | None, timeout: float) -> None:
        pod = q.pod
        status: Status
        async with self._bind_slots:
            try:
                if waiting is not None:
                    try:
                        status = await asyncio.wait_for(asyncio.shield(waiting.future),
                                                        timeout or None)
                    except TimeoutError:
                        status = Status.unschedulable("rejected due to timeout after waiting "
                                                      f"{timeout:g}s at plugin permit")
                    finally:
                        self.waiting.pop(pod.key, None)
                    if not status.is_success():
                        raise _BindFailure(status, "Unschedulable")
                for plugin in fw.points["pre_bind"]:
                    status = await _call(plugin.pre_bind, state, pod, node, plugin.name)
                    if not status.is_success():
                        raise _BindFailure(status, "SchedulerError",
                                           f"running PreBind plugin {plugin.name!r}: ")
                bound = False
                for plugin in fw.points["bind"]:
                    status = await _call(plugin.bind, state, pod, node, plugin.name)
                    if status.is_skip():
                        continue
                    if not status.is_success():
                        raise _BindFailure(status, "SchedulerError", "Binding rejected: ")
                    bound = True
                    break
                if not bound:
                    raise _BindFailure(Status(Code.ERROR, "no bind plugin bound the pod"),
                                       "SchedulerError", "Binding rejected: ")
            except _BindFailure as failure:
                self.bind_errors += 1
                fw.run_unreserve(state, pod, node)
                self.cache.forget_pod(pod)
                st = failure.status
                self.handle_failure(fw, q, self.queue.scheduling_cycle,
                                    failure.prefix + st.message(), failure.reason,
                                    {st.plugin} if st.plugin else set(),
                                    error=st.code is Code.ERROR)
                return
            except asyncio.CancelledError:
                self.cache.forget_pod(pod)
                raise
        self.cache.finish_binding(pod)
        self.scheduled += 1
        self.events.record(pod.pod, "Normal", "Scheduled",
                           f"Successfully assigned {pod.namespace}/{pod.name} to {node}",
                           component=fw.name)
        for plugin in fw.points["post_bind"]:
            try:
                await _call(plugin.post_bind, state, pod, node, plugin.name)
            except Exception:
                log.exception("post_bind of %s failed", plugin.name)
        if self.on_bound is not None:
            self.on_bound(pod, node)

    # -- failures --------------------------------------------------------------------------------

    def handle_failure(self, fw: Framework, q: QueuedPodInfo, cycle: int, message: str,
                       reason: str, plugins: set[str], *, error: bool = False,
                       nominated: str | None = None) -> None:
        """Requeue the pod, record FailedScheduling and set PodScheduled=False."""
        pod = q.pod
        self.failed += 1
        if self.informers is not None:
            current = self.informers.informer(PODS).get(pod.key)
            if current is None or (current.get("spec") or {}).get("nodeName"):
                self.queue.done(pod.key)
                return
        self.queue.add_unschedulable(q, cycle, plugins, error=error)
        if nominated is not None:
            if nominated:
                self.nominator.set(pod, nominated)
            else:
                self.nominator.delete(pod.key)
        log.debug("unable to schedule %s: %s", pod.key, message)
        self.events.record(pod.pod, "Warning", "FailedScheduling", message, component=fw.name)
        if self.client is not None:
            self._spawn(self._patch_unschedulable(pod, reason, message, nominated),
                        f"status {pod.key}")

    async def _patch_unschedulable(self, pod: PodInfo, reason: str, message: str,
                                   nominated: str | None) -> None:
        status: Obj = {}
        current = [c for c in ((pod.pod.get("status") or {}).get("conditions") or [])
                   if c.get("type") == "PodScheduled"]
        cond = current[0] if current else {}
        if cond.get("status") != "False" or cond.get("reason") != reason \
                or cond.get("message") != message:
            status["conditions"] = [{"type": "PodScheduled", "status": "False",
                                     "reason": reason, "message": message,
                                     "lastProbeTime": None,
                                     "lastTransitionTime": cond.get("lastTransitionTime")
                                     if cond.get("status") == "False" else _now()}]
        if nominated is not None and (pod.pod.get("status") or {}).get(
                "nominatedNodeName", "") != nominated:
            status["nominatedNodeName"] = nominated or None
        if not status:
            return
        try:
            await self.client.patch(PODS, pod.name, {"status": status}, pod.namespace,
                                    type="strategic", subresource="status")
        except ApiError as exc:
            if exc.code not in (404, 409):
                log.warning("could not update the status of %s: %s", pod.key, exc)

    # -- preemption --------------------------------------------------------------------------------

    def preempt(self, pod: PodInfo, node: str, victims: list[PodInfo], *,
                plugin: str = "DefaultPreemption") -> None:
        """Evict ``victims`` from ``node`` for ``pod`` (in a task) and nominate the node."""
        self.nominator.set(pod, node)
        lower = [p for p in self.nominator.nominated_pods(node)
                 if p.priority < pod.priority and p.key != pod.key]
        for other in lower:
            self.nominator.delete(other.key)
        for victim in victims:
            waiting = self.waiting.get(victim.key)
            if waiting is not None:
                waiting.reject("preempted", plugin)
        if self.client is not None:
            self._spawn(self._evict(pod, node, victims, lower), f"preempt for {pod.key}")

    async def _evict(self, pod: PodInfo, node: str, victims: list[PodInfo],
                     lower: list[PodInfo]) -> None:
        for victim in victims:
            if victim.deleting:
                continue
            condition = {"type": "DisruptionTarget", "status": "True",
                         "reason": "PreemptionByScheduler",
                         "message": f"{pod.scheduler_name}: preempting to accommodate a higher "
                                    f"priority pod", "lastTransitionTime": _now()}
            try:
                await self.client.patch(PODS, victim.name, {"status": {
                    "conditions": [condition]}}, victim.namespace, type="strategic",
                    subresource="status")
                await self.client.delete(PODS, victim.name, victim.namespace)
            except ApiError as exc:
                if exc.code != 404:
                    log.warning("preempting %s failed: %s", victim.key, exc)
                    self.queue.activate([pod.key])
                continue
            self.events.record(victim.pod, "Normal", "Preempted",
                               f"Preempted by pod {pod.uid} on node {node}",
                               component=pod.scheduler_name)
        for other in lower:
            with contextlib.suppress(ApiError):
                await self.client.patch(PODS, other.name, {"status": {
                    "nominatedNodeName": None}}, other.namespace, subresource="status")


class _BindFailure(Exception):
    def __init__(self, status: Status, reason: str, prefix: str = "") -> None:
        super().__init__(status.message())
        self.status = status
        self.reason = reason
        self.prefix = prefix


async def _call(method: Any, state: CycleState, pod: PodInfo, node: str, name: str) -> Status:
    try:
        result = method(state, pod, node)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        log.exception("plugin %s failed", name)
        return Status.from_error(exc, name)
    if result is None:
        return Status()
    if isinstance(result, Status):
        return result.with_plugin(name)
    return Status(Code.ERROR, f"plugin {name} returned {type(result).__name__}", plugin=name)


def _scheduling_relevant(pod: Obj) -> Any:
    meta = pod.get("metadata") or {}
    return (pod.get("spec"), meta.get("labels"), meta.get("annotations"),
            meta.get("deletionTimestamp"))


def _node_capacity(node: Obj) -> Any:
    status = node.get("status") or {}
    return (status.get("allocatable"), status.get("capacity"),
            [i.get("names") for i in status.get("images") or ()])


def _only_weights_changed(old: SchedulerSettings, new: SchedulerSettings) -> bool:
    def strip(s: SchedulerSettings) -> Any:
        out = []
        for p in s.profiles:
            out.append((p.scheduler_name, p.plugin_config,
                        _names(p)))
        return (out, s.pod_initial_backoff_seconds, s.pod_max_backoff_seconds,
                s.pod_max_in_unschedulable_pods_seconds, s.bind_concurrency, s.event_workers)
    return strip(old) == strip(new)


def _names(profile: Profile) -> Any:
    plugins = profile.plugins
    out = []
    for field in ("multi_point", "pre_enqueue", "queue_sort", "pre_filter", "filter",
                  "post_filter", "pre_score", "score", "reserve", "permit", "pre_bind", "bind",
                  "post_bind"):
        pset = getattr(plugins, field)
        out.append((tuple(r.name for r in pset.enabled), tuple(r.name for r in pset.disabled)))
    return out

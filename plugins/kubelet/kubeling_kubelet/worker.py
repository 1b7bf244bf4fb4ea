"""The pod worker: drives one pod towards its spec, and reports its status.

Each sync (on a pod change, a container change seen by the agent's relist, a probe result,
a back-off expiring, or every few seconds) compares what the runtime runs with the pod:
sandbox first, then volumes, then init containers one at a time, then the app containers,
restarting by ``restartPolicy`` with CrashLoopBackOff (10 s doubling to 5 min), killing on
failed liveness/startup probes, and finally posting the status when it changed.
Deletion runs preStop hooks and stops containers within the grace period, then removes the
pod object for good.

Everything the worker needs to resume after an agent restart is in the runtime's labels
(pod uid, container name, attempt = restart count), so a new worker adopts running
containers instead of starting new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import attrs

from kubeling.api.errors import ApiError
from kubeling.api.quantity import milli_value, value
from kubeling.client.resources import PODS
from kubeling.dnsconfig import pod_settings
from kubeling.runtime import (
    ContainerConfig,
    ContainerRuntimeError,
    ContainerState,
    ContainerStatus,
    ImageNotFoundError,
    ImagePullError,
    NotFoundError,
    PodSandboxConfig,
    PortMapping,
    Resources,
    SandboxState,
    SecurityOptions,
)
from kubeling_kubelet import status as st
from kubeling_kubelet.envs import EnvError, expand_all, pod_services, resolve_env
from kubeling_kubelet.probes import Prober, ProbeResult, run_handler
from kubeling_kubelet.volumes import VolumeError

if TYPE_CHECKING:
    from kubeling_kubelet.agent import Kubelet

log = logging.getLogger(__name__)

__all__ = ["LABEL_CLUSTER", "LABEL_NODE", "LABEL_POD_UID", "PodWorker"]

Obj = dict[str, Any]

LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CONTAINER = "io.kubernetes.container.name"
LABEL_NODE = "io.kubeling.node"
LABEL_CLUSTER = "io.kubeling.cluster"
LABEL_HASH = "io.kubeling.container-hash"
LABEL_INIT = "io.kubeling.init"

BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET_AFTER = 600.0
RESYNC_SECONDS = 10.0
MIN_FORCED_GRACE = 2


def container_hash(container: Obj) -> str:
    """A short hash of a container's spec: a change means the container is replaced."""
    raw = json.dumps(container, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def default_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in image:
        return "IfNotPresent"
    tag = last.rpartition(":")[2] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


class _Backoff:
    """Per-key back-off: the first retry is immediate, then 10 s doubling up to 5 min."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (delay, not_before)

    def blocked(self, key: str, now: float) -> float:
        """Seconds still to wait before ``key`` may be retried (0 when it may)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry[1] - now)

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry[0] if entry else BACKOFF_INITIAL

    def next(self, key: str, now: float, *, ran_for: float = 0.0) -> None:
        """Record a retry now; the one after it waits the (doubled) delay."""
        entry = self._entries.get(key)
        if entry is None or ran_for > BACKOFF_RESET_AFTER:
            delay = BACKOFF_INITIAL
        else:
            delay = min(entry[0] * 2, BACKOFF_MAX)
        self._entries[key] = (delay, now + delay)

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)


def is_sidecar(spec: Obj) -> bool:
    """A restartable init container (Kubernetes' native sidecar)."""
    return spec.get("restartPolicy") == "Always"


def _done(history: list[ContainerStatus], policy: str) -> bool:
    """An app container that exited and will not be restarted under ``policy``."""
    latest = history[0] if history else None
    return latest is not None and latest.state == ContainerState.EXITED and (
        policy == "Never" or latest.exit_code == 0)


class PodWorker:
    """Runs one pod on this node."""

    def __init__(self, agent: Kubelet, pod: Obj, *, static: bool = False) -> None:
        self.agent = agent
        self.runtime = agent.runtime
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.static = static
        self.mirror_name: str | None = None
        """For a static pod: the name of its mirror pod in the API."""
        self.deleted = False
        """The pod object is gone from the API (or the static manifest was removed)."""
        self.finished = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._backoff = _Backoff()
        self.waiting: dict[str, tuple[str, str]] = {}
        self._attempts: dict[str, int] = {}
        self._probers: dict[tuple[str, str], Prober] = {}
        self._killed: dict[str, str] = {}
        self.sandbox_id: str | None = None
        self.pod_ip = ""
        self._last_status: Obj | None = None
        self._conditions: list[Obj] | None = None
        self._start_time: str | None = None
        self._wake_at: float | None = None
        self.containers: list[ContainerStatus] = []

    def _event(self, reason: str, message: str, *, warning: bool = False,
               container: str = "") -> None:
        field = ""
        if container:
            kind = "initContainers" if any(
                c["name"] == container for c in self._specs(True)) else "containers"
            field = f"spec.{kind}{{{container}}}"
        target = self.pod
        if self.static and self.mirror_name:
            target = {**self.pod, "metadata": {**self.pod["metadata"],
                                                "name": self.mirror_name}}
        self.agent.event(target, reason, message, warning=warning, field_path=field)

    # -- scheduling of syncs ------------------------------------------------------------

    @property
    def key(self) -> str:
        meta = self.pod["metadata"]
        return f"{meta.get('namespace') or 'default'}/{meta['name']}"

    def start(self) -> None:
        self._wake.set()  # the first sync runs at once
        self._task = asyncio.create_task(self._loop(), name=f"pod worker {self.key}")

    def update(self, pod: Obj) -> None:
        self.pod = pod
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop working on the pod (agent shutdown): containers keep running."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._stop_probers()

    async def _loop(self) -> None:
        while True:
            timeout = RESYNC_SECONDS
            if self._wake_at is not None:
                timeout = max(0.05, min(timeout, self._wake_at - time.monotonic()))
            with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow a cancel
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            self._wake_at = None
            try:
                done = await self.sync()
            except asyncio.CancelledError:
                raise
            except ContainerRuntimeError as exc:
                log.warning("pod %s: %s", self.key, exc)
                self._schedule(2.0)
                continue
            except ApiError as exc:
                log.warning("pod %s: API: %s", self.key, exc.message)
                self._schedule(1.0)
                continue
            except Exception:
                log.exception("pod %s: sync failed", self.key)
                self._schedule(5.0)
                continue
            if done:
                self.finished.set()
                return

    def _schedule(self, seconds: float) -> None:
        at = time.monotonic() + seconds
        if self._wake_at is None or at < self._wake_at:
            self._wake_at = at

    # -- sync ---------------------------------------------------------------------------

    async def sync(self) -> bool:
        """One pass; True when the pod is finished with for good (deleted)."""
        pod = self.pod
        if self.deleted or pod["metadata"].get("deletionTimestamp"):
            await self.terminate()
            return True
        labels = {LABEL_POD_UID: self.uid, **self.agent.scope_labels}
        sandboxes = await self.runtime.list_sandboxes(labels)
        containers = await self.runtime.list_containers(labels=labels)
        phase = (self._last_status or pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") and not any(
                c.state == ContainerState.RUNNING for c in containers):
            for sandbox in sandboxes:
                if sandbox.state == SandboxState.READY:
                    await self.runtime.stop_sandbox(sandbox.id)
            self.containers = containers
            await self._post_status(containers, sandbox_ready=False)
            return False
        ready = sorted((s for s in sandboxes if s.state == SandboxState.READY),
                       key=lambda s: s.created_at, reverse=True)
        if not ready:
            sandbox_id = await self._new_sandbox(sandboxes, containers)
            if sandbox_id is None:
                return False
            containers = []
        else:
            sandbox_id = ready[0].id
            for extra in ready[1:]:
                await self.runtime.stop_sandbox(extra.id)
                await self.runtime.remove_sandbox(extra.id)
            self.pod_ip = ready[0].ip if not ready[0].host_network else self.agent.host_ip
        self.sandbox_id = sandbox_id
        containers = [c for c in containers if c.sandbox_id == sandbox_id]
        try:
            paths = self.agent.volumes.setup(pod, pod_ip=self.pod_ip,
                                             host_ip=self.agent.host_ip)
        except VolumeError as exc:
            if not any(w[1] == str(exc) for w in self.waiting.values()):
                self._event("FailedMount", str(exc), warning=True)
            for c in self._specs():
                self.waiting[c["name"]] = ("ContainerCreating", str(exc))
            self._schedule(2.0)
            await self._post_status(containers, sandbox_ready=True)
            return False
        by_name: dict[str, list[ContainerStatus]] = {}
        for c in containers:
            by_name.setdefault(c.name, []).append(c)
        for history in by_name.values():
            history.sort(key=lambda c: (c.attempt, c.created_at), reverse=True)
        changed = await self._sync_containers(by_name, paths)
        if changed:
            containers = await self.runtime.list_containers(labels={**labels})
            containers = [c for c in containers if c.sandbox_id == sandbox_id]
            by_name = {}
            for c in containers:
                by_name.setdefault(c.name, []).append(c)
            for history in by_name.values():
                history.sort(key=lambda c: (c.attempt, c.created_at), reverse=True)
        await self._garbage_collect(by_name)
        self.containers = containers
        await self._post_status(containers, sandbox_ready=True)
        return False

    def _specs(self, init: bool | None = None) -> list[Obj]:
        spec = self.pod.get("spec") or {}
        if init is True:
            return list(spec.get("initContainers") or [])
        if init is False:
            return list(spec.get("containers") or [])
        return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])

    async def _new_sandbox(self, old_sandboxes: list[Any], containers: list[ContainerStatus]
                           ) -> str | None:
        for c in containers:  # restart counts go on in the new sandbox
            self._attempts[c.name] = max(self._attempts.get(c.name, -1), c.attempt)
        for c in containers:
            if c.state == ContainerState.RUNNING:
                await self.runtime.stop_container(c.id, 0)
        for sandbox in old_sandboxes:
            await self.runtime.remove_sandbox(sandbox.id)
        await self._stop_probers()
        for c in self._specs():
            self.waiting.setdefault(c["name"], ("ContainerCreating", ""))
        config = self.sandbox_config(attempt=len(old_sandboxes))
        try:
            sandbox_id = await self.runtime.run_sandbox(config)
        except ContainerRuntimeError as exc:
            log.warning("pod %s: creating the sandbox failed: %s", self.key, exc)
            for c in self._specs():
                self.waiting[c["name"]] = ("ContainerCreating",
                                           f"failed to create pod sandbox: {exc}")
            self._schedule(self._backoff_wait("sandbox"))
            await self._post_status([], sandbox_ready=False)
            return None
        status = await self.runtime.sandbox_status(sandbox_id)
        self.pod_ip = status.ip if not status.host_network else self.agent.host_ip
        return sandbox_id

    def _backoff_wait(self, key: str) -> float:
        now = time.monotonic()
        wait = self._backoff.blocked(key, now)
        if wait == 0:
            self._backoff.next(key, now)
            wait = self._backoff.delay(key)
        return wait

    def base_labels(self) -> dict[str, str]:
        meta = self.pod["metadata"]
        return {LABEL_POD_UID: self.uid, LABEL_POD_NAME: meta["name"],
                LABEL_POD_NAMESPACE: meta.get("namespace") or "default",
                **self.agent.scope_labels}

    def sandbox_config(self, attempt: int = 0) -> PodSandboxConfig:
        meta = self.pod["metadata"]
        spec = self.pod.get("spec") or {}
        namespace = meta.get("namespace") or "default"
        host_network = bool(spec.get("hostNetwork"))
        dns = pod_settings(self.pod, cluster_dns=self.agent.cluster_dns,
                           cluster_domain=self.agent.cluster_domain, host=self.agent.host_dns)
        aliases = [(alias.get("ip", ""), name) for alias in spec.get("hostAliases") or []
                   for name in alias.get("hostnames") or []]
        ports = [PortMapping(container_port=int(p.get("containerPort") or 0),
                             protocol=p.get("protocol") or "TCP",
                             host_port=p.get("hostPort"), host_ip=p.get("hostIP"))
                 for c in self._specs(False) for p in c.get("ports") or []]
        sysctls = {s.get("name", ""): str(s.get("value", ""))
                   for s in (spec.get("securityContext") or {}).get("sysctls") or []}
        return PodSandboxConfig(
            name=meta["name"], namespace=namespace, uid=self.uid, attempt=attempt,
            hostname=(spec.get("hostname") or meta["name"])[:63],
            host_network=host_network, labels=self.base_labels(), dns_servers=dns.nameservers,
            dns_searches=dns.searches, dns_options=dns.options, host_aliases=aliases,
            port_mappings=ports, sysctls=sysctls)

    # -- containers ---------------------------------------------------------------------

    async def _sync_containers(self, by_name: dict[str, list[ContainerStatus]],
                               paths: dict[str, Any]) -> bool:
        """Start, restart or kill containers; True when something changed."""
        policy = (self.pod.get("spec") or {}).get("restartPolicy") or "Always"
        changed = False
        apps = self._specs(False)
        apps_started = any(by_name.get(a["name"]) for a in apps)
        # a pod that will not restart its containers is finished once they all are
        finished = policy != "Always" and apps_started and all(
            _done(by_name.get(a["name"]) or [], policy) for a in apps)
        for spec in self._specs(True):
            history = by_name.get(spec["name"]) or []
            latest = history[0] if history else None
            if is_sidecar(spec):
                changed |= await self._sync_sidecar(spec, latest, paths,
                                                    finished=finished)
                pending = latest is None or latest.state != ContainerState.RUNNING or \
                    not self._started(spec, latest)
                if pending and not apps_started and not finished:
                    return changed  # the next init container waits for this one
                continue
            if latest is not None and latest.state == ContainerState.EXITED \
                    and latest.exit_code == 0:
                continue
            if latest is not None and latest.state == ContainerState.RUNNING:
                return changed
            if latest is not None and latest.state == ContainerState.CREATED:
                changed |= await self._start_existing(latest, spec)
                return changed
            if latest is not None and latest.state == ContainerState.EXITED:
                if policy == "Never":
                    return changed
                changed |= await self._restart(spec, latest, paths, init=True)
                return changed
            changed |= await self._start(spec, self._attempts.get(spec["name"], -1) + 1, paths,
                                         init=True)
            return changed
        for spec in self._specs(False):
            name = spec["name"]
            history = by_name.get(name) or []
            latest = history[0] if history else None
            if latest is None:
                changed |= await self._start(spec, self._attempts.get(name, -1) + 1, paths,
                                             init=False)
            elif latest.state == ContainerState.RUNNING:
                changed |= await self._check_running(spec, latest)
            elif latest.state == ContainerState.CREATED:
                changed |= await self._start_existing(latest, spec)
            elif latest.state == ContainerState.EXITED:
                if policy == "Always" or (policy == "OnFailure" and latest.exit_code != 0):
                    changed |= await self._restart(spec, latest, paths, init=False)
            else:
                await self.runtime.remove_container(latest.id)
                changed = True
        for spec in (self.pod.get("spec") or {}).get("ephemeralContainers") or []:
            changed |= await self._sync_ephemeral(spec, by_name, paths)
        return changed

    async def _sync_ephemeral(self, spec: Obj, by_name: dict[str, list[ContainerStatus]],
                              paths: dict[str, Any]) -> bool:
        """An ephemeral container (``kubectl debug``): started once, never restarted; with
        ``targetContainerName`` it joins that container's process namespace."""
        history = by_name.get(spec["name"]) or []
        if history:
            latest = history[0]
            if latest.state == ContainerState.CREATED:
                return await self._start_existing(latest, spec)
            return False
        target_id = None
        target = spec.get("targetContainerName")
        if target:
            running = [c for c in by_name.get(target) or []
                       if c.state == ContainerState.RUNNING]
            if not running:
                return False  # wait until the target runs
            target_id = running[0].id
        return await self._start(spec, 0, paths, init=False, pid_namespace_of=target_id)

    async def _sync_sidecar(self, spec: Obj, latest: ContainerStatus | None,
                            paths: dict[str, Any], *, finished: bool) -> bool:
        """A restartable init container (``restartPolicy: Always``): started in init order
        and kept running beside the app containers (restarted whatever the pod's policy),
        stopped once the pod's containers have finished.  True when something changed."""
        if finished:
            if latest is not None and latest.state == ContainerState.RUNNING:
                await self._kill(latest, spec, "the pod's containers have completed")
                return True
            return False
        if latest is None:
            return await self._start(spec, self._attempts.get(spec["name"], -1) + 1, paths,
                                     init=True)
        if latest.state == ContainerState.RUNNING:
            return await self._check_running(spec, latest)
        if latest.state == ContainerState.CREATED:
            return await self._start_existing(latest, spec)
        return await self._restart(spec, latest, paths, init=True)

    def _started(self, spec: Obj, latest: ContainerStatus) -> bool:
        """Running and past its startup probe (if it has one)."""
        if spec.get("startupProbe") is None:
            return True
        startup = self._probers.get((latest.id, "startup"))
        return startup is not None and startup.result == ProbeResult.SUCCESS

    async def _check_running(self, spec: Obj, latest: ContainerStatus) -> bool:
        """Probes of a running container; kill it on failed liveness/startup."""
        name = spec["name"]
        self.waiting.pop(name, None)
        self._attempts[name] = max(self._attempts.get(name, 0), latest.attempt)
        if latest.labels.get(LABEL_HASH) not in (None, container_hash(spec)):
            log.info("pod %s: container %s changed; replacing it", self.key, name)
            await self._kill(latest, spec, "the container spec changed")
            return True
        self._ensure_probers(spec, latest)
        for kind in ("startup", "liveness"):
            prober = self._probers.get((latest.id, kind))
            if prober is not None and prober.result == ProbeResult.FAILURE:
                self._event("Unhealthy", f"{kind.capitalize()} probe failed: "
                            f"{prober.message}", warning=True, container=spec["name"])
                self._event("Killing", f"Container {spec['name']} failed {kind} probe, will "
                            f"be restarted", container=spec["name"])
                await self._kill(latest, spec, f"{kind} probe failed: {prober.message}")
                return True
        return False

    def _ensure_probers(self, spec: Obj, latest: ContainerStatus) -> None:
        for kind in ("startup", "liveness", "readiness"):
            probe = spec.get(f"{kind}Probe")
            key = (latest.id, kind)
            if probe is None or key in self._probers:
                continue
            if kind != "startup" and spec.get("startupProbe") is not None:
                startup = self._probers.get((latest.id, "startup"))
                if startup is None or startup.result != ProbeResult.SUCCESS:
                    continue
            prober = Prober(kind, probe, runtime=self.runtime, container_id=latest.id,
                            container=spec, pod_ip=self.pod_ip, on_change=self.wake,
                            on_failure=lambda message, name=spec["name"]: self._event(
                                "Unhealthy", f"Readiness probe failed: {message}",
                                warning=True, container=name))
            self._probers[key] = prober
            prober.start()

    async def _stop_probers(self, container_id: str | None = None) -> None:
        for key in [k for k in self._probers if container_id is None or k[0] == container_id]:
            await self._probers.pop(key).stop()

    async def _kill(self, container: ContainerStatus, spec: Obj, reason: str) -> None:
        self._killed[container.id] = reason
        await self._stop_probers(container.id)
        grace = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        grace = 30 if grace is None else int(grace)
        await self._pre_stop(spec, container.id, grace)
        await self.runtime.stop_container(container.id, grace)

    async def _restart(self, spec: Obj, latest: ContainerStatus, paths: dict[str, Any], *,
                       init: bool) -> bool:
        name = spec["name"]
        now = time.monotonic()
        key = f"restart:{name}"
        wait = self._backoff.blocked(key, now)
        if wait > 0:
            delay = self._backoff.delay(key)
            meta = self.pod["metadata"]
            if (self.waiting.get(name) or ("",))[0] != "CrashLoopBackOff":
                self._event("BackOff", "Back-off restarting failed container", warning=True,
                            container=name)
            self.waiting[name] = ("CrashLoopBackOff", (
                f"back-off {int(delay)}s restarting failed container={name} "
                f"pod={meta['name']}_{meta.get('namespace') or 'default'}({self.uid})"))
            self._schedule(wait)
            return False
        ran_for = max(0.0, latest.finished_at - latest.started_at)
        self._backoff.next(key, now, ran_for=ran_for)
        await self._stop_probers(latest.id)
        attempt = max(latest.attempt, self._attempts.get(name, 0)) + 1
        return await self._start(spec, attempt, paths, init=init)

    async def _start_existing(self, container: ContainerStatus, spec: Obj) -> bool:
        try:
            await self.runtime.start_container(container.id)
        except ContainerRuntimeError as exc:
            self.waiting[spec["name"]] = ("RunContainerError", str(exc))
            await self.runtime.remove_container(container.id)
        return True

    async def _ensure_image(self, spec: Obj) -> str | None:
        """None when the image is there; else the waiting reason was set."""
        image = spec.get("image", "")
        name = spec["name"]
        policy = spec.get("imagePullPolicy") or default_pull_policy(image)
        present = await self.runtime.image_present(image)
        if present and policy != "Always":
            return present
        if policy == "Never":
            self._event("ErrImageNeverPull", f'Container image "{image}" is not present with '
                        f"pull policy of Never", warning=True, container=name)
            self.waiting[name] = ("ErrImageNeverPull", f'Container image "{image}" is not '
                                  f"present with pull policy of Never")
            return None
        key = f"pull:{name}"
        wait = self._backoff.blocked(key, time.monotonic())
        if wait > 0:
            if (self.waiting.get(name) or ("",))[0] != "ImagePullBackOff":
                self._event("BackOff", f'Back-off pulling image "{image}"', warning=True,
                            container=name)
            self.waiting[name] = ("ImagePullBackOff", f'Back-off pulling image "{image}"')
            self._schedule(wait)
            return None
        self._event("Pulling", f'Pulling image "{image}"', container=name)
        started = time.monotonic()
        try:
            ref = await self.runtime.pull_image(image)
        except ImagePullError as exc:
            self._event("Failed", f"Failed to pull image \"{image}\": {exc}", warning=True,
                        container=name)
            self._backoff.next(key, time.monotonic())
            self.waiting[name] = ("ErrImagePull", str(exc))
            self._schedule(self._backoff.blocked(key, time.monotonic()))
            return None
        self._backoff.reset(key)
        self._event("Pulled", f'Successfully pulled image "{image}" in '
                    f"{time.monotonic() - started:.3f}s", container=name)
        return ref

    async def _start(self, spec: Obj, attempt: int, paths: dict[str, Any], *,
                     init: bool, pid_namespace_of: str | None = None) -> bool:
        name = spec["name"]
        if await self._ensure_image(spec) is None:
            return False
        try:
            config = self.container_config(spec, attempt, paths, init=init)
            if pid_namespace_of:
                config = attrs.evolve(config, pid_namespace_of=pid_namespace_of)
        except (EnvError, VolumeError, ValueError) as exc:
            if self.waiting.get(name) != ("CreateContainerConfigError", str(exc)):
                self._event("Failed", f"Error: {exc}", warning=True, container=name)
            self.waiting[name] = ("CreateContainerConfigError", str(exc))
            self._schedule(2.0)
            return False
        assert self.sandbox_id is not None
        try:
            container_id = await self.runtime.create_container(
                self.sandbox_id, config, self.sandbox_config())
        except ImageNotFoundError as exc:
            self.waiting[name] = ("ErrImagePull", str(exc))
            return False
        except ContainerRuntimeError as exc:
            self.waiting[name] = ("CreateContainerError", str(exc))
            self._schedule(self._backoff_wait(f"create:{name}"))
            return False
        self._attempts[name] = attempt
        self._event("Created", f"Created container {name}", container=name)
        try:
            await self.runtime.start_container(container_id)
        except ContainerRuntimeError as exc:
            log.info("pod %s: starting container %s failed: %s", self.key, name, exc)
            self.waiting[name] = ("RunContainerError", str(exc))
            self._backoff.next(f"restart:{name}", time.monotonic())
            self._schedule(self._backoff.blocked(f"restart:{name}", time.monotonic()))
            return True
        self.waiting.pop(name, None)
        self._event("Started", f"Started container {name}", container=name)
        hook = ((spec.get("lifecycle") or {}).get("postStart"))
        if hook:
            ok, message = await run_handler(self.runtime, hook, container_id=container_id,
                                            container=spec, pod_ip=self.pod_ip, timeout=30)
            if not ok:
                log.info("pod %s: postStart hook of %s failed: %s", self.key, name, message)
                self._event("FailedPostStartHook", message, warning=True, container=name)
                self._killed[container_id] = f"PostStartHookError: {message}"
                await self.runtime.stop_container(container_id, 0)
        return True

    def container_config(self, spec: Obj, attempt: int, paths: dict[str, Any], *,
                         init: bool) -> ContainerConfig:
        pod = self.pod
        pod_spec = pod.get("spec") or {}
        env = resolve_env(pod, spec, configmap=self.agent.lookup_configmap,
                          secret=self.agent.lookup_secret, pod_ip=self.pod_ip,
                          host_ip=self.agent.host_ip, allocatable=self.agent.allocatable,
                          services=pod_services(pod, self.agent.services()))
        env_map = dict(env)
        mounts = self.agent.volumes.mounts(pod, spec, paths)
        term_path = spec.get("terminationMessagePath") or "/dev/termination-log"
        term_file = self.termination_file(spec["name"], attempt)
        term_file.parent.mkdir(parents=True, exist_ok=True)
        term_file.write_bytes(b"")
        term_file.chmod(0o666)
        from kubeling.runtime import Mount

        mounts.append(Mount(host_path=str(term_file), container_path=term_path))
        resources = spec.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        cpu_request = milli_value(str(requests["cpu"])) if "cpu" in requests else 0
        cpu_limit = milli_value(str(limits["cpu"])) if "cpu" in limits else 0
        shares = max(2, cpu_request * 1024 // 1000) if cpu_request else 2
        quota = max(1000, cpu_limit * 100) if cpu_limit else 0
        memory = value(str(limits["memory"])) if "memory" in limits else 0
        pod_sec = pod_spec.get("securityContext") or {}
        sec = spec.get("securityContext") or {}
        caps = sec.get("capabilities") or {}
        run_as_user = sec.get("runAsUser", pod_sec.get("runAsUser"))
        run_as_group = sec.get("runAsGroup", pod_sec.get("runAsGroup"))
        groups = list(pod_sec.get("supplementalGroups") or [])
        if pod_sec.get("fsGroup") is not None:
            groups.append(pod_sec["fsGroup"])
        security = SecurityOptions(
            run_as_user=run_as_user, run_as_group=run_as_group, supplemental_groups=groups,
            privileged=bool(sec.get("privileged")),
            read_only_root_filesystem=bool(sec.get("readOnlyRootFilesystem")),
            capabilities_add=tuple(caps.get("add") or ()),
            capabilities_drop=tuple(caps.get("drop") or ()),
            no_new_privileges=sec.get("allowPrivilegeEscalation") is False)
        labels = {**self.base_labels(), LABEL_CONTAINER: spec["name"],
                  LABEL_HASH: container_hash(spec), LABEL_INIT: "true" if init else "false"}
        return ContainerConfig(
            name=spec["name"], image=spec.get("image", ""), attempt=attempt,
            command=expand_all(spec.get("command"), env_map),
            args=expand_all(spec.get("args"), env_map),
            working_dir=spec.get("workingDir") or "", env=env, mounts=mounts,
            ports=[PortMapping(container_port=int(p.get("containerPort") or 0),
                               protocol=p.get("protocol") or "TCP")
                   for p in spec.get("ports") or []],
            resources=Resources(cpu_shares=shares, cpu_quota=quota,
                                memory_limit_bytes=memory),
            security=security, stdin=bool(spec.get("stdin")),
            stdin_once=bool(spec.get("stdinOnce")), tty=bool(spec.get("tty")), labels=labels)

    def termination_file(self, name: str, attempt: int) -> Any:
        return self.agent.volumes.pod_dir(self.uid) / "containers" / name / str(attempt)

    def _termination_message(self, c: ContainerStatus) -> str:
        path = self.termination_file(c.name, c.attempt)
        try:
            message = path.read_bytes()[:4096].decode(errors="replace")
        except OSError:
            message = ""
        return message or self._killed.get(c.id, "")

    async def _garbage_collect(self, by_name: dict[str, list[ContainerStatus]]) -> None:
        """Keep the newest two containers of each name (the one before for --previous)."""
        for history in by_name.values():
            for old in history[2:]:
                if old.state != ContainerState.RUNNING:
                    await self.runtime.remove_container(old.id)
                    self._killed.pop(old.id, None)

    async def _pre_stop(self, spec: Obj, container_id: str, grace: float) -> None:
        hook = (spec.get("lifecycle") or {}).get("preStop")
        if not hook or grace <= 0:
            return
        ok, message = await run_handler(self.runtime, hook, container_id=container_id,
                                        container=spec, pod_ip=self.pod_ip, timeout=grace)
        if not ok:
            log.info("pod %s: preStop hook of %s failed: %s", self.key, spec["name"], message)
            self._event("FailedPreStopHook", message, warning=True, container=spec["name"])

    # -- status -------------------------------------------------------------------------

    def compute_status(self, containers: list[ContainerStatus], *, sandbox_ready: bool) -> Obj:
        pod = self.pod
        spec = pod.get("spec") or {}
        old = pod.get("status") or {}
        runtime = self.runtime.name
        by_name: dict[str, list[ContainerStatus]] = {}
        for c in containers:
            by_name.setdefault(c.name, []).append(c)
        for history in by_name.values():
            history.sort(key=lambda c: (c.attempt, c.created_at), reverse=True)

        def one(c_spec: Obj, init: bool) -> Obj:
            history = by_name.get(c_spec["name"]) or []
            latest = history[0] if history else None
            previous = history[1] if len(history) > 1 else None
            waiting = self.waiting.get(c_spec["name"])
            if latest is not None and latest.state == ContainerState.RUNNING:
                waiting = None
            ready = started = False
            if latest is not None and latest.state == ContainerState.RUNNING:
                startup = self._probers.get((latest.id, "startup"))
                started = c_spec.get("startupProbe") is None or (
                    startup is not None and startup.result == ProbeResult.SUCCESS)
                readiness = self._probers.get((latest.id, "readiness"))
                if c_spec.get("readinessProbe") is None:
                    ready = started
                else:
                    ready = started and readiness is not None and \
                        readiness.result == ProbeResult.SUCCESS
            message = ""
            if latest is not None and latest.state == ContainerState.EXITED:
                message = self._termination_message(latest)
            restart_count = latest.attempt if latest is not None else \
                self._attempts.get(c_spec["name"], 0)
            return st.container_status(c_spec, latest, previous, runtime=runtime,
                                       waiting=waiting, ready=ready, started=started,
                                       restart_count=restart_count,
                                       termination_message=message)

        init_statuses = [one(c, True) for c in spec.get("initContainers") or []]
        statuses = [one(c, False) for c in spec.get("containers") or []]
        ephemeral = [one(c, False) for c in spec.get("ephemeralContainers") or []]
        phase = st.pod_phase(spec, init_statuses, statuses)
        conditions = st.conditions(self._conditions or old.get("conditions") or [], spec,
                                   phase, init_statuses, statuses, sandbox_ready=sandbox_ready,
                                   current=old.get("conditions") or [])
        if self._start_time is None:
            self._start_time = old.get("startTime") or st.rfc3339()
        status: Obj = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.agent.host_ip,
            "hostIPs": [{"ip": self.agent.host_ip}],
            "startTime": self._start_time,
            "containerStatuses": statuses,
        }
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        if ephemeral:
            status["ephemeralContainerStatuses"] = ephemeral
        if old.get("qosClass"):
            status["qosClass"] = old["qosClass"]
        return status

    async def _post_status(self, containers: list[ContainerStatus], *,
                           sandbox_ready: bool) -> None:
        status = self.compute_status(containers, sandbox_ready=sandbox_ready)
        before = (self._last_status or self.pod.get("status") or {}).get("phase")
        if before in ("Succeeded", "Failed") and status["phase"] != before:
            return  # a finished pod stays finished, whatever became of its containers
        comparable = json.dumps(status, sort_keys=True)
        if self._last_status is not None and \
                json.dumps(self._last_status, sort_keys=True) == comparable:
            return
        await self.agent.post_pod_status(self, status)
        self._last_status = status
        self._conditions = status["conditions"]

    # -- termination --------------------------------------------------------------------

    async def terminate(self) -> None:
        """Stop everything of the pod within its grace period, then remove the object."""
        meta = self.pod["metadata"]
        spec = self.pod.get("spec") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds")
            grace = MIN_FORCED_GRACE if self.deleted or grace is None else grace
        grace = max(0, int(grace))
        deadline = time.monotonic() + grace
        await self._stop_probers()
        labels = {LABEL_POD_UID: self.uid, **self.agent.scope_labels}
        containers = await self.runtime.list_containers(labels=labels)
        specs = {c["name"]: c for c in self._specs()}

        async def stop_one(c: ContainerStatus) -> None:
            c_spec = specs.get(c.name, {"name": c.name})
            if not self.deleted:
                self._event("Killing", f"Stopping container {c.name}", container=c.name)
            await self._pre_stop(c_spec, c.id, deadline - time.monotonic())
            await self.runtime.stop_container(c.id, max(0.0, math.ceil(
                deadline - time.monotonic())))

        running = [c for c in containers if c.state == ContainerState.RUNNING]
        sidecars = [c["name"] for c in self._specs(True) if is_sidecar(c)]
        # app containers first; native sidecars after them, the last declared first
        await asyncio.gather(*(stop_one(c) for c in running if c.name not in sidecars))
        for name in reversed(sidecars):
            await asyncio.gather(*(stop_one(c) for c in running if c.name == name))
        for sandbox in await self.runtime.list_sandboxes(labels):
            await self.runtime.stop_sandbox(sandbox.id)
        if not self.deleted:
            final = await self.runtime.list_containers(labels=labels)
            self.waiting.clear()
            with contextlib.suppress(ApiError):
                await self._post_status(final, sandbox_ready=False)
        for sandbox in await self.runtime.list_sandboxes(labels):
            await self.runtime.remove_sandbox(sandbox.id)
        for c in await self.runtime.list_containers(labels=labels):
            with contextlib.suppress(NotFoundError):
                await self.runtime.remove_container(c.id)
        self.agent.volumes.teardown(self.uid)
        if not self.deleted and not self.static:
            try:
                await self.agent.client.delete(PODS, meta["name"], meta.get("namespace"),
                                               grace_period_seconds=0,
                                               preconditions={"uid": self.uid})
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
        log.info("pod %s: terminated", self.key)

"""The node agent component: registers the Node, heartbeats, and runs the node's pods.

It watches pods bound to this node (field selector ``spec.nodeName``) and gives each a
:class:`~kubeling_kubelet.worker.PodWorker`; a relist of the runtime every second (the
kubelet's PLEG) wakes the worker of any pod whose containers changed.  Static pods come
from a manifest directory (:mod:`kubeling_kubelet.static`).  Logs, exec, attach and
port-forward are served by :mod:`kubeling_kubelet.server` for the API server to proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import secrets
import socket
from pathlib import Path
from typing import Any

import attrs

from kubeling.api.errors import ApiError
from kubeling.api.node_proxy import AGENT_ENDPOINT_ANNOTATION, SECRET_FILE, load_secret
from kubeling.api.server import KUBE_VERSION
from kubeling.client.resources import (
    CONFIGMAPS,
    EVENTS,
    LEASES,
    NAMESPACES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    SECRETS,
    SERVICES,
)
from kubeling.dnsconfig import cluster_dns_from_config, host_settings
from kubeling.runtime import ContainerRuntimeError, Runtime
from kubeling_kubelet import node as node_facts
from kubeling_kubelet.usage import UsageSampler
from kubeling_kubelet.volumes import VolumeManager
from kubeling_kubelet.worker import LABEL_CLUSTER, LABEL_NODE, LABEL_POD_UID, PodWorker

log = logging.getLogger(__name__)

__all__ = ["AGENT_ENDPOINT_ANNOTATION", "Kubelet", "KubeletSettings"]

Obj = dict[str, Any]

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def _check_listen(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    from kubeling.api.http import parse_listen

    try:
        parse_listen(value)
    except ValueError as exc:
        raise ValueError(f"{attribute.name}: {exc}") from None


@attrs.frozen(kw_only=True)
class KubeletSettings:
    """The ``kubelet`` config section."""

    listen: str = attrs.field(default="127.0.0.1:0", validator=_check_listen)
    """``HOST:PORT`` of the agent's endpoint (logs, exec, port-forward) that the API server
    calls; port 0 picks a free one.  Use ``0.0.0.0:10250`` when the control plane runs on
    another machine."""
    address: str | None = None
    """Address the API server uses to reach the agent; default: the listen host, or the
    node's InternalIP when listening on all addresses."""
    secret_file: str | None = None
    """The secret the API server presents to the agent; default
    ``<data_dir>/node-agent.secret`` (created by the control plane; copy it to a node that
    runs elsewhere)."""
    root_dir: str | None = None
    """Where pod volumes live; default ``<data_dir>/kubelet``."""
    static_pod_path: str | None = None
    """A directory of static pod manifests; default ``<data_dir>/manifests``."""
    max_pods: int = attrs.field(default=110, validator=attrs.validators.ge(1))
    lease_duration_seconds: int = attrs.field(default=40, validator=attrs.validators.ge(1))
    lease_renew_seconds: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    status_update_seconds: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    relist_seconds: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    metrics_interval_seconds: float = attrs.field(default=10.0,
                                                  validator=attrs.validators.ge(0.5))
    """How often pod and node resource usage is sampled for the metrics API
    (``kubectl top``)."""
    cluster_dns: list[str] | None = None
    """Nameservers for ClusterFirst pods (the kubelet's ``clusterDNS``); default: the
    ``dns`` section's ``service_ip`` when cluster DNS runs in this config; empty: pods use
    the host's resolvers."""
    cluster_domain: str | None = None
    """The cluster domain for pods' search paths; default: the ``dns`` section's, else
    ``cluster.local``."""
    resolv_conf: str = "/etc/resolv.conf"
    """The host's resolver configuration (the kubelet's ``--resolv-conf``): what
    ``dnsPolicy: Default`` pods get, and the search paths appended for ClusterFirst ones."""
    labels: dict[str, str] = attrs.field(factory=dict)
    """Extra labels of the Node."""


MAX_STATUS_IMAGES = 50
"""Images listed in the Node's status (Kubernetes' default ``nodeStatusMaxImages``)."""


def secrets_token() -> str:
    return secrets.token_hex(8)


def micro_time() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Kubelet:
    """The node agent (see the module doc)."""

    def __init__(self, ctx: Any, runtime: Runtime, settings: KubeletSettings,
                 node_name: str) -> None:
        self.ctx = ctx
        self.runtime = runtime
        self.settings = settings
        self.node_name = node_name
        data_dir = Path(ctx.data_dir)
        self.root = Path(settings.root_dir).expanduser() if settings.root_dir \
            else data_dir / "kubelet"
        self.static_dir = Path(settings.static_pod_path).expanduser() \
            if settings.static_pod_path else data_dir / "manifests"
        self.secret_path = Path(settings.secret_file).expanduser() if settings.secret_file \
            else data_dir / SECRET_FILE
        self.host_ip = node_facts.host_ip()
        auto_dns, auto_domain = cluster_dns_from_config(getattr(ctx, "config", None))
        self.cluster_dns = auto_dns if settings.cluster_dns is None \
            else list(settings.cluster_dns)
        self.cluster_domain = settings.cluster_domain or auto_domain
        self.host_dns = host_settings(settings.resolv_conf)
        self.allocatable: dict[str, str] = {}
        self.workers: dict[str, PodWorker] = {}
        self.client: Any = None
        self.node_uid = ""
        self.server: Any = None
        self.static: Any = None
        self.volumes = VolumeManager(self.root, configmap=self.lookup_configmap,
                                     secret=self.lookup_secret, claim=self.lookup_claim,
                                     persistent_volume=self.lookup_volume)
        self._pods_informer: Any = None
        self._configmaps: Any = None
        self._services: Any = None
        self.usage = UsageSampler(self, settings.metrics_interval_seconds)
        self._claims: Any = None
        self._pvs: Any = None
        self._secrets: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._runtime_ok = True
        self._runtime_message = ""
        self._relist_state: dict[str, tuple[Any, ...]] = {}
        self._node_conditions: list[Obj] = []
        self.ready = asyncio.Event()
        self._event_tasks: set[asyncio.Task[None]] = set()
        self.scope_labels: dict[str, str] = {LABEL_NODE: node_name}
        """Labels on everything this agent creates, and the filter of what it adopts: the
        node and the cluster (the uid of kube-system), so that two clusters sharing one
        dockerd never touch each other's containers."""

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Register the node and run its pods until cancelled."""
        from kubeling_kubelet.server import AgentServer
        from kubeling_kubelet.static import StaticPods

        await self.runtime.start()
        self.root.mkdir(parents=True, exist_ok=True)
        self.client = self.ctx.client(f"kubelet/{self.node_name}")
        kube_system = await self._wait_for_api()
        self.scope_labels = {LABEL_NODE: self.node_name,
                             LABEL_CLUSTER: kube_system["metadata"]["uid"]}
        try:
            secret = load_secret(self.secret_path, create=self.ctx.server is not None)
        except FileNotFoundError:
            log.error("the node agent cannot start: %s is missing; copy it from the control "
                      "plane's data directory (or set kubelet.secret_file)", self.secret_path)
            return
        self.server = AgentServer(self, self.settings.listen, secret)
        try:
            await self.server.start()
        except OSError as exc:
            log.error("the node agent cannot listen on %s (kubelet.listen): %s",
                      self.settings.listen, exc.strerror or exc)
            self.server = None
            return
        self.allocatable = node_facts.capacity(self.root, self.settings.max_pods)
        self.volumes.allocatable = dict(self.allocatable)
        await self._register()
        informers = self.ctx.informers
        self._configmaps = informers.informer(CONFIGMAPS)
        self._secrets = informers.informer(SECRETS)
        for inf in (self._configmaps, self._secrets):
            inf.add_handler(on_add=self._on_config, on_update=lambda _o, n: self._on_config(n),
                            on_delete=self._on_config)
            inf.start()
        self._services = informers.informer(SERVICES)  # for pods' service variables
        self._claims = informers.informer(PERSISTENTVOLUMECLAIMS)  # volumes of claims
        self._pvs = informers.informer(PERSISTENTVOLUMES)
        for inf in (self._services, self._claims, self._pvs):
            inf.start()
        self._pods_informer = informers.informer(
            PODS, field_selector=f"spec.nodeName={self.node_name}")
        self._pods_informer.add_handler(on_add=self._on_pod,
                                        on_update=lambda _o, n: self._on_pod(n),
                                        on_delete=self._on_pod_deleted)
        self._pods_informer.start()
        await asyncio.gather(self._configmaps.wait_synced(), self._secrets.wait_synced(),
                             self._services.wait_synced(), self._claims.wait_synced(),
                             self._pvs.wait_synced(), self._pods_informer.wait_synced())
        self.static = StaticPods(self, self.static_dir)
        mirrors = [p for p in self._pods_informer.list()
                   if MIRROR_ANNOTATION in (p["metadata"].get("annotations") or {})]
        await self.static.load(mirrors)
        self._tasks = [
            asyncio.create_task(self._lease_loop(), name="kubelet lease"),
            asyncio.create_task(self._status_loop(), name="kubelet node status"),
            asyncio.create_task(self._relist_loop(), name="kubelet relist"),
            asyncio.create_task(self.static.watch(), name="kubelet static pods"),
            asyncio.create_task(self.usage.run(), name="kubelet usage sampler"),
        ]
        self.ready.set()
        log.info("node %s registered (%s); agent endpoint %s", self.node_name,
                 (await self.runtime.version()).uri, self.server.url)
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self._shutdown()

    async def _wait_for_api(self) -> Obj:
        """The kube-system namespace (its uid names the cluster), retrying until the API
        server answers."""
        delay = 0.5
        while True:
            try:
                return dict(await self.client.get(NAMESPACES, "kube-system"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("waiting for the API server at %s: %s", self.ctx.api_url or
                            self.ctx.config.api.server, getattr(exc, "message", None) or exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await asyncio.gather(*(w.stop() for w in list(self.workers.values())),
                             return_exceptions=True)
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def close(self) -> None:
        """Stop (containers keep running, to be adopted by the next agent)."""
        await self._shutdown()
        await self.runtime.close()

    # -- the node -----------------------------------------------------------------------

    def _node_object(self, version: str) -> Obj:
        hostname = socket.gethostname()
        labels = {
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": node_facts.arch(),
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": node_facts.arch(),
            **self.settings.labels,
        }
        self._node_conditions = node_facts.conditions(self.root, self._node_conditions,
                                                      runtime_ok=True)
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.node_name, "labels": labels,
                         "annotations": {AGENT_ENDPOINT_ANNOTATION: self.server.url}},
            "spec": {},
            "status": {
                "capacity": dict(self.allocatable),
                "allocatable": dict(self.allocatable),
                "addresses": [{"type": "InternalIP", "address": self.host_ip},
                              {"type": "Hostname", "address": hostname}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.server.port}},
                "nodeInfo": node_facts.node_info(version, f"{KUBE_VERSION}-kubeling"),
                "conditions": self._node_conditions,
            },
        }

    async def _images(self) -> list[Obj] | None:
        """The node's images for its status, largest first, at most 50 (the kubelet's
        ``nodeStatusMaxImages``); None when the runtime cannot list them."""
        lister = getattr(self.runtime, "list_images", None)
        if lister is None:
            return None
        try:
            images = await lister()
        except ContainerRuntimeError as exc:
            log.debug("listing images failed: %s", exc)
            return None
        images = sorted((i for i in images if i.names), key=lambda i: -i.size)
        return [{"names": list(i.names), "sizeBytes": i.size}
                for i in images[:MAX_STATUS_IMAGES]]

    async def _register(self) -> None:
        version = (await self.runtime.version()).uri
        body = self._node_object(version)
        images = await self._images()
        if images is not None:
            body["status"]["images"] = images
        try:
            created = await self.client.create(NODES, body)
            self.node_uid = created["metadata"]["uid"]
            return
        except ApiError as exc:
            if exc.code != 409:
                raise
        meta = body["metadata"]
        updated = await self.client.patch(NODES, self.node_name, {"metadata": {
            "labels": meta["labels"], "annotations": meta["annotations"]}})
        self.node_uid = updated["metadata"]["uid"]
        await self.client.patch(NODES, self.node_name, {"status": body["status"]},
                                subresource="status")

    async def _lease_loop(self) -> None:
        while True:
            try:
                await self._renew_lease()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("renewing the node lease failed: %s", exc)
            await asyncio.sleep(self.settings.lease_renew_seconds)

    async def _renew_lease(self) -> None:
        now = micro_time()
        try:
            await self.client.patch(LEASES, self.node_name, {"spec": {
                "renewTime": now, "holderIdentity": self.node_name}}, "kube-node-lease")
            return
        except ApiError as exc:
            if exc.code != 404:
                raise
        await self.client.create(LEASES, {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.node_name, "namespace": "kube-node-lease",
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                              "name": self.node_name,
                                              "uid": self.node_uid}]},
            "spec": {"holderIdentity": self.node_name,
                     "leaseDurationSeconds": self.settings.lease_duration_seconds,
                     "renewTime": now}}, "kube-node-lease")

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.status_update_seconds)
            try:
                try:
                    await self.runtime.version()
                    self._runtime_ok, self._runtime_message = True, ""
                except ContainerRuntimeError as exc:
                    self._runtime_ok, self._runtime_message = False, str(exc)
                self._node_conditions = node_facts.conditions(
                    self.root, self._node_conditions, runtime_ok=self._runtime_ok,
                    runtime_message=self._runtime_message)
                status: Obj = {"conditions": self._node_conditions}
                images = await self._images()
                if images is not None:
                    status["images"] = images
                await self.client.patch(NODES, self.node_name, {"status": status},
                                        subresource="status")
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.code == 404:  # someone deleted the Node: register again
                    with contextlib.suppress(Exception):
                        await self._register()
                else:
                    log.warning("posting node status failed: %s", exc.message)
            except Exception as exc:
                log.warning("posting node status failed: %s", exc)

    # -- pods ---------------------------------------------------------------------------

    def _on_pod(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            if self.static is not None:
                self.static.on_mirror(pod)
            return
        uid = meta.get("uid", "")
        worker = self.workers.get(uid)
        if worker is None:
            phase = (pod.get("status") or {}).get("phase")
            worker = PodWorker(self, pod)
            self.workers[uid] = worker
            worker.start()
            asyncio.get_running_loop().create_task(self._forget_when_done(worker))
            if phase in ("Succeeded", "Failed"):
                worker.wake()
        else:
            worker.update(pod)

    def _on_pod_deleted(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            if self.static is not None:
                self.static.on_mirror_deleted(pod)
            return
        worker = self.workers.get(meta.get("uid", ""))
        if worker is not None:
            worker.deleted = True
            worker.wake()

    def add_worker(self, pod: Obj, *, static: bool) -> PodWorker:
        worker = PodWorker(self, pod, static=static)
        self.workers[worker.uid] = worker
        worker.start()
        asyncio.get_running_loop().create_task(self._forget_when_done(worker))
        return worker

    async def _forget_when_done(self, worker: PodWorker) -> None:
        await worker.finished.wait()
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]
        self._relist_state.pop(worker.uid, None)

    def _on_config(self, obj: Obj) -> None:
        namespace = (obj.get("metadata") or {}).get("namespace")
        for worker in list(self.workers.values()):
            if (worker.pod.get("metadata") or {}).get("namespace") == namespace:
                worker.wake()

    def lookup_configmap(self, namespace: str, name: str) -> Obj | None:
        return self._configmaps.get(f"{namespace}/{name}") if self._configmaps else None

    def lookup_claim(self, namespace: str, name: str) -> Obj | None:
        return self._claims.get(f"{namespace}/{name}") if self._claims else None

    def lookup_volume(self, name: str) -> Obj | None:
        return self._pvs.get(name) if self._pvs else None

    def services(self) -> list[Obj]:
        """Every Service (the informer's view), for pods' service variables."""
        return list(self._services.list()) if self._services else []

    def lookup_secret(self, namespace: str, name: str) -> Obj | None:
        return self._secrets.get(f"{namespace}/{name}") if self._secrets else None

    def find_worker(self, namespace: str, name: str) -> PodWorker | None:
        """The worker of a pod by namespace and name (a static pod by its mirror's name)."""
        for worker in self.workers.values():
            meta = worker.pod["metadata"]
            if (meta.get("namespace") or "default") != namespace or worker.deleted:
                continue
            if meta["name"] == name or worker.mirror_name == name:
                return worker
        return None

    async def post_pod_status(self, worker: PodWorker, status: Obj) -> None:
        meta = worker.pod["metadata"]
        name = worker.mirror_name if worker.static else meta["name"]
        if not name:
            return
        try:
            await self.client.patch(PODS, name, {"status": status},
                                    meta.get("namespace") or "default", type="merge",
                                    subresource="status")
        except ApiError as exc:
            if exc.code != 404:
                raise

    def event(self, pod: Obj, reason: str, message: str, *, warning: bool = False,
              field_path: str = "") -> None:
        """Record an Event about ``pod`` (what ``kubectl describe`` shows), in the
        background: a lost event never holds up a pod."""
        meta = pod.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = micro_time()
        seconds = now[:19] + "Z"
        involved = {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name", ""),
                    "namespace": namespace, "uid": meta.get("uid", "")}
        if field_path:
            involved["fieldPath"] = field_path
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta.get('name', '')}.{secrets_token()}",
                         "namespace": namespace},
            "involvedObject": involved, "reason": reason, "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": "kubelet", "host": self.node_name},
            "reportingComponent": "kubelet", "reportingInstance": self.node_name,
            "firstTimestamp": seconds, "lastTimestamp": seconds, "eventTime": None,
            "count": 1,
        }
        if self.client is None:
            return
        task = asyncio.get_running_loop().create_task(self._post_event(body))
        self._event_tasks.add(task)
        task.add_done_callback(self._event_tasks.discard)

    async def _post_event(self, body: Obj) -> None:
        try:
            await self.client.create(EVENTS, body, body["metadata"]["namespace"])
        except ApiError as exc:
            log.debug("recording an event failed: %s", exc.message)
        except Exception as exc:  # never let an event break anything
            log.debug("recording an event failed: %s", exc)

    async def _relist_loop(self) -> None:
        """The runtime as it is, every second: wake workers whose containers changed, and
        clean up what belongs to pods this node no longer has."""
        labels = dict(self.scope_labels)
        while True:
            try:
                containers = await self.runtime.list_containers(labels=labels)
                sandboxes = await self.runtime.list_sandboxes(labels)
                state: dict[str, list[tuple[str, str]]] = {}
                for c in containers:
                    state.setdefault(c.labels.get(LABEL_POD_UID, ""), []).append(
                        (c.id, c.state.value))
                for s in sandboxes:
                    state.setdefault(s.labels.get(LABEL_POD_UID, ""), []).append(
                        (s.id, s.state.value))
                for uid, entries in state.items():
                    signature = tuple(sorted(entries))
                    worker = self.workers.get(uid)
                    if worker is None:
                        await self._cleanup_orphan(uid, containers, sandboxes)
                        continue
                    if self._relist_state.get(uid) != signature:
                        self._relist_state[uid] = signature
                        worker.wake()
                for uid in [u for u in self._relist_state if u not in state]:
                    del self._relist_state[uid]  # everything of the pod vanished
                    vanished = self.workers.get(uid)
                    if vanished is not None:
                        vanished.wake()
            except asyncio.CancelledError:
                raise
            except ContainerRuntimeError as exc:
                log.warning("relisting the runtime failed: %s", exc)
            except Exception:
                log.exception("relisting the runtime failed")
            await asyncio.sleep(self.settings.relist_seconds)

    async def _cleanup_orphan(self, uid: str, containers: list[Any],
                              sandboxes: list[Any]) -> None:
        if self.static is not None and self.static.knows(uid):
            return
        log.info("removing containers of pod %s, which this node no longer runs", uid)
        for c in containers:
            if c.labels.get(LABEL_POD_UID) == uid:
                with contextlib.suppress(ContainerRuntimeError):
                    await self.runtime.stop_container(c.id, 2)
                    await self.runtime.remove_container(c.id)
        for s in sandboxes:
            if s.labels.get(LABEL_POD_UID) == uid:
                with contextlib.suppress(ContainerRuntimeError):
                    await self.runtime.stop_sandbox(s.id)
                    await self.runtime.remove_sandbox(s.id)
        self.volumes.teardown(uid)

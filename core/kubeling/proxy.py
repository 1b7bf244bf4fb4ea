"""The Proxier interface (kube-proxy's backends) and the proxy component that drives one.

Every node runs the ``proxy`` component: it watches Services and EndpointSlices through
informers, keeps a :class:`ChangeTracker` of what changed since the last sync, and calls the
configured :class:`Proxier` (``proxy.backend``, e.g. ``iptables`` from kubeling-proxy-iptables)
with the whole desired state and the set of Services that changed, at most once per
``proxy.min_sync_period_seconds`` and at least once per ``proxy.sync_period_seconds`` (the
BoundedFrequencyRunner of kube-proxy).  A proxier turns that into dataplane rules: iptables,
nftables, IPVS or eBPF.  Everything Kubernetes-specific about which endpoints take traffic
lives here, so every backend agrees on it:

* only ``ready`` endpoints take new connections; when a Service has none, its ``serving``
  and ``terminating`` endpoints do (KEP-1669), and existing connections to a terminating
  endpoint are left alone (the backend must not cut them);
* ``internalTrafficPolicy: Local`` sends cluster traffic to this node's endpoints only,
  ``externalTrafficPolicy: Local`` does the same for NodePort/external traffic (and keeps
  the client's source address);
* headless and ExternalName Services, and Services labelled
  ``service.kubernetes.io/service-proxy-name``, are not proxied.

A third-party backend implements :class:`Proxier`, registers it with
``kubeling_register_proxiers`` and passes
:class:`kubeling.testing.proxier_contract.ProxierContract`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from kubeling.context import Context

log = logging.getLogger(__name__)

__all__ = [
    "ChangeTracker",
    "Endpoint",
    "Proxier",
    "ProxyComponent",
    "ProxyState",
    "ServicePort",
    "ServicePortName",
    "SyncResult",
    "select_endpoints",
    "usable_endpoints",
]

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"


@attrs.frozen(order=True)
class ServicePortName:
    """One port of one Service: ``namespace/name:port`` (kube-proxy's ServicePortName)."""

    namespace: str
    name: str
    port: str
    """The port's name ("" for a single unnamed port)."""
    protocol: str = "TCP"

    @property
    def service(self) -> str:
        """``namespace/name``: the key changes are tracked by."""
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}" if self.port else \
            f"{self.namespace}/{self.name}"


@attrs.frozen(kw_only=True)
class ServicePort:
    """What a proxier needs to know about one Service port."""

    name: ServicePortName
    cluster_ips: tuple[str, ...]
    port: int
    protocol: str
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    affinity_timeout: int = 0
    """``sessionAffinity: ClientIP`` timeout in seconds; 0 means no affinity."""
    external_local: bool = False
    """``externalTrafficPolicy: Local``."""
    internal_local: bool = False
    """``internalTrafficPolicy: Local``."""
    health_check_node_port: int = 0

    @property
    def external(self) -> bool:
        """Reachable from outside the cluster (node port, external or load-balancer IPs)."""
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)


@attrs.frozen(kw_only=True, order=True)
class Endpoint:
    """One backend address of a Service port, from an EndpointSlice."""

    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    local: bool = False
    """On this node (the endpoint's ``nodeName`` is this node's name)."""
    node_name: str | None = None
    zone: str | None = None

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@attrs.frozen
class ProxyState:
    """The whole desired state a proxier syncs to."""

    services: Mapping[ServicePortName, ServicePort]
    endpoints: Mapping[ServicePortName, tuple[Endpoint, ...]]

    def by_service(self) -> dict[str, list[ServicePortName]]:
        out: dict[str, list[ServicePortName]] = {}
        for name in self.services:
            out.setdefault(name.service, []).append(name)
        return out


@attrs.frozen(kw_only=True)
class SyncResult:
    """What one :meth:`Proxier.sync` did (for logs, metrics and benchmarks)."""

    full: bool
    services: int
    """Service ports written (all of them for a full sync)."""
    seconds: float
    generate_seconds: float = 0.0
    apply_seconds: float = 0.0
    lines: int = 0


def usable_endpoints(endpoints: Iterable[Endpoint], *, local_only: bool = False
                     ) -> list[Endpoint]:
    """The endpoints new connections may use: the ready ones, or when none is ready the
    serving terminating ones (KEP-1669); only this node's with ``local_only``."""
    candidates = [e for e in endpoints if e.local or not local_only]
    ready = [e for e in candidates if e.ready]
    if ready:
        return ready
    return [e for e in candidates if e.serving and e.terminating]


def select_endpoints(port: ServicePort, endpoints: Iterable[Endpoint]
                     ) -> tuple[list[Endpoint], list[Endpoint]]:
    """The endpoints new connections may use: (for cluster traffic, for external traffic).

    The Local traffic policies restrict the respective list to this node's endpoints (each
    list falls back to terminating endpoints on its own).
    """
    eps = list(endpoints)
    all_usable = usable_endpoints(eps)
    local_usable = usable_endpoints(eps, local_only=True)
    cluster = local_usable if port.internal_local else all_usable
    external = local_usable if port.external_local else all_usable
    return cluster, external


class Proxier(abc.ABC):
    """A service proxy backend: turns :class:`ProxyState` into dataplane rules.

    The component calls :meth:`start` once, then :meth:`sync` repeatedly (never
    concurrently), and :meth:`close` at shutdown (rules stay in place, as kube-proxy leaves
    them, so a restart does not interrupt traffic); :meth:`cleanup` removes everything the
    proxier ever installed (``kubeling proxy cleanup``).
    """

    name: str = "proxier"

    async def start(self, node_name: str) -> None:  # noqa: B027 (optional to override)
        """Prepare the dataplane (base chains, sysctls) for node ``node_name``."""

    @abc.abstractmethod
    async def sync(self, state: ProxyState, changed: frozenset[str] | None = None
                   ) -> SyncResult:
        """Make the dataplane match ``state``.

        :param state: every proxied Service port with its endpoints.
        :param changed: ``namespace/name`` of the Services that changed since the previous
            successful sync; ``None`` asks for a full sync (first sync, after an error).
            Rules of unchanged Services may be left as they are.
        :raises Exception: the sync failed; the caller retries with a full sync.
        """

    @abc.abstractmethod
    async def cleanup(self) -> None:
        """Remove every rule, chain and set this proxier installs."""

    async def close(self) -> None:  # noqa: B027 (optional to override)
        """Release resources; installed rules stay."""


def _ports_of(slice_: Obj) -> dict[tuple[str, str], int]:
    out = {}
    for port in slice_.get("ports") or []:
        if isinstance(port, dict) and isinstance(port.get("port"), int):
            out[(port.get("name") or "", port.get("protocol") or "TCP")] = port["port"]
    return out


class ChangeTracker:
    """Services and EndpointSlices as the informers report them, compiled per Service into
    :class:`ServicePort` and :class:`Endpoint` values, with the set of Services changed
    since the last :meth:`take`.  Only changed Services are recompiled."""

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self._services: dict[str, Obj] = {}
        self._slices: dict[str, dict[str, Obj]] = {}
        """service key -> slice name -> slice."""
        self._compiled: dict[str, tuple[dict[ServicePortName, ServicePort],
                                        dict[ServicePortName, tuple[Endpoint, ...]]]] = {}
        self._changed: set[str] = set()
        self.event = asyncio.Event()

    @staticmethod
    def _key(obj: Obj) -> str:
        meta = obj.get("metadata") or {}
        return f"{meta.get('namespace')}/{meta.get('name')}"

    def _touch(self, key: str) -> None:
        self._changed.add(key)
        self.event.set()

    def service_updated(self, obj: Obj) -> None:
        key = self._key(obj)
        old = self._services.get(key)
        if old is not None and old.get("spec") == obj.get("spec") and \
                (old.get("status") or {}).get("loadBalancer") == \
                (obj.get("status") or {}).get("loadBalancer") and \
                (old.get("metadata") or {}).get("labels") == \
                (obj.get("metadata") or {}).get("labels"):
            self._services[key] = obj
            return
        self._services[key] = obj
        self._touch(key)

    def service_deleted(self, obj: Obj) -> None:
        key = self._key(obj)
        if self._services.pop(key, None) is not None:
            self._touch(key)

    def slice_updated(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            return
        key = f"{meta.get('namespace')}/{service}"
        slices = self._slices.setdefault(key, {})
        old = slices.get(meta.get("name") or "")
        if old is not None and old.get("endpoints") == obj.get("endpoints") and \
                old.get("ports") == obj.get("ports"):
            slices[meta.get("name") or ""] = obj
            return
        slices[meta.get("name") or ""] = obj
        self._touch(key)

    def slice_deleted(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            return
        key = f"{meta.get('namespace')}/{service}"
        slices = self._slices.get(key) or {}
        if slices.pop(meta.get("name") or "", None) is not None:
            if not slices:
                self._slices.pop(key, None)
            self._touch(key)

    @property
    def pending(self) -> frozenset[str]:
        return frozenset(self._changed)

    def take(self) -> tuple[ProxyState, frozenset[str]]:
        """The current state and the Services changed since the previous call."""
        changed = frozenset(self._changed)
        self._changed.clear()
        self.event.clear()
        for key in changed:
            compiled = self._compile(key)
            if compiled is None:
                self._compiled.pop(key, None)
            else:
                self._compiled[key] = compiled
        services: dict[ServicePortName, ServicePort] = {}
        endpoints: dict[ServicePortName, tuple[Endpoint, ...]] = {}
        for ports, eps in self._compiled.values():
            services.update(ports)
            endpoints.update(eps)
        return ProxyState(services, endpoints), changed

    def state(self) -> ProxyState:
        """The current state, without consuming the changes."""
        changed = set(self._changed)
        state, _ = self.take()
        self._changed = changed
        if changed:
            self.event.set()
        return state

    def _compile(self, key: str) -> tuple[dict[ServicePortName, ServicePort],
                                          dict[ServicePortName, tuple[Endpoint, ...]]] | None:
        svc = self._services.get(key)
        if svc is None:
            return None
        ports = compile_service(svc)
        if not ports:
            return None
        slices = list((self._slices.get(key) or {}).values())
        eps = {name: compile_endpoints(port, slices, self.node_name)
               for name, port in ports.items()}
        return ports, eps


def compile_service(svc: Obj) -> dict[ServicePortName, ServicePort]:
    """The proxied ports of a Service object (none for headless/ExternalName ones)."""
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    if (meta.get("labels") or {}).get(SERVICE_PROXY_NAME_LABEL):
        return {}
    if spec.get("type") == "ExternalName":
        return {}
    ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]
           if isinstance(ip, str) and ip and ip != "None"]
    if not ips:
        return {}
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        affinity = int(((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
                       .get("timeoutSeconds") or 10800)
    lb_ips = tuple(i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {})
                   .get("ingress") or [] if isinstance(i, dict) and i.get("ip"))
    out = {}
    for port in spec.get("ports") or []:
        if not isinstance(port, dict) or not isinstance(port.get("port"), int):
            continue
        protocol = port.get("protocol") or "TCP"
        name = ServicePortName(meta.get("namespace") or "", meta.get("name") or "",
                               port.get("name") or "", protocol)
        out[name] = ServicePort(
            name=name, cluster_ips=tuple(ips), port=port["port"], protocol=protocol,
            node_port=int(port.get("nodePort") or 0),
            external_ips=tuple(spec.get("externalIPs") or ()),
            load_balancer_ips=lb_ips if spec.get("type") == "LoadBalancer" else (),
            affinity_timeout=affinity,
            external_local=spec.get("externalTrafficPolicy") == "Local",
            internal_local=spec.get("internalTrafficPolicy") == "Local",
            health_check_node_port=int(spec.get("healthCheckNodePort") or 0))
    return out


def compile_endpoints(port: ServicePort, slices: Iterable[Obj], node_name: str
                      ) -> tuple[Endpoint, ...]:
    """The endpoints of one Service port from the Service's EndpointSlices (deduplicated,
    sorted by address; both families of a dual-stack Service, for backends to split)."""
    found: dict[tuple[str, int], Endpoint] = {}
    families = {"IPv6" if ":" in ip else "IPv4" for ip in port.cluster_ips}
    for slice_ in slices:
        if slice_.get("addressType") not in families:
            continue
        number = _ports_of(slice_).get((port.name.port, port.protocol))
        if number is None:
            continue
        for ep in slice_.get("endpoints") or []:
            if not isinstance(ep, dict) or not ep.get("addresses"):
                continue
            cond = ep.get("conditions") or {}
            # an unset condition means "unknown": ready unless terminating (the API's rule)
            terminating = cond.get("terminating") is True
            ready = cond.get("ready") if cond.get("ready") is not None else not terminating
            serving = cond.get("serving") if cond.get("serving") is not None else ready
            endpoint = Endpoint(ip=ep["addresses"][0], port=number, ready=bool(ready),
                                serving=bool(serving), terminating=terminating,
                                local=bool(node_name) and ep.get("nodeName") == node_name,
                                node_name=ep.get("nodeName"), zone=ep.get("zone"))
            previous = found.get((endpoint.ip, number))
            if previous is None or (endpoint.ready and not previous.ready):
                found[(endpoint.ip, number)] = endpoint
    return tuple(sorted(found.values(), key=lambda e: (e.ip, e.port)))


class ProxyComponent:
    """The node's service proxy: informers -> :class:`ChangeTracker` -> rate-limited
    :meth:`Proxier.sync`."""

    def __init__(self, ctx: Context, proxier: Proxier | None = None, *,
                 node_name: str | None = None) -> None:
        config = ctx.config.proxy
        self.ctx = ctx
        self.proxier = proxier if proxier is not None else ctx.make_backend(
            "proxier", config.backend, config_key="proxy.backend")
        self.node_name = node_name or ctx.config.node.name or socket.gethostname()
        self.min_sync_period = float(getattr(config, "min_sync_period_seconds", 1.0))
        self.sync_period = float(getattr(config, "sync_period_seconds", 30.0))
        self.tracker = ChangeTracker(self.node_name)
        self.last_result: SyncResult | None = None
        self.syncs = 0
        self.synced = asyncio.Event()
        """Set after the first successful sync."""

    async def run(self) -> None:
        """Watch Services and EndpointSlices and keep the proxier in sync until cancelled."""
        from kubeling.client.resources import ENDPOINTSLICES, SERVICES

        informers = self.ctx.informers
        services = informers.informer(SERVICES)
        slices = informers.informer(ENDPOINTSLICES)
        t = self.tracker
        services.add_handler(on_add=t.service_updated,
                             on_update=lambda _old, new: t.service_updated(new),
                             on_delete=t.service_deleted)
        slices.add_handler(on_add=t.slice_updated,
                           on_update=lambda _old, new: t.slice_updated(new),
                           on_delete=t.slice_deleted)
        services.start()
        slices.start()
        await services.wait_synced()
        await slices.wait_synced()
        await self.proxier.start(self.node_name)
        await self.loop()

    async def loop(self) -> None:
        """The sync loop (separate from :meth:`run` so tests can feed the tracker)."""
        full = True
        last = 0.0
        failures = 0
        while True:
            period = self.min_sync_period
            if failures:  # back off while the dataplane keeps refusing (not root, ...)
                period = max(period, min(30.0, period * 2 ** (failures - 1)))
            wait = period - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
            state, changed = self.tracker.take()
            started = time.monotonic()
            try:
                result = await self.proxier.sync(state, None if full else changed)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                if failures <= 3 or failures % 20 == 0:
                    log.exception("proxy sync failed (%d in a row); retrying with a full "
                                  "sync", failures)
                full = True
                last = time.monotonic()
                self.tracker.event.set()
                continue
            last = started
            full = False
            failures = 0
            self.syncs += 1
            self.last_result = result
            self.synced.set()
            log.debug("proxy sync: %s", result)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sync_period):
                    await self.tracker.event.wait()

    async def close(self) -> None:
        await self.proxier.close()


def proxy_component(ctx: Context) -> ProxyComponent | None:
    """The ``proxy`` component's factory: None (not started) when ``proxy.enabled`` is
    false."""
    if not getattr(ctx.config.proxy, "enabled", True):
        return None
    return ProxyComponent(ctx)

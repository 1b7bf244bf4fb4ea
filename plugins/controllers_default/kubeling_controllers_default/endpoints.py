"""Endpoints and EndpointSlices of Services with selectors.

For every Service with a ``spec.selector`` both controllers list the pods it selects that
have an IP and have not finished, and resolve each service port's ``targetPort`` per pod
(a named target port is looked up among the pod's container ports, so pods may serve it on
different numbers):

* :class:`EndpointsController` writes the v1 ``Endpoints`` object named after the Service:
  ready pods under ``addresses``, others under ``notReadyAddresses`` (all under
  ``addresses`` with ``publishNotReadyAddresses``), terminating pods left out, subsets
  grouped by port set, at most 1000 addresses (then ``endpoints.kubernetes.io/over-capacity:
  truncated``).
* :class:`EndpointSliceController` writes ``discovery.k8s.io/v1`` EndpointSlices, one
  address type per IP family, grouped by port set, at most ``endpoint_slice_max_endpoints``
  endpoints each, with the ``ready``/``serving``/``terminating`` conditions (terminating
  pods stay listed, not ready), node name, zone, hostname and a ``targetRef``.  Slices are
  labelled ``kubernetes.io/service-name`` and
  ``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`` and owned by
  the Service; endpoints stay in the slice they are in when they can, so a change rewrites
  few slices.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson

from kubeling.api.selectors import label_selector_from_set
from kubeling.client import ApiError
from kubeling_controllers_default.base import Controller, ControllerContext, Requeue
from kubeling_controllers_default.indexes import BY_NAMESPACE, by_namespace
from kubeling_controllers_default.resources import (
    ENDPOINTS,
    ENDPOINTSLICES,
    NODES,
    PODS,
    SERVICES,
)
from kubeling_controllers_default.util import is_pod_ready, meta, ns_name, owner_ref

__all__ = ["EndpointSliceController", "EndpointsController", "find_port"]

Obj = dict[str, Any]

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS = "service.kubernetes.io/headless"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
MAX_ENDPOINTS_ADDRESSES = 1000
ZONE = "topology.kubernetes.io/zone"
STALE_LIMIT_SECONDS = 5.0


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port for a service port: a named ``targetPort`` looked up among the
    containers' ports (same protocol), a number taken as is."""
    target = service_port.get("targetPort")
    if target in (None, "", 0):
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in [*(spec.get("containers") or []), *sidecars]:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port.get("containerPort"))
    return None


def _pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [i.get("ip") for i in status.get("podIPs") or [] if i.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


def _eligible(pod: Obj, *, include_terminating: bool) -> bool:
    status = pod.get("status") or {}
    phase = status.get("phase")
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if phase == "Failed" or (phase == "Succeeded" and policy != "Always"):
        return False
    if not include_terminating and meta(pod).get("deletionTimestamp") is not None:
        return False
    return bool(_pod_ips(pod))


def _hostname(pod: Obj, service: Obj) -> str | None:
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == meta(service).get("name") and \
            meta(pod).get("namespace") == meta(service).get("namespace"):
        return str(spec["hostname"])
    return None


def _target_ref(pod: Obj) -> Obj:
    m = meta(pod)
    return {"kind": "Pod", "namespace": m.get("namespace"), "name": m.get("name"),
            "uid": m.get("uid")}


def _selected_pods(service: Obj, pods: list[Obj]) -> list[Obj]:
    selector = label_selector_from_set((service.get("spec") or {}).get("selector"))
    return [p for p in pods if selector.matches(meta(p).get("labels") or {})]


def _headless(service: Obj) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


class _ServicePodsController(Controller):
    """What both controllers share: services and the pods they select."""

    component = ""

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.services = self.informer(SERVICES)
        self.pods = self.informer(PODS)
        self.services_by_ns = ctx.index(SERVICES, BY_NAMESPACE, by_namespace)
        self.pods_by_ns = ctx.index(PODS, BY_NAMESPACE, by_namespace)
        self.services.add_handler(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n),
                                  on_delete=self.enqueue)
        self.pods.add_handler(on_add=lambda p: self._pod_changed(p, None),
                              on_update=lambda o, n: self._pod_changed(n, o),
                              on_delete=lambda p: self._pod_changed(p, None))

    def _pod_changed(self, pod: Obj, old: Obj | None) -> None:
        if old is not None and meta(old).get("resourceVersion") == \
                meta(pod).get("resourceVersion"):
            return
        label_sets = [meta(pod).get("labels") or {}]
        if old is not None and meta(old).get("labels") != meta(pod).get("labels"):
            label_sets.append(meta(old).get("labels") or {})
        for service in self.services_by_ns.get(str(meta(pod).get("namespace") or "")):
            selector = (service.get("spec") or {}).get("selector")
            if not selector:
                continue
            sel = label_selector_from_set(selector)
            if any(sel.matches(labels) for labels in label_sets):
                self.enqueue(service)


class EndpointsController(_ServicePodsController):
    """core/v1 Endpoints of Services with selectors."""

    name = "endpoints"
    component = "endpoint-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.endpoints = self.informer(ENDPOINTS)
        self.endpoints.add_handler(on_delete=self._endpoints_deleted)

    def _endpoints_deleted(self, endpoints: Obj) -> None:
        key = ns_name(endpoints)
        if self.services.get(key) is not None:
            self.enqueue(key)

    def subsets(self, service: Obj) -> tuple[list[Obj], bool]:
        """The subsets of ``service`` and whether they were truncated to 1000 addresses."""
        spec = service.get("spec") or {}
        tolerate_unready = bool(spec.get("publishNotReadyAddresses"))
        ports = spec.get("ports") or []
        groups: dict[bytes, Obj] = {}
        total = 0
        truncated = False
        pods = _selected_pods(service, self.pods_by_ns.get(str(meta(service)["namespace"])))
        for pod in sorted(pods, key=lambda p: str(meta(p).get("name"))):
            if not _eligible(pod, include_terminating=False):
                continue
            address: Obj = {"ip": _pod_ips(pod)[0], "targetRef": _target_ref(pod)}
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                address["nodeName"] = node
            hostname = _hostname(pod, service)
            if hostname:
                address["hostname"] = hostname
            ready = tolerate_unready or is_pod_ready(pod)
            pod_ports = []
            for sp in ports:
                number = find_port(pod, sp)
                if number is None:
                    continue
                port: Obj = {"port": number, "protocol": sp.get("protocol") or "TCP"}
                if sp.get("name"):
                    port["name"] = sp["name"]
                if sp.get("appProtocol"):
                    port["appProtocol"] = sp["appProtocol"]
                pod_ports.append(port)
            if ports and not pod_ports:
                continue
            if total >= MAX_ENDPOINTS_ADDRESSES:
                truncated = True
                continue
            total += 1
            key = orjson.dumps(sorted(pod_ports, key=lambda p: (p.get("name", ""), p["port"])))
            subset = groups.setdefault(key, {"ports": pod_ports})
            subset.setdefault("addresses" if ready else "notReadyAddresses", []).append(address)
        out = []
        for subset in groups.values():
            for kind in ("addresses", "notReadyAddresses"):
                if kind in subset:
                    subset[kind].sort(key=lambda a: (a["ip"], a["targetRef"]["name"]))
            if not subset["ports"]:
                del subset["ports"]
            out.append(subset)
        out.sort(key=lambda s: orjson.dumps(s.get("ports") or []))
        return out, truncated

    async def reconcile(self, key: str) -> None:
        service = self.services.get(key)
        namespace, _, name = key.partition("/")
        if service is None:
            try:
                await self.client.delete(ENDPOINTS, name, namespace)
            except ApiError as exc:
                if exc.code != 404:
                    raise
            return
        if not (service.get("spec") or {}).get("selector"):
            return
        subsets, truncated = self.subsets(service)
        labels = dict(meta(service).get("labels") or {})
        if _headless(service):
            labels[HEADLESS] = ""
        current = self.endpoints.get(key)
        annotations = dict(meta(current).get("annotations") or {}) if current else {}
        if truncated:
            annotations[OVER_CAPACITY] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY, None)
        if current is not None and (current.get("subsets") or []) == subsets and \
                (meta(current).get("labels") or {}) == labels and \
                (meta(current).get("annotations") or {}) == annotations:
            return
        body: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": name, "namespace": namespace, "labels": labels},
                     "subsets": subsets}
        if annotations:
            body["metadata"]["annotations"] = annotations
        try:
            if current is None:
                await self.client.create(ENDPOINTS, body, namespace)
            else:
                body["metadata"] = {**meta(current), "labels": labels,
                                    "annotations": annotations}
                await self.client.update(ENDPOINTS, body)
        except ApiError as exc:
            if exc.code == 403 and "being terminated" in exc.message:
                return
            raise


def _family(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return ""


def _norm_ports(ports: list[Obj]) -> list[Obj]:
    out = []
    for p in ports:
        port = {"name": p.get("name") or "", "protocol": p.get("protocol") or "TCP",
                "port": p.get("port")}
        if p.get("appProtocol"):
            port["appProtocol"] = p["appProtocol"]
        out.append(port)
    return sorted(out, key=lambda p: (p["name"], p["protocol"], p["port"] or 0))


class EndpointSliceController(_ServicePodsController):
    """discovery.k8s.io/v1 EndpointSlices of Services with selectors."""

    name = "endpointslice"
    component = "endpointslice-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.slices = self.informer(ENDPOINTSLICES)
        self.nodes = self.informer(NODES)
        self.slices_by_service = ctx.index(ENDPOINTSLICES, "by-service", self._service_of)
        self.slices.add_handler(on_add=self._slice_changed,
                                on_update=lambda _o, n: self._slice_changed(n),
                                on_delete=self._slice_changed)
        self.written: dict[str, tuple[str, int, float]] = {}
        """slice key -> (service key, resourceVersion we wrote or -1 for a delete, when),
        until the cache shows that write (so a sync never acts on slices older than its
        own writes)."""

    @staticmethod
    def _service_of(eps: Obj) -> list[str]:
        labels = meta(eps).get("labels") or {}
        if labels.get(MANAGED_BY) != CONTROLLER_NAME or not labels.get(SERVICE_NAME):
            return []
        return [f"{meta(eps).get('namespace')}/{labels[SERVICE_NAME]}"]

    def _slice_changed(self, eps: Obj) -> None:
        for key in self._service_of(eps):
            self.enqueue(key)

    def _stale(self, key: str) -> bool:
        """Whether the cache still lags our own writes to ``key``'s slices."""
        stale = False
        now = self.clock.monotonic()
        for slice_key, (service_key, rv, when) in list(self.written.items()):
            if service_key != key:
                continue
            if now - when > STALE_LIMIT_SECONDS:
                del self.written[slice_key]
                continue
            cached = self.slices.get(slice_key)
            if rv < 0:
                done = cached is None
            else:
                done = cached is not None and \
                    int(meta(cached).get("resourceVersion") or 0) >= rv
            if done:
                del self.written[slice_key]
            else:
                stale = True
        return stale

    def desired(self, service: Obj) -> dict[str, dict[bytes, tuple[list[Obj], list[Obj]]]]:
        """address type -> port-set key -> (ports, endpoints)."""
        spec = service.get("spec") or {}
        families = spec.get("ipFamilies") or ["IPv4"]
        publish = bool(spec.get("publishNotReadyAddresses"))
        out: dict[str, dict[bytes, tuple[list[Obj], list[Obj]]]] = {f: {} for f in families}
        pods = _selected_pods(service, self.pods_by_ns.get(str(meta(service)["namespace"])))
        for pod in pods:
            if not _eligible(pod, include_terminating=True):
                continue
            ports = []
            for sp in spec.get("ports") or []:
                number = find_port(pod, sp)
                if number is None:
                    continue
                port: Obj = {"name": sp.get("name") or "", "port": number,
                             "protocol": sp.get("protocol") or "TCP"}
                if sp.get("appProtocol"):
                    port["appProtocol"] = sp["appProtocol"]
                ports.append(port)
            if spec.get("ports") and not ports:
                continue
            ports = _norm_ports(ports)
            terminating = meta(pod).get("deletionTimestamp") is not None
            serving = publish or is_pod_ready(pod)
            node_name = (pod.get("spec") or {}).get("nodeName")
            for ip in _pod_ips(pod):
                family = _family(ip)
                if family not in out:
                    continue
                endpoint: Obj = {"addresses": [ip],
                                 "conditions": {"ready": serving and not terminating,
                                                "serving": serving,
                                                "terminating": terminating},
                                 "targetRef": _target_ref(pod)}
                hostname = _hostname(pod, service)
                if hostname:
                    endpoint["hostname"] = hostname
                if node_name:
                    endpoint["nodeName"] = node_name
                    node = self.nodes.get(node_name)
                    zone = (meta(node).get("labels") or {}).get(ZONE) if node else None
                    if zone:
                        endpoint["zone"] = zone
                group = out[family].setdefault(orjson.dumps(ports), (ports, []))
                group[1].append(endpoint)
        return out

    async def reconcile(self, key: str) -> None:
        service = self.services.get(key)
        namespace, _, name = key.partition("/")
        existing = self.slices_by_service.get(key)
        if self._stale(key):
            raise Requeue(0.05)
        if service is None or not (service.get("spec") or {}).get("selector"):
            for eps in existing:
                await self._delete(eps)
            return
        desired = self.desired(service)
        labels = {k: v for k, v in (meta(service).get("labels") or {}).items()
                  if k not in (SERVICE_NAME, MANAGED_BY)}
        labels[SERVICE_NAME] = name
        labels[MANAGED_BY] = CONTROLLER_NAME
        if _headless(service):
            labels[HEADLESS] = ""
        limit = self.settings.endpoint_slice_max_endpoints
        keep_placeholder = not any(groups for groups in desired.values())
        placeholder_done = False
        for address_type, groups in desired.items():
            slices = [s for s in existing if s.get("addressType") == address_type]
            if keep_placeholder and not placeholder_done:
                # a Service without endpoints still gets one (empty) slice
                groups = {orjson.dumps([]): ([], [])}
                placeholder_done = True
            await self._reconcile_type(service, namespace, name, address_type, groups, slices,
                                       labels, limit)
        for eps in existing:
            if eps.get("addressType") not in desired:
                await self._delete(eps)

    async def _reconcile_type(self, service: Obj, namespace: str, name: str,
                              address_type: str, groups: dict[bytes, tuple[list[Obj],
                                                                         list[Obj]]],
                              slices: list[Obj], labels: dict[str, str], limit: int) -> None:
        by_ports: dict[bytes, list[Obj]] = {}
        for eps in slices:
            by_ports.setdefault(orjson.dumps(_norm_ports(eps.get("ports") or [])),
                                []).append(eps)
        for ports_key, found in by_ports.items():
            if ports_key not in groups:
                for eps in found:
                    await self._delete(eps)
        for ports_key, (ports, endpoints) in groups.items():
            wanted = {orjson.dumps(e["targetRef"]) + b"@" + e["addresses"][0].encode(): e
                      for e in endpoints}
            current = sorted(by_ports.get(ports_key, []), key=lambda s: meta(s)["name"])
            plans: list[tuple[Obj | None, list[Obj]]] = []
            placed: set[bytes] = set()
            for eps in current:
                kept = []
                for e in eps.get("endpoints") or []:
                    ident = orjson.dumps(e.get("targetRef") or {}) + b"@" + \
                        (e.get("addresses") or [""])[0].encode()
                    if ident in wanted and ident not in placed:
                        kept.append(wanted[ident])
                        placed.add(ident)
                plans.append((eps, kept))
            rest = [e for ident, e in sorted(wanted.items()) if ident not in placed]
            for _, kept in plans:
                while rest and len(kept) < limit:
                    kept.append(rest.pop(0))
            while rest:
                plans.append((None, rest[:limit]))
                rest = rest[limit:]
            if not wanted:
                # the placeholder: exactly one slice, empty
                plans = plans[:1] or [(None, [])]
                for eps in current[1:]:
                    await self._delete(eps)
            for eps, kept in plans:
                if eps is not None and not kept and wanted:
                    await self._delete(eps)
                    continue
                await self._write(service, namespace, name, address_type, ports, eps, kept,
                                  labels)

    async def _write(self, service: Obj, namespace: str, name: str, address_type: str,
                     ports: list[Obj], eps: Obj | None, endpoints: list[Obj],
                     labels: dict[str, str]) -> None:
        endpoints = sorted(endpoints, key=lambda e: (e["addresses"][0],
                                                     e["targetRef"].get("name") or ""))
        if eps is not None:
            same = (eps.get("endpoints") or []) == endpoints and \
                _norm_ports(eps.get("ports") or []) == ports and \
                (meta(eps).get("labels") or {}) == labels
            if same:
                return
            body = {**eps, "metadata": {**meta(eps), "labels": labels},
                    "endpoints": endpoints, "ports": ports}
            try:
                written = await self.client.update(ENDPOINTSLICES, body)
            except ApiError as exc:
                if exc.code == 404:
                    return
                raise
        else:
            body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": f"{name}-", "namespace": namespace,
                                 "labels": labels, "ownerReferences": [owner_ref(service)]},
                    "addressType": address_type, "endpoints": endpoints, "ports": ports}
            try:
                written = await self.client.create(ENDPOINTSLICES, body, namespace)
            except ApiError as exc:
                if exc.code == 403 and "being terminated" in exc.message:
                    return
                raise
        self.written[ns_name(written)] = (f"{namespace}/{name}",
                                          int(meta(written)["resourceVersion"]),
                                          self.clock.monotonic())

    async def _delete(self, eps: Obj) -> None:
        m = meta(eps)
        owner = self._service_of(eps)
        try:
            await self.client.delete(ENDPOINTSLICES, m["name"], m["namespace"],
                                     preconditions={"uid": m.get("uid")})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise
        if owner:
            self.written[ns_name(eps)] = (owner[0], -1, self.clock.monotonic())

"""Hook implementations: the ``dns`` config section and the ``dns`` component (role node).

On every node the component serves cluster DNS on the node's address (``dns.port``,
10053 by default, so it does not collide with a resolver already on port 53), makes sure
the ``kube-system/kube-dns`` Service exists at ``dns.service_ip`` (10.96.0.10) with ports
53/UDP and 53/TCP, and publishes itself as an endpoint of that Service with an
EndpointSlice of its own (``kube-dns-<node>``); the service proxy then carries pods'
queries to 10.96.0.10:53 to it, as CoreDNS pods are reached in Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from kubeling import hookimpl
from kubeling.dnsconfig import DEFAULT_CLUSTER_DNS, DEFAULT_CLUSTER_DOMAIN, parse_resolv_conf
from kubeling_dns.resolver import ClusterIndex, ClusterResolver
from kubeling_dns.server import DnsServer

if TYPE_CHECKING:
    from kubeling.context import Context
    from kubeling.plugins import RegisterComponent, RegisterConfigSection

log = logging.getLogger(__name__)

__all__ = ["ClusterDnsSettings", "DnsComponent", "kubeling_register_components",
           "kubeling_register_config_sections"]

MANAGED_BY = "dns.kubeling.io"


def _check_pods(_i: object, _a: object, value: str) -> None:
    if value not in ("insecure", "verified", "disabled"):
        raise ValueError(f"pods must be insecure, verified or disabled, not {value!r}")


@attrs.frozen(kw_only=True)
class ClusterDnsSettings:
    """The ``dns`` config section."""

    enabled: bool = True
    """Run cluster DNS on this node."""
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    """The cluster domain (the kubelet's ``clusterDomain`` must agree)."""
    service_ip: str = DEFAULT_CLUSTER_DNS[0]
    """Cluster IP of ``kube-system/kube-dns`` (the kubelet's ``clusterDNS`` must agree)."""
    listen_address: str | None = None
    """Address to serve on, published as the Service's endpoint; default: the node's
    primary address."""
    port: int = 10053
    """Port to serve on (UDP and TCP)."""
    upstream: list[str] = attrs.field(factory=list)
    """Resolvers for names outside the cluster domain; default: the host's resolv.conf."""
    resolv_conf: str = "/etc/resolv.conf"
    """Where the host's resolvers are read from when ``upstream`` is empty."""
    pods: str = attrs.field(default="insecure", validator=_check_pods)
    """Pod A records: ``insecure`` (any), ``verified`` (existing pods) or ``disabled``."""
    ttl: int = 5
    """TTL of cluster answers, in seconds."""


def host_upstream(resolv_conf: str | Path) -> list[str]:
    """The host's nameservers (what other names are forwarded to)."""
    try:
        return list(parse_resolv_conf(Path(resolv_conf).read_text()).nameservers)
    except OSError:
        return []


def bind_sockets(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A bound UDP socket and a listening TCP socket on ``address:port`` (port 0: one free
    port for both)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for attempt in range(50):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            udp.bind((address, port))
            tcp.bind((address, udp.getsockname()[1]))
            tcp.listen(128)
        except OSError:
            udp.close()
            tcp.close()
            if port or attempt == 49:
                raise
            continue
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp
    raise OSError("no free port")


class DnsComponent:
    """Cluster DNS on one node: informers -> :class:`ClusterIndex` -> :class:`DnsServer`."""

    def __init__(self, ctx: Context, settings: ClusterDnsSettings | None = None, *,
                 node_name: str | None = None,
                 sockets: tuple[socket.socket, socket.socket] | None = None,
                 endpoint_address: str | None = None) -> None:
        self.ctx = ctx
        self.settings = settings or ClusterDnsSettings()
        self.node_name = node_name or ctx.config.node.name or socket.gethostname()
        self.index = ClusterIndex()
        self.resolver = ClusterResolver(self.index, domain=self.settings.cluster_domain,
                                        ttl=self.settings.ttl, pods=self.settings.pods)
        upstream = self.settings.upstream or host_upstream(self.settings.resolv_conf)
        self.server = DnsServer(self.resolver, upstream=upstream)
        self._sockets = sockets
        self._address = endpoint_address
        self.ready = asyncio.Event()
        self._client: Any = None

    @property
    def slice_name(self) -> str:
        return f"kube-dns-{self.node_name}".lower()[:63].rstrip("-.")

    async def run(self) -> None:
        from kubeling.api.allocation import primary_host_address
        from kubeling.client.resources import ENDPOINTSLICES, PODS, SERVICES

        informers = self.ctx.informers
        index = self.index
        services = informers.informer(SERVICES)
        services.add_handler(on_add=index.service_updated,
                             on_update=lambda _o, n: index.service_updated(n),
                             on_delete=index.service_deleted)
        slices = informers.informer(ENDPOINTSLICES)
        slices.add_handler(on_add=index.slice_updated,
                           on_update=lambda _o, n: index.slice_updated(n),
                           on_delete=index.slice_deleted)
        watched = [services, slices]
        if self.settings.pods == "verified":
            pods = informers.informer(PODS)
            pods.add_handler(on_add=index.pod_updated,
                             on_update=lambda _o, n: index.pod_updated(n),
                             on_delete=index.pod_deleted)
            watched.append(pods)
        for informer in watched:
            informer.start()
        for informer in watched:
            await informer.wait_synced()
        address = self._address or self.settings.listen_address or primary_host_address()
        if address is None:
            raise RuntimeError("cluster DNS: no address to serve on; set dns.listen_address")
        udp, tcp = self._sockets or bind_sockets(address, self.settings.port)
        port = udp.getsockname()[1]
        await self.server.start(udp, tcp)
        self._client = self.ctx.client("kubeling-dns")
        await self._ensure_service()
        while True:
            try:
                await self._publish(address, port)
                self.ready.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cluster DNS: publishing the endpoint failed")
            await asyncio.sleep(30)

    async def _ensure_service(self) -> None:
        from kubeling.client import ApiError
        from kubeling.client.resources import SERVICES

        body = {"metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {
                    "k8s-app": "kube-dns", "kubernetes.io/name": "kubeling-dns",
                    "kubernetes.io/cluster-service": "true"}},
                "spec": {"clusterIP": self.settings.service_ip,
                         "clusterIPs": [self.settings.service_ip],
                         "ports": [{"name": "dns", "port": 53, "protocol": "UDP",
                                    "targetPort": 53},
                                   {"name": "dns-tcp", "port": 53, "protocol": "TCP",
                                    "targetPort": 53}]}}
        try:
            await self._client.create(SERVICES, body, "kube-system")
        except ApiError as exc:
            if exc.code != 409:
                raise

    async def _publish(self, address: str, port: int) -> None:
        from kubeling.client import ApiError
        from kubeling.client.resources import ENDPOINTSLICES

        body = {"metadata": {"name": self.slice_name, "namespace": "kube-system", "labels": {
                    "kubernetes.io/service-name": "kube-dns",
                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
                "addressType": "IPv6" if ":" in address else "IPv4",
                "endpoints": [{"addresses": [address], "nodeName": self.node_name,
                               "conditions": {"ready": True, "serving": True,
                                              "terminating": False}}],
                "ports": [{"name": "dns", "port": port, "protocol": "UDP"},
                          {"name": "dns-tcp", "port": port, "protocol": "TCP"}]}
        try:
            current = await self._client.get(ENDPOINTSLICES, self.slice_name, "kube-system")
        except ApiError as exc:
            if exc.code != 404:
                raise
            await self._client.create(ENDPOINTSLICES, body, "kube-system")
            return
        if current.get("endpoints") != body["endpoints"] or current.get("ports") != \
                body["ports"]:
            current.update({k: body[k] for k in ("addressType", "endpoints", "ports")})
            await self._client.update(ENDPOINTSLICES, current)

    async def close(self) -> None:
        from kubeling.client.resources import ENDPOINTSLICES

        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.delete(ENDPOINTSLICES, self.slice_name, "kube-system")
        await self.server.close()


def dns_component(ctx: Context) -> DnsComponent | None:
    """The ``dns`` component's factory: None when ``dns.enabled`` is false, and when the
    service proxy is off (``proxy.enabled: false``), since pods reach DNS through it."""
    settings = ctx.config.section("dns") or ClusterDnsSettings()
    if not settings.enabled or not getattr(ctx.config.proxy, "enabled", True):
        return None
    return DnsComponent(ctx, settings)


@hookimpl
def kubeling_register_config_sections(register: RegisterConfigSection) -> None:
    """Add the ``dns`` section."""
    register("dns", ClusterDnsSettings)


@hookimpl
def kubeling_register_components(register: RegisterComponent) -> None:
    """Register cluster DNS as a node component."""
    register("dns", dns_component, role="node")

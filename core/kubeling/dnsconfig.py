"""A pod's ``/etc/resolv.conf``, as the kubelet writes it (for runtimes and node agents).

:func:`pod_resolv_conf` follows the kubelet's rules for ``spec.dnsPolicy`` and
``spec.dnsConfig``:

* ``ClusterFirst`` (the default): the cluster DNS Service's IP as nameserver, search paths
  ``<namespace>.svc.<domain> svc.<domain> <domain>`` followed by the host's, and
  ``options ndots:5``; a ``hostNetwork`` pod gets the host's configuration instead, and so
  does any pod when no cluster DNS is configured;
* ``ClusterFirstWithHostNet``: the cluster configuration even with ``hostNetwork``;
* ``Default``: the host's resolv.conf (nameservers, search, options);
* ``None``: only what ``dnsConfig`` says.

``dnsConfig`` is merged on top: its nameservers and searches are appended (without
duplicates), its options override same-named ones.  At most 3 nameservers and 32 search
domains (2048 characters in all) are kept, as Kubernetes does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "DEFAULT_CLUSTER_DNS",
    "DEFAULT_CLUSTER_DOMAIN",
    "DnsSettings",
    "cluster_dns_from_config",
    "host_settings",
    "parse_resolv_conf",
    "pod_resolv_conf",
    "pod_settings",
    "render_resolv_conf",
]

DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_CLUSTER_DNS = ("10.96.0.10",)
"""The ``kube-dns`` Service's cluster IP (``kubeling-dns`` creates it there)."""
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048


@attrs.frozen(kw_only=True)
class DnsSettings:
    """Nameservers, search domains and options of one resolv.conf."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    """``ndots:5``, ``edns0``, ...: ``name`` or ``name:value``."""


def parse_resolv_conf(text: str) -> DnsSettings:
    """The nameservers, search domains (``domain`` counts as one) and options of a
    resolv.conf."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        key, *values = line.split()
        if key == "nameserver" and values:
            nameservers.append(values[0])
        elif key in ("search", "domain"):
            searches = list(values)  # the last search/domain line wins, as in glibc
        elif key == "options":
            options.extend(values)
    return DnsSettings(nameservers=tuple(nameservers), searches=tuple(searches),
                       options=tuple(options))


def render_resolv_conf(settings: DnsSettings) -> str:
    """resolv.conf text for ``settings``."""
    lines = []
    if settings.searches:
        lines.append("search " + " ".join(settings.searches))
    lines += [f"nameserver {ns}" for ns in settings.nameservers]
    if settings.options:
        lines.append("options " + " ".join(settings.options))
    return "\n".join(lines) + "\n"


def _dedupe(values: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for value in values:
        if value and value not in seen:
            seen.add(value)
            out.append(value)
    return out


def _merge_options(base: Sequence[str], extra: Sequence[Any]) -> list[str]:
    merged: dict[str, str] = {}
    for option in base:
        name, sep, value = option.partition(":")
        merged[name] = f"{name}:{value}" if sep else name
    for option in extra:
        if not isinstance(option, dict) or not option.get("name"):
            continue
        name = option["name"]
        value = option.get("value")
        merged[name] = f"{name}:{value}" if value not in (None, "") else name
    return list(merged.values())


def _limit_searches(searches: list[str]) -> list[str]:
    out: list[str] = []
    total = 0
    for domain in searches[:MAX_SEARCHES]:
        total += len(domain) + (1 if out else 0)
        if total > MAX_SEARCH_CHARS:
            break
        out.append(domain)
    return out


def pod_settings(pod: dict[str, Any], *, cluster_dns: Sequence[str] = DEFAULT_CLUSTER_DNS,
                 cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
                 host: DnsSettings | None = None) -> DnsSettings:
    """The DNS settings of ``pod`` (a Pod as a JSON-shaped dict)."""
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_network = bool(spec.get("hostNetwork"))
    host = host or DnsSettings()
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy == "ClusterFirst" and host_network:
        policy = "Default"
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and not cluster_dns:
        policy = "Default"  # the kubelet does the same when it has no cluster DNS
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        nameservers = list(cluster_dns)
        domain = cluster_domain.strip(".")
        searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *host.searches]
        options = ["ndots:5"]
    elif policy == "Default":
        nameservers = list(host.nameservers)
        searches = list(host.searches)
        options = list(host.options)
    config = spec.get("dnsConfig") or {}
    nameservers += [ns for ns in config.get("nameservers") or [] if isinstance(ns, str)]
    searches += [s for s in config.get("searches") or [] if isinstance(s, str)]
    options = _merge_options(options, config.get("options") or [])
    return DnsSettings(nameservers=tuple(_dedupe(nameservers)[:MAX_NAMESERVERS]),
                       searches=tuple(_limit_searches(_dedupe(searches))),
                       options=tuple(options))


def host_settings(path: str | Path = "/etc/resolv.conf") -> DnsSettings:
    """The host's resolv.conf as pods may use it: loopback nameservers (a local stub
    resolver such as systemd-resolved's 127.0.0.53) are dropped, since a pod's loopback is
    its own; a missing file means no settings."""
    try:
        host = parse_resolv_conf(Path(path).read_text())
    except OSError:
        return DnsSettings()
    usable = tuple(ns for ns in host.nameservers if not _is_loopback(ns))
    return attrs.evolve(host, nameservers=usable)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def cluster_dns_from_config(config: Any) -> tuple[list[str], str]:
    """The cluster DNS nameservers and domain a node agent hands to ClusterFirst pods when
    its own settings leave them open: the ``dns`` section's ``service_ip`` and
    ``cluster_domain`` when cluster DNS runs with this config (the section exists and is
    enabled, the service proxy that carries queries to it is on, and the ``dns`` component
    is not disabled); otherwise no nameservers (pods then use the host's resolvers)."""
    dns = config.section("dns") if hasattr(config, "section") else None
    proxy = getattr(config, "proxy", None)
    components = getattr(config, "components", None)
    disabled = set(getattr(components, "disabled", ()) or ())
    if dns is None or not getattr(dns, "enabled", False) or "dns" in disabled \
            or not getattr(proxy, "enabled", False) or "proxy" in disabled:
        return [], getattr(dns, "cluster_domain", DEFAULT_CLUSTER_DOMAIN)
    return [str(dns.service_ip)], str(dns.cluster_domain)


def pod_resolv_conf(pod: dict[str, Any], *, cluster_dns: Sequence[str] = DEFAULT_CLUSTER_DNS,
                    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
                    host_resolv_conf: str | Path = "/etc/resolv.conf") -> str:
    """The resolv.conf text for ``pod``.

    :param pod: the Pod (a JSON-shaped dict; ``spec.dnsPolicy``, ``spec.dnsConfig``,
        ``spec.hostNetwork`` and ``metadata.namespace`` are read).
    :param cluster_dns: the cluster DNS Service IPs (the kubelet's ``clusterDNS``).
    :param cluster_domain: the cluster domain (the kubelet's ``clusterDomain``).
    :param host_resolv_conf: the host's resolv.conf (the kubelet's ``--resolv-conf``); a
        missing file means no host settings.
    """
    return render_resolv_conf(pod_settings(pod, cluster_dns=cluster_dns,
                                           cluster_domain=cluster_domain,
                                           host=host_settings(host_resolv_conf)))

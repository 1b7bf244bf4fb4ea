"""Rule generation: one Service's iptables chains and its lines in the shared chains.

Pure functions of :class:`kubeling.proxy.ServicePort` and its endpoints, so the rule set is
checked structurally without iptables.  The layout is kube-proxy's iptables mode:

nat table
  ``KUBE-SERVICES``: per cluster IP/port a jump to the Service's chain (or, with no
  endpoints, nothing: the filter table rejects); last, ``-m addrtype --dst-type LOCAL -j
  KUBE-NODEPORTS``.
  ``KUBE-NODEPORTS``: per node port a jump to ``KUBE-EXT-<hash>``.
  ``KUBE-SVC-<hash>``: the cluster-wide endpoints, picked with ``-m statistic --mode random
  --probability 1/(n-i)`` (and ``-m recent`` for ClientIP affinity).
  ``KUBE-SVL-<hash>``: the node-local endpoints (Local traffic policies).
  ``KUBE-EXT-<hash>``: external traffic (node ports, external and load-balancer IPs):
  masquerade and go to SVC, or for ``externalTrafficPolicy: Local`` keep the source and go
  to SVL (local senders are still sent cluster-wide, masqueraded).
  ``KUBE-SEP-<hash>``: one endpoint: hairpin masquerade, DNAT.
  ``KUBE-MARK-MASQ`` marks, ``KUBE-POSTROUTING`` masquerades marked packets.
filter table
  ``KUBE-SERVICES``: REJECT cluster IPs without endpoints; ``KUBE-EXTERNAL-SERVICES``:
  REJECT (or DROP for Local without local endpoints) external ones; ``KUBE-FORWARD``:
  accept marked and established traffic; ``KUBE-NODEPORTS``: accept health check ports.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import attrs

from kubeling.proxy import Endpoint, ServicePort, usable_endpoints

__all__ = [
    "BASE_CHAINS",
    "JUMPS",
    "ServiceRules",
    "base_rules",
    "chain_hash",
    "service_rules",
]

MASQ_MARK = "0x4000"
NAT, FILTER = "nat", "filter"
BASE_CHAINS: dict[str, tuple[str, ...]] = {
    FILTER: ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS"),
    NAT: ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ",
          "KUBE-PROXY-CANARY"),
}
"""The fixed chains, per table."""
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-")
OWN_CHAINS = {c for chains in BASE_CHAINS.values() for c in chains} | {"KUBE-PROXY-CANARY"}
JUMPS: tuple[tuple[str, str, str], ...] = (
    (NAT, "PREROUTING", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    (NAT, "OUTPUT", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    (NAT, "POSTROUTING",
     '-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'),
    (FILTER, "INPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes '
                      'externally-visible service portals" -j KUBE-EXTERNAL-SERVICES'),
    (FILTER, "INPUT",
     '-m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS'),
    (FILTER, "FORWARD", '-m conntrack --ctstate NEW -m comment --comment "kubernetes '
                        'service portals" -j KUBE-SERVICES'),
    (FILTER, "FORWARD", '-m conntrack --ctstate NEW -m comment --comment "kubernetes '
                        'externally-visible service portals" -j KUBE-EXTERNAL-SERVICES'),
    (FILTER, "FORWARD", '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD'),
    (FILTER, "OUTPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes '
                       'service portals" -j KUBE-SERVICES'),
)
"""(table, built-in chain, rule): how packets enter our chains (inserted first)."""
NODEPORTS_LAST = ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: '
                  'this must be the last rule in this chain" -m addrtype --dst-type LOCAL '
                  "-j KUBE-NODEPORTS")


def chain_hash(*parts: str) -> str:
    """16 base32 characters of the SHA-256 of ``parts`` (kube-proxy's chain name scheme)."""
    digest = hashlib.sha256("".join(parts).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def base_rules(table: str, *, v6: bool = False) -> dict[str, list[str]]:
    """The rules of the fixed chains that do not depend on Services (per chain)."""
    if table == NAT:
        return {
            "KUBE-MARK-MASQ": [f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}"],
            "KUBE-POSTROUTING": [
                f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
                f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
                '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic '
                'requiring SNAT" -j MASQUERADE --random-fully'],
        }
    return {
        "KUBE-FORWARD": [
            "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
            '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark '
            f"--mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT",
            '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"],
    }


@attrs.define
class ServiceRules:
    """Everything one Service contributes: its own chains and its lines in shared ones."""

    chains: dict[tuple[str, str], str] = attrs.field(factory=dict)
    """(table, chain) -> the chain's rule lines (joined, newline-terminated)."""
    shared: dict[tuple[str, str], list[str]] = attrs.field(factory=dict)
    """(table, shared chain) -> this Service's lines in it."""

    def add_shared(self, table: str, chain: str, line: str) -> None:
        self.shared.setdefault((table, chain), []).append(line)


def _proto(port: ServicePort) -> str:
    p = port.protocol.lower()
    return f"-p {p} -m {p}"


def _host(ip: str) -> str:
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


def _probability(n: int, i: int) -> str:
    return f"{1.0 / (n - i):.10f}"


def service_rules(ports: Sequence[tuple[ServicePort, Sequence[Endpoint]]], *,
                  cluster_cidr: str = "", masquerade_all: bool = False,
                  v6: bool = False) -> ServiceRules:
    """The rules of one Service (all its ports, one IP family)."""
    out = ServiceRules()
    for port, endpoints in ports:
        _port_rules(out, port, endpoints, cluster_cidr=cluster_cidr,
                    masquerade_all=masquerade_all, v6=v6)
    return out


def _port_rules(out: ServiceRules, port: ServicePort, endpoints: Sequence[Endpoint], *,
                cluster_cidr: str, masquerade_all: bool, v6: bool) -> None:
    name = str(port.name)
    key = name + port.protocol.lower()
    svc_chain = "KUBE-SVC-" + chain_hash(key)
    svl_chain = "KUBE-SVL-" + chain_hash(key)
    ext_chain = "KUBE-EXT-" + chain_hash(key)
    proto = _proto(port)
    reject = "--reject-with icmp6-port-unreachable" if v6 else \
        "--reject-with icmp-port-unreachable"
    cluster_ips = [ip for ip in port.cluster_ips if (":" in ip) == v6]
    endpoints = [e for e in endpoints if (":" in e.ip) == v6]
    all_eps = usable_endpoints(endpoints)
    local_eps = usable_endpoints(endpoints, local_only=True)
    uses_local = port.internal_local or port.external_local
    internal_target = svl_chain if port.internal_local else svc_chain
    internal_eps = local_eps if port.internal_local else all_eps
    external_eps = local_eps if port.external_local else all_eps
    has_ext = port.external

    seps: dict[str, tuple[str, Endpoint]] = {}

    def sep_chain(ep: Endpoint) -> str:
        chain = "KUBE-SEP-" + chain_hash(key, str(ep))
        seps[chain] = (chain, ep)
        return chain

    def balance(chain: str, eps: Sequence[Endpoint], lines: list[str]) -> None:
        n = len(eps)
        if port.affinity_timeout:
            for ep in eps:
                target = sep_chain(ep)
                lines.append(
                    f'-A {chain} -m comment --comment "{name} -> {ep}" -m recent --name '
                    f"{target} --mask {'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' if v6 else '255.255.255.255'} "  # noqa: E501
                    f"--rsource --rcheck --seconds {port.affinity_timeout} --reap -j {target}")
        for i, ep in enumerate(eps):
            target = sep_chain(ep)
            stat = "" if i == n - 1 else \
                f"-m statistic --mode random --probability {_probability(n, i)} "
            lines.append(f'-A {chain} -m comment --comment "{name} -> {ep}" {stat}-j {target}')

    # cluster IPs
    for ip in cluster_ips:
        match = f"-d {_host(ip)} {proto} --dport {port.port}"
        if internal_eps:
            out.add_shared(NAT, "KUBE-SERVICES", f'-A KUBE-SERVICES -m comment --comment '
                                                 f'"{name} cluster IP" {match} '
                                                 f"-j {internal_target}")
        else:
            why = "has no local endpoints" if port.internal_local and all_eps else \
                "has no endpoints"
            verdict = "DROP" if port.internal_local and all_eps else f"REJECT {reject}"
            out.add_shared(FILTER, "KUBE-SERVICES", f'-A KUBE-SERVICES -m comment --comment '
                                                    f'"{name} {why}" {match} -j {verdict}')
    # the cluster-wide chain
    if all_eps:
        lines: list[str] = []
        if masquerade_all or cluster_cidr:
            source = "" if masquerade_all else f"! -s {cluster_cidr} "
            for ip in cluster_ips:
                lines.append(f'-A {svc_chain} -m comment --comment "{name} cluster IP" '
                             f"{source}-d {_host(ip)} {proto} --dport {port.port} "
                             f"-j KUBE-MARK-MASQ")
        balance(svc_chain, all_eps, lines)
        out.chains[(NAT, svc_chain)] = "\n".join(lines) + "\n"
    if uses_local:
        lines = []
        balance(svl_chain, local_eps, lines)
        out.chains[(NAT, svl_chain)] = "\n".join(lines) + "\n" if lines else ""
    # external traffic
    if has_ext:
        ext_dests = [f"-d {_host(ip)} {proto} --dport {port.port}"
                     for ip in (*port.external_ips, *port.load_balancer_ips)
                     if (":" in ip) == v6]
        if external_eps or (port.external_local and all_eps):
            lines = []
            if port.external_local:
                if cluster_cidr:
                    lines.append(f'-A {ext_chain} -m comment --comment "pod traffic for {name} '
                                 f'external destinations" -s {cluster_cidr} -j {svc_chain}')
                lines.append(f'-A {ext_chain} -m comment --comment "masquerade LOCAL traffic '
                             f'for {name} external destinations" -m addrtype --src-type LOCAL '
                             f"-j KUBE-MARK-MASQ")
                lines.append(f'-A {ext_chain} -m comment --comment "route LOCAL traffic for '
                             f'{name} external destinations" -m addrtype --src-type LOCAL '
                             f"-j {svc_chain}")
                lines.append(f"-A {ext_chain} -j {svl_chain}")
            else:
                lines.append(f'-A {ext_chain} -m comment --comment "masquerade traffic for '
                             f'{name} external destinations" -j KUBE-MARK-MASQ')
                lines.append(f"-A {ext_chain} -j {svc_chain}")
            out.chains[(NAT, ext_chain)] = "\n".join(lines) + "\n"
            if port.node_port:
                out.add_shared(NAT, "KUBE-NODEPORTS",
                               f'-A KUBE-NODEPORTS -m comment --comment "{name}" {proto} '
                               f"--dport {port.node_port} -j {ext_chain}")
            for dest in ext_dests:
                out.add_shared(NAT, "KUBE-SERVICES",
                               f'-A KUBE-SERVICES -m comment --comment "{name} external IP" '
                               f"{dest} -j {ext_chain}")
        if not external_eps:
            why = "has no local endpoints" if port.external_local and all_eps else \
                "has no endpoints"
            verdict = "DROP" if port.external_local and all_eps else f"REJECT {reject}"
            if port.node_port:
                out.add_shared(FILTER, "KUBE-EXTERNAL-SERVICES",
                               f'-A KUBE-EXTERNAL-SERVICES -m comment --comment "{name} {why}" '
                               f"-m addrtype --dst-type LOCAL {proto} --dport {port.node_port} "
                               f"-j {verdict}")
            for dest in ext_dests:
                out.add_shared(FILTER, "KUBE-EXTERNAL-SERVICES",
                               f'-A KUBE-EXTERNAL-SERVICES -m comment --comment "{name} {why}" '
                               f"{dest} -j {verdict}")
    if port.health_check_node_port:
        out.add_shared(FILTER, "KUBE-NODEPORTS",
                       f'-A KUBE-NODEPORTS -m comment --comment "{name} health check node '
                       f'port" -m tcp -p tcp --dport {port.health_check_node_port} -j ACCEPT')
    # one chain per endpoint
    for chain, ep in seps.values():
        affinity = ""
        if port.affinity_timeout:
            mask = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" if v6 else "255.255.255.255"
            affinity = f"-m recent --set --name {chain} --mask {mask} --rsource "
        out.chains[(NAT, chain)] = (
            f'-A {chain} -m comment --comment "{name}" -s {_host(ep.ip)} -j KUBE-MARK-MASQ\n'
            f'-A {chain} -m comment --comment "{name}" {proto} {affinity}-j DNAT '
            f"--to-destination {ep}\n")

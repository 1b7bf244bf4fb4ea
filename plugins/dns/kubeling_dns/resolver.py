"""Answers for names in the cluster domain, from Services, EndpointSlices and Pods.

The names are those of Kubernetes' DNS specification (what CoreDNS's kubernetes plugin
serves):

* ``<svc>.<ns>.svc.<domain>``: A/AAAA of the cluster IPs; for a headless Service the
  addresses of its ready endpoints (all of them with ``publishNotReadyAddresses``); CNAME
  for an ExternalName Service;
* ``<hostname>.<svc>.<ns>.svc.<domain>``: one endpoint of a headless Service (its
  ``hostname``, else its address with dashes);
* ``_<port>._<proto>.<svc>.<ns>.svc.<domain>``: SRV for a named port;
* ``<a-b-c-d>.<ns>.pod.<domain>``: a pod's A record;
* PTR records of cluster IPs and headless endpoints.

Anything else in the domain is NXDOMAIN (with the zone's SOA); names outside it are left
to the forwarder (:meth:`ClusterResolver.answer` returns None).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

__all__ = ["ClusterIndex", "ClusterResolver"]

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class ClusterIndex:
    """Services, their EndpointSlices and (optionally) pods, fed by informer handlers."""

    def __init__(self) -> None:
        self.services: dict[tuple[str, str], Obj] = {}
        self.slices: dict[tuple[str, str], dict[str, Obj]] = {}
        self.pod_ips: dict[str, set[str]] | None = None
        """namespace -> pod IPs, when pods are verified."""
        self._pods: dict[tuple[str, str], tuple[str, ...]] = {}

    @staticmethod
    def _nn(obj: Obj) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return meta.get("namespace") or "", meta.get("name") or ""

    def service_updated(self, obj: Obj) -> None:
        self.services[self._nn(obj)] = obj

    def service_deleted(self, obj: Obj) -> None:
        self.services.pop(self._nn(obj), None)

    def slice_updated(self, obj: Obj) -> None:
        ns, name = self._nn(obj)
        service = ((obj.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
        if service:
            self.slices.setdefault((ns, service), {})[name] = obj

    def slice_deleted(self, obj: Obj) -> None:
        ns, name = self._nn(obj)
        service = ((obj.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
        slices = self.slices.get((ns, service or ""))
        if slices is not None:
            slices.pop(name, None)

    def pod_updated(self, obj: Obj) -> None:
        if self.pod_ips is None:
            self.pod_ips = {}
        key = self._nn(obj)
        self.pod_deleted(obj)
        ips = tuple(p.get("ip") for p in (obj.get("status") or {}).get("podIPs") or []
                    if isinstance(p, dict) and p.get("ip"))
        self._pods[key] = ips
        self.pod_ips.setdefault(key[0], set()).update(ips)

    def pod_deleted(self, obj: Obj) -> None:
        key = self._nn(obj)
        old = self._pods.pop(key, ())
        if self.pod_ips is not None and old:
            remaining = {ip for (ns, _), ips in self._pods.items() if ns == key[0]
                         for ip in ips}
            self.pod_ips[key[0]] = remaining

    def endpoints(self, ns: str, service: str, *, include_unready: bool = False
                  ) -> list[tuple[str, str, Obj, dict[tuple[str, str], int]]]:
        """(address, hostname, endpoint, ports by (name, protocol)) of a Service."""
        out = []
        seen = set()
        for slice_ in (self.slices.get((ns, service)) or {}).values():
            ports = {(p.get("name") or "", p.get("protocol") or "TCP"): p.get("port")
                     for p in slice_.get("ports") or [] if isinstance(p, dict)}
            for ep in slice_.get("endpoints") or []:
                cond = ep.get("conditions") or {}
                ready = cond.get("ready") is not False
                if not ready and not include_unready:
                    continue
                for address in ep.get("addresses") or []:
                    if address in seen:
                        continue
                    seen.add(address)
                    hostname = ep.get("hostname") or address.replace(".", "-").replace(":", "-")
                    out.append((address, hostname, ep, ports))
        return out


def _rtype(ip: str) -> int:
    return dns.rdatatype.AAAA if ":" in ip else dns.rdatatype.A


class ClusterResolver:
    """Builds DNS responses for cluster names from a :class:`ClusterIndex`."""

    def __init__(self, index: ClusterIndex, *, domain: str = "cluster.local", ttl: int = 5,
                 pods: str = "insecure") -> None:
        self.index = index
        self.domain = dns.name.from_text(domain.strip(".") + ".")
        self.ttl = ttl
        self.pods = pods
        """``insecure`` (any ``a-b-c-d.<ns>.pod`` name answers), ``verified`` (only IPs of
        pods in that namespace) or ``disabled``."""

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response to ``query``, or None when it is not ours to answer (forward it)."""
        if not query.question:
            return None
        question = query.question[0]
        name = question.name
        if question.rdclass != dns.rdataclass.IN:
            return None
        if name.is_subdomain(dns.name.from_text("in-addr.arpa.")) or \
                name.is_subdomain(dns.name.from_text("ip6.arpa.")):
            return self._reverse(query, name)
        if not name.is_subdomain(self.domain):
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        labels = [label.decode().lower() for label in name.relativize(self.domain).labels]
        if labels == ["@"] or not labels:
            labels = []
        found, records = self._lookup(labels, question.rdtype)
        if not found:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._soa())
            return response
        wanted = [r for r in records if r[0] == question.rdtype or (
            question.rdtype == dns.rdatatype.ANY) or r[0] == dns.rdatatype.CNAME]
        for rtype, value, owner in wanted:
            rrset = dns.rrset.from_text(owner or name, self.ttl, "IN", rtype, value)
            existing = response.find_rrset(response.answer, rrset.name, rrset.rdclass,
                                           rrset.rdtype, create=True)
            existing.update(rrset)
        if question.rdtype == dns.rdatatype.SRV:
            for rrset in list(response.answer):
                for rdata in rrset:
                    target = rdata.target
                    _, extra = self._lookup([label.decode().lower() for label in
                                             target.relativize(self.domain).labels],
                                            dns.rdatatype.A)
                    for rtype, value, _owner in extra:
                        if rtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                            response.additional.append(dns.rrset.from_text(
                                target, self.ttl, "IN", rtype, value))
        if not response.answer:
            response.authority.append(self._soa())
        return response

    def _soa(self) -> dns.rrset.RRset:
        return dns.rrset.from_text(self.domain, self.ttl, "IN", "SOA",
                                   f"ns.dns.{self.domain} hostmaster.{self.domain} "
                                   "1 7200 1800 86400 5")

    def _lookup(self, labels: list[str], rdtype: int
                ) -> tuple[bool, list[tuple[int, str, dns.name.Name | None]]]:
        """(name exists, [(type, rdata text, owner or None)]) for labels under the domain."""
        if not labels:
            soa = self._soa()[0].to_text()
            return True, [(dns.rdatatype.SOA, soa, None),
                          (dns.rdatatype.NS, f"ns.dns.{self.domain}", None)]
        kind = labels[-1]
        if kind == "svc":
            return self._service(labels[:-1])
        if kind == "pod" and len(labels) == 3 and self.pods != "disabled":
            return self._pod(labels[0], labels[1])
        if kind in ("svc", "pod") and len(labels) <= 2:
            return True, []
        return False, []

    def _service(self, labels: list[str]
                 ) -> tuple[bool, list[tuple[int, str, dns.name.Name | None]]]:
        if len(labels) <= 1:  # svc.<domain> and <ns>.svc.<domain> exist, empty
            return True, []
        if len(labels) == 2:
            service, ns = labels
            svc = self.index.services.get((ns, service))
            if svc is None:
                return False, []
            return True, self._service_records(ns, service, svc)
        if len(labels) == 3:
            host, service, ns = labels
            svc = self.index.services.get((ns, service))
            if svc is None:
                return False, []
            spec = svc.get("spec") or {}
            eps = self.index.endpoints(ns, service, include_unready=bool(
                spec.get("publishNotReadyAddresses")))
            records = [(_rtype(a), a, None) for a, h, _, _ in eps if h == host]
            return bool(records), records
        if len(labels) == 4 and labels[0].startswith("_") and labels[1].startswith("_"):
            port_name, proto, service, ns = labels[0][1:], labels[1][1:].upper(), *labels[2:]
            svc = self.index.services.get((ns, service))
            if svc is None:
                return False, []
            return self._srv(ns, service, svc, port_name, proto)
        return False, []

    def _service_records(self, ns: str, service: str, svc: Obj
                         ) -> list[tuple[int, str, dns.name.Name | None]]:
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            target = (spec.get("externalName") or "").rstrip(".") + "."
            return [(dns.rdatatype.CNAME, target, None)]
        ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]
               if isinstance(ip, str) and ip]
        if ips and ips[0] != "None":
            return [(_rtype(ip), ip, None) for ip in ips]
        eps = self.index.endpoints(ns, service, include_unready=bool(
            spec.get("publishNotReadyAddresses")))
        return [(_rtype(address), address, None) for address, _, _, _ in eps]

    def _srv(self, ns: str, service: str, svc: Obj, port_name: str, proto: str
             ) -> tuple[bool, list[tuple[int, str, dns.name.Name | None]]]:
        spec = svc.get("spec") or {}
        base = f"{service}.{ns}.svc.{self.domain}"
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)
                 and (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == proto]
        if not ports:
            return False, []
        headless = (spec.get("clusterIP") or "") == "None"
        if not headless:
            return True, [(dns.rdatatype.SRV, f"0 100 {p['port']} {base}", None)
                          for p in ports]
        eps = self.index.endpoints(ns, service, include_unready=bool(
            spec.get("publishNotReadyAddresses")))
        records = []
        weight = max(1, 100 // max(1, len(eps)))
        for _address, hostname, _ep, by_name in eps:
            number = by_name.get((port_name, proto))
            if number:
                records.append((dns.rdatatype.SRV, f"0 {weight} {number} {hostname}.{base}",
                                None))
        return True, records

    def _pod(self, dashed: str, ns: str
             ) -> tuple[bool, list[tuple[int, str, dns.name.Name | None]]]:
        text = dashed.replace("-", ".") if dashed.count("-") == 3 else dashed.replace("-", ":")
        try:
            ip = str(ipaddress.ip_address(text))
        except ValueError:
            return False, []
        if self.pods == "verified" and ip not in (self.index.pod_ips or {}).get(ns, set()):
            return False, []
        return True, [(_rtype(ip), ip, None)]

    def _reverse(self, query: dns.message.Message, name: dns.name.Name
                 ) -> dns.message.Message | None:
        try:
            ip = dns.reversename.to_address(name)
        except Exception:
            return None
        targets = []
        for (ns, service), svc in self.index.services.items():
            spec = svc.get("spec") or {}
            if ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]):
                targets.append(f"{service}.{ns}.svc.{self.domain}")
            elif spec.get("clusterIP") == "None":
                for address, hostname, _, _ in self.index.endpoints(ns, service):
                    if address == ip:
                        targets.append(f"{hostname}.{service}.{ns}.svc.{self.domain}")
        if not targets:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if query.question[0].rdtype in (dns.rdatatype.PTR, dns.rdatatype.ANY):
            response.answer.append(dns.rrset.from_text(name, self.ttl, "IN", "PTR",
                                                        *targets))
        return response

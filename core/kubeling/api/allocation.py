"""Service cluster IP and node port allocation, and the ``kubernetes`` Service.

Kubernetes allocates a Service's cluster IPs and node ports inside the API server, while
the Service is created, updated or deleted; so does kubeling.  Every allocated value is one
storage key, created if absent (the shape of Kubernetes' ``IPAddress`` objects rather than
its older bitmap):

* ``/registry/kubeling.io/serviceips/<ip>``
* ``/registry/kubeling.io/servicenodeports/<port>``

each holding the owning Service's namespace, name and uid.  Create-if-absent makes a value
unique across restarts and across several API servers sharing one storage: two servers that
pick the same free value race on the same key and one of them tries another.  A value is
reserved before the Service is written and released if that write fails; the previous
values of an update and every value of a deleted Service are released after the write.  A
crash between the two writes leaks a key; :meth:`ServiceAllocator.repair` (run
periodically) finds keys no Service uses and frees them once seen leaked in several
consecutive passes, and re-records values Services hold without a key.

Dynamic cluster IPs come from the upper part of the range first, leaving the lower band
(``min(max(16, size/16), 256)`` addresses) for IPs that Services ask for by value (the DNS
Service's 10.96.0.10), as Kubernetes does since 1.26; node ports likewise.

:class:`KubernetesService` keeps ``default/kubernetes`` at the first address of the primary
range, with Endpoints and an EndpointSlice naming every live API server (each server renews
a lease key ``/registry/kubeling.io/apiserverleases/<ip>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from kubeling.api.errors import ApiError, Cause
from kubeling.storage import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    Storage,
)

if TYPE_CHECKING:
    from kubeling.api.server import ApiServer

log = logging.getLogger(__name__)

__all__ = [
    "IP_PREFIX",
    "NODE_PORT_PREFIX",
    "KubernetesService",
    "RepairReport",
    "Reservation",
    "ServiceAllocator",
    "attach",
    "detach",
    "parse_node_port_range",
    "parse_service_cidrs",
]

Obj = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

IP_PREFIX = "/registry/kubeling.io/serviceips/"
NODE_PORT_PREFIX = "/registry/kubeling.io/servicenodeports/"
LEASE_PREFIX = "/registry/kubeling.io/apiserverleases/"
ALLOCATIONS_PREFIX = "/registry/kubeling.io/service"
"""Common prefix of the two allocation prefixes (watched together)."""
SERVICES_PREFIX = "/registry/services/"
FAMILY = {4: "IPv4", 6: "IPv6"}
MAX_IP_RANGE = 1 << 20
"""Addresses considered per family (larger IPv6 ranges use their first 2**20)."""


def parse_service_cidrs(value: str) -> list[Network]:
    """``10.96.0.0/12`` or ``10.96.0.0/12,fd00::/108`` -> networks, primary first."""
    nets = [ipaddress.ip_network(part.strip(), strict=True) for part in value.split(",")]
    if len(nets) > 2 or len({n.version for n in nets}) != len(nets):
        raise ValueError(f"{value!r}: at most two CIDRs, one IPv4 and one IPv6")
    return nets


def parse_node_port_range(value: str) -> tuple[int, int]:
    """``30000-32767`` -> (30000, 32767)."""
    first, _, last = value.partition("-")
    low, high = int(first), int(last or first)
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"{value!r} is not a port range")
    return low, high


def _static_band(size: int) -> int:
    """Size of the lower band kept for requested values (KEP-3070's formula)."""
    return min(max(16, size // 16), 256)


class _IpRange:
    """One family's cluster IP range: offsets 1..size (network and broadcast excluded)."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.family = FAMILY[net.version]
        total = net.num_addresses
        # IPv4 excludes the network and broadcast addresses; IPv6 only the subnet-router one
        last = total - 2 if net.version == 4 else total - 1
        self.size = max(0, min(last, MAX_IP_RANGE))
        self.base = int(net.network_address)

    def offset(self, ip: str) -> int | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if addr.version != self.net.version:
            return None
        offset = int(addr) - self.base
        return offset if 1 <= offset <= self.size else None

    def address(self, offset: int) -> str:
        return str(ipaddress.ip_address(self.base + offset))


class _Pool:
    """The values of one range known to be taken, and how to pick a free one."""

    def __init__(self, first: int, last: int) -> None:
        self.first = first
        self.last = last
        self.used: set[int] = set()

    def pick(self, rng: random.Random) -> Iterable[int]:
        """Candidates for a dynamic allocation: the upper band first, random start."""
        size = self.last - self.first + 1
        band = _static_band(size) if size > 32 else 0
        for low, high in ((self.first + band, self.last), (self.first, self.first + band - 1)):
            if high < low:
                continue
            span = high - low + 1
            start = rng.randrange(span)
            for i in range(span):
                value = low + (start + i) % span
                if value not in self.used:
                    yield value


@attrs.define
class Reservation:
    """Values reserved for one write of a Service: released if the write fails, and the
    values it replaces released once it succeeded."""

    allocator: ServiceAllocator
    new_keys: list[str] = attrs.field(factory=list)
    release_keys: list[tuple[str, str]] = attrs.field(factory=list)
    """(key, owner uid) to free after a successful write."""

    async def commit(self) -> None:
        """The Service was written: free the values it no longer holds."""
        for key, uid in self.release_keys:
            await self.allocator._release(key, uid)
        self.new_keys.clear()
        self.release_keys.clear()

    async def abort(self) -> None:
        """The Service was not written: free what was reserved for it."""
        for key in self.new_keys:
            await self.allocator._release(key, None)
        self.new_keys.clear()
        self.release_keys.clear()


@attrs.frozen(kw_only=True)
class RepairReport:
    """What one :meth:`ServiceAllocator.repair` pass did."""

    recorded: list[str] = attrs.field(factory=list)
    """Values Services hold that had no key (now recorded)."""
    released: list[str] = attrs.field(factory=list)
    """Leaked keys freed."""
    suspected: list[str] = attrs.field(factory=list)
    """Keys no Service uses, not yet freed (seen in fewer passes than needed)."""
    conflicts: list[str] = attrs.field(factory=list)
    """Values held by more than one Service (a human must sort these out)."""
    out_of_range: list[str] = attrs.field(factory=list)
    """Values outside the configured ranges (the range changed)."""


def _owner(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    return {"namespace": meta.get("namespace"), "name": meta.get("name"), "uid": meta.get("uid")}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _needs_node_ports(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind == "NodePort" or (kind == "LoadBalancer"
                                  and spec.get("allocateLoadBalancerNodePorts") is not False)


def _needs_health_check_port(spec: Obj) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def held_ips(obj: Obj) -> list[str]:
    """The cluster IPs a stored Service holds (none for headless and ExternalName)."""
    spec = _spec(obj)
    if spec.get("type") == "ExternalName":
        return []
    ips = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str)]
    if not ips and isinstance(spec.get("clusterIP"), str):
        ips = [spec["clusterIP"]]
    return [ip for ip in ips if ip and ip != "None"]


def held_ports(obj: Obj) -> list[int]:
    """The node ports (and health check node port) a stored Service holds."""
    spec = _spec(obj)
    out = []
    for port in spec.get("ports") or []:
        if isinstance(port, dict) and isinstance(port.get("nodePort"), int) and port["nodePort"]:
            out.append(port["nodePort"])
    if isinstance(spec.get("healthCheckNodePort"), int) and spec["healthCheckNodePort"]:
        out.append(spec["healthCheckNodePort"])
    return sorted(set(out))


class ServiceAllocator:
    """Allocates cluster IPs and node ports for Services, stored one key per value.

    The API server calls :meth:`on_create`, :meth:`on_update` and :meth:`on_delete` from
    its verb pipeline (see :func:`attach`).
    """

    def __init__(self, storage: Storage, *, service_cidrs: str = "10.96.0.0/12",
                 node_port_range: str = "30000-32767", leak_passes: int = 3,
                 repair_interval_seconds: float = 180.0, seed: int | None = None) -> None:
        self.storage = storage
        self.ranges = [_IpRange(net) for net in parse_service_cidrs(service_cidrs)]
        self.ip_pools = {r.family: _Pool(1, r.size) for r in self.ranges}
        low, high = parse_node_port_range(node_port_range)
        self.port_range = (low, high)
        self.port_pool = _Pool(low, high)
        self.leak_passes = leak_passes
        self.repair_interval_seconds = repair_interval_seconds
        self._rng = random.Random(seed)
        self._suspects: dict[str, int] = {}
        self._tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def primary(self) -> _IpRange:
        return self.ranges[0]

    def range_for(self, family: str) -> _IpRange | None:
        return next((r for r in self.ranges if r.family == family), None)

    async def start(self) -> None:
        """Load the taken values, then follow other API servers' allocations."""
        rev = await self._load()
        self._tasks.append(asyncio.create_task(self._follow(rev), name="allocation-watch"))
        if self.repair_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self._repair_loop(), name="allocation-repair"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _load(self) -> int:
        for pool in (*self.ip_pools.values(), self.port_pool):
            pool.used.clear()
        rev = 0
        for prefix in (IP_PREFIX, NODE_PORT_PREFIX):
            res = await self.storage.range(prefix)
            rev = max(rev, res.revision)
            for kv in res.kvs:
                self._mark(kv.key, True)
        return rev

    def _mark(self, key: str, used: bool) -> None:
        if key.startswith(IP_PREFIX):
            ip = key[len(IP_PREFIX):]
            for r in self.ranges:
                offset = r.offset(ip)
                if offset is not None:
                    pool = self.ip_pools[r.family]
                    (pool.used.add if used else pool.used.discard)(offset)
        elif key.startswith(NODE_PORT_PREFIX):
            with contextlib.suppress(ValueError):
                port = int(key[len(NODE_PORT_PREFIX):])
                (self.port_pool.used.add if used else self.port_pool.used.discard)(port)

    async def _follow(self, rev: int) -> None:
        """Keep the in-memory sets current with other servers' writes (best effort: the
        keys themselves are the truth, a stale set only costs a retry)."""
        while True:
            try:
                async for batch in self.storage.watch(ALLOCATIONS_PREFIX, after_revision=rev):
                    for event in batch:
                        rev = max(rev, event.revision)
                        self._mark(event.kv.key, event.type.value == "PUT")
                return
            except asyncio.CancelledError:
                raise
            except CompactedError:
                rev = await self._load()
            except Exception:
                log.exception("allocation watch failed; reloading")
                await asyncio.sleep(1)
                rev = await self._load()

    async def _repair_loop(self) -> None:
        while True:
            await asyncio.sleep(self.repair_interval_seconds)
            try:
                report = await self.repair()
                if report.released or report.recorded or report.conflicts:
                    log.info("allocation repair: %s", report)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("allocation repair failed")

    # -- the verbs ---------------------------------------------------------------------------

    async def on_create(self, obj: Obj, *, dry_run: bool = False) -> Reservation:
        """Allocate everything a new Service needs, in place in ``obj``.

        :raises ApiError: 422 for a requested value that is taken or out of range, or when
            a range is full.
        """
        res = Reservation(self)
        try:
            await self._assign(obj, owned_ips=set(), owned_ports=set(), res=res,
                               dry_run=dry_run)
        except BaseException:
            await res.abort()
            raise
        return res

    async def on_update(self, new: Obj, old: Obj, *, dry_run: bool = False) -> Reservation:
        """Allocate what the updated Service newly needs; what it gave up is released when
        the reservation is committed."""
        res = Reservation(self)
        owned_ips = set(held_ips(old))
        owned_ports = set(held_ports(old))
        try:
            await self._assign(new, owned_ips=owned_ips, owned_ports=owned_ports, res=res,
                               dry_run=dry_run)
        except BaseException:
            await res.abort()
            raise
        if not dry_run:
            uid = (old.get("metadata") or {}).get("uid") or ""
            keep_ips, keep_ports = set(held_ips(new)), set(held_ports(new))
            res.release_keys += [(IP_PREFIX + ip, uid) for ip in owned_ips - keep_ips]
            res.release_keys += [(f"{NODE_PORT_PREFIX}{p}", uid) for p in owned_ports - keep_ports]
        return res

    async def on_delete(self, obj: Obj) -> None:
        """The Service is gone from storage: free everything it held."""
        uid = (obj.get("metadata") or {}).get("uid") or ""
        for ip in held_ips(obj):
            await self._release(IP_PREFIX + ip, uid)
        for port in held_ports(obj):
            await self._release(f"{NODE_PORT_PREFIX}{port}", uid)

    # -- assignment --------------------------------------------------------------------------

    async def _assign(self, obj: Obj, *, owned_ips: set[str], owned_ports: set[int],
                      res: Reservation, dry_run: bool) -> None:
        spec = _spec(obj)
        name = (obj.get("metadata") or {}).get("name") or ""
        owner = _owner(obj)
        causes: list[Cause] = []
        if spec.get("type") != "ExternalName":
            causes += await self._assign_ips(spec, owner, owned_ips, res, dry_run)
        if not causes:
            causes += await self._assign_ports(spec, owner, owned_ports, res, dry_run)
        if causes:
            raise ApiError.invalid("Service", "", name, causes)

    def _families(self, spec: Obj, requested: list[str]) -> tuple[list[str], list[Cause]]:
        """The IP families the Service gets, given its policy and the cluster's ranges."""
        configured = [r.family for r in self.ranges]
        policy = spec.get("ipFamilyPolicy") or "SingleStack"
        families = [f for f in spec.get("ipFamilies") or [] if f in ("IPv4", "IPv6")]
        for i, ip in enumerate(requested):
            with contextlib.suppress(ValueError):
                family = FAMILY[ipaddress.ip_address(ip).version]
                if i < len(families):
                    families[i] = family
                else:
                    families.append(family)
        if not families:
            families = [configured[0]]
        causes: list[Cause] = []
        if policy == "SingleStack":
            families = families[:1]
        elif policy in ("PreferDualStack", "RequireDualStack"):
            if policy == "RequireDualStack" and len(configured) < 2:
                causes.append(Cause.invalid("spec.ipFamilyPolicy", policy,
                                            "this cluster is not configured for dual-stack "
                                            "services"))
            for family in configured:
                if family not in families and len(families) < 2:
                    families.append(family)
            if policy == "PreferDualStack":
                families = [f for f in families if f in configured] or [configured[0]]
        for i, family in enumerate(families):
            if family not in configured:
                causes.append(Cause.invalid(f"spec.ipFamilies[{i}]", family,
                                            "not configured on this cluster"))
        return families, causes

    async def _assign_ips(self, spec: Obj, owner: Obj, owned: set[str], res: Reservation,
                          dry_run: bool) -> list[Cause]:
        requested = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str) and ip]
        if not requested and isinstance(spec.get("clusterIP"), str) and spec["clusterIP"]:
            requested = [spec["clusterIP"]]
        if requested and requested[0] == "None":
            return []
        families, causes = self._families(spec, requested)
        if causes:
            return causes
        ips: list[str] = []
        for i, family in enumerate(families):
            r = self.range_for(family)
            assert r is not None
            field = f"spec.clusterIPs[{i}]"
            if i < len(requested):
                ip = requested[i]
                if ip in owned:
                    ips.append(ip)
                    continue
                offset = r.offset(ip)
                if offset is None:
                    return [Cause.invalid(field, ip, f"provided IP is not in the valid range. "
                                                     f"The range of valid IPs is {r.net}")]
                if not await self._take_ip(r, offset, owner, res, dry_run):
                    return [Cause.invalid(field, ip, "provided IP is already allocated")]
                ips.append(r.address(offset))
                continue
            chosen = await self._take_any(self.ip_pools[family],
                                          lambda o, r=r: IP_PREFIX + r.address(o), owner, res,
                                          dry_run)
            if chosen is None:
                return [Cause.invalid(field, "", f"no IP addresses left in range {r.net}")]
            ips.append(r.address(chosen))
        spec["clusterIP"] = ips[0]
        spec["clusterIPs"] = ips
        spec["ipFamilies"] = families
        return []

    async def _take_ip(self, r: _IpRange, offset: int, owner: Obj, res: Reservation,
                       dry_run: bool) -> bool:
        key = IP_PREFIX + r.address(offset)
        if dry_run:
            return await self.storage.get(key) is None
        if await self._create(key, owner, res):
            self.ip_pools[r.family].used.add(offset)
            return True
        return False

    async def _take_any(self, pool: _Pool, key_of: Any, owner: Obj, res: Reservation,
                        dry_run: bool) -> int | None:
        for value in pool.pick(self._rng):
            key = key_of(value)
            if dry_run:
                if await self.storage.get(key) is None:
                    return value
                continue
            if await self._create(key, owner, res):
                pool.used.add(value)
                return value
            pool.used.add(value)  # another server took it; our set was stale
        return None

    async def _create(self, key: str, owner: Obj, res: Reservation) -> bool:
        value = orjson.dumps({"service": owner, "allocated": time.time()})
        try:
            await self.storage.create(key, value)
        except KeyExistsError:
            return False
        res.new_keys.append(key)
        return True

    async def _assign_ports(self, spec: Obj, owner: Obj, owned: set[int], res: Reservation,
                            dry_run: bool) -> list[Cause]:
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        low, high = self.port_range
        if not _needs_node_ports(spec):
            return []
        by_port_number: dict[Any, int] = {}
        taken_here: set[int] = set()

        async def take(value: int, field: str) -> Cause | None:
            if value in owned or value in taken_here:
                taken_here.add(value)
                return None
            if not low <= value <= high:
                return Cause.invalid(field, value, f"provided port is not in the valid range. "
                                                   f"The range of valid ports is {low}-{high}")
            key = f"{NODE_PORT_PREFIX}{value}"
            if dry_run:
                ok = await self.storage.get(key) is None
            else:
                ok = await self._create(key, owner, res)
            if not ok:
                return Cause.invalid(field, value, "provided port is already allocated")
            self.port_pool.used.add(value)
            taken_here.add(value)
            return None

        # explicit values first, so a dynamic pick never steals one asked for
        for i, port in enumerate(ports):
            value = port.get("nodePort")
            if isinstance(value, int) and value:
                cause = await take(value, f"spec.ports[{i}].nodePort")
                if cause is not None:
                    return [cause]
                by_port_number.setdefault(port.get("port"), value)
        for i, port in enumerate(ports):
            if port.get("nodePort"):
                continue
            reuse = by_port_number.get(port.get("port"))
            if reuse is not None:  # the same port number over another protocol shares it
                port["nodePort"] = reuse
                continue
            chosen = await self._dynamic_port(owner, res, dry_run, owned, taken_here)
            if chosen is None:
                return [Cause.invalid(f"spec.ports[{i}].nodePort", 0,
                                      f"no node ports left in range {low}-{high}")]
            port["nodePort"] = chosen
            by_port_number[port.get("port")] = chosen
        if _needs_health_check_port(spec):
            value = spec.get("healthCheckNodePort")
            if isinstance(value, int) and value:
                cause = await take(value, "spec.healthCheckNodePort")
                if cause is not None:
                    return [cause]
            else:
                chosen = await self._dynamic_port(owner, res, dry_run, owned, taken_here)
                if chosen is None:
                    return [Cause.invalid("spec.healthCheckNodePort", 0,
                                          f"no node ports left in range {low}-{high}")]
                spec["healthCheckNodePort"] = chosen
        else:
            spec.pop("healthCheckNodePort", None)
        return []

    async def _dynamic_port(self, owner: Obj, res: Reservation, dry_run: bool,
                            owned: set[int], taken_here: set[int]) -> int | None:
        spare = sorted(owned - taken_here)
        if spare:  # an update keeps using a port the Service already holds
            taken_here.add(spare[0])
            return spare[0]
        chosen = await self._take_any(self.port_pool, lambda p: f"{NODE_PORT_PREFIX}{p}",
                                      owner, res, dry_run)
        if chosen is not None:
            taken_here.add(chosen)
        return chosen

    async def _release(self, key: str, uid: str | None) -> None:
        """Delete an allocation key (only if ``uid`` owns it, when given)."""
        try:
            kv = await self.storage.get(key)
            if kv is None:
                self._mark(key, False)
                return
            if uid is not None:
                owner = (orjson.loads(kv.value).get("service") or {}).get("uid")
                if owner and owner != uid:
                    return
            await self.storage.delete(key, mod_revision=kv.mod_revision)
            self._mark(key, False)
        except (KeyNotFoundError, ConflictError):
            return
        except Exception:
            log.exception("could not release %s; the repair pass will", key)

    # -- repair ------------------------------------------------------------------------------

    async def repair(self) -> RepairReport:
        """Compare every Service with the allocation keys; record missing keys, free leaked
        ones (after ``leak_passes`` consecutive sightings) and report conflicts."""
        report = RepairReport()
        services = await self.storage.range(SERVICES_PREFIX)
        holders: dict[str, list[Obj]] = {}
        for kv in services.kvs:
            obj = orjson.loads(kv.value)
            for ip in held_ips(obj):
                holders.setdefault(IP_PREFIX + ip, []).append(obj)
            for port in held_ports(obj):
                holders.setdefault(f"{NODE_PORT_PREFIX}{port}", []).append(obj)
        keys: dict[str, Any] = {}
        for prefix in (IP_PREFIX, NODE_PORT_PREFIX):
            res = await self.storage.range(prefix, revision=services.revision)
            keys.update({kv.key: kv for kv in res.kvs})
        for key, objs in holders.items():
            if len(objs) > 1:
                names = ", ".join(f"{_owner(o)['namespace']}/{_owner(o)['name']}" for o in objs)
                report.conflicts.append(f"{key} held by {names}")
            value = key.rsplit("/", 1)[1]
            if key.startswith(IP_PREFIX):
                in_range = any(r.offset(value) is not None for r in self.ranges)
            else:
                in_range = self.port_range[0] <= int(value) <= self.port_range[1]
            if not in_range:
                report.out_of_range.append(key)
            kv = keys.get(key)
            owner = _owner(objs[0])
            if kv is None:
                try:
                    await self.storage.create(key, orjson.dumps({"service": owner,
                                                                 "allocated": time.time()}))
                    self._mark(key, True)
                    report.recorded.append(key)
                except KeyExistsError:
                    pass
                continue
            stored = (orjson.loads(kv.value).get("service") or {}).get("uid")
            if stored not in {_owner(o)["uid"] for o in objs}:
                # the key names a Service that is gone; the holder takes it over
                with contextlib.suppress(ConflictError, KeyNotFoundError):
                    await self.storage.update(key, orjson.dumps({"service": owner,
                                                                 "allocated": time.time()}),
                                              mod_revision=kv.mod_revision)
                    report.recorded.append(key)
        suspects: dict[str, int] = {}
        for key, kv in keys.items():
            if key in holders:
                continue
            seen = self._suspects.get(f"{key}@{kv.mod_revision}", 0) + 1
            if seen >= self.leak_passes:
                with contextlib.suppress(ConflictError, KeyNotFoundError):
                    await self.storage.delete(key, mod_revision=kv.mod_revision)
                self._mark(key, False)
                report.released.append(key)
            else:
                suspects[f"{key}@{kv.mod_revision}"] = seen
                report.suspected.append(key)
        self._suspects = suspects
        for key in report.conflicts:
            log.error("service allocation conflict: %s", key)
        return report


# ---------------------------------------------------------------------------------------
# the kubernetes Service
# ---------------------------------------------------------------------------------------


def primary_host_address() -> str | None:
    """The host's primary IPv4 address (the source of its default route), if any."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect sends nothing
        address = s.getsockname()[0]
        if address and not address.startswith("127."):
            return str(address)
    return None


def advertised_address(configured: str | None, listen_host: str) -> str | None:
    """The address published for the ``kubernetes`` Service's endpoint."""
    if configured:
        return configured
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(listen_host)
        if not ip.is_unspecified and not ip.is_loopback:
            return str(ip)
    return primary_host_address()


class KubernetesService:
    """Keeps ``default/kubernetes`` (first address of the primary range, port 443) and its
    Endpoints/EndpointSlice listing every live API server."""

    def __init__(self, server: ApiServer, allocator: ServiceAllocator, *,
                 lease_seconds: float = 15.0) -> None:
        self.server = server
        self.allocator = allocator
        self.lease_seconds = lease_seconds
        self.address: str | None = None
        self.port: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def ensure_service(self) -> None:
        """Create the Service if it is missing."""
        from kubeling.api.auth import ADMIN
        from kubeling.api.handlers import Target

        kind = self.server.registry.get("", "v1", "services")
        if kind is None or await self.server.storage.get(kind.key("default", "kubernetes")):
            return
        ip = self.allocator.primary.address(1)
        body = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                         "sessionAffinity": "None",
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                    "targetPort": 6443}]}}
        try:
            await self.server.handlers.create_object(Target(kind, "default", None, None), body,
                                                     user=ADMIN)
        except ApiError as exc:
            if exc.code != 409:
                log.error("could not create the kubernetes Service: %s", exc.message)

    def advertise(self, address: str | None, port: int) -> None:
        """Publish this server at ``address:port`` (called once the HTTP front listens)."""
        self.address, self.port = address, port
        if address is None:
            log.warning("no non-loopback address to publish for the kubernetes Service; "
                        "set api.advertise_address")
            return
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="kubernetes-endpoints")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.address:
            with contextlib.suppress(Exception):
                await self.server.storage.delete(LEASE_PREFIX + self.address)
            with contextlib.suppress(Exception):
                await self.reconcile()

    async def _loop(self) -> None:
        while True:
            try:
                await self.renew_lease()
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kubernetes Service endpoints not reconciled")
            await asyncio.sleep(self.lease_seconds / 3)

    async def renew_lease(self) -> None:
        assert self.address is not None
        storage = self.server.storage
        key = LEASE_PREFIX + self.address
        value = orjson.dumps({"port": self.port, "expires": time.time() + self.lease_seconds})
        kv = await storage.get(key)
        try:
            if kv is None:
                await storage.create(key, value)
            else:
                await storage.update(key, value, mod_revision=kv.mod_revision)
        except (KeyExistsError, ConflictError, KeyNotFoundError):
            pass

    async def live_servers(self) -> list[tuple[str, int]]:
        res = await self.server.storage.range(LEASE_PREFIX)
        now = time.time()
        out = []
        for kv in res.kvs:
            data = orjson.loads(kv.value)
            if data.get("expires", 0) >= now:
                out.append((kv.key[len(LEASE_PREFIX):], int(data.get("port") or 6443)))
            else:
                with contextlib.suppress(Exception):
                    await self.server.storage.delete(kv.key, mod_revision=kv.mod_revision)
        return sorted(out)

    async def reconcile(self) -> None:
        """Write Endpoints and EndpointSlice ``default/kubernetes`` when they differ."""
        await self.ensure_service()
        servers = await self.live_servers()
        ports = sorted({p for _, p in servers}) or [6443]
        port = ports[0]
        addresses = [a for a, p in servers if p == port]
        v4 = [a for a in addresses if ":" not in a]
        endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": "kubernetes", "namespace": "default",
                                  "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                     "subsets": [{"addresses": [{"ip": a} for a in addresses],
                                  "ports": [{"name": "https", "port": port,
                                             "protocol": "TCP"}]}] if addresses else []}
        slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                  "metadata": {"name": "kubernetes", "namespace": "default",
                               "labels": {"kubernetes.io/service-name": "kubernetes"}},
                  "addressType": "IPv6" if addresses and not v4 else "IPv4",
                  "endpoints": [{"addresses": [a], "conditions": {"ready": True}}
                                for a in addresses],
                  "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
        await self._put("", "v1", "endpoints", endpoints, ("subsets",))
        await self._put("discovery.k8s.io", "v1", "endpointslices", slice_,
                        ("addressType", "endpoints", "ports"))

    async def _put(self, group: str, version: str, plural: str, body: Obj,
                   fields: tuple[str, ...]) -> None:
        from kubeling.api.auth import ADMIN
        from kubeling.api.encoding import decode_stored
        from kubeling.api.handlers import Target

        kind = self.server.registry.get(group, version, plural)
        if kind is None:
            return
        target = Target(kind, "default", "kubernetes", None)
        kv = await self.server.storage.get(kind.key("default", "kubernetes"))
        if kv is None:
            try:
                await self.server.handlers.create_object(
                    Target(kind, "default", None, None), body, user=ADMIN)
            except ApiError as exc:
                if exc.code != 409:
                    log.error("could not create %s default/kubernetes: %s", plural, exc.message)
            return
        current = decode_stored(kv.value, kv.mod_revision)
        if all(current.get(f) == body.get(f) for f in fields):
            return

        def compute(obj: Obj) -> Obj:
            for f in fields:
                obj[f] = body[f]
            labels = obj["metadata"].setdefault("labels", {})
            labels.update(body["metadata"]["labels"])
            return obj

        try:
            await self.server.handlers.update_object(target, compute, user=ADMIN)
        except ApiError as exc:
            log.error("could not update %s default/kubernetes: %s", plural, exc.message)


# ---------------------------------------------------------------------------------------
# wiring into the API server
# ---------------------------------------------------------------------------------------


async def attach(server: ApiServer) -> None:
    """Give ``server`` a :class:`ServiceAllocator` (when it serves Services): the verb
    pipeline calls it through ``server.write_hooks``, and ``default/kubernetes`` is created."""
    if server.registry.get("", "v1", "services") is None:
        return
    settings = server.settings
    allocator = ServiceAllocator(
        server.storage,
        service_cidrs=getattr(settings, "service_cluster_ip_range", "10.96.0.0/12"),
        node_port_range=getattr(settings, "service_node_port_range", "30000-32767"))
    await allocator.start()
    server.write_hooks[("", "services")] = allocator
    server.allocator = allocator
    server.kubernetes_service = KubernetesService(server, allocator)
    await server.kubernetes_service.ensure_service()


async def detach(server: ApiServer) -> None:
    """Stop what :func:`attach` started."""
    kubernetes_service = getattr(server, "kubernetes_service", None)
    if kubernetes_service is not None:
        await kubernetes_service.stop()
    allocator = getattr(server, "allocator", None)
    if allocator is not None:
        await allocator.stop()
    server.write_hooks.pop(("", "services"), None)

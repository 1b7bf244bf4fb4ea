"""The iptables proxier: desired rules -> ``iptables-restore --noflush`` transactions.

A full sync writes every chain of ours in one ``iptables-restore --noflush`` transaction
(flushing and refilling each declared chain, deleting chains no longer wanted), plus the
jumps from the built-in chains when they are missing; nothing outside our own chains is
touched.  A partial sync writes only the chains of the Services that changed, and a shared
chain (``KUBE-SERVICES``, ``KUBE-NODEPORTS``, ...) only when a changed Service's lines in it
changed, so an endpoint change at 10 000 Services is a restore of a few lines.  A sync with
nothing changed (the periodic one) checks that the empty ``KUBE-PROXY-CANARY`` chain still
exists and rewrites everything when it does not (the tables were flushed under us).

The nf_tables flavour of iptables-restore slows down badly with the size of one input (a
10 000-Service rule set does not finish in minutes), so with that backend a large full sync
is applied as several transactions: the Services' own chains in batches first (not yet
referenced, so traffic is unaffected), then the shared chains that point at them in the last
one.  ``batch_lines: 0`` forces one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Sequence

import attrs

from kubeling.proxy import Endpoint, Proxier, ProxyState, ServicePort, SyncResult
from kubeling_proxy_iptables.rules import (
    BASE_CHAINS,
    FILTER,
    JUMPS,
    NAT,
    NODEPORTS_LAST,
    OWN_CHAINS,
    SERVICE_CHAIN_PREFIXES,
    ServiceRules,
    base_rules,
    service_rules,
)

log = logging.getLogger(__name__)

__all__ = ["Family", "IptablesError", "IptablesProxier", "IptablesSettings", "Runner"]


class IptablesError(RuntimeError):
    """An iptables command failed; carries its output."""


def _check_mode(_instance: object, _attribute: object, value: str) -> None:
    if value not in ("auto", "nft", "legacy"):
        raise ValueError(f"mode must be auto, nft or legacy, not {value!r}")


@attrs.frozen(kw_only=True)
class IptablesSettings:
    """The ``proxy.iptables`` config section."""

    mode: str = attrs.field(default="auto", validator=_check_mode)
    """``nft`` (iptables-nft), ``legacy`` (iptables-legacy) or ``auto``: whichever the
    ``iptables`` command on this host is (use the one Docker uses)."""
    cluster_cidr: str = ""
    """The pods' CIDR: traffic to a cluster IP from outside it is masqueraded."""
    masquerade_all: bool = False
    """Masquerade all traffic to cluster IPs."""
    batch_lines: int = -1
    """Split a full sync into transactions of about this many lines (0: never; -1: 10 000
    with the nft backend, never with legacy)."""
    netns: str | None = None
    """Apply the rules in this named network namespace (``ip netns``) instead of the
    host's; for tests and for nodes that are namespaces."""
    ipv6: bool = True
    """Also program ip6tables for Services with an IPv6 cluster IP (dual stack too)."""


class Runner:
    """Runs iptables commands, in a network namespace when asked."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def argv(self, *cmd: str) -> list[str]:
        if self.netns:
            return ["nsenter", f"--net=/run/netns/{self.netns}", *cmd]
        return list(cmd)

    async def run(self, *cmd: str, input: bytes | None = None, check: bool = True
                  ) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(*cmd), stdin=asyncio.subprocess.PIPE if input is not None else None,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate(input)
        text = out.decode(errors="replace")
        if check and proc.returncode != 0:
            raise IptablesError(f"{' '.join(cmd)} failed ({proc.returncode}): {text.strip()}")
        return proc.returncode or 0, text


@attrs.frozen
class Family:
    """The commands of one IP family and flavour."""

    v6: bool
    restore: str
    save: str
    iptables: str

    @classmethod
    def pick(cls, mode: str, v6: bool) -> Family:
        base = "ip6tables" if v6 else "iptables"
        if mode == "auto":
            return cls(v6, f"{base}-restore", f"{base}-save", base)
        return cls(v6, f"{base}-{mode}-restore", f"{base}-{mode}-save", f"{base}-{mode}")


def detect_nft(family: Family) -> bool:
    """Whether the family's iptables is the nf_tables flavour."""
    if "legacy" in family.restore:
        return False
    if "nft" in family.restore:
        return True
    path = shutil.which(family.iptables)
    if path is None:
        return True
    with contextlib.suppress(OSError):
        import os

        return "nft" in os.path.realpath(path)
    return True


@attrs.define
class _FamilyState:
    """What is installed for one family."""

    family: Family
    installed: dict[str, ServiceRules] = attrs.field(factory=dict)
    shared: dict[tuple[str, str], dict[str, list[str]]] = attrs.field(factory=dict)
    """(table, shared chain) -> service key -> its lines there."""
    ready: bool = False
    """A full sync succeeded since start (else the next sync is full)."""
    idle: bool = False
    """The last sync found no Service of this family and nothing installed (an IPv6
    family on a v4-only cluster): Services of this family can only show up as changed."""


def _has_family(port: ServicePort, v6: bool) -> bool:
    return any((":" in ip) == v6 for ip in port.cluster_ips)


class IptablesProxier(Proxier):
    """kube-proxy's iptables mode."""

    name = "iptables"

    def __init__(self, settings: IptablesSettings | None = None) -> None:
        self.settings = settings or IptablesSettings()
        self.runner = Runner(self.settings.netns)
        self.families = {False: _FamilyState(Family.pick(self.settings.mode, False))}
        if self.settings.ipv6 and shutil.which(Family.pick(self.settings.mode, True).restore):
            self.families[True] = _FamilyState(Family.pick(self.settings.mode, True))
        self.node_name = ""
        self.restores = 0
        """iptables-restore invocations so far (tests and benchmarks read it)."""
        self.last_text = ""
        """The input of the last restore (for debugging and tests)."""
        self.last_texts: list[str] = []
        """Every restore input of the last sync, in order (benchmarks replay them)."""

    async def start(self, node_name: str) -> None:
        self.node_name = node_name

    # -- sync --------------------------------------------------------------------------------

    async def sync(self, state: ProxyState, changed: frozenset[str] | None = None
                   ) -> SyncResult:
        started = time.monotonic()
        for fs in self.families.values():
            if changed is not None and not changed and fs.ready and \
                    not await self._canary_alive(fs.family):
                log.warning("iptables proxier: our nat chains are gone (tables flushed?); "
                            "resyncing everything")
                fs.ready = False
        # a partial sync looks only at the changed Services (at 10k Services, scanning
        # them all cost ~30 ms per sync)
        only = None if changed is None or not all(
            fs.ready or fs.idle for fs in self.families.values()) else changed
        by_service: dict[str, list[tuple[ServicePort, Sequence[Endpoint]]]] = {}
        for name, port in state.services.items():
            if only is None or name.service in only:
                by_service.setdefault(name.service, []).append(
                    (port, state.endpoints.get(name, ())))
        gen = apply = 0.0
        lines = written = 0
        self.last_texts = []
        full_any = False
        for v6, fs in self.families.items():
            ports_here = {k: [(p, e) for p, e in v if _has_family(p, v6)]
                          for k, v in by_service.items()}
            ports_here = {k: v for k, v in ports_here.items() if v}
            fs.idle = v6 and not ports_here and not fs.installed and not fs.ready
            if fs.idle:
                continue
            full = changed is None or not fs.ready
            full_any = full_any or full
            g0 = time.monotonic()
            keys = set(ports_here) | set(fs.installed) if full else \
                (set(changed or ()) & (set(ports_here) | set(fs.installed)))
            new: dict[str, ServiceRules | None] = {}
            for key in keys:
                ports = ports_here.get(key)
                new[key] = service_rules(ports, cluster_cidr=self.settings.cluster_cidr,
                                         masquerade_all=self.settings.masquerade_all,
                                         v6=v6) if ports else None
            if full:
                texts = await self._render_full(fs, new)
            else:
                texts = self._render_partial(fs, new)
            gen += time.monotonic() - g0
            for text in texts:
                lines += text.count("\n")
                self.last_text = text
                self.last_texts.append(text)
                a0 = time.monotonic()
                await self._restore(fs.family, text)
                apply += time.monotonic() - a0
            if texts or full:
                written += len(new)
            old = {k: fs.installed.get(k) for k in new}
            self._commit(fs, new)
            fs.ready = True
            if any(p.protocol == "UDP" for v in ports_here.values() for p, _ in v):
                await self._clear_udp(old, new, ports_here)
        return SyncResult(full=full_any, services=written, seconds=time.monotonic() - started,
                          generate_seconds=gen, apply_seconds=apply, lines=lines)

    async def _canary_alive(self, family: Family) -> bool:
        """Whether our empty ``KUBE-PROXY-CANARY`` nat chain still exists (someone flushing
        the tables takes it with everything else)."""
        code, _ = await self.runner.run(family.iptables, "-w", "5", "-t", NAT, "-S",
                                        "KUBE-PROXY-CANARY", check=False)
        return code == 0

    def _commit(self, fs: _FamilyState, new: dict[str, ServiceRules | None]) -> None:
        for key, rules in new.items():
            for per_service in fs.shared.values():
                per_service.pop(key, None)
            if rules is None:
                fs.installed.pop(key, None)
                continue
            fs.installed[key] = rules
            for where, lines in rules.shared.items():
                fs.shared.setdefault(where, {})[key] = lines

    async def _restore(self, family: Family, text: str) -> None:
        self.restores += 1
        await self.runner.run(family.restore, "-w", "5", "--noflush", input=text.encode())

    def _shared_text(self, fs: _FamilyState, new: dict[str, ServiceRules | None],
                     table: str, chain: str) -> str:
        per_service = dict(fs.shared.get((table, chain), {}))
        for key, rules in new.items():
            per_service.pop(key, None)
            if rules is not None and (table, chain) in rules.shared:
                per_service[key] = rules.shared[(table, chain)]
        out = [line for key in sorted(per_service) for line in per_service[key]]
        if table == NAT and chain == "KUBE-SERVICES":
            out.append(NODEPORTS_LAST)
        return "\n".join(out) + "\n" if out else ""

    async def _existing(self, fs: _FamilyState) -> tuple[set[tuple[str, str]], set[tuple[str,
                                                                                            str]]]:
        """Chains of ours in the kernel, and (chain, target) jumps from built-in chains."""
        chains: set[tuple[str, str]] = set()
        jumps: set[tuple[str, str]] = set()
        for table in (NAT, FILTER):
            _, text = await self.runner.run(fs.family.save, "-t", table, check=False)
            for line in text.splitlines():
                if line.startswith(":KUBE-"):
                    chains.add((table, line[1:].split(" ", 1)[0]))
                elif line.startswith("-A ") and " -j KUBE-" in line:
                    chain = line.split(" ", 2)[1]
                    if chain in ("PREROUTING", "INPUT", "OUTPUT", "FORWARD", "POSTROUTING"):
                        jumps.add((f"{table}:{chain}", line.rsplit(" -j ", 1)[1].split()[0]))
        return chains, jumps

    async def _render_full(self, fs: _FamilyState, new: dict[str, ServiceRules | None]
                           ) -> list[str]:
        existing, jumps = await self._existing(fs)
        wanted: dict[tuple[str, str], str] = {}
        for rules in new.values():
            if rules is not None:
                wanted.update(rules.chains)
        stale = sorted(c for c in existing if c[1].startswith(SERVICE_CHAIN_PREFIXES)
                       and c not in wanted)
        batch = self.settings.batch_lines
        if batch < 0:
            # measured: iptables-nft 1.8.9 takes ~0.5 s for 10k lines, ~13 s for 28k
            batch = 10_000 if detect_nft(fs.family) else 0
        out: list[str] = []
        # endpoints first, then what points at them, so every batch only refers to chains
        # that already exist: SEP <- SVC/SVL <- EXT
        rank = {"KUBE-SEP-": 0, "KUBE-SVC-": 1, "KUBE-SVL-": 1, "KUBE-EXT-": 2}
        service_chains = sorted(wanted.items(), key=lambda item: (
            rank.get(item[0][1][:9], 3), item[0]))
        total = sum(text.count("\n") for _, text in service_chains)
        if batch and total > batch:
            # the base chains first, so the Services' chains can refer to KUBE-MARK-MASQ
            prelude = ["*nat"]
            base = base_rules(NAT, v6=fs.family.v6)
            prelude += [f":{c} - [0:0]" for c in base]
            prelude += [line for lines in base.values() for line in lines]
            out.append("\n".join([*prelude, "COMMIT", ""]))
            chunk: list[str] = []
            decls: list[str] = []
            size = 0
            for (_, chain), text in service_chains:
                decls.append(f":{chain} - [0:0]")
                chunk.append(text)
                size += text.count("\n") + 1
                if size >= batch:
                    out.append("*nat\n" + "\n".join(decls) + "\n" + "".join(chunk) + "COMMIT\n")
                    chunk, decls, size = [], [], 0
            if chunk:
                out.append("*nat\n" + "\n".join(decls) + "\n" + "".join(chunk) + "COMMIT\n")
            service_chains = []
        final: list[str] = []
        for table in (FILTER, NAT):
            parts = [f"*{table}"]
            parts += [f":{c} - [0:0]" for c in BASE_CHAINS[table]]
            parts += [f":{chain} - [0:0]" for (t, chain), _ in service_chains if t == table]
            parts += [f":{chain} - [0:0]" for t, chain in stale if t == table]
            for t, chain, rule in JUMPS:
                target = rule.rsplit(" -j ", 1)[1]
                if t == table and (f"{t}:{chain}", target) not in jumps:
                    parts.append(f"-I {chain} 1 {rule}")
            body = [line for lines in base_rules(table, v6=fs.family.v6).values()
                    for line in lines]
            parts += body
            text = "\n".join(parts) + "\n"
            text += "".join(self._shared_text(fs, new, table, c) for c in BASE_CHAINS[table]
                            if c not in base_rules(table, v6=fs.family.v6))
            text += "".join(t for (tt, _), t in service_chains if tt == table)
            text += "".join(f"-X {chain}\n" for t, chain in stale if t == table)
            final.append(text + "COMMIT\n")
        out.append("".join(final))  # both tables in one restore
        return out

    def _render_partial(self, fs: _FamilyState, new: dict[str, ServiceRules | None]
                        ) -> list[str]:
        out: list[str] = []
        for table in (FILTER, NAT):
            decls: list[str] = []
            body: list[str] = []
            delete: list[str] = []
            for chain in BASE_CHAINS[table]:
                if chain in base_rules(table):
                    continue
                touched = False
                for key, rules in new.items():
                    old = fs.installed.get(key)
                    old_lines = old.shared.get((table, chain)) if old else None
                    new_lines = rules.shared.get((table, chain)) if rules else None
                    if (old_lines or None) != (new_lines or None):
                        touched = True
                        break
                if touched:
                    decls.append(f":{chain} - [0:0]")
                    body.append(self._shared_text(fs, new, table, chain))
            for key, rules in new.items():
                old = fs.installed.get(key)
                old_chains = old.chains if old else {}
                new_chains = rules.chains if rules else {}
                for (t, chain), text in sorted(new_chains.items()):
                    if t == table and old_chains.get((t, chain)) != text:
                        decls.append(f":{chain} - [0:0]")
                        body.append(text)
                for (t, chain) in sorted(old_chains):
                    if t == table and (t, chain) not in new_chains:
                        decls.append(f":{chain} - [0:0]")
                        delete.append(f"-X {chain}")
            if decls:
                out.append(f"*{table}\n" + "\n".join(decls) + "\n" + "".join(body)
                           + "".join(d + "\n" for d in delete) + "COMMIT\n")
        return ["".join(out)] if out else []  # both tables in one restore

    async def _clear_udp(self, old: dict[str, ServiceRules | None],
                         new: dict[str, ServiceRules | None],
                         ports: dict[str, list[tuple[ServicePort, Sequence[Endpoint]]]]
                         ) -> None:
        """Forget UDP conntrack entries towards endpoints that left (UDP has no
        connection end that would clear them) and REJECTed flows of Services that got
        endpoints."""
        if shutil.which("conntrack") is None:
            return
        for key, rules in new.items():
            before = old.get(key)
            if before is None or rules is None:
                continue
            gone = set(before.chains) - set(rules.chains)
            if not gone:
                continue
            for port, eps in ports.get(key, []):
                if port.protocol != "UDP":
                    continue
                current = {e.ip for e in eps}
                for chain in gone:
                    text = before.chains[chain]
                    ip = text.split("--to-destination ", 1)[-1].rsplit(":", 1)[0].strip("[]") \
                        if "--to-destination" in text else ""
                    if not ip or ip in current:
                        continue
                    for cluster_ip in port.cluster_ips:
                        await self.runner.run("conntrack", "-D", "-p", "udp", "--orig-dst",
                                              cluster_ip, "--dst-nat", ip, check=False)

    # -- cleanup -----------------------------------------------------------------------------

    async def cleanup(self) -> None:
        """Delete every chain this proxier makes and the jumps to them, in both families
        (``kubeling proxy cleanup``)."""
        for fs in self.families.values():
            await cleanup_family(self.runner, fs.family)
            fs.installed.clear()
            fs.shared.clear()
            fs.ready = False


def _ours(chain: str) -> bool:
    return chain in OWN_CHAINS or chain.startswith(SERVICE_CHAIN_PREFIXES)


async def cleanup_family(runner: Runner, family: Family) -> int:
    """Remove our chains and the built-in chains' jumps to them; returns how many chains."""
    removed = 0
    for table in (NAT, FILTER, "mangle"):
        code, text = await runner.run(family.save, "-t", table, check=False)
        if code != 0:
            continue
        chains = [line[1:].split(" ", 1)[0] for line in text.splitlines()
                  if line.startswith(":") and _ours(line[1:].split(" ", 1)[0])]
        deletes = []
        for line in text.splitlines():
            if not line.startswith("-A "):
                continue
            chain = line.split(" ", 2)[1]
            target = line.rsplit(" -j ", 1)[-1].split()[0] if " -j " in line else ""
            if not _ours(chain) and _ours(target):
                deletes.append("-D" + line[2:])
        if not chains and not deletes:
            continue
        restore = [f"*{table}", *deletes, *(f":{c} - [0:0]" for c in chains),
                   *(f"-X {c}" for c in chains), "COMMIT", ""]
        await runner.run(family.restore, "-w", "5", "--noflush",
                         input="\n".join(restore).encode())
        removed += len(chains)
    return removed

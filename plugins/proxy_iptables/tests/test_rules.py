"""The generated rules, checked structurally, and how syncs write them (real iptables in a
test network namespace)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from kubeling_proxy_iptables import IptablesProxier, IptablesSettings
from kubeling_proxy_iptables.rules import FILTER, NAT, chain_hash, service_rules

from kubeling.proxy import Endpoint, ProxyState, ServicePort, ServicePortName
from kubeling.testing.proxier_contract import lab_available


def port(name: str = "web", ip: str = "10.96.0.50", **kw: object) -> ServicePort:
    args: dict[str, object] = {"port": 80, "protocol": "TCP"}
    args.update(kw)
    return ServicePort(name=ServicePortName("default", name, "http", str(args["protocol"])),
                       cluster_ips=(ip,), **args)  # type: ignore[arg-type]


def eps(n: int, **kw: object) -> tuple[Endpoint, ...]:
    return tuple(Endpoint(ip=f"10.244.{i}.2", port=8080, **kw)  # type: ignore[arg-type]
                 for i in range(1, n + 1))


def test_cluster_ip_chain_layout() -> None:
    p = port(node_port=30080)
    rules = service_rules([(p, eps(3))])
    svc = "KUBE-SVC-" + chain_hash("default/web:httptcp")
    ext = "KUBE-EXT-" + chain_hash("default/web:httptcp")
    assert rules.shared[(NAT, "KUBE-SERVICES")] == [
        '-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" '
        f"-d 10.96.0.50/32 -p tcp -m tcp --dport 80 -j {svc}"]
    lines = rules.chains[(NAT, svc)].splitlines()
    assert [line.split("-j ")[-1].startswith("KUBE-SEP-") for line in lines] == [True] * 3
    assert "--probability 0.3333333333" in lines[0]
    assert "--probability 0.5000000000" in lines[1]
    assert "statistic" not in lines[2]
    seps = [line.split("-j ")[-1] for line in lines]
    for i, sep in enumerate(seps, start=1):
        body = rules.chains[(NAT, sep)].splitlines()
        assert body[0].endswith(f"-s 10.244.{i}.2/32 -j KUBE-MARK-MASQ")  # hairpin
        assert body[1].endswith(f"-j DNAT --to-destination 10.244.{i}.2:8080")
    assert rules.shared[(NAT, "KUBE-NODEPORTS")] == [
        f'-A KUBE-NODEPORTS -m comment --comment "default/web:http" -p tcp -m tcp '
        f"--dport 30080 -j {ext}"]
    assert rules.chains[(NAT, ext)].splitlines() == [
        f'-A {ext} -m comment --comment "masquerade traffic for default/web:http external '
        'destinations" -j KUBE-MARK-MASQ', f"-A {ext} -j {svc}"]
    assert (FILTER, "KUBE-SERVICES") not in rules.shared


def test_no_endpoints_rejects_in_the_filter_table() -> None:
    rules = service_rules([(port(node_port=30080), ())])
    assert rules.chains == {}
    assert (NAT, "KUBE-SERVICES") not in rules.shared
    [reject] = rules.shared[(FILTER, "KUBE-SERVICES")]
    assert '"default/web:http has no endpoints"' in reject
    assert reject.endswith("-j REJECT --reject-with icmp-port-unreachable")
    [ext] = rules.shared[(FILTER, "KUBE-EXTERNAL-SERVICES")]
    assert "--dst-type LOCAL -p tcp -m tcp --dport 30080 -j REJECT" in ext


def test_only_ready_endpoints_then_terminating_ones() -> None:
    mixed = (Endpoint(ip="10.244.1.2", port=8080, ready=False, serving=False),
             Endpoint(ip="10.244.2.2", port=8080),
             Endpoint(ip="10.244.3.2", port=8080, ready=False, serving=True,
                      terminating=True))
    rules = service_rules([(port(), mixed)])
    dnat = [t for (_, c), t in rules.chains.items() if c.startswith("KUBE-SEP-")]
    assert len(dnat) == 1 and "10.244.2.2:8080" in dnat[0]
    fallback = (mixed[0], mixed[2])
    rules = service_rules([(port(), fallback)])
    dnat = [t for (_, c), t in rules.chains.items() if c.startswith("KUBE-SEP-")]
    assert len(dnat) == 1 and "10.244.3.2:8080" in dnat[0]


def test_client_ip_affinity_uses_recent() -> None:
    rules = service_rules([(port(affinity_timeout=600), eps(2))])
    svc = "KUBE-SVC-" + chain_hash("default/web:httptcp")
    lines = rules.chains[(NAT, svc)].splitlines()
    assert all("--rcheck --seconds 600 --reap" in line for line in lines[:2])
    sep = lines[0].split("-j ")[-1]
    assert f"-m recent --name {sep}" in lines[0]
    assert f"-m recent --set --name {sep}" in rules.chains[(NAT, sep)]


def test_external_traffic_policy_local_layout() -> None:
    p = port(node_port=30080, external_local=True)
    both = (Endpoint(ip="10.244.1.2", port=8080, local=True),
            Endpoint(ip="10.244.2.2", port=8080, local=False))
    rules = service_rules([(p, both)], cluster_cidr="10.244.0.0/16")
    key = "default/web:httptcp"
    ext, svl, svc = (f"KUBE-{k}-{chain_hash(key)}" for k in ("EXT", "SVL", "SVC"))
    lines = rules.chains[(NAT, ext)].splitlines()
    assert f"-s 10.244.0.0/16 -j {svc}" in lines[0]
    assert "--src-type LOCAL -j KUBE-MARK-MASQ" in lines[1]
    assert f"--src-type LOCAL -j {svc}" in lines[2]
    assert lines[3] == f"-A {ext} -j {svl}"
    assert "10.244.1.2" in rules.chains[(NAT, svl)] and "10.244.2.2" not in \
        rules.chains[(NAT, svl)]
    # and off-cluster traffic to the cluster IP is masqueraded when the pod CIDR is known
    assert "! -s 10.244.0.0/16 -d 10.96.0.50/32" in rules.chains[(NAT, svc)]
    none_local = service_rules([(p, (both[1],))])
    [drop] = none_local.shared[(FILTER, "KUBE-EXTERNAL-SERVICES")]
    assert '"default/web:http has no local endpoints"' in drop and drop.endswith("-j DROP")


# -- syncs in a network namespace ---------------------------------------------------------


needs_netns = pytest.mark.skipif(lab_available() is not None, reason=str(lab_available()))


@pytest.fixture
def netns() -> Iterator[str]:
    import secrets

    name = f"kl-test-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def save(netns: str, table: str = "nat") -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "iptables-save", "-t", table],
                          capture_output=True, text=True, check=True).stdout


def state(*pairs: tuple[ServicePort, tuple[Endpoint, ...]]) -> ProxyState:
    return ProxyState({p.name: p for p, _ in pairs}, {p.name: e for p, e in pairs})


@needs_netns
async def test_partial_sync_writes_only_what_changed(netns: str) -> None:
    proxier = IptablesProxier(IptablesSettings(netns=netns))
    services = [port(f"s{i}", f"10.96.1.{i}") for i in range(1, 21)]
    endpoints = {p.name: eps(3) for p in services}
    full = await proxier.sync(ProxyState({p.name: p for p in services}, endpoints))
    assert full.full and full.services == 20
    before = save(netns)
    assert before.count(":KUBE-SVC-") == 20 and before.count(":KUBE-SEP-") == 60
    # one endpoint of one Service changes: only that Service's chains are written
    endpoints[services[4].name] = eps(2)
    result = await proxier.sync(ProxyState({p.name: p for p in services}, endpoints),
                                frozenset({"default/s5"}))
    assert not result.full and result.services == 1
    text = proxier.last_text
    assert "KUBE-SERVICES" not in text and "KUBE-NODEPORTS" not in text
    assert text.count(":KUBE-SVC-") == 1 and "-X KUBE-SEP-" in text
    after = save(netns)
    assert after.count(":KUBE-SEP-") == 59
    # a new Service adds its line to KUBE-SERVICES
    extra = port("new", "10.96.2.1")
    endpoints[extra.name] = eps(1)
    await proxier.sync(ProxyState({p.name: p for p in [*services, extra]}, endpoints),
                       frozenset({"default/new"}))
    assert ":KUBE-SERVICES" in proxier.last_text
    assert "10.96.2.1/32" in save(netns)
    # nothing changed: nothing written
    restores = proxier.restores
    await proxier.sync(ProxyState({p.name: p for p in [*services, extra]}, endpoints),
                       frozenset())
    assert proxier.restores == restores
    await proxier.cleanup()


@needs_netns
async def test_only_our_chains_are_touched_and_cleanup_removes_them(netns: str) -> None:
    foreign = ("*nat\n:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
               "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n"
               "-A DOCKER -i docker0 -j RETURN\nCOMMIT\n"
               "*filter\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n"
               "-A DOCKER-USER -j RETURN\nCOMMIT\n")
    subprocess.run(["ip", "netns", "exec", netns, "iptables-restore", "--noflush"],
                   input=foreign, text=True, check=True)
    theirs_nat = [line for line in save(netns).splitlines() if "DOCKER" in line or
                  "172.17" in line]
    proxier = IptablesProxier(IptablesSettings(netns=netns))
    await proxier.sync(state((port(node_port=30080), eps(2))))
    await proxier.sync(state((port(node_port=30080), eps(2))))  # jumps are not duplicated
    nat = save(netns)
    assert [line for line in nat.splitlines() if "DOCKER" in line or "172.17" in line] == \
        theirs_nat
    assert nat.count("-j KUBE-SERVICES") == 2  # PREROUTING and OUTPUT, once each
    prerouting = [line for line in nat.splitlines() if line.startswith("-A PREROUTING")]
    assert prerouting[0].endswith("-j KUBE-SERVICES")  # ours first, Docker's kept
    # kubeling proxy cleanup (the CLI) removes ours and only ours
    from kubeling.cli import cli

    result = subprocess.run([sys.executable, "-m", "kubeling.cli", "proxy", "cleanup",
                             "--netns", netns], capture_output=True, text=True)
    del cli
    assert result.returncode == 0, result.stdout + result.stderr
    nat = save(netns)
    assert "KUBE-" not in nat and "KUBE-" not in save(netns, "filter")
    assert [line for line in nat.splitlines() if "DOCKER" in line or "172.17" in line] == \
        theirs_nat
    assert "-A DOCKER-USER -j RETURN" in save(netns, "filter")


@needs_netns
async def test_a_restarted_proxier_removes_stale_chains(netns: str) -> None:
    first = IptablesProxier(IptablesSettings(netns=netns))
    await first.sync(state((port("old", "10.96.3.1"), eps(2))))
    second = IptablesProxier(IptablesSettings(netns=netns))  # knows nothing of "old"
    await second.sync(state((port("new", "10.96.3.2"), eps(1))))
    nat = save(netns)
    assert "10.96.3.1" not in nat and "10.96.3.2" in nat
    assert nat.count(":KUBE-SEP-") == 1
    await second.cleanup()


@needs_netns
async def test_batched_full_sync_matches_one_transaction(netns: str) -> None:
    # node ports: KUBE-EXT chains refer to KUBE-SVC chains, which must come first (a bug
    # the 10 000-Service benchmark found: batches were in name order)
    services = [port(f"s{i}", f"10.96.4.{i}", node_port=30000 + i) for i in range(1, 31)]
    st = ProxyState({p.name: p for p in services}, {p.name: eps(2) for p in services})
    batched = IptablesProxier(IptablesSettings(netns=netns, batch_lines=40))
    await batched.sync(st)
    assert batched.restores > 3
    one = save(netns)
    await batched.cleanup()
    single = IptablesProxier(IptablesSettings(netns=netns, batch_lines=0))
    await single.sync(st)
    assert single.restores == 1
    assert sorted(one.splitlines()[2:-2]) == sorted(save(netns).splitlines()[2:-2])
    await single.cleanup()


@needs_netns
async def test_flushed_tables_are_noticed_by_the_periodic_sync(netns: str) -> None:
    proxier = IptablesProxier(IptablesSettings(netns=netns))
    st = state((port(), eps(2)))
    await proxier.sync(st)
    restores = proxier.restores
    await proxier.sync(st, frozenset())  # nothing changed, nothing flushed: no restore
    assert proxier.restores == restores
    for table in ("nat", "filter"):
        for flag in ("-F", "-X"):
            subprocess.run(["ip", "netns", "exec", netns, "iptables", "-t", table, flag],
                           check=True)
    assert "KUBE-" not in save(netns)
    result = await proxier.sync(st, frozenset())
    assert result.full
    assert "10.96.0.50/32" in save(netns)
    assert "-A PREROUTING -m comment --comment \"kubernetes service portals\"" in save(netns)
    await proxier.cleanup()


@needs_netns
async def test_dual_stack_service_is_programmed_in_both_families(netns: str) -> None:
    name = ServicePortName("default", "dual", "http", "TCP")
    dual = ServicePort(name=name, cluster_ips=("10.96.5.1", "fd00:10::5"), port=80,
                       protocol="TCP")
    endpoints = (Endpoint(ip="10.244.1.2", port=8080), Endpoint(ip="fd00:244::2", port=8080))
    proxier = IptablesProxier(IptablesSettings(netns=netns))
    await proxier.sync(ProxyState({name: dual}, {name: endpoints}))
    v4 = save(netns)
    v6 = subprocess.run(["ip", "netns", "exec", netns, "ip6tables-save", "-t", "nat"],
                        capture_output=True, text=True, check=True).stdout
    assert "-d 10.96.5.1/32" in v4 and "10.244.1.2:8080" in v4 and "fd00" not in v4
    assert "-d fd00:10::5/128" in v6 and "[fd00:244::2]:8080" in v6 and "10.244" not in v6
    await proxier.cleanup()
    assert "KUBE-" not in subprocess.run(["ip", "netns", "exec", netns, "ip6tables-save"],
                                         capture_output=True, text=True).stdout


@needs_netns
async def test_first_ipv6_service_arriving_in_a_partial_sync(netns: str) -> None:
    proxier = IptablesProxier(IptablesSettings(netns=netns))
    if True not in proxier.families:
        pytest.skip("ip6tables-restore is not installed")
    v4 = port("only4", "10.96.6.1")
    await proxier.sync(ProxyState({v4.name: v4}, {v4.name: eps(1)}))
    name = ServicePortName("default", "dual", "http", "TCP")
    dual = ServicePort(name=name, cluster_ips=("10.96.6.2", "fd00:10::6"), port=80,
                       protocol="TCP")
    endpoints = (Endpoint(ip="10.244.1.9", port=8080), Endpoint(ip="fd00:244::9", port=8080))
    result = await proxier.sync(ProxyState({v4.name: v4, name: dual},
                                           {v4.name: eps(1), name: endpoints}),
                                frozenset({"default/dual"}))
    assert result.services >= 1
    v6 = subprocess.run(["ip", "netns", "exec", netns, "ip6tables-save", "-t", "nat"],
                        capture_output=True, text=True, check=True).stdout
    assert "-d fd00:10::6/128" in v6 and "[fd00:244::9]:8080" in v6
    assert "-d 10.96.6.2/32" in save(netns) and "-d 10.96.6.1/32" in save(netns)
    await proxier.cleanup()


@needs_netns
async def test_a_partial_sync_looks_only_at_the_changed_services(
        netns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubeling_proxy_iptables import proxier as module

    proxier = IptablesProxier(IptablesSettings(netns=netns))
    services = [port(f"s{i}", f"10.96.7.{i}") for i in range(1, 51)]
    endpoints = {p.name: eps(2) for p in services}
    await proxier.sync(ProxyState({p.name: p for p in services}, endpoints))
    looked: list[str] = []
    real = module._has_family
    monkeypatch.setattr(module, "_has_family",
                        lambda p, v6: looked.append(p.name.service) or real(p, v6))
    endpoints[services[9].name] = eps(1)
    await proxier.sync(ProxyState({p.name: p for p in services}, endpoints),
                       frozenset({"default/s10"}))
    assert set(looked) == {"default/s10"}
    assert save(netns).count(":KUBE-SEP-") == 99
    await proxier.cleanup()

"""Pods' DNS for real: ``kubeling up`` with a Docker node, the service proxy (programming a
network namespace of this test, never the host's tables) and cluster DNS.  The kubelet
gives ClusterFirst pods the cluster DNS Service, search paths and ``ndots:5``; a pod asks
the cluster DNS server for Service names and gets their cluster IPs.

The hop from 10.96.0.10 to the DNS server through the proxy's DNAT rules is tested in a
network-namespace lab (tests/networking/test_dns_e2e.py): here the server listens on the
Docker bridge's gateway, port 53, which a pod names in its ``dnsConfig``."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.node.conftest import NodeCluster, running_and_ready

pytest.importorskip("kubeling_dns")
pytest.importorskip("kubeling_proxy_iptables")


def bridge_gateway() -> str | None:
    result = subprocess.run(["docker", "network", "inspect", "bridge", "-f",
                             "{{(index .IPAM.Config 0).Gateway}}"],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or None if result.returncode == 0 else None


@pytest.fixture(scope="module")
def dns_cluster(tmp_path_factory: pytest.TempPathFactory, images: dict[str, str],
                run_id: str) -> Iterator[tuple[NodeCluster, str]]:
    gateway = bridge_gateway()
    if gateway is None:
        pytest.skip("Docker's bridge network has no gateway address")
    netns = f"kl-test-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    node = f"kl-{run_id}-{uuid.uuid4().hex[:4]}"
    cluster = NodeCluster(
        tmp_path_factory.mktemp("dns-cluster"), images, node,
        sections={"proxy": {"enabled": True, "min_sync_period_seconds": 0.2,
                            "iptables": {"netns": netns}},
                  "dns": {"listen_address": gateway, "port": 53}})
    try:
        cluster.start()
        yield cluster, gateway
    finally:
        cluster.stop()
        subprocess.run(["ip", "netns", "del", netns], check=False)


def pod(cluster: NodeCluster, name: str, **spec: Any) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": cluster.node, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "app", "image": cluster.image,
                                 "command": ["/bin/sh", "-c", "exec sleep 3600"]}],
                 **spec}})


def resolv_conf(cluster: NodeCluster, name: str) -> dict[str, list[str]]:
    cluster.wait_pod(name, running_and_ready, what=f"{name} Running")
    text = cluster.kubectl("exec", name, "--", "cat", "/etc/resolv.conf").stdout
    out: dict[str, list[str]] = {"nameserver": [], "search": [], "options": []}
    for line in text.splitlines():
        key, *values = line.split()
        if key == "nameserver":
            out["nameserver"] += values
        elif key in ("search", "options"):
            out[key] = values
    return out


def test_cluster_first_pods_get_the_cluster_dns(dns_cluster: tuple[NodeCluster, str]) -> None:
    cluster, _ = dns_cluster
    cluster.wait(lambda: cluster.get("service", "kube-dns", "kube-system"), timeout=20,
                 what="the kube-dns Service")
    cluster.apply(pod(cluster, "dns-first"), namespace="default")
    conf = resolv_conf(cluster, "dns-first")
    assert conf["nameserver"] == ["10.96.0.10"]
    assert conf["search"][:3] == ["default.svc.cluster.local", "svc.cluster.local",
                                  "cluster.local"]
    assert "ndots:5" in conf["options"]


def test_default_policy_keeps_the_hosts_resolvers(dns_cluster: tuple[NodeCluster, str]
                                                   ) -> None:
    cluster, _ = dns_cluster
    cluster.apply(pod(cluster, "dns-default", dnsPolicy="Default"))
    conf = resolv_conf(cluster, "dns-default")
    assert "10.96.0.10" not in conf["nameserver"]
    assert not any(s.endswith("svc.cluster.local") for s in conf["search"])
    assert "ndots:5" not in conf["options"]


def answers(nslookup_output: str) -> list[str]:
    """The addresses of the answer section of busybox nslookup's output."""
    _, _, answer = nslookup_output.partition("Name:")
    return re.findall(r"^Address: ([0-9a-f.:]+)$", answer, re.MULTILINE)


def test_service_names_resolve_inside_a_pod(dns_cluster: tuple[NodeCluster, str]) -> None:
    cluster, gateway = dns_cluster
    cluster.apply(json.dumps({"apiVersion": "v1", "kind": "Service",
                              "metadata": {"name": "web"},
                              "spec": {"ports": [{"port": 80}]}}))
    ip = cluster.get("service", "web")["spec"]["clusterIP"]
    cluster.apply(pod(cluster, "dns-lookup", dnsPolicy="None", dnsConfig={
        "nameservers": [gateway],
        "searches": ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
        "options": [{"name": "ndots", "value": "5"}]}))
    cluster.wait_pod("dns-lookup", running_and_ready, what="dns-lookup Running")
    # the Service existed before the pod: its variables are in the pod's environment
    env = cluster.kubectl("exec", "dns-lookup", "--", "env").stdout.splitlines()
    assert f"WEB_SERVICE_HOST={ip}" in env and "WEB_SERVICE_PORT=80" in env

    def lookup(name: str) -> str:
        result = cluster.kubectl("exec", "dns-lookup", "--", "/bin/busybox", "nslookup", name,
                                 check=False)
        return result.stdout + result.stderr

    seen: list[str] = []

    def web() -> bool:
        seen.append(lookup("web.default.svc.cluster.local"))
        return ip in seen[-1]

    try:
        cluster.wait(web, timeout=15, what=f"web.default.svc.cluster.local -> {ip}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nnslookup said: {seen[-1:]}") from None
    assert answers(lookup("kubernetes.default.svc.cluster.local")) == ["10.96.0.1"]
    assert answers(lookup("kube-dns.kube-system.svc.cluster.local")) == ["10.96.0.10"]
    assert answers(lookup("web")) == [ip]  # through the search path
    missing = lookup("nope.default.svc.cluster.local")
    assert "NXDOMAIN" in missing or "can't find" in missing

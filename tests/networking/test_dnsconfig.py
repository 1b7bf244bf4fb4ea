"""kubeling.dnsconfig: a pod's resolv.conf by the kubelet's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeling.dnsconfig import (
    cluster_dns_from_config,
    host_settings,
    parse_resolv_conf,
    pod_resolv_conf,
)


@pytest.fixture
def host_conf(tmp_path: Path) -> Path:
    path = tmp_path / "resolv.conf"
    path.write_text("# host\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"
                    "search corp.example lab.example\noptions edns0 timeout:2\n")
    return path


def pod(**spec: object) -> dict[str, object]:
    return {"metadata": {"name": "p", "namespace": "shop"}, "spec": spec}


def test_cluster_first_is_the_default(host_conf: Path) -> None:
    text = pod_resolv_conf(pod(), host_resolv_conf=host_conf)
    assert text == ("search shop.svc.cluster.local svc.cluster.local cluster.local "
                    "corp.example lab.example\nnameserver 10.96.0.10\noptions ndots:5\n")


def test_other_domain_and_servers(host_conf: Path) -> None:
    text = pod_resolv_conf(pod(dnsPolicy="ClusterFirst"), cluster_dns=["10.0.0.10"],
                           cluster_domain="k.test.", host_resolv_conf=host_conf)
    settings = parse_resolv_conf(text)
    assert settings.nameservers == ("10.0.0.10",)
    assert settings.searches[:3] == ("shop.svc.k.test", "svc.k.test", "k.test")


def test_host_network_and_default(host_conf: Path) -> None:
    for p in (pod(hostNetwork=True), pod(dnsPolicy="Default")):
        settings = parse_resolv_conf(pod_resolv_conf(p, host_resolv_conf=host_conf))
        assert settings.nameservers == ("192.0.2.53", "192.0.2.54")
        assert settings.searches == ("corp.example", "lab.example")
        assert settings.options == ("edns0", "timeout:2")
    with_net = pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    assert parse_resolv_conf(pod_resolv_conf(with_net, host_resolv_conf=host_conf)
                             ).nameservers == ("10.96.0.10",)
    # no cluster DNS configured: ClusterFirst falls back to the host's
    assert parse_resolv_conf(pod_resolv_conf(pod(), cluster_dns=[],
                                             host_resolv_conf=host_conf)
                             ).nameservers == ("192.0.2.53", "192.0.2.54")


def test_dns_config_merges_and_none_uses_only_it(host_conf: Path) -> None:
    config = {"nameservers": ["192.0.2.99", "10.96.0.10"], "searches": ["extra.example"],
              "options": [{"name": "ndots", "value": "2"}, {"name": "single-request"}]}
    settings = parse_resolv_conf(pod_resolv_conf(pod(dnsConfig=config),
                                                 host_resolv_conf=host_conf))
    assert settings.nameservers == ("10.96.0.10", "192.0.2.99")
    assert settings.searches[-1] == "extra.example"
    assert settings.options == ("ndots:2", "single-request")
    none = parse_resolv_conf(pod_resolv_conf(pod(dnsPolicy="None", dnsConfig=config),
                                             host_resolv_conf=host_conf))
    assert none.nameservers == ("192.0.2.99", "10.96.0.10")
    assert none.searches == ("extra.example",)


def test_limits(host_conf: Path) -> None:
    config = {"nameservers": [f"192.0.2.{i}" for i in range(10)],
              "searches": [f"d{i}.example" for i in range(40)]}
    settings = parse_resolv_conf(pod_resolv_conf(pod(dnsPolicy="None", dnsConfig=config),
                                                 host_resolv_conf=host_conf))
    assert len(settings.nameservers) == 3
    assert len(settings.searches) == 32


def test_missing_host_file(tmp_path: Path) -> None:
    text = pod_resolv_conf(pod(dnsPolicy="Default"), host_resolv_conf=tmp_path / "none")
    assert text == "\n"


def test_host_loopback_resolvers_are_not_given_to_pods(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.7\n"
                    "search lan\n")
    settings = host_settings(path)
    assert settings.nameservers == ("192.0.2.7",)
    assert settings.searches == ("lan",)
    text = pod_resolv_conf(pod(dnsPolicy="Default"), host_resolv_conf=path)
    assert "127.0.0.53" not in text and "nameserver 192.0.2.7" in text


def config_with(**data: object) -> object:
    from kubeling.config import load_config
    from kubeling.plugins import PluginHost

    host = PluginHost()
    host.load()
    host.collect()
    return load_config(data, host.config_class)


def test_cluster_dns_follows_the_dns_section() -> None:
    pytest.importorskip("kubeling_dns")
    assert cluster_dns_from_config(config_with()) == (["10.96.0.10"], "cluster.local")
    custom = config_with(dns={"service_ip": "10.96.0.53", "cluster_domain": "corp.test"})
    assert cluster_dns_from_config(custom) == (["10.96.0.53"], "corp.test")
    assert cluster_dns_from_config(config_with(dns={"enabled": False}))[0] == []
    assert cluster_dns_from_config(config_with(proxy={"enabled": False}))[0] == []
    assert cluster_dns_from_config(config_with(components={"disabled": ["dns"]}))[0] == []
    assert cluster_dns_from_config(None) == ([], "cluster.local")

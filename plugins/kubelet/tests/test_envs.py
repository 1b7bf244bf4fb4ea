"""Environment building: envFrom, env, valueFrom and $(VAR) expansion."""

from __future__ import annotations

import base64

import pytest
from kubeling_kubelet.envs import (
    EnvError,
    expand,
    pod_services,
    resolve_env,
    resource_value,
    service_env,
)

POD = {"metadata": {"name": "web", "namespace": "ns", "uid": "u-1",
                    "labels": {"app": "web"}, "annotations": {"a/b": "c"}},
       "spec": {"nodeName": "n1", "serviceAccountName": "sa",
                "containers": [{"name": "app", "resources": {
                    "limits": {"cpu": "1500m", "memory": "128Mi"},
                    "requests": {"cpu": "250m"}}}]}}
OBJECTS = {
    ("ns", "cm"): {"data": {"a": "1", "b": "2", "bad key": "x"}},
    ("ns", "sec"): {"data": {"token": base64.b64encode(b"t0k").decode()}},
}


def lookup(namespace: str, name: str) -> dict | None:
    return OBJECTS.get((namespace, name))


def env_of(container: dict) -> dict[str, str]:
    return dict(resolve_env(POD, {"name": "app", **container}, configmap=lookup,
                            secret=lookup, pod_ip="10.0.0.5", host_ip="192.0.2.1",
                            allocatable={"cpu": "4", "memory": "8Gi"}))


def test_expand() -> None:
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$(MISSING) $A $(", env) == "$(MISSING) $A $("


def test_env_from_then_env_with_expansion() -> None:
    env = env_of({"envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"},
                              {"secretRef": {"name": "sec"}}],
                  "env": [{"name": "A", "value": "$(CM_a)+$(token)"},
                          {"name": "CM_b", "value": "override"}]})
    assert env == {"CM_a": "1", "CM_b": "override", "token": "t0k", "A": "1+t0k"}


def test_value_from() -> None:
    env = env_of({"env": [
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "ANN", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['a/b']"}}},
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "CPUM", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu",
                                                            "divisor": "1m"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                           "divisor": "1Mi"}}},
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a"}}},
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
        {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "zz",
                                                          "optional": True}}}]})
    assert env == {"NAME": "web", "NS": "ns", "IP": "10.0.0.5", "HOST": "192.0.2.1",
                   "NODE": "n1", "LABEL": "web", "ANN": "c", "CPU": "2", "CPUM": "250",
                   "MEM": "128", "A": "1", "T": "t0k"}


def test_missing_references_are_clear_errors() -> None:
    with pytest.raises(EnvError, match='configmap "nope" not found'):
        env_of({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {
            "name": "nope", "key": "a"}}}]})
    with pytest.raises(EnvError, match="couldn't find key zz in configmap ns/cm"):
        env_of({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {
            "name": "cm", "key": "zz"}}}]})
    with pytest.raises(EnvError, match='secret "gone" not found'):
        env_of({"envFrom": [{"secretRef": {"name": "gone"}}]})
    assert env_of({"envFrom": [{"secretRef": {"name": "gone", "optional": True}}]}) == {}
    with pytest.raises(EnvError, match="unsupported fieldPath"):
        env_of({"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.x"}}}]})


def test_resource_value_defaults_to_allocatable() -> None:
    pod = {"spec": {"containers": [{"name": "c"}]}}
    assert resource_value(pod, "c", "limits.memory", "1Gi", {"memory": "8Gi"}) == "8"
    assert resource_value(pod, "c", "requests.cpu", None, {}) == "0"
    with pytest.raises(EnvError, match='no container "x"'):
        resource_value(pod, "x", "limits.cpu", None, {})


def service(namespace: str, name: str, ip: str, *ports: dict) -> dict:
    return {"metadata": {"namespace": namespace, "name": name},
            "spec": {"clusterIP": ip, "ports": list(ports)}}


SERVICES = [
    service("default", "kubernetes", "10.96.0.1", {"name": "https", "port": 443}),
    service("ns", "web-front", "10.96.3.4", {"name": "http", "port": 80},
            {"name": "dns-udp", "port": 53, "protocol": "UDP"}),
    service("ns", "headless", "None", {"port": 80}),
    service("other", "elsewhere", "10.96.9.9", {"port": 80}),
    service("ns", "v6", "fd00::7", {"port": 8080}),
]


def test_service_variables_as_the_kubelet_sets_them() -> None:
    chosen = pod_services(POD, SERVICES)
    assert [s["metadata"]["name"] for s in chosen] == ["headless", "kubernetes", "v6",
                                                       "web-front"]
    env = service_env(chosen)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == "10.96.0.1"
    assert env["WEB_FRONT_SERVICE_PORT"] == "80"
    assert env["WEB_FRONT_SERVICE_PORT_DNS_UDP"] == "53"
    assert env["WEB_FRONT_PORT_53_UDP"] == "udp://10.96.3.4:53"
    assert env["WEB_FRONT_PORT_53_UDP_PROTO"] == "udp"
    assert env["WEB_FRONT_PORT_53_UDP_PORT"] == "53"
    assert env["V6_PORT"] == "tcp://[fd00::7]:8080"
    assert not any(k.startswith(("HEADLESS_", "ELSEWHERE_")) for k in env)


def test_service_links_can_be_turned_off_but_kubernetes_stays() -> None:
    pod = {**POD, "spec": {**POD["spec"], "enableServiceLinks": False}}
    assert [s["metadata"]["name"] for s in pod_services(pod, SERVICES)] == ["kubernetes"]


def test_container_env_wins_and_may_refer_to_service_variables() -> None:
    env = dict(resolve_env(POD, {"name": "app", "env": [
        {"name": "WEB_FRONT_SERVICE_HOST", "value": "mine"},
        {"name": "URL", "value": "http://$(KUBERNETES_SERVICE_HOST):$(WEB_FRONT_SERVICE_PORT)"},
    ]}, configmap=lookup, secret=lookup, services=pod_services(POD, SERVICES)))
    assert env["WEB_FRONT_SERVICE_HOST"] == "mine"
    assert env["URL"] == "http://10.96.0.1:80"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"

"""The official ``kubernetes`` Python client against a real ``kubeling up`` process."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kubernetes import client, watch

pytestmark = pytest.mark.usefixtures("kubeling")


def core(api_client: Any) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


def test_create_get_list_update_delete(kube_client: Any, namespace: str) -> None:
    v1 = core(kube_client)
    created = v1.create_namespaced_config_map(
        namespace, {"metadata": {"name": "c", "labels": {"app": "x"}}, "data": {"k": "v"}})
    assert created.metadata.uid and created.metadata.creation_timestamp
    got = v1.read_namespaced_config_map("c", namespace)
    assert got.data == {"k": "v"}
    assert got.metadata.resource_version == created.metadata.resource_version
    listed = v1.list_namespaced_config_map(namespace, label_selector="app=x")
    assert [i.metadata.name for i in listed.items] == ["c"]
    got.data["k"] = "w"
    replaced = v1.replace_namespaced_config_map("c", namespace, got)
    assert int(replaced.metadata.resource_version) > int(got.metadata.resource_version)
    with pytest.raises(client.ApiException) as info:
        v1.replace_namespaced_config_map("c", namespace, got)  # stale resourceVersion
    assert info.value.status == 409
    v1.delete_namespaced_config_map("c", namespace)
    with pytest.raises(client.ApiException) as info:
        v1.read_namespaced_config_map("c", namespace)
    assert info.value.status == 404


def test_typed_errors_carry_status_bodies(kube_client: Any, namespace: str) -> None:
    v1 = core(kube_client)
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod(namespace, {"metadata": {"name": "p"},
                                             "spec": {"containers": [{"name": "c"}]}})
    assert info.value.status == 422
    assert "spec.containers[0].image: Required value" in info.value.body


def test_watch_stream_resumes_from_resource_version(kube_client: Any, namespace: str) -> None:
    v1 = core(kube_client)
    first = v1.create_namespaced_config_map(namespace, {"metadata": {"name": "w1"}})
    v1.create_namespaced_config_map(namespace, {"metadata": {"name": "w2"}})
    v1.patch_namespaced_config_map("w1", namespace, {"data": {"a": "b"}})
    seen = []
    for event in watch.Watch().stream(v1.list_namespaced_config_map, namespace,
                                      resource_version=first.metadata.resource_version,
                                      timeout_seconds=1):
        seen.append((event["type"], event["object"].metadata.name))
    assert seen == [("ADDED", "w2"), ("MODIFIED", "w1")]


def test_watch_sees_live_events(kube_client: Any, namespace: str) -> None:
    v1 = core(kube_client)
    listing = v1.list_namespaced_config_map(namespace)

    def writer() -> None:
        time.sleep(0.3)
        v1.create_namespaced_config_map(namespace, {"metadata": {"name": "live"}})
        v1.delete_namespaced_config_map("live", namespace)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_config_map, namespace,
                          resource_version=listing.metadata.resource_version,
                          timeout_seconds=5):
        seen.append(event["type"])
        if event["type"] == "DELETED":
            w.stop()
    thread.join()
    assert seen == ["ADDED", "DELETED"]


def test_pagination_with_limit_and_continue(kube_client: Any, namespace: str) -> None:
    v1 = core(kube_client)
    for i in range(25):
        v1.create_namespaced_config_map(namespace, {"metadata": {"name": f"p{i:02d}"}})
    names, token = [], None
    while True:
        page = v1.list_namespaced_config_map(namespace, limit=10, _continue=token)
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"p{i:02d}" for i in range(25)]


def test_strategic_merge_patch_of_service_ports(kube_client: Any, namespace: str) -> None:
    v1 = core(kube_client)
    v1.create_namespaced_service(namespace, {
        "metadata": {"name": "s"},
        "spec": {"selector": {"app": "a"},
                 "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}})
    patched = v1.patch_namespaced_service(
        "s", namespace, {"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    ports = {p.port: p.target_port for p in patched.spec.ports}
    assert ports == {80: 8080, 443: 443}


def test_deployment_scale_and_generation(kube_client: Any, namespace: str) -> None:
    apps = client.AppsV1Api(kube_client)
    dep = apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}})
    assert dep.metadata.generation == 1
    assert dep.spec.replicas == 1 and dep.spec.strategy.type == "RollingUpdate"
    scale = apps.patch_namespaced_deployment_scale("d", namespace, {"spec": {"replicas": 3}})
    assert scale.spec.replicas == 3
    dep = apps.read_namespaced_deployment("d", namespace)
    assert dep.spec.replicas == 3 and dep.metadata.generation == 2


def test_lease_and_endpointslice_kinds(kube_client: Any, namespace: str) -> None:
    coord = client.CoordinationV1Api(kube_client)
    lease = coord.create_namespaced_lease(namespace, {
        "metadata": {"name": "l"}, "spec": {"holderIdentity": "me",
                                            "leaseDurationSeconds": 15}})
    assert lease.spec.holder_identity == "me"
    disc = client.DiscoveryV1Api(kube_client)
    eps = disc.create_namespaced_endpoint_slice(namespace, {
        "metadata": {"name": "e"}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]})
    assert eps.endpoints[0].addresses == ["10.0.0.1"]


def test_dynamic_client(kube_client: Any, namespace: str) -> None:
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(kube_client)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cms.create(body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"},
                     "data": {"a": "1"}}, namespace=namespace)
    got = cms.get(name="dyn", namespace=namespace)
    assert got.data.a == "1"
    deps = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert deps.namespaced

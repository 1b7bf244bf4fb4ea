"""The same flows through the official ``kubernetes`` Python client: typed APIs, watches,
the dynamic client (discovery, apply) and ``utils.create_from_yaml``."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic, utils, watch


def deployment_body(name: str, image: str = "busybox:1.36", replicas: int = 0
                    ) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def test_typed_apps_api(kube_client: Any, namespace: str) -> None:
    apps = client.AppsV1Api(kube_client)
    created = apps.create_namespaced_deployment(namespace, deployment_body("web"))
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"  # defaulted by the server
    assert created.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    patched = apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {
        "spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}}}})
    assert [c.image for c in patched.spec.template.spec.containers] == ["busybox:1.37"]
    assert patched.metadata.generation == 2
    scale = apps.read_namespaced_deployment_scale("web", namespace)
    assert scale.spec.replicas == 0 and scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 2}})
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 2
    listed = apps.list_namespaced_deployment(namespace, label_selector="app=web")
    assert [d.metadata.name for d in listed.items] == ["web"]
    everywhere = apps.list_deployment_for_all_namespaces(field_selector=(
        f"metadata.namespace={namespace}"))
    assert [d.metadata.name for d in everywhere.items] == ["web"]
    apps.delete_namespaced_deployment("web", namespace)

    with pytest.raises(client.ApiException) as info:
        apps.read_namespaced_deployment("web", namespace)
    assert info.value.status == 404
    body = json.loads(info.value.body)
    assert body["reason"] == "NotFound"
    assert body["message"] == 'deployments.apps "web" not found'


def test_typed_errors_name_the_field(kube_client: Any, namespace: str) -> None:
    apps = client.AppsV1Api(kube_client)
    bad = deployment_body("bad")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(client.ApiException) as info:
        apps.create_namespaced_deployment(namespace, bad)
    assert info.value.status == 422
    body = json.loads(info.value.body)
    assert body["reason"] == "Invalid"
    assert "spec.template.metadata.labels" in [c["field"] for c in body["details"]["causes"]]
    # unknown fields are dropped (fieldValidation defaults to Warn)
    deployments = dynamic.DynamicClient(kube_client).resources.get(api_version="apps/v1",
                                                                   kind="Deployment")
    created = deployments.create(body={**deployment_body("lax"), "bogus": 1},
                                 namespace=namespace)
    assert "bogus" not in created.to_dict()


def test_watch_stream(kube_client: Any, namespace: str) -> None:
    apps = client.AppsV1Api(kube_client)
    listing = apps.list_namespaced_deployment(namespace)

    def writer() -> None:
        time.sleep(0.3)
        apps.create_namespaced_deployment(namespace, deployment_body("w"))
        apps.patch_namespaced_deployment("w", namespace, {"metadata": {"labels": {"x": "y"}}})
        apps.delete_namespaced_deployment("w", namespace)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    stream = watch.Watch()
    try:
        for event in stream.stream(apps.list_namespaced_deployment, namespace,
                                   resource_version=listing.metadata.resource_version,
                                   timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name,
                         (event["object"].metadata.labels or {}).get("x")))
            if event["type"] == "DELETED":
                stream.stop()
    finally:
        thread.join()
    assert [s[0] for s in seen if s[1] == "w"][:2] == ["ADDED", "MODIFIED"]
    assert seen[-1][0] == "DELETED"
    assert ("MODIFIED", "w", "y") in seen


def test_dynamic_client(kube_client: Any, namespace: str) -> None:
    dyn = dynamic.DynamicClient(kube_client)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert deployments.namespaced and "deploy" in deployments.short_names
    dyn.resources.get(short_names=["po"])  # discovery finds short names
    created = deployments.create(body=deployment_body("dyn"), namespace=namespace)
    assert created.metadata.uid
    got = deployments.get(name="dyn", namespace=namespace)
    assert got.spec.replicas == 0
    patched = deployments.patch(name="dyn", namespace=namespace,
                                body={"spec": {"replicas": 1}},
                                content_type="application/merge-patch+json")
    assert patched.spec.replicas == 1
    listing = deployments.get(namespace=namespace, label_selector="app=dyn")
    assert [i.metadata.name for i in listing.items] == ["dyn"]

    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "ssa", "namespace": namespace}, "data": {"a": "1"}}
    applied = configmaps.server_side_apply(body=body, name="ssa", namespace=namespace,
                                           field_manager="py-tool")
    assert applied.to_dict()["data"] == {"a": "1"}
    assert [(m.manager, m.operation) for m in applied.metadata.managedFields] == \
        [("py-tool", "Apply")]
    configmaps.patch(name="ssa", namespace=namespace, body={"data": {"a": "2"}},
                     content_type="application/merge-patch+json", field_manager="other")
    with pytest.raises(dynamic.exceptions.ConflictError) as info:
        configmaps.server_side_apply(body=body, name="ssa", namespace=namespace,
                                     field_manager="py-tool")
    status = json.loads(info.value.body)
    assert status["message"] == ('Apply failed with 1 conflict: conflict with "other" using '
                                 'v1: .data.a')
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict",
                                            "message": 'conflict with "other" using v1',
                                            "field": ".data.a"}]
    forced = configmaps.server_side_apply(body=body, name="ssa", namespace=namespace,
                                          field_manager="py-tool", force_conflicts=True)
    assert forced.to_dict()["data"] == {"a": "1"}
    deployments.delete(name="dyn", namespace=namespace)
    with pytest.raises(dynamic.exceptions.NotFoundError):
        deployments.get(name="dyn", namespace=namespace)


def test_create_from_yaml(kube_client: Any, namespace: str, tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: conf
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 0
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
""")
    created = utils.create_from_yaml(kube_client, str(path), namespace=namespace)
    kinds = [obj.kind for group in created for obj in group]
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    core = client.CoreV1Api(kube_client)
    assert core.read_namespaced_config_map("conf", namespace).data == {"a": "1"}
    assert client.AppsV1Api(kube_client).read_namespaced_deployment(
        "web", namespace).spec.selector.match_labels == {"app": "web"}
    assert core.read_namespaced_service("web", namespace).spec.ports[0].port == 80
    with pytest.raises(utils.FailToCreateError) as info:
        utils.create_from_yaml(kube_client, str(path), namespace=namespace)
    assert all(e.status == 409 for e in info.value.api_exceptions)

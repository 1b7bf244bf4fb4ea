"""kubectl apply (client-side and server-side), diff and dry runs against kubeling."""

from __future__ import annotations

import copy
import json
from typing import Any

Kubectl = Any  # tests/compat/conftest.py: the kubectl fixture


def app_manifest(ns: str) -> list[dict[str, Any]]:
    """Namespace, ConfigMap, Deployment and Service: the multi-document manifest."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "conf", "namespace": ns},
         "data": {"a": "1", "b": "2"}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
         "spec": {
             "replicas": 2,
             "selector": {"matchLabels": {"app": "web"}},
             "template": {
                 "metadata": {"labels": {"app": "web"}},
                 "spec": {"containers": [
                     {"name": "web", "image": "nginx:1.25",
                      "ports": [{"containerPort": 80}],
                      "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                     {"name": "side", "image": "busybox:1.36",
                      "command": ["sleep", "3600"]},
                 ]},
             },
         }},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "web", "namespace": ns},
         "spec": {"selector": {"app": "web"},
                  "ports": [{"name": "http", "port": 80, "targetPort": 80},
                            {"name": "https", "port": 443, "targetPort": 443}]}},
    ]


def edited(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same manifest edited: a value changed, list entries and a key removed."""
    docs = copy.deepcopy(docs)
    _, cm, deploy, svc = docs
    cm["data"] = {"a": "1", "c": "3"}
    containers = deploy["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] = "nginx:1.26"
    containers[0]["env"] = [{"name": "A", "value": "1"}]
    del containers[1]
    svc["spec"]["ports"] = [{"name": "http", "port": 80, "targetPort": 80}]
    return docs


def test_apply_edit_apply_keeps_exactly_what_a_cluster_would(kubectl: Kubectl,
                                                            tmp_path: Any) -> None:
    import uuid

    ns = f"c-{uuid.uuid4().hex[:10]}"
    first = app_manifest(ns)
    out = kubectl.ok("apply", "-f", "-", input=kubectl.manifest(*first)).out
    assert out.splitlines() == [f"namespace/{ns} created", "configmap/conf created",
                                "deployment.apps/web created", "service/web created"]
    # changes made by others between the applies are kept by the second apply
    kubectl.ok("-n", ns, "label", "deployment", "web", "team=blue")
    kubectl.ok("-n", ns, "annotate", "configmap", "conf", "owner=ops")

    out = kubectl.ok("apply", "-f", "-", input=kubectl.manifest(*edited(first))).out
    assert out.splitlines() == [f"namespace/{ns} unchanged", "configmap/conf configured",
                                "deployment.apps/web configured", "service/web configured"]

    cm = kubectl.get_json("-n", ns, "configmap", "conf")
    assert cm["data"] == {"a": "1", "c": "3"}
    assert cm["metadata"]["annotations"]["owner"] == "ops"

    deploy = kubectl.get_json("-n", ns, "deployment", "web")
    assert deploy["metadata"]["labels"] == {"app": "web", "team": "blue"}
    assert deploy["spec"]["replicas"] == 2
    assert deploy["metadata"]["generation"] == 2
    containers = deploy["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"]
    web = containers[0]
    assert web["image"] == "nginx:1.26"
    assert web["env"] == [{"name": "A", "value": "1"}]
    assert web["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert web["imagePullPolicy"] == "IfNotPresent"  # defaults stay defaulted
    last = json.loads(deploy["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"

    svc = kubectl.get_json("-n", ns, "service", "web")
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http", 80)]
    assert svc["spec"]["selector"] == {"app": "web"}

    # applying the same manifest again changes nothing
    out = kubectl.ok("apply", "-f", "-", input=kubectl.manifest(*edited(first))).out
    assert out.splitlines() == [f"namespace/{ns} unchanged", "configmap/conf unchanged",
                                "deployment.apps/web unchanged", "service/web unchanged"]
    again = kubectl.get_json("-n", ns, "deployment", "web")
    assert again["metadata"]["resourceVersion"] == deploy["metadata"]["resourceVersion"]
    kubectl("delete", "namespace", ns, "--wait=false")


def test_apply_from_a_file_validates_strictly_on_the_server(kubectl: Kubectl, ns: str,
                                                            tmp_path: Any) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(kubectl.manifest({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": ns},
        "data": {"k": "v"}, "extra": {"nope": 1}}))
    result = kubectl.fails("apply", "-f", str(path))
    assert 'strict decoding error: unknown field "extra"' in result.err
    assert str(path) in result.err
    # --validate=false sends fieldValidation=Ignore: the unknown field is dropped
    kubectl.ok("apply", "--validate=false", "-f", str(path))
    assert "extra" not in kubectl.get_json("-n", ns, "configmap", "x")


def test_apply_invalid_manifest_names_the_field(kubectl: Kubectl, ns: str) -> None:
    bad = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "d", "namespace": ns},
           "spec": {"replicas": "two", "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    result = kubectl.fails("apply", "-f", "-", input=json.dumps(bad))
    assert "spec.replicas" in result.err
    assert "cannot unmarshal string" in result.err
    bad["spec"]["replicas"] = 1
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    result = kubectl.fails("apply", "-f", "-", input=json.dumps(bad))
    assert 'unknown field "spec.template.spec.containers[0].imagePullPolcy"' in result.err
    del bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"]
    bad["spec"]["template"]["metadata"]["labels"] = {"a": "other"}
    result = kubectl.fails("apply", "-f", "-", input=json.dumps(bad))
    assert result.err.startswith('The Deployment "d" is invalid: ')
    assert "spec.template.metadata.labels" in result.err


def test_apply_prune_with_label_selector(kubectl: Kubectl, ns: str) -> None:
    def cm(name: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "labels": {"set": "p"}}}

    kubectl.ok("apply", "-f", "-", input=kubectl.manifest(cm("pa"), cm("pb"), cm("pc")))
    kubectl.ok("-n", ns, "create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "other", "labels": {"set": "p"}}}))  # never applied: kept
    out = kubectl.ok("apply", "-n", ns, "--prune", "-l", "set=p",
                     "--prune-allowlist=core/v1/ConfigMap", "-f", "-",
                     input=kubectl.manifest(cm("pa"))).out
    assert out.splitlines() == ["configmap/pa unchanged", "configmap/pb pruned",
                                "configmap/pc pruned"]
    names = kubectl.ok("-n", ns, "get", "cm", "-l", "set=p", "-o", "name").out.split()
    assert names == ["configmap/other", "configmap/pa"]


def test_apply_prune_default_allowlist(kubectl: Kubectl, ns: str) -> None:
    """Without --prune-allowlist kubectl v1.32 lists every kind of its default prune list
    (ConfigMap, Endpoints, Namespace, PersistentVolumeClaim, PersistentVolume, Pod,
    ReplicationController, Secret, Service, Job, CronJob, Ingress, DaemonSet, Deployment,
    ReplicaSet, StatefulSet) and deletes what it applied before and no longer applies:
    namespaced kinds in the namespaces it visits, Namespaces and PersistentVolumes
    cluster-wide (with its deprecation warning under -n), as against a real cluster."""
    label = {"prune": ns}  # unique: Namespaces and PersistentVolumes are pruned cluster-wide
    other_ns, extra_ns, volume = f"{ns}-other", f"{ns}-extra", f"{ns}-pv"

    def obj(api_version: str, kind: str, name: str, namespace: str | None = ns,
            **body: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "labels": label}
        if namespace is not None:
            meta["namespace"] = namespace
        return {"apiVersion": api_version, "kind": kind, "metadata": meta, **body}

    def template(app: str) -> dict[str, Any]:
        return {"metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}

    claim_spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    kept_cm = obj("v1", "ConfigMap", "pa")
    first = [
        kept_cm,
        obj("v1", "ConfigMap", "pb"),
        obj("v1", "PersistentVolumeClaim", "data", spec=claim_spec),
        obj("v1", "ReplicationController", "rc",
            spec={"replicas": 0, "selector": {"app": "rc"}, "template": template("rc")}),
        obj("networking.k8s.io/v1", "Ingress", "web",
            spec={"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}),
        obj("apps/v1", "StatefulSet", "db",
            spec={"replicas": 0, "serviceName": "db",
                  "selector": {"matchLabels": {"app": "db"}}, "template": template("db")}),
        obj("v1", "Namespace", extra_ns, namespace=None),
        obj("v1", "PersistentVolume", volume, namespace=None,
            spec={"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                  "hostPath": {"path": "/tmp/kubeling-prune"}}),
        # applied and labelled, but not of a kind on the default list: kept
        obj("networking.k8s.io/v1", "IngressClass", f"{ns}-class", namespace=None,
            spec={"controller": "example.com/ingress"}),
        obj("v1", "ServiceAccount", "robot"),
    ]
    kubectl.ok("create", "namespace", other_ns)
    try:
        kubectl.ok("apply", "-f", "-", input=kubectl.manifest(
            *first, obj("v1", "ConfigMap", "elsewhere", namespace=other_ns)))
        # labelled but never applied (no last-applied-configuration): kept
        kubectl.ok("-n", ns, "create", "-f", "-", input=json.dumps(
            obj("v1", "PersistentVolumeClaim", "made", spec=claim_spec)))

        result = kubectl("apply", "-n", ns, "--prune", "-l", f"prune={ns}", "-f", "-",
                         input=kubectl.manifest(kept_cm))
        assert result.rc == 0, result
        assert result.out.splitlines() == [
            "configmap/pa unchanged",
            "configmap/pb pruned",
            "persistentvolumeclaim/data pruned",
            "replicationcontroller/rc pruned",
            "ingress.networking.k8s.io/web pruned",
            "statefulset.apps/db pruned",
            f"namespace/{extra_ns} pruned",
            f"persistentvolume/{volume} pruned",
        ]
        assert "Deprecated: kubectl apply will no longer prune non-namespaced resources" \
            in result.err

        left = kubectl.ok("-n", ns, "get", "cm,pvc,rc,ing,sts,sa", "-l", f"prune={ns}",
                          "-o", "name").out.split()
        assert left == ["configmap/pa", "persistentvolumeclaim/made", "serviceaccount/robot"]
        assert kubectl.ok("-n", other_ns, "get", "cm", "elsewhere", "-o", "name").out.strip() \
            == "configmap/elsewhere"
        assert kubectl.ok("get", "ingressclass", f"{ns}-class", "-o", "name").out.strip() \
            == f"ingressclass.networking.k8s.io/{ns}-class"
        gone = kubectl.fails("get", "pv", volume)
        assert f'persistentvolumes "{volume}" not found' in gone.err
    finally:
        kubectl("delete", "ingressclass", f"{ns}-class", "--ignore-not-found")
        kubectl("delete", "pv", volume, "--ignore-not-found")
        kubectl("delete", "namespace", other_ns, extra_ns, "--wait=false",
                "--ignore-not-found")


def test_diff_and_server_dry_run(kubectl: Kubectl, ns: str) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d", "namespace": ns},
          "data": {"k": "v1"}}
    # a server-side dry run creates nothing
    out = kubectl.ok("apply", "--dry-run=server", "-f", "-", input=json.dumps(cm)).out
    assert out.strip() == "configmap/d created (server dry run)"
    kubectl.fails("-n", ns, "get", "cm", "d")
    # diff against nothing shows the whole object and exits 1
    result = kubectl("diff", "-f", "-", input=json.dumps(cm))
    assert result.rc == 1, result
    assert "+  k: v1" in result.out
    kubectl.ok("apply", "-f", "-", input=json.dumps(cm))
    assert kubectl("diff", "-f", "-", input=json.dumps(cm)).rc == 0
    cm["data"]["k"] = "v2"
    result = kubectl("diff", "-f", "-", input=json.dumps(cm))
    assert result.rc == 1, result
    assert "-  k: v1" in result.out and "+  k: v2" in result.out
    assert kubectl.get_json("-n", ns, "cm", "d")["data"] == {"k": "v1"}


def managers(obj: dict[str, Any]) -> dict[str, str]:
    """Managers of the object's own fields (controllers writing status are left out)."""
    return {m["manager"]: m["operation"] for m in obj["metadata"].get("managedFields", [])
            if m.get("subresource") != "status"}


def test_server_side_apply_conflicts_and_force(kubectl: Kubectl, ns: str) -> None:
    deploy = app_manifest(ns)[2]
    out = kubectl.ok("apply", "--server-side", "-f", "-", input=json.dumps(deploy)).out
    assert out.strip() == "deployment.apps/web serverside-applied"
    live = kubectl.get_json("-n", ns, "deployment", "web", "--show-managed-fields")
    assert managers(live) == {"kubectl": "Apply"}
    applied = next(m for m in live["metadata"]["managedFields"] if m["manager"] == "kubectl")
    fields = applied["fieldsV1"]
    assert "f:replicas" in fields["f:spec"]
    assert 'k:{"name":"web"}' in fields["f:spec"]["f:template"]["f:spec"]["f:containers"]

    kubectl.ok("-n", ns, "scale", "deployment", "web", "--replicas=5")
    result = kubectl.fails("apply", "--server-side", "-f", "-", input=json.dumps(deploy))
    # kubectl scale names no field manager: the User-Agent's product is the manager
    assert ('Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
            'using apps/v1: .spec.replicas') in result.err
    assert kubectl.get_json("-n", ns, "deployment", "web")["spec"]["replicas"] == 5

    # same value: no conflict, shared ownership
    deploy["spec"]["replicas"] = 5
    kubectl.ok("apply", "--server-side", "-f", "-", input=json.dumps(deploy))
    deploy["spec"]["replicas"] = 3
    kubectl.ok("apply", "--server-side", "--force-conflicts", "-f", "-",
               input=json.dumps(deploy))
    live = kubectl.get_json("-n", ns, "deployment", "web", "--show-managed-fields")
    assert live["spec"]["replicas"] == 3
    assert managers(live) == {"kubectl": "Apply"}  # the scale manager lost its only field


def test_server_side_apply_removes_what_it_no_longer_applies(kubectl: Kubectl,
                                                             ns: str) -> None:
    deploy = app_manifest(ns)[2]
    kubectl.ok("apply", "--server-side", "-f", "-", input=json.dumps(deploy))
    kubectl.ok("-n", ns, "label", "deployment", "web", "keep=me")
    slim = edited(app_manifest(ns))[2]
    kubectl.ok("apply", "--server-side", "-f", "-", input=json.dumps(slim))
    live = kubectl.get_json("-n", ns, "deployment", "web", "--show-managed-fields")
    containers = live["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"]
    assert containers[0]["env"] == [{"name": "A", "value": "1"}]
    assert containers[0]["image"] == "nginx:1.26"
    assert live["metadata"]["labels"] == {"app": "web", "keep": "me"}
    assert managers(live) == {"kubectl": "Apply", "kubectl-label": "Update"}


def test_switching_from_client_side_to_server_side_apply(kubectl: Kubectl, ns: str) -> None:
    """kubectl migrates client-side apply ownership to its server-side manager, so a later
    server-side apply removes what the manifest dropped (as against Kubernetes)."""
    docs = app_manifest(ns)[1:]
    kubectl.ok("apply", "-f", "-", input=kubectl.manifest(*docs))
    slim = edited(app_manifest(ns))[1:]
    kubectl.ok("apply", "--server-side", "--force-conflicts", "-f", "-",
               input=kubectl.manifest(*slim))
    assert kubectl.get_json("-n", ns, "cm", "conf")["data"] == {"a": "1", "c": "3"}
    live = kubectl.get_json("-n", ns, "deployment", "web", "--show-managed-fields")
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert managers(live) == {"kubectl": "Apply", "kubectl-last-applied": "Apply"}
    svc = kubectl.get_json("-n", ns, "service", "web")
    assert [p["name"] for p in svc["spec"]["ports"]] == ["http"]

"""kubectl against the kinds added after the first ones: PersistentVolumeClaim,
PersistentVolume, ReplicationController, StatefulSet, Ingress and IngressClass -- the
columns of ``get`` (and ``-o wide``), ``get all``, ``scale``, ``explain`` and the errors of
refused updates, as kubectl prints them against a real cluster."""

from __future__ import annotations

import json
import re
import time
from typing import Any

Kubectl = Any  # tests/compat/conftest.py: the kubectl fixture


def columns(output: str) -> list[str]:
    """The header of a table printed by kubectl, as column names."""
    return re.split(r"\s{2,}", output.splitlines()[0].strip())


def rows(output: str) -> list[list[str]]:
    """The table's rows, cells split on runs of spaces (empty cells disappear)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()[1:]]


def template(app: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}


def test_get_columns_of_claims_volumes_and_ingresses(kubectl: Kubectl, ns: str) -> None:
    volume, klass = f"{ns}-pv", f"{ns}-class"
    docs = [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": "data", "namespace": ns},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                  "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
         "spec": {"capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteMany"],
                  "hostPath": {"path": "/tmp/kubeling-pv"}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
         "metadata": {"name": klass}, "spec": {"controller": "example.com/ingress"}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": "web", "namespace": ns},
         "spec": {"ingressClassName": klass, "tls": [{"hosts": ["example.com"]}],
                  "rules": [{"host": "example.com", "http": {"paths": [
                      {"path": "/", "pathType": "Prefix",
                       "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
    ]
    try:
        kubectl.ok("apply", "-f", "-", input=kubectl.manifest(*docs))
        out = kubectl.ok("-n", ns, "get", "pvc").out
        assert columns(out) == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES",
                                "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"]
        assert rows(out)[0][:4] == ["data", "Pending", "standard", "<unset>"]
        assert columns(kubectl.ok("-n", ns, "get", "pvc", "-o", "wide").out)[-1] == "VOLUMEMODE"
        # the binder makes a volume without a claim Available (the claim wants another
        # class, so it stays Pending)
        for _ in range(100):
            out = kubectl.ok("get", "pv", volume).out
            if rows(out)[0][4] == "Available":
                break
            time.sleep(0.1)
        assert columns(out) == ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS",
                                "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON",
                                "AGE"]
        assert rows(out)[0][:6] == [volume, "2Gi", "RWX", "Retain", "Available", "<unset>"]
        assert rows(kubectl.ok("-n", ns, "get", "pvc").out)[0][:2] == ["data", "Pending"]
        out = kubectl.ok("-n", ns, "get", "ing").out
        assert columns(out) == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
        assert rows(out)[0][:4] == ["web", klass, "example.com", "80, 443"]
        out = kubectl.ok("get", "ingressclass", klass).out
        assert columns(out) == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
        assert rows(out)[0][:3] == [klass, "example.com/ingress", "<none>"]
        # the claim's spec is immutable, as in Kubernetes
        result = kubectl.fails("-n", ns, "patch", "pvc", "data", "-p",
                               json.dumps({"spec": {"storageClassName": "fast"}}))
        assert result.err.startswith(
            'The PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable '
            "after creation except resources.requests and volumeAttributesClassName for "
            "bound claims")
        explained = kubectl.ok("explain", "ingress.spec.rules.http.paths").out
        assert "pathType\t<string> -required-" in explained
    finally:
        kubectl("delete", "pv", volume, "--ignore-not-found")
        kubectl("delete", "ingressclass", klass, "--ignore-not-found")


def test_replication_controllers_and_stateful_sets(kubectl: Kubectl, ns: str) -> None:
    docs = [
        {"apiVersion": "v1", "kind": "ReplicationController",
         "metadata": {"name": "rc", "namespace": ns},
         "spec": {"replicas": 0, "template": template("rc")}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db",
                                                                    "namespace": ns},
         "spec": {"replicas": 0, "serviceName": "db",
                  "selector": {"matchLabels": {"app": "db"}}, "template": template("db"),
                  "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                      "accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}}]}},
    ]
    kubectl.ok("apply", "-f", "-", input=kubectl.manifest(*docs))
    out = kubectl.ok("-n", ns, "get", "rc", "-o", "wide").out
    assert columns(out) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS",
                            "IMAGES", "SELECTOR"]
    row = rows(out)[0]
    assert row[:4] == ["rc", "0", "0", "0"] and row[5:] == ["c", "busybox:1.36", "app=rc"]
    out = kubectl.ok("-n", ns, "get", "sts", "-o", "wide").out
    assert columns(out) == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    assert rows(out)[0][:2] == ["db", "0/0"]
    names = kubectl.ok("-n", ns, "get", "all", "-o", "name").out.split()
    assert {"replicationcontroller/rc", "statefulset.apps/db"} <= set(names)

    assert kubectl.ok("-n", ns, "scale", "rc", "rc", "--replicas=2").out.strip() == \
        "replicationcontroller/rc scaled"
    assert kubectl.ok("-n", ns, "scale", "sts", "db", "--replicas=3").out.strip() == \
        "statefulset.apps/db scaled"
    assert kubectl.get_json("-n", ns, "rc", "rc")["spec"]["replicas"] == 2
    stateful = kubectl.get_json("-n", ns, "sts", "db")
    assert stateful["spec"]["replicas"] == 3
    assert stateful["metadata"]["generation"] == 2
    claim = stateful["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["volumeMode"] == "Filesystem" and claim["status"] == {
        "phase": "Pending"}

    result = kubectl.fails("-n", ns, "patch", "sts", "db", "-p",
                           json.dumps({"spec": {"serviceName": "other"}}))
    assert result.err.strip() == (
        'The StatefulSet "db" is invalid: spec: Forbidden: updates to statefulset spec for '
        "fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")

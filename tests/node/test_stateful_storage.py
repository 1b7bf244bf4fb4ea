"""Stable storage for real: a StatefulSet with a claim template on a Docker node, its claim
bound to a hostPath PersistentVolume by the binder, data kept when the pod is replaced."""

from __future__ import annotations

import json
from pathlib import Path

from tests.node.conftest import NodeCluster, running_and_ready


def test_statefulset_pod_keeps_its_data(cluster: NodeCluster, tmp_path: Path) -> None:
    store = tmp_path / "pv-store"
    store.mkdir()
    cluster.apply(json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"pv-{store.name}"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "storageClassName": "manual", "hostPath": {"path": str(store)}}}))
    cluster.apply(json.dumps({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "keeper"},
        "spec": {"replicas": 1, "serviceName": "keeper",
                 "selector": {"matchLabels": {"app": "keeper"}},
                 "template": {"metadata": {"labels": {"app": "keeper"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": cluster.image,
                                     "command": ["/bin/sh", "-c",
                                                 "echo $(hostname) >> /data/log; "
                                                 "exec sleep 3600"],
                                     "volumeMounts": [{"name": "data",
                                                       "mountPath": "/data"}]}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                     "resources": {"requests": {"storage": "1Gi"}}}}]}}))
    first = cluster.wait_pod("keeper-0", running_and_ready, timeout=60,
                             what="keeper-0 Running")
    claim = cluster.get("pvc", "data-keeper-0")
    assert claim["status"]["phase"] == "Bound"
    assert claim["spec"]["volumeName"] == f"pv-{store.name}"
    assert cluster.wait(lambda: (store / "log").exists() and (store / "log").read_text(),
                        timeout=10, what="the pod's write on the volume") == "keeper-0\n"
    cluster.kubectl("delete", "pod", "keeper-0", "--wait=true")
    cluster.wait_pod("keeper-0", lambda p: running_and_ready(p) and
                     p["metadata"]["uid"] != first["metadata"]["uid"], timeout=60,
                     what="keeper-0 replaced")
    assert cluster.wait(lambda: (store / "log").read_text() == "keeper-0\nkeeper-0\n",
                        timeout=10, what="the new pod appended to the same data")
    out = cluster.kubectl("exec", "keeper-0", "--", "cat", "/data/log").stdout
    assert out == "keeper-0\nkeeper-0\n"
    cluster.kubectl("delete", "statefulset", "keeper", "--wait=true")
    cluster.kubectl("delete", "pvc", "data-keeper-0", "--wait=true")
    cluster.kubectl("delete", "pv", f"pv-{store.name}", "--wait=true")

"""``kubectl top`` for real: the kubelet samples a Docker node's and its pods' usage, the
API server serves metrics.k8s.io from the agents, kubectl prints it; and a
HorizontalPodAutoscaler (``kubectl autoscale``) scales a Deployment on those figures."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest

from tests.node.conftest import NodeCluster, running_and_ready


@pytest.fixture(scope="module")
def top_cluster(tmp_path_factory: pytest.TempPathFactory, images: dict[str, str],
                run_id: str) -> Iterator[NodeCluster]:
    node = f"kl-{run_id}-{uuid.uuid4().hex[:4]}"
    cluster = NodeCluster(tmp_path_factory.mktemp("top-cluster"), images, node,
                          extra={"metrics_interval_seconds": 1.0},
                          sections={"controllers": {
                              "hpa_sync_period_seconds": 1.0,
                              "hpa_downscale_stabilization_seconds": 3.0}})
    cluster.start()
    yield cluster
    cluster.stop()


def pod(cluster: NodeCluster, name: str, script: str, labels: dict[str, str]) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": cluster.node, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "app", "image": cluster.image,
                                 "command": ["/bin/sh", "-c", script]}]}})


def millicores(text: str) -> int:
    return int(text[:-1]) if text.endswith("m") else int(text) * 1000


def test_kubectl_top_pods_and_nodes(top_cluster: NodeCluster) -> None:
    cluster = top_cluster
    cluster.apply(pod(cluster, "burner", "while :; do :; done", {"load": "high"}))
    cluster.apply(pod(cluster, "idler", "exec sleep 3600", {"load": "low"}))
    for name in ("burner", "idler"):
        cluster.wait_pod(name, running_and_ready, what=f"{name} Running")

    def top_pods() -> dict[str, list[str]] | None:
        result = cluster.kubectl("top", "pod", "--no-headers", check=False)
        rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()
                if line.strip()}
        return rows if {"burner", "idler"} <= set(rows) else None

    rows = cluster.wait(top_pods, timeout=30, what="kubectl top pod listing both pods")
    assert millicores(rows["burner"][0]) >= 300  # one busy loop: most of a core
    assert millicores(rows["idler"][0]) < 50
    assert re.fullmatch(r"\d+Mi", rows["idler"][1])
    selected = cluster.kubectl("top", "pod", "-l", "load=high", "--no-headers").stdout
    assert [line.split()[0] for line in selected.splitlines()] == ["burner"]
    containers = cluster.kubectl("top", "pod", "burner", "--containers",
                                 "--no-headers").stdout.split()
    assert containers[:2] == ["burner", "app"]

    def top_node() -> list[str] | None:
        result = cluster.kubectl("top", "node", cluster.node, "--no-headers", check=False)
        return result.stdout.split() if result.returncode == 0 else None

    row = cluster.wait(top_node, timeout=30, what="kubectl top node")
    assert row[0] == cluster.node and millicores(row[1]) >= 300
    assert row[2].endswith("%") and row[3].endswith("Mi") and row[4].endswith("%")
    missing = cluster.kubectl("get", "--raw",
                              "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope",
                              check=False)
    assert missing.returncode != 0
    assert 'podmetrics.metrics.k8s.io "nope" not found' in missing.stderr


def test_kubectl_autoscale_follows_cpu_use(top_cluster: NodeCluster) -> None:
    cluster = top_cluster
    burn = "while [ ! -f /tmp/stop ]; do :; done; exec sleep 3600"
    cluster.apply(json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scaler"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "scaler"}},
                 "template": {"metadata": {"labels": {"app": "scaler"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": cluster.image,
                                     "command": ["/bin/sh", "-c", burn],
                                     "resources": {"requests": {"cpu": "100m"}}}]}}}}))
    out = cluster.kubectl("autoscale", "deployment", "scaler", "--min=1", "--max=3",
                          "--cpu-percent=50").stdout
    assert out.strip() == "horizontalpodautoscaler.autoscaling/scaler autoscaled"

    def replicas(wanted: int) -> bool:
        d = cluster.get("deployment", "scaler")
        return bool(d) and d["spec"]["replicas"] == wanted and \
            (d.get("status") or {}).get("readyReplicas") == wanted

    cluster.wait(lambda: replicas(3), timeout=60, what="scaled up to maxReplicas 3")

    def hpa_row() -> list[str] | None:
        # the autoscaler reports the new count at its next evaluation
        row = cluster.kubectl("get", "hpa", "scaler", "--no-headers").stdout.split()
        return row if row[6:7] == ["3"] else None

    row = cluster.wait(hpa_row, timeout=15, what="the HPA reporting 3 replicas")
    assert row[:2] == ["scaler", "Deployment/scaler"]
    assert row[2] == "cpu:" and re.fullmatch(r"\d+%/50%", row[3]) and \
        int(row[3].split("%")[0]) > 50
    assert row[4:7] == ["1", "3", "3"]
    hpa = cluster.get("hpa", "scaler")
    assert hpa["spec"]["targetCPUUtilizationPercentage"] == 50
    assert hpa["status"]["desiredReplicas"] == 3 and hpa["status"]["lastScaleTime"]
    # the load stops: after the stabilization window it scales back to minReplicas
    for name in cluster.kubectl("get", "pods", "-l", "app=scaler", "-o", "name").stdout.split():
        cluster.kubectl("exec", name.split("/", 1)[1], "--", "touch", "/tmp/stop")
    cluster.wait(lambda: replicas(1), timeout=60, what="scaled down to minReplicas 1")
    events = cluster.kubectl("get", "events", "--field-selector",
                             "involvedObject.name=scaler,reason=SuccessfulRescale",
                             "-o", "jsonpath={.items[*].message}").stdout
    assert "New size: 3; reason: cpu resource utilization (percentage of request) above " \
           "target" in events
    assert "New size: 1; reason: All metrics below target" in events
    cluster.kubectl("delete", "hpa", "scaler")
    cluster.kubectl("delete", "deployment", "scaler", "--wait=true")

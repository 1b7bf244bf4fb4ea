"""Print microseconds per :meth:`Schema.check` call for a ConfigMap and a Pod.

Run with ``.venv/bin/python bench/schema.py``.  Not a test: numbers depend on the machine.
Each check runs on a fresh deep copy (the checker may edit its input); the copy time is
measured separately and subtracted.
"""

from __future__ import annotations

import copy
import time

from kubeling.api.objects.core_v1 import ConfigMap, Pod
from kubeling.api.schema import schema_for

CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "app-config",
        "namespace": "default",
        "labels": {"app": "web", "tier": "frontend"},
        "annotations": {"owner": "team-a"},
    },
    "data": {"LOG_LEVEL": "info", "PORT": "8080", "config.yaml": "a: 1\nb: 2\n"},
}

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-7d4b9c-abcde",
        "namespace": "default",
        "uid": "1f0c5c8e-8d0a-4a5e-9b8e-3c2f0d6a7b11",
        "resourceVersion": "12345",
        "creationTimestamp": "2024-05-01T12:00:00Z",
        "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-7d4b9c",
                "uid": "0a1b2c3d-0000-4000-8000-000000000001",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    },
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "nginx:1.27",
                "imagePullPolicy": "IfNotPresent",
                "args": ["--port", "8080"],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [
                    {"name": "MODE", "value": "prod"},
                    {
                        "name": "POD_IP",
                        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                    },
                ],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                },
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http"},
                    "initialDelaySeconds": 5,
                    "periodSeconds": 10,
                },
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True}],
                "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
            }
        ],
        "volumes": [{"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}}],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "nodeName": "node-1",
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
        ],
    },
    "status": {
        "phase": "Running",
        "podIP": "10.244.1.7",
        "hostIP": "192.0.2.10",
        "startTime": "2024-05-01T12:00:01Z",
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T12:00:09Z"}
        ],
        "containerStatuses": [
            {
                "name": "web",
                "ready": True,
                "restartCount": 0,
                "image": "nginx:1.27",
                "imageID": "docker://sha256:abc",
                "containerID": "docker://0123",
                "started": True,
                "state": {"running": {"startedAt": "2024-05-01T12:00:05Z"}},
            }
        ],
    },
}


def per_call_us(model: type, body: dict, rounds: int) -> float:
    """Microseconds per check of ``body`` against ``model``, copy time excluded."""
    schema = schema_for(model)
    copies = [copy.deepcopy(body) for _ in range(rounds)]
    schema.check(copy.deepcopy(body))  # compile outside the timing
    start = time.perf_counter()
    for doc in copies:
        result = schema.check(doc)
    elapsed = time.perf_counter() - start
    assert result.ok and not result.unknown, result.messages()
    return elapsed / rounds * 1e6


def main() -> None:
    """Print the figures."""
    for name, model, body, rounds in (
        ("ConfigMap", ConfigMap, CONFIGMAP, 50_000),
        ("Pod", Pod, POD, 10_000),
    ):
        best = min(per_call_us(model, body, rounds) for _ in range(5))
        print(f"{name:10s} {best:7.2f} µs per check")


if __name__ == "__main__":
    main()

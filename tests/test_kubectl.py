"""The real kubectl against ``kubeling up``: typed creates send protobuf bodies."""

from __future__ import annotations

import base64
import json

import pytest

from kubeling.testing.cluster import KubelingProcess

pytestmark = pytest.mark.usefixtures("kubectl_available")


def get_json(proc: KubelingProcess, *args: str) -> dict:
    result = proc.kubectl("get", *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_get_namespaces(kubeling: KubelingProcess) -> None:
    result = kubeling.kubectl("get", "namespaces")
    assert result.returncode == 0, result.stderr
    names = {line.split()[0] for line in result.stdout.splitlines()[1:]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


def test_create_configmap_secret_namespace_deployment(kubeling: KubelingProcess,
                                                       namespace: str) -> None:
    ns = ["-n", namespace]
    for args in (["configmap", "cfg", "--from-literal=a=b", "--from-literal=c=d"],
                 ["secret", "generic", "sec", "--from-literal=token=s3cret"],
                 ["deployment", "web", "--image=busybox:1.36", "--replicas=0"]):
        result = kubeling.kubectl("create", *args, *ns)
        assert result.returncode == 0, result.stderr
    assert kubeling.kubectl("create", "namespace", f"{namespace}-x").returncode == 0

    assert get_json(kubeling, "configmap", "cfg", *ns)["data"] == {"a": "b", "c": "d"}
    secret = get_json(kubeling, "secret", "sec", *ns)
    assert base64.b64decode(secret["data"]["token"]) == b"s3cret"
    assert secret["type"] == "Opaque"
    deployment = get_json(kubeling, "deployment", "web", *ns)
    assert deployment["spec"]["replicas"] == 0
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"
    assert get_json(kubeling, "namespace", f"{namespace}-x")["status"]["phase"] == "Active"
    again = kubeling.kubectl("create", "configmap", "cfg", *ns)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        'error: failed to create configmap: configmaps "cfg" already exists')

"""The API side of ``kubectl rollout status|history|undo``.

These commands read what the Deployment controller writes (ReplicaSets owned by the
Deployment, each with its ``deployment.kubernetes.io/revision`` annotation, and the
Deployment's status) and write the Deployment back.  Here the controller is switched off
and the test writes what it would, so the assertions are about the API alone: the same
requests give the same answers as against Kubernetes.  (The controllers' own tests check
that the controller writes these things.)
"""

from __future__ import annotations

import importlib.metadata
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeling.testing.cluster import KubelingProcess

Kubectl = Any  # tests/compat/conftest.py


@pytest.fixture(scope="module")
def api_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubelingProcess]:
    """``kubeling up`` with every installed plugin but the storage off: API server only."""
    others = sorted({ep.name for ep in importlib.metadata.entry_points(group="kubeling")}
                    - {"storage_sqlite"})
    proc = KubelingProcess(tmp_path_factory.mktemp("api-only"),
                           config={"plugins": {"disabled": others}})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def rk(api_only: KubelingProcess, kubectl_for: Any) -> Kubectl:
    """kubectl against the API-only cluster."""
    return kubectl_for(api_only)


@pytest.fixture
def rns(rk: Kubectl) -> str:
    name = f"r-{uuid.uuid4().hex[:8]}"
    rk.ok("create", "namespace", name)
    return name


def template(image: str, **extra_labels: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web", **extra_labels}},
            "spec": {"containers": [{"name": "web", "image": image}]}}


def make_deployment(rk: Kubectl, ns: str, image: str) -> dict[str, Any]:
    rk.ok("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": ns},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                  "template": template(image)}}))
    return rk.get_json("-n", ns, "deployment", "web")


def controller_writes_revision(rk: Kubectl, ns: str, deploy: dict[str, Any], revision: int,
                               image: str, cause: str) -> None:
    """What the Deployment controller does for a new template: a ReplicaSet owned by the
    Deployment with the revision annotation, and the revision on the Deployment."""
    hash_ = f"h{revision}"
    rk.ok("create", "-f", "-", input=json.dumps(
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": {"name": f"web-{hash_}", "namespace": ns,
                      "labels": {"app": "web", "pod-template-hash": hash_},
                      "annotations": {"deployment.kubernetes.io/revision": str(revision),
                                      "kubernetes.io/change-cause": cause},
                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                           "name": "web", "uid": deploy["metadata"]["uid"],
                                           "controller": True,
                                           "blockOwnerDeletion": True}]},
         "spec": {"replicas": 0,
                  "selector": {"matchLabels": {"app": "web", "pod-template-hash": hash_}},
                  "template": template(image, **{"pod-template-hash": hash_})}}))
    rk.ok("-n", ns, "annotate", "deployment", "web", "--overwrite",
          f"deployment.kubernetes.io/revision={revision}")


def test_history_and_undo(rk: Kubectl, rns: str) -> None:
    deploy = make_deployment(rk, rns, "busybox:1.35")
    controller_writes_revision(rk, rns, deploy, 1, "busybox:1.35", "first")
    rk.ok("-n", rns, "set", "image", "deploy/web", "web=busybox:1.36")
    controller_writes_revision(rk, rns, deploy, 2, "busybox:1.36", "second")

    out = rk.ok("-n", rns, "rollout", "history", "deployment/web").out
    assert out.splitlines()[:4] == ["deployment.apps/web ", "REVISION  CHANGE-CAUSE",
                                    "1         first", "2         second"]
    out = rk.ok("-n", rns, "rollout", "history", "deployment/web", "--revision=1").out
    assert out.startswith("deployment.apps/web with revision #1\nPod Template:")
    assert "busybox:1.35" in out and "pod-template-hash" in out
    missing = rk.fails("-n", rns, "rollout", "history", "deployment/web", "--revision=7")
    assert "unable to find the specified revision" in missing.err

    out = rk.ok("-n", rns, "rollout", "undo", "deployment/web").out
    assert out.strip() == "deployment.apps/web rolled back"
    live = rk.get_json("-n", rns, "deployment", "web")
    containers = live["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["busybox:1.35"]
    # the ReplicaSet's pod-template-hash never reaches the Deployment's template
    assert live["spec"]["template"]["metadata"]["labels"] == {"app": "web"}

    out = rk.ok("-n", rns, "rollout", "undo", "deployment/web", "--to-revision=2").out
    assert out.strip() == "deployment.apps/web rolled back"
    live = rk.get_json("-n", rns, "deployment", "web")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"
    skipped = rk.ok("-n", rns, "rollout", "undo", "deployment/web", "--to-revision=2")
    assert "skipped rollback" in skipped.err + skipped.out
    missing = rk.fails("-n", rns, "rollout", "undo", "deployment/web", "--to-revision=9")
    assert "unable to find specified revision 9 in history" in missing.err

    rk.ok("-n", rns, "rollout", "pause", "deployment/web")
    paused = rk.fails("-n", rns, "rollout", "undo", "deployment/web")
    assert "you cannot rollback a paused deployment" in paused.err
    # a server-side dry run leaves the template alone
    rk.ok("-n", rns, "rollout", "resume", "deployment/web")
    rk.ok("-n", rns, "rollout", "undo", "deployment/web", "--dry-run=server")
    live = rk.get_json("-n", rns, "deployment", "web")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"


def set_status(rk: Kubectl, ns: str, **status: Any) -> None:
    rk.ok("-n", ns, "patch", "deployment", "web", "--subresource=status", "--type=merge",
          "-p", json.dumps({"status": status}))


def test_status_follows_the_deployment_status(rk: Kubectl, rns: str, tmp_path: Path) -> None:
    deploy = make_deployment(rk, rns, "busybox:1.36")
    generation = deploy["metadata"]["generation"]
    waiting = rk.fails("-n", rns, "rollout", "status", "deployment/web", "--timeout=1s")
    assert "Waiting for deployment spec update to be observed" in waiting.out
    watcher = rk.popen("-n", rns, "rollout", "status", "deployment/web", "--timeout=60s")
    lines = rk.lines(watcher)
    assert lines.next() == "Waiting for deployment spec update to be observed...\n"
    set_status(rk, rns, observedGeneration=generation, replicas=2, updatedReplicas=1,
               readyReplicas=0, availableReplicas=0)
    assert lines.next() == ('Waiting for deployment "web" rollout to finish: 1 out of 2 new '
                            'replicas have been updated...\n')
    set_status(rk, rns, observedGeneration=generation, replicas=2, updatedReplicas=2,
               readyReplicas=2, availableReplicas=2)
    assert lines.next() == 'deployment "web" successfully rolled out\n'
    assert watcher.wait(timeout=30) == 0

    set_status(rk, rns, observedGeneration=generation, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": "too slow"}])
    failed = rk.fails("-n", rns, "rollout", "status", "deployment/web", "--timeout=10s")
    assert 'deployment "web" exceeded its progress deadline' in failed.err

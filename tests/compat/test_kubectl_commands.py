"""kubectl's writing commands against kubeling: create, edit, label, annotate, patch, scale,
set image, rollout restart/pause/resume, wait and delete."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import threading
import time
from typing import Any

import pytest

Kubectl = Any  # tests/compat/conftest.py: the kubectl fixture


def deployment(ns: str, name: str = "web", replicas: int = 0) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [
                                      {"name": "web", "image": "busybox:1.36",
                                       "command": ["sleep", "3600"]}]}}}}


def test_create_from_files_and_generators(kubectl: Kubectl, ns: str, tmp_path: Any) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text(kubectl.manifest({"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "from-file"}, "data": {"a": "b"}}))
    assert kubectl.ok("-n", ns, "create", "-f", str(path)).out.strip() == \
        "configmap/from-file created"
    again = kubectl.fails("-n", ns, "create", "-f", str(path))
    assert again.err.strip() == (f'Error from server (AlreadyExists): error when creating '
                                 f'"{path}": configmaps "from-file" already exists')
    out = kubectl.ok("-n", ns, "create", "configmap", "gen", "--from-literal=x=1").out
    assert out.strip() == "configmap/gen created"
    out = kubectl.ok("-n", ns, "create", "secret", "generic", "sec",
                     "--from-literal=pw=hunter2").out
    assert out.strip() == "secret/sec created"
    secret = kubectl.get_json("-n", ns, "secret", "sec")
    assert base64.b64decode(secret["data"]["pw"]) == b"hunter2"
    out = kubectl.ok("-n", ns, "create", "deployment", "dep", "--image=busybox:1.36",
                     "--replicas=0").out
    assert out.strip() == "deployment.apps/dep created"
    managers = {m["manager"] for m in kubectl.get_json(
        "-n", ns, "deployment", "dep", "--show-managed-fields")["metadata"]["managedFields"]}
    assert "kubectl-create" in managers
    out = kubectl.ok("create", "namespace", f"{ns}-made").out
    assert out.strip() == f"namespace/{ns}-made created"
    kubectl.ok("delete", "namespace", f"{ns}-made", "--wait=false")
    # --dry-run=server creates nothing
    out = kubectl.ok("-n", ns, "create", "configmap", "dry", "--from-literal=a=b",
                     "--dry-run=server", "-o", "name").out
    assert out.strip() == "configmap/dry"
    kubectl.fails("-n", ns, "get", "cm", "dry")


def test_label_annotate_and_patch(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("-n", ns, "create", "configmap", "c", "--from-literal=k=v")
    assert kubectl.ok("-n", ns, "label", "cm", "c", "a=1", "b=2").out.strip() == \
        "configmap/c labeled"
    clash = kubectl.fails("-n", ns, "label", "cm", "c", "a=9")
    assert "'a' already has a value (1), and --overwrite is false" in clash.err
    kubectl.ok("-n", ns, "label", "cm", "c", "a=9", "--overwrite")
    kubectl.ok("-n", ns, "label", "cm", "c", "b-")
    assert kubectl.get_json("-n", ns, "cm", "c")["metadata"]["labels"] == {"a": "9"}
    assert kubectl.ok("-n", ns, "annotate", "cm", "c", "note=hello").out.strip() == \
        "configmap/c annotated"
    assert kubectl.get_json("-n", ns, "cm", "c")["metadata"]["annotations"] == \
        {"note": "hello"}

    out = kubectl.ok("-n", ns, "patch", "cm", "c", "-p", '{"data":{"s":"strategic"}}').out
    assert out.strip() == "configmap/c patched"
    kubectl.ok("-n", ns, "patch", "cm", "c", "--type=merge", "-p",
               '{"data":{"k":null,"m":"merge"}}')
    kubectl.ok("-n", ns, "patch", "cm", "c", "--type=json", "-p",
               '[{"op":"add","path":"/data/j","value":"json"}]')
    assert kubectl.get_json("-n", ns, "cm", "c")["data"] == \
        {"s": "strategic", "m": "merge", "j": "json"}
    out = kubectl.ok("-n", ns, "patch", "cm", "c", "-p", '{"data":{"s":"strategic"}}').out
    assert out.strip() == "configmap/c patched (no change)"
    bad = kubectl.fails("-n", ns, "patch", "cm", "c", "--type=json", "-p",
                        '[{"op":"remove","path":"/data/nope"}]')
    assert bad.rc == 1 and "nope" in bad.err

    kubectl.ok("apply", "-f", "-", input=json.dumps(deployment(ns)))
    # a strategic merge patch merges containers by name
    kubectl.ok("-n", ns, "patch", "deploy", "web", "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "busybox:1.36"}]}}}}))
    names = [c["name"] for c in kubectl.get_json("-n", ns, "deploy", "web")["spec"][
        "template"]["spec"]["containers"]]
    assert names == ["sidecar", "web"]
    kubectl.ok("-n", ns, "patch", "deploy", "web", "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "$patch": "delete"}]}}}}))
    names = [c["name"] for c in kubectl.get_json("-n", ns, "deploy", "web")["spec"][
        "template"]["spec"]["containers"]]
    assert names == ["web"]


def test_edit(kubectl: Kubectl, ns: str, tmp_path: Any) -> None:
    kubectl.ok("-n", ns, "create", "configmap", "e", "--from-literal=color=red")
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\np = sys.argv[1]\ns = open(p).read()\n"
                      "open(p, 'w').write(s.replace('color: red', 'color: blue'))\n")
    env = {"KUBE_EDITOR": f"{sys.executable} {editor}"}
    out = kubectl.ok("-n", ns, "edit", "cm", "e", env=env).out
    assert out.strip() == "configmap/e edited"
    assert kubectl.get_json("-n", ns, "cm", "e")["data"] == {"color": "blue"}
    result = kubectl.ok("-n", ns, "edit", "cm", "e", env=env)
    assert result.err.strip() == "Edit cancelled, no changes made."
    managers = {m["manager"] for m in kubectl.get_json(
        "-n", ns, "cm", "e", "--show-managed-fields")["metadata"]["managedFields"]}
    assert "kubectl-edit" in managers


def test_scale_set_image_and_rollout_commands(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("apply", "-f", "-", input=json.dumps(deployment(ns)))
    assert kubectl.ok("-n", ns, "scale", "deploy", "web", "--replicas=3").out.strip() == \
        "deployment.apps/web scaled"
    live = kubectl.get_json("-n", ns, "deploy", "web")
    assert live["spec"]["replicas"] == 3
    stale = kubectl.fails("-n", ns, "scale", "deploy", "web", "--replicas=1",
                          "--current-replicas=2")
    assert "Expected replicas to be 2, was 3" in stale.err
    out = kubectl.ok("-n", ns, "get", "deploy", "web", "--subresource=scale").out
    assert out.splitlines()[0].split() == ["NAME", "DESIRED", "AVAILABLE"]
    assert out.splitlines()[1].split()[:2] == ["web", "3"]
    scale = kubectl.get_json("-n", ns, "deploy", "web", "--subresource=scale")
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 3}
    out = kubectl.ok("-n", ns, "scale", "deploy", "web", "--replicas=0").out
    assert out.strip() == "deployment.apps/web scaled"

    out = kubectl.ok("-n", ns, "set", "image", "deploy/web", "web=busybox:1.37").out
    assert out.strip() == "deployment.apps/web image updated"
    live = kubectl.get_json("-n", ns, "deploy", "web")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37"
    assert live["metadata"]["generation"] == 4  # every spec change counts, replicas too
    missing = kubectl.fails("-n", ns, "set", "image", "deploy/web", "nope=busybox")
    assert 'unable to find container named "nope"' in missing.err

    assert kubectl.ok("-n", ns, "rollout", "pause", "deploy/web").out.strip() == \
        "deployment.apps/web paused"
    assert kubectl.get_json("-n", ns, "deploy", "web")["spec"]["paused"] is True
    again = kubectl.fails("-n", ns, "rollout", "pause", "deploy/web")
    assert "already paused" in again.err
    assert kubectl.ok("-n", ns, "rollout", "resume", "deploy/web").out.strip() == \
        "deployment.apps/web resumed"
    assert not kubectl.get_json("-n", ns, "deploy", "web")["spec"].get("paused")
    assert kubectl.ok("-n", ns, "rollout", "restart", "deploy/web").out.strip() == \
        "deployment.apps/web restarted"
    annotations = kubectl.get_json("-n", ns, "deploy", "web")["spec"]["template"][
        "metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations


def test_wait_for_condition_and_deletion(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w", "namespace": ns},
         "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "busybox"}]}}))
    timeout = kubectl.fails("-n", ns, "wait", "--for=condition=Ready", "pod/w",
                            "--timeout=1s")
    assert "timed out waiting for the condition on pods/w" in timeout.err

    def make_ready() -> None:
        time.sleep(1.0)
        kubectl.ok("-n", ns, "patch", "pod", "w", "--subresource=status", "--type=merge",
                   "-p", json.dumps({"status": {"conditions": [
                       {"type": "Ready", "status": "True"}]}}))

    thread = threading.Thread(target=make_ready)
    thread.start()
    try:
        out = kubectl.ok("-n", ns, "wait", "--for=condition=Ready", "pod/w",
                         "--timeout=20s").out
    finally:
        thread.join()
    assert out.strip() == "pod/w condition met"
    out = kubectl.ok("-n", ns, "wait", "--for=jsonpath={.spec.nodeName}=nowhere", "pod/w",
                     "--timeout=5s").out
    assert out.strip() == "pod/w condition met"

    kubectl.ok("-n", ns, "create", "configmap", "gone")
    waiter = kubectl.popen("-n", ns, "wait", "--for=delete", "cm/gone", "--timeout=20s")
    time.sleep(0.5)
    kubectl.ok("-n", ns, "delete", "cm", "gone", "--wait=false")
    stdout, stderr = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, stderr
    assert stdout.strip() == "configmap/gone condition met"


def test_delete_waits_until_gone(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("-n", ns, "create", "configmap", "d1")
    kubectl.ok("-n", ns, "create", "configmap", "d2")
    out = kubectl.ok("-n", ns, "delete", "cm", "d1", "d2").out
    assert out.splitlines() == ['configmap "d1" deleted', 'configmap "d2" deleted']
    assert kubectl.ok("-n", ns, "get", "cm", "-o", "name").out.split() == []

    # a finalizer keeps the object: kubectl waits, and returns once it is removed
    kubectl.ok("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "held", "namespace": ns, "finalizers": ["example.com/hold"]}}))
    deleter = kubectl.popen("-n", ns, "delete", "cm", "held", "--timeout=30s")
    kubectl.wait_for(lambda: kubectl.get_json("-n", ns, "cm", "held")["metadata"].get(
        "deletionTimestamp"))
    assert deleter.poll() is None  # still waiting
    kubectl.ok("-n", ns, "patch", "cm", "held", "--type=json", "-p",
               '[{"op":"remove","path":"/metadata/finalizers"}]')
    stdout, stderr = deleter.communicate(timeout=30)
    assert deleter.returncode == 0, stderr
    assert stdout.strip() == 'configmap "held" deleted'
    kubectl.fails("-n", ns, "get", "cm", "held")

    # selectors and --all
    for name in ("s1", "s2", "s3"):
        kubectl.ok("-n", ns, "create", "configmap", name)
    kubectl.ok("-n", ns, "label", "cm", "s1", "s2", "del=yes")
    out = kubectl.ok("-n", ns, "delete", "cm", "-l", "del=yes").out
    assert out.splitlines() == ['configmap "s1" deleted', 'configmap "s2" deleted']
    out = kubectl.ok("-n", ns, "delete", "cm", "--all").out
    assert 'configmap "s3" deleted' in out.splitlines()


def _gc_installed() -> bool:
    return importlib.util.find_spec("kubeling_controllers_default") is not None


def owned_configmap(ns: str, name: str, owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}]}}


@pytest.mark.parametrize("cascade", ["background", "foreground", "orphan"])
def test_delete_cascade_modes(kubectl: Kubectl, ns: str, cascade: str) -> None:
    kubectl.ok("-n", ns, "create", "configmap", "owner")
    owner = kubectl.get_json("-n", ns, "cm", "owner")
    kubectl.ok("apply", "-f", "-", input=json.dumps(owned_configmap(ns, "dependent", owner)))
    if cascade != "background" and not _gc_installed():
        # without a garbage collector the finalizer Kubernetes adds is never processed:
        # check what the API server did, without waiting
        kubectl.ok("-n", ns, "delete", "cm", "owner", f"--cascade={cascade}", "--wait=false")
        meta = kubectl.get_json("-n", ns, "cm", "owner")["metadata"]
        expected = {"foreground": "foregroundDeletion", "orphan": "orphan"}[cascade]
        assert meta["finalizers"] == [expected]
        assert meta["deletionTimestamp"]
        pytest.skip("no garbage collector installed (kubeling-controllers-default)")
    out = kubectl.ok("-n", ns, "delete", "cm", "owner", f"--cascade={cascade}",
                     "--timeout=60s").out
    assert out.strip() == 'configmap "owner" deleted'
    kubectl.fails("-n", ns, "get", "cm", "owner")
    if cascade == "orphan":
        dependent = kubectl.get_json("-n", ns, "cm", "dependent")
        assert not dependent["metadata"].get("ownerReferences")
    elif cascade == "foreground":
        kubectl.fails("-n", ns, "get", "cm", "dependent")  # gone before its owner
    else:
        kubectl.wait_for(lambda: kubectl("-n", ns, "get", "cm", "dependent").rc != 0,
                         timeout=30)


def test_duplicate_fields_reach_the_server_only_through_raw(kubectl: Kubectl, ns: str,
                                                             tmp_path: Any) -> None:
    path = tmp_path / "dup.json"
    path.write_text('{"apiVersion": "v1", "kind": "ConfigMap", '
                    '"metadata": {"name": "first", "name": "dup"}, '
                    '"data": {"a": "1", "a": "2"}}')
    # kubectl create -f decodes the file itself: the last value wins before it sends it
    assert kubectl.ok("-n", ns, "create", "-f", str(path)).out.strip() == \
        "configmap/dup created"
    kubectl.ok("-n", ns, "delete", "configmap", "dup")
    # --raw sends the bytes as they are: the server's strict decoding names the duplicates
    url = f"/api/v1/namespaces/{ns}/configmaps"
    strict = kubectl.fails("create", "--raw", url + "?fieldValidation=Strict", "-f", str(path))
    assert strict.err.strip() == (
        'Error from server (BadRequest): ConfigMap in version "v1" cannot be handled as a '
        'ConfigMap: strict decoding error: duplicate field "metadata.name", duplicate field '
        '"data.a"')
    kubectl.fails("-n", ns, "get", "configmap", "dup")
    warned = kubectl.ok("create", "--raw", url, "-f", str(path))
    assert warned.err.splitlines() == ['Warning: duplicate field "metadata.name"',
                                       'Warning: duplicate field "data.a"']
    assert json.loads(warned.out)["data"] == {"a": "2"}

"""Pods run for real: kubectl against ``kubeling up`` with the kubelet on dockerd.

One cluster for the module; every test uses pods of its own.  The last test kills the
whole ``kubeling up`` with SIGKILL and starts it again on the same data directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from typing import Any

import pytest

from tests.node.conftest import NodeCluster, container_status, free_port, running_and_ready

HTTPD = "mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"


def http_get(url: str, timeout: float = 3.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode()
    except OSError:
        return None


def docker_ids(cluster: NodeCluster) -> set[str]:
    out = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter",
                          f"label=io.kubeling.node={cluster.node}"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def simple_pod(cluster: NodeCluster, name: str, script: str, **spec: Any) -> str:
    container = {"name": "app", "image": cluster.image, "command": ["/bin/sh", "-c", script],
                 **spec.pop("container", {})}
    labels = spec.pop("metadata_labels", None)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, **({"labels": labels} if labels else {})},
           "spec": {"nodeName": cluster.node, "terminationGracePeriodSeconds": 5,
                    "containers": [container], **spec}}
    return json.dumps(pod)


def test_node_is_registered(cluster: NodeCluster) -> None:
    node = cluster.get("node", cluster.node)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == cluster.node
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"]
    status = node["status"]
    assert status["capacity"]["pods"] == "110" and int(status["capacity"]["cpu"]) >= 1
    assert status["allocatable"]["memory"].endswith("Ki")
    assert {a["type"] for a in status["addresses"]} == {"InternalIP", "Hostname"}
    info = status["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("docker://")
    assert info["kubeletVersion"].startswith("v1.") and info["operatingSystem"] == "linux"
    kinds = {c["type"]: c["status"] for c in status["conditions"]}
    assert kinds == {"Ready": "True", "MemoryPressure": "False", "DiskPressure": "False",
                     "PIDPressure": "False"}
    lease = cluster.get("lease", cluster.node, "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == cluster.node
    assert lease["spec"]["renewTime"]
    # the node's images, largest first (what the scheduler's ImageLocality scores)
    images = status["images"]
    assert 0 < len(images) <= 50
    sizes = [i["sizeBytes"] for i in images]
    assert sizes == sorted(sizes, reverse=True) and all(s > 0 for s in sizes)
    assert any(cluster.image in i["names"] for i in images)


def test_replicated_httpd_pods_answer_on_their_ips(cluster: NodeCluster) -> None:
    """A Deployment of three busybox httpd pods (created directly when no controller
    manager runs in this cluster) reaches Running, and each pod IP answers from the host."""
    components = "".join(cluster.proc.output)
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {
        "terminationGracePeriodSeconds": 5,
        "containers": [{"name": "httpd", "image": cluster.image,
                        "command": ["/bin/sh", "-c", HTTPD],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                           "periodSeconds": 1}}]}}
    if "controller-manager" in components and "scheduler" in components:
        cluster.apply(json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                                  "metadata": {"name": "web"},
                                  "spec": {"replicas": 3,
                                           "selector": {"matchLabels": {"app": "web"}},
                                           "template": template}}))
    else:
        for i in range(3):
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"web-{i}", **template["metadata"]},
                   "spec": {"nodeName": cluster.node, **template["spec"]}}
            cluster.apply(json.dumps(pod))

    def ready_pods() -> list[dict[str, Any]] | None:
        pods = (cluster.get("pods", None, "default", "-l", "app=web") or {}).get("items", [])
        ready = [p for p in pods if running_and_ready(p)]
        return ready if len(ready) == 3 else None

    pods = cluster.wait(ready_pods, timeout=60, what="3 web pods Running and Ready")
    ips = set()
    for pod in pods:
        status = pod["status"]
        ip = status["podIP"]
        ips.add(ip)
        assert status["podIPs"] == [{"ip": ip}]
        assert status["hostIP"] and status["startTime"] and status["qosClass"] == "BestEffort"
        assert pod["spec"]["nodeName"] == cluster.node
        cs = container_status(pod)
        assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
        assert cs["containerID"].startswith("docker://") and cs["imageID"]
        assert "running" in cs["state"]
        types = {c["type"]: c["status"] for c in status["conditions"]}
        assert types["Initialized"] == types["ContainersReady"] == types["Ready"] == "True"
        assert types["PodScheduled"] == "True"
        body = cluster.wait(lambda ip=ip: http_get(f"http://{ip}:8080/"), timeout=10,
                            what=f"HTTP from {ip}")
        assert body.strip() == pod["metadata"]["name"]
    assert len(ips) == 3


def test_host_network_pod(cluster: NodeCluster) -> None:
    port = free_port()
    cluster.apply(simple_pod(
        cluster, "hostnet",
        f"mkdir -p /tmp/www && echo host > /tmp/www/index.html && "
        f"exec httpd -f -p 127.0.0.1:{port} -h /tmp/www", hostNetwork=True))
    pod = cluster.wait_pod("hostnet", running_and_ready, what="hostnet Running")
    assert pod["status"]["podIP"] == pod["status"]["hostIP"]
    assert cluster.wait(lambda: http_get(f"http://127.0.0.1:{port}/"), timeout=10,
                        what="HTTP on the host's loopback") == "host\n"
    cluster.kubectl("delete", "pod", "hostnet", "--wait=true")


def test_host_port_is_published_and_freed(cluster: NodeCluster) -> None:
    port = free_port()
    cluster.apply(simple_pod(cluster, "hostport", HTTPD, container={"ports": [
        {"containerPort": 8080, "hostPort": port, "hostIP": "127.0.0.1"}]}))
    cluster.wait_pod("hostport", running_and_ready, what="hostport Running")
    assert cluster.wait(lambda: http_get(f"http://127.0.0.1:{port}/"), timeout=10,
                        what="HTTP through the host port") == "hostport\n"
    cluster.kubectl("delete", "pod", "hostport", "--wait=true")
    assert cluster.wait(lambda: http_get(f"http://127.0.0.1:{port}/", timeout=1) is None,
                        timeout=10, what="the host port freed")


def test_killed_container_restarts_with_restart_count(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(cluster, "killme", "echo started; while true; do sleep 1; done"))
    pod = cluster.wait_pod("killme", running_and_ready, what="killme Running")
    container_id = container_status(pod)["containerID"].removeprefix("docker://")
    subprocess.run(["docker", "kill", container_id], check=True, capture_output=True)
    pod = cluster.wait_pod("killme", lambda p: container_status(p).get("restartCount") == 1
                           and "running" in container_status(p)["state"],
                           what="restartCount 1 and running again")
    last = container_status(pod)["lastState"]["terminated"]
    assert last["exitCode"] == 137 and last["containerID"].endswith(container_id)
    assert container_status(pod)["containerID"] != f"docker://{container_id}"
    assert cluster.kubectl("logs", "killme", "--previous").stdout == "started\n"


def test_a_dead_sandbox_is_recreated(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(cluster, "resandbox", HTTPD))
    pod = cluster.wait_pod("resandbox", running_and_ready, what="resandbox Running")
    uid = pod["metadata"]["uid"]
    infra = subprocess.run(["docker", "ps", "-q", "--filter", f"label=io.kubernetes.pod.uid={uid}",
                            "--filter", "label=io.kubeling.type=sandbox"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert len(infra) == 1
    subprocess.run(["docker", "kill", infra[0]], check=True, capture_output=True)
    pod = cluster.wait_pod("resandbox", lambda p: running_and_ready(p) and container_status(p)
                           .get("restartCount", 0) >= 1, what="running in a new sandbox")
    ip = pod["status"]["podIP"]
    assert cluster.wait(lambda: http_get(f"http://{ip}:8080/"), timeout=10,
                        what="HTTP on the new pod IP") == "resandbox\n"


def test_failing_liveness_probe_restarts(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(
        cluster, "liveness", "touch /tmp/alive; while true; do sleep 1; done",
        container={"livenessProbe": {"exec": {"command": ["test", "-e", "/tmp/alive"]},
                                     "periodSeconds": 1, "failureThreshold": 2}}))
    cluster.wait_pod("liveness", running_and_ready, what="liveness Running")
    time.sleep(2)
    assert container_status(cluster.pod("liveness"))["restartCount"] == 0
    cluster.kubectl("exec", "liveness", "--", "rm", "/tmp/alive")
    pod = cluster.wait_pod("liveness", lambda p: container_status(p).get("restartCount", 0)
                           >= 1, what="a restart after liveness failed")
    assert container_status(pod)["lastState"]["terminated"]["exitCode"] == 137
    events = cluster.kubectl("get", "events", "--field-selector",
                             "involvedObject.name=liveness", "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"Created", "Started", "Unhealthy", "Killing"} <= reasons, reasons
    described = cluster.kubectl("describe", "pod", "liveness").stdout
    assert "Liveness probe failed" in described


def test_failing_readiness_probe_makes_the_pod_unready(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(
        cluster, "readiness", "touch /tmp/ready; while true; do sleep 1; done",
        container={"readinessProbe": {"exec": {"command": ["test", "-e", "/tmp/ready"]},
                                      "periodSeconds": 1, "failureThreshold": 1}}))
    cluster.wait_pod("readiness", running_and_ready, what="readiness Ready")
    cluster.kubectl("exec", "readiness", "--", "rm", "/tmp/ready")

    def unready(pod: dict[str, Any]) -> bool:
        conditions = {c["type"]: c for c in pod["status"]["conditions"]}
        return conditions["Ready"]["status"] == "False" and \
            conditions["Ready"].get("reason") == "ContainersNotReady"

    pod = cluster.wait_pod("readiness", unready, what="Ready False")
    assert pod["status"]["phase"] == "Running"
    assert container_status(pod)["restartCount"] == 0 and not container_status(pod)["ready"]
    cluster.kubectl("exec", "readiness", "--", "touch", "/tmp/ready")
    cluster.wait_pod("readiness", running_and_ready, what="Ready again")


def test_logs_follow(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(cluster, "ticker",
                             "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done"))
    cluster.wait_pod("ticker", running_and_ready, what="ticker Running")
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.proc.kubeconfig), "logs",
                             "-f", "ticker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(6)]
    finally:
        proc.kill()
        proc.wait()
    assert lines == [f"tick {i}" for i in range(6)]
    tail = cluster.kubectl("logs", "ticker", "--tail=1").stdout.splitlines()
    assert len(tail) == 1 and tail[0].startswith("tick ")
    stamped = cluster.kubectl("logs", "ticker", "--timestamps", "--tail=1").stdout
    assert stamped.startswith("20") and " tick " in stamped
    missing = cluster.kubectl("logs", "ticker", "-c", "nope", check=False)
    assert missing.returncode != 0 and "container nope is not valid for pod ticker" in \
        missing.stderr
    previous = cluster.kubectl("logs", "ticker", "--previous", check=False)
    assert previous.returncode != 0 and "previous terminated container" in previous.stderr


def test_attach(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(cluster, "chatty",
                             "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"))
    cluster.wait_pod("chatty", running_and_ready, what="chatty Running")
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.proc.kubeconfig),
                             "attach", "chatty"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
    finally:
        proc.kill()
        proc.wait()
    numbers = [int(line.split()[1]) for line in lines if line.startswith("line ")]
    assert len(numbers) == 3 and numbers == sorted(numbers), lines
    if shutil.which("script"):  # kubectl run -it --rm: attach with stdin and a TTY
        overrides = json.dumps({"apiVersion": "v1", "spec": {"nodeName": cluster.node}})
        line = (f"kubectl --kubeconfig {cluster.proc.kubeconfig} run oneshot "
                f"--image={cluster.image} --restart=Never -it --rm "
                f"--overrides='{overrides}' -- sh -c 'sleep 1; echo hello-from-run'")
        run = subprocess.run(["script", "-qec", line, "/dev/null"], capture_output=True,
                             text=True, timeout=60, input="")
        assert run.returncode == 0, run.stdout + run.stderr
        assert "hello-from-run" in run.stdout and 'pod "oneshot" deleted' in run.stdout


def test_exec(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(cluster, "shell", "while true; do sleep 1; done"))
    cluster.wait_pod("shell", running_and_ready, what="shell Running")
    assert cluster.kubectl("exec", "shell", "--", "cat", "/etc/hostname").stdout == "shell\n"
    failed = cluster.kubectl("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
                             check=False)
    assert failed.returncode == 3
    assert failed.stdout == "out\n" and "err" in failed.stderr
    echoed = cluster.kubectl("exec", "-i", "shell", "--", "cat", input="hello stdin\n")
    assert echoed.stdout == "hello stdin\n"
    if shutil.which("script"):  # a real terminal for kubectl: exec -it gets a TTY
        line = (f"kubectl --kubeconfig {cluster.proc.kubeconfig} exec -it shell -- "
                f"sh -c 'tty; echo done'")
        tty = subprocess.run(["script", "-qec", line, "/dev/null"], capture_output=True,
                             text=True, timeout=30, input="")
        assert tty.returncode == 0, tty.stdout + tty.stderr
        assert "/dev/pts/" in tty.stdout and "done" in tty.stdout
    # a client that goes away ends its command (here a cat reading stdin)
    hung = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.proc.kubeconfig), "exec",
                             "-i", "shell", "--", "cat"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def cats() -> int:
        ps = cluster.kubectl("exec", "shell", "--", "ps", "-o", "comm").stdout.split()
        return ps.count("cat")

    cluster.wait(lambda: cats() == 1, timeout=10, what="the exec'd cat running")
    hung.kill()
    hung.wait()
    cluster.wait(lambda: cats() == 0, timeout=15, what="the cat gone with its client")
    absent = cluster.kubectl("exec", "nosuchpod", "--", "true", check=False)
    assert absent.returncode != 0 and "not found" in absent.stderr


def test_port_forward(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(cluster, "pf", HTTPD))
    cluster.wait_pod("pf", running_and_ready, what="pf Running")
    port = free_port()
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.proc.kubeconfig),
                             "port-forward", "pod/pf", f"{port}:8080"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "Forwarding from" in proc.stdout.readline()
        for _ in range(3):  # several connections over one port-forward
            body = cluster.wait(lambda: http_get(f"http://127.0.0.1:{port}/"), timeout=10,
                                what="HTTP through port-forward")
            assert body == "pf\n"
    finally:
        proc.terminate()
        proc.wait(10)


def test_delete_stops_containers_within_the_grace_period(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(cluster, "stubborn",
                             "trap '' TERM; while true; do sleep 0.2; done",
                             terminationGracePeriodSeconds=3))
    pod = cluster.wait_pod("stubborn", running_and_ready, what="stubborn Running")
    uid = pod["metadata"]["uid"]
    started = time.monotonic()
    cluster.kubectl("delete", "pod", "stubborn", "--wait=true", timeout=30)
    took = time.monotonic() - started
    assert 2.5 < took < 10, took
    left = subprocess.run(["docker", "ps", "-a", "--filter", f"label=io.kubernetes.pod.uid={uid}",
                           "--format", "{{.Names}} {{.Status}}"],
                          capture_output=True, text=True, check=True).stdout
    assert left == ""
    assert cluster.pod("stubborn") is None


def test_graceful_delete_runs_pre_stop(cluster: NodeCluster, tmp_path: Any) -> None:
    marker = tmp_path / "prestop"
    marker.mkdir()
    marker.chmod(0o777)
    manifest = simple_pod(
        cluster, "polite", "trap 'exit 0' TERM; while true; do sleep 0.2; done",
        volumes=[{"name": "out", "hostPath": {"path": str(marker)}}],
        container={"volumeMounts": [{"name": "out", "mountPath": "/out"}],
                   "lifecycle": {"preStop": {"exec": {"command": [
                       "sh", "-c", "echo bye > /out/said"]}}}})
    cluster.apply(manifest)
    cluster.wait_pod("polite", running_and_ready, what="polite Running")
    started = time.monotonic()
    cluster.kubectl("delete", "pod", "polite", "--wait=true", timeout=30)
    assert time.monotonic() - started < 4
    assert (marker / "said").read_text() == "bye\n"


def test_image_that_cannot_be_pulled(cluster: NodeCluster) -> None:
    """ErrImagePull, then ImagePullBackOff, seen through a watch started before the pod."""
    image = "127.0.0.1:1/kubeling-test/missing:1"
    watch = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(cluster.proc.kubeconfig), "get", "pods", "-w",
         "--field-selector", "metadata.name=nopull", "-o",
         "jsonpath={.status.containerStatuses[0].state.waiting.reason}{'\\n'}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        time.sleep(1)  # the watch is established
        cluster.apply(simple_pod(cluster, "nopull", "true", container={"image": image}))
        assert watch.stdout is not None
        deadline = time.monotonic() + 30
        while "ImagePullBackOff" not in seen and time.monotonic() < deadline:
            line = watch.stdout.readline()
            if not line:
                break
            if line.strip():
                seen.append(line.strip())
    finally:
        watch.kill()
        watch.wait()
    assert "ErrImagePull" in seen and "ImagePullBackOff" in seen, seen
    assert seen.index("ErrImagePull") < seen.index("ImagePullBackOff")
    pod = cluster.pod("nopull")
    assert pod["status"]["phase"] == "Pending"
    waiting = container_status(pod)["state"]["waiting"]
    assert waiting["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert image in waiting["message"]
    events = json.loads(cluster.kubectl("get", "events", "--field-selector",
                                        "involvedObject.name=nopull", "-o", "json").stdout)
    assert {"Pulling", "Failed", "BackOff"} <= {e["reason"] for e in events["items"]}
    cluster.kubectl("delete", "pod", "nopull", "--wait=true")


def test_restart_policies_init_containers_and_crash_loop(cluster: NodeCluster) -> None:
    job = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "once"}, "spec": {
        "nodeName": cluster.node, "restartPolicy": "Never",
        "initContainers": [{"name": "first", "image": cluster.image,
                            "command": ["sh", "-c", "echo init > /work/log"],
                            "volumeMounts": [{"name": "w", "mountPath": "/work"}]}],
        "containers": [{"name": "main", "image": cluster.image,
                        "command": ["sh", "-c", "cat /work/log; echo main"],
                        "volumeMounts": [{"name": "w", "mountPath": "/work"}]}],
        "volumes": [{"name": "w", "emptyDir": {}}]}}
    cluster.apply(json.dumps(job))
    pod = cluster.wait_pod("once", lambda p: p["status"].get("phase") == "Succeeded",
                           what="Succeeded")
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == \
        "Completed"
    assert cluster.kubectl("logs", "once").stdout == "init\nmain\n"
    gone = subprocess.run(["docker", "ps", "-aq", "--filter",
                           f"label=io.kubernetes.pod.uid={pod['metadata']['uid']}"],
                          capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["docker", "rm", "-f", *gone], capture_output=True, check=True)
    cluster.kubectl("label", "pod", "once", "poke=1")  # a pod change: the worker syncs
    time.sleep(2)
    assert cluster.pod("once")["status"]["phase"] == "Succeeded"  # finished stays finished
    cluster.apply(simple_pod(cluster, "fails", "exit 2", restartPolicy="Never"))
    pod = cluster.wait_pod("fails", lambda p: p["status"].get("phase") == "Failed",
                           what="Failed")
    assert container_status(pod)["state"]["terminated"]["exitCode"] == 2
    cluster.apply(simple_pod(cluster, "crashy", "exit 1"))
    pod = cluster.wait_pod(
        "crashy", lambda p: (container_status(p).get("state", {}).get("waiting") or {})
        .get("reason") == "CrashLoopBackOff", what="CrashLoopBackOff")
    assert container_status(pod)["restartCount"] >= 1
    assert "back-off 10s restarting failed container=app" in \
        container_status(pod)["state"]["waiting"]["message"]
    assert pod["status"]["phase"] == "Running"
    for name in ("once", "fails", "crashy"):
        cluster.kubectl("delete", "pod", name, "--wait=false")


def test_env_and_volumes_with_live_updates(cluster: NodeCluster) -> None:
    cluster.apply(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "settings"},
                              "data": {"greeting": "hello", "color": "blue"}}))
    cluster.apply(json.dumps({"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": "creds"},
                              "stringData": {"token": "s3cret"}}))
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "envvol", "labels": {"tier": "back"}}, "spec": {
               "nodeName": cluster.node,
               "containers": [{
                   "name": "app", "image": cluster.image,
                   "command": ["sh", "-c", "while true; do sleep 1; done"],
                   "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
                   "env": [
                       {"name": "GREETING", "valueFrom": {"configMapKeyRef": {
                           "name": "settings", "key": "greeting"}}},
                       {"name": "TOKEN", "valueFrom": {"secretKeyRef": {
                           "name": "creds", "key": "token"}}},
                       {"name": "POD_NAME", "valueFrom": {"fieldRef": {
                           "fieldPath": "metadata.name"}}},
                       {"name": "POD_IP", "valueFrom": {"fieldRef": {
                           "fieldPath": "status.podIP"}}},
                       {"name": "MEM", "valueFrom": {"resourceFieldRef": {
                           "resource": "limits.memory", "divisor": "1Mi"}}},
                       {"name": "MESSAGE", "value": "$(GREETING) from $(POD_NAME)"}],
                   "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CM_"}],
                   "volumeMounts": [
                       {"name": "config", "mountPath": "/etc/config"},
                       {"name": "secret", "mountPath": "/etc/secret"},
                       {"name": "info", "mountPath": "/etc/info"},
                       {"name": "all", "mountPath": "/etc/all"},
                       {"name": "scratch", "mountPath": "/scratch"}]}],
               "volumes": [
                   {"name": "config", "configMap": {"name": "settings"}},
                   {"name": "secret", "secret": {"secretName": "creds"}},
                   {"name": "info", "downwardAPI": {"items": [
                       {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                   {"name": "all", "projected": {"sources": [
                       {"configMap": {"name": "settings",
                                      "items": [{"key": "color", "path": "color"}]}},
                       {"secret": {"name": "creds"}}]}},
                   {"name": "scratch", "emptyDir": {"medium": "Memory"}}]}}
    cluster.apply(json.dumps(pod))
    live = cluster.wait_pod("envvol", running_and_ready, what="envvol Running")
    env = dict(line.split("=", 1) for line in
               cluster.kubectl("exec", "envvol", "--", "env").stdout.splitlines()
               if "=" in line)
    assert env["GREETING"] == "hello" and env["TOKEN"] == "s3cret"
    assert env["POD_NAME"] == "envvol" and env["POD_IP"] == live["status"]["podIP"]
    assert env["MEM"] == "64" and env["MESSAGE"] == "hello from envvol"
    assert env["CM_color"] == "blue"
    kubernetes = cluster.get("service", "kubernetes")["spec"]["clusterIP"]
    assert env["KUBERNETES_SERVICE_HOST"] == kubernetes  # service links
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_PORT"] == f"tcp://{kubernetes}:443"

    def cat(path: str) -> str:
        return cluster.kubectl("exec", "envvol", "--", "cat", path).stdout

    assert cat("/etc/config/greeting") == "hello"
    assert cat("/etc/secret/token") == "s3cret"
    assert cat("/etc/info/labels") == 'tier="back"'
    assert cat("/etc/all/color") == "blue" and cat("/etc/all/token") == "s3cret"
    cluster.kubectl("exec", "envvol", "--", "sh", "-c", "echo x > /scratch/f")
    cluster.kubectl("patch", "configmap", "settings", "-p", '{"data": {"greeting": "hi"}}')
    cluster.kubectl("label", "pod", "envvol", "tier=front", "--overwrite")
    cluster.wait(lambda: cat("/etc/config/greeting") == "hi", timeout=20,
                 what="the configMap file updated")
    cluster.wait(lambda: cat("/etc/info/labels") == 'tier="front"', timeout=20,
                 what="the downwardAPI file updated")
    cluster.kubectl("delete", "pod", "envvol", "--wait=true")
    from kubeling_kubelet.volumes import mounts_under

    assert mounts_under(cluster.data_dir) == []  # the memory-backed emptyDir is unmounted


def test_resources_and_security_context_reach_the_runtime(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(
        cluster, "locked", "while true; do sleep 1; done",
        securityContext={"runAsUser": 1000, "runAsGroup": 3000},
        container={"workingDir": "/tmp",
                   "resources": {"requests": {"cpu": "250m", "memory": "32Mi"},
                                 "limits": {"cpu": "500m", "memory": "64Mi"}},
                   "securityContext": {"readOnlyRootFilesystem": True,
                                       "allowPrivilegeEscalation": False}}))
    pod = cluster.wait_pod("locked", running_and_ready, what="locked Running")
    assert pod["status"]["qosClass"] == "Burstable"
    assert cluster.kubectl("exec", "locked", "--", "id", "-u").stdout.strip() == "1000"
    assert cluster.kubectl("exec", "locked", "--", "id", "-g").stdout.strip() == "3000"
    assert cluster.kubectl("exec", "locked", "--", "sh", "-c", "pwd").stdout.strip() == "/tmp"
    denied = cluster.kubectl("exec", "locked", "--", "touch", "/x", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    cid = container_status(pod)["containerID"].removeprefix("docker://")
    host = json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True,
                                     text=True, check=True).stdout)[0]["HostConfig"]
    assert (host["CpuShares"], host["CpuQuota"], host["CpuPeriod"], host["Memory"]) == \
        (256, 50_000, 100_000, 64 * 1024 * 1024)
    assert host["ReadonlyRootfs"] is True and "no-new-privileges" in host["SecurityOpt"]
    cluster.kubectl("delete", "pod", "locked", "--wait=false")


def test_missing_config_map_is_a_clear_status(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(cluster, "noconfig", "sleep 100", container={"env": [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]}))
    pod = cluster.wait_pod("noconfig", lambda p: (container_status(p).get("state", {})
                                                  .get("waiting") or {}).get("reason")
                           == "CreateContainerConfigError", what="CreateContainerConfigError")
    assert 'configmap "absent" not found' in \
        container_status(pod)["state"]["waiting"]["message"]
    cluster.kubectl("delete", "pod", "noconfig", "--wait=false")


def test_static_pods_with_mirror_pods(cluster: NodeCluster) -> None:
    manifests = cluster.data_dir / "manifests"
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "static-web"},
                "spec": {"containers": [{"name": "httpd", "image": cluster.image,
                                         "command": ["sh", "-c", HTTPD]}]}}
    (manifests / "web.yaml").write_text(json.dumps(manifest))
    mirror = f"static-web-{cluster.node}"
    pod = cluster.wait_pod(mirror, running_and_ready, timeout=30, what="mirror pod Running")
    assert "kubernetes.io/config.mirror" in pod["metadata"]["annotations"]
    assert http_get(f"http://{pod['status']['podIP']}:8080/")
    assert cluster.kubectl("exec", mirror, "--", "cat", "/etc/hostname").stdout.strip() == \
        mirror
    cluster.kubectl("delete", "pod", mirror, "--wait=false")
    recreated = cluster.wait_pod(mirror, lambda p: p["metadata"]["uid"] != pod["metadata"][
        "uid"] and running_and_ready(p), timeout=30, what="mirror pod recreated")
    assert recreated["metadata"]["uid"] != pod["metadata"]["uid"]
    (manifests / "web.yaml").unlink()
    cluster.wait(lambda: cluster.pod(mirror) is None, timeout=30, what="mirror pod gone")


def test_agent_endpoint_needs_the_shared_secret(cluster: NodeCluster) -> None:
    node = cluster.get("node", cluster.node)
    endpoint = node["metadata"]["annotations"]["node.kubeling.io/agent-endpoint"]
    request = urllib.request.Request(f"{endpoint}/containerLogs/default/ticker/app")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 401
    request.add_header("Authorization", "Bearer wrong")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 401


def test_kill9_and_restart_changes_nothing_that_runs(cluster: NodeCluster) -> None:
    """Last in the module: SIGKILL the whole process, start it again on its data."""
    cluster.apply(simple_pod(cluster, "survivor", "while true; do sleep 1; done"))
    cluster.wait_pod("survivor", running_and_ready, what="survivor Running")
    time.sleep(1.5)  # let every worker post its settled status

    def snapshot() -> dict[str, tuple[str, int, str]]:
        pods = cluster.get("pods")["items"]
        return {p["metadata"]["name"]: (container_status(p).get("containerID", ""),
                                        container_status(p).get("restartCount", 0),
                                        p["status"].get("podIP", ""))
                for p in pods if running_and_ready(p)}

    before = snapshot()
    running_before = docker_ids(cluster)
    assert "survivor" in before and len(before) >= 3
    cluster.proc.kill9()
    assert docker_ids(cluster) == running_before  # containers outlive the agent
    cluster.proc.start()
    cluster.wait(cluster.node_ready, timeout=30, what="node Ready again")
    time.sleep(3)  # a few relists and syncs of the new agent
    after = cluster.wait(lambda: (s := snapshot()) == before and s, timeout=20,
                         what="the same pods, containers and restart counts")
    assert after == before
    assert docker_ids(cluster) == running_before


def test_official_python_client_exec_and_port_forward(cluster: NodeCluster) -> None:
    """The ``kubernetes`` client's WebSocket exec (channel protocol) and port-forward
    (``portforward.k8s.io`` channels, not SPDY) against the same endpoints."""
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes.stream import portforward, stream

    cluster.apply(simple_pod(cluster, "pyclient", HTTPD))
    cluster.wait_pod("pyclient", running_and_ready, what="pyclient Running")
    api_client = kubernetes.config.new_client_from_config(str(cluster.proc.kubeconfig))
    try:
        core = kubernetes.client.CoreV1Api(api_client)
        out = stream(core.connect_get_namespaced_pod_exec, "pyclient", "default",
                     command=["cat", "/etc/hostname"], stderr=True, stdin=False, stdout=True,
                     tty=False)
        assert out == "pyclient\n"
        forward = portforward(core.connect_get_namespaced_pod_portforward, "pyclient",
                              "default", ports="8080")
        sock = forward.socket(8080)
        sock.setblocking(True)
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
        sock.close()
        assert reply.startswith(b"HTTP/1.") and reply.endswith(b"pyclient\n")
        assert forward.error(8080) is None
        forward.close()
    finally:
        api_client.close()


def test_grpc_readiness_probe(cluster: NodeCluster) -> None:
    grpc = pytest.importorskip("grpc")
    health = pytest.importorskip("grpc_health.v1.health")
    health_pb2 = pytest.importorskip("grpc_health.v1.health_pb2")
    health_pb2_grpc = pytest.importorskip("grpc_health.v1.health_pb2_grpc")
    from concurrent.futures import ThreadPoolExecutor

    from kubeling_kubelet import node as node_facts

    # a hostNetwork pod: its IP is the host's, where this test serves the health service
    host = node_facts.host_ip()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"{host}:0")
    servicer.set("app", health_pb2.HealthCheckResponse.SERVING)
    server.start()
    try:
        cluster.apply(simple_pod(cluster, "grpcready", "exec sleep 3600", hostNetwork=True,
                                 container={"readinessProbe": {
                                     "grpc": {"port": port, "service": "app"},
                                     "periodSeconds": 1, "failureThreshold": 1}}))
        cluster.wait_pod("grpcready", running_and_ready, what="grpcready Ready")
        servicer.set("app", health_pb2.HealthCheckResponse.NOT_SERVING)
        cluster.wait_pod("grpcready", lambda p: not running_and_ready(p),
                         what="grpcready not Ready once NOT_SERVING")
        servicer.set("app", health_pb2.HealthCheckResponse.SERVING)
        cluster.wait_pod("grpcready", running_and_ready, what="grpcready Ready again")
    finally:
        server.stop(None)
        cluster.kubectl("delete", "pod", "grpcready", "--wait=true", check=False)


def test_kubectl_cp_both_ways_and_logs_by_selector(cluster: NodeCluster, tmp_path: Any) -> None:
    cluster.apply(simple_pod(cluster, "copier", "echo copier-started; exec sleep 3600",
                             metadata_labels={"role": "copier"}))
    cluster.wait_pod("copier", running_and_ready, what="copier Running")
    source = tmp_path / "in" / "notes.txt"
    source.parent.mkdir()
    source.write_text("line one\nline two\n")
    # kubectl cp runs tar through exec, with stdin
    cluster.kubectl("cp", str(source), "default/copier:/tmp/notes.txt")
    assert cluster.kubectl("exec", "copier", "--", "cat", "/tmp/notes.txt").stdout == \
        "line one\nline two\n"
    cluster.kubectl("exec", "copier", "--", "sh", "-c",
                    "mkdir -p /tmp/out && echo from-pod > /tmp/out/a && echo b > /tmp/out/b")
    target = tmp_path / "back"
    cluster.kubectl("cp", "default/copier:/tmp/out", str(target))
    assert (target / "a").read_text() == "from-pod\n" and (target / "b").read_text() == "b\n"
    logs = cluster.kubectl("logs", "-l", "role=copier", "--prefix").stdout
    assert logs == "[pod/copier/app] copier-started\n"


def test_readiness_gates_hold_ready_until_their_condition_is_true(cluster: NodeCluster
                                                                  ) -> None:
    gate = "example.com/load-balancer"
    cluster.apply(simple_pod(cluster, "gated-ready", "exec sleep 3600",
                             readinessGates=[{"conditionType": gate}]))

    def ready_condition(p: dict[str, Any]) -> dict[str, Any]:
        return next((c for c in p["status"].get("conditions") or []
                     if c["type"] == "Ready"), {})

    pod = cluster.wait_pod("gated-ready", lambda p: p["status"].get("phase") == "Running"
                           and ready_condition(p).get("reason") == "ReadinessGatesNotReady",
                           what="Running, held back by its readiness gate")
    assert ready_condition(pod)["message"] == \
        f'corresponding condition of pod readiness gate "{gate}" does not exist.'
    assert next(c for c in pod["status"]["conditions"]
                if c["type"] == "ContainersReady")["status"] == "True"
    patch = {"status": {"conditions": [{"type": gate, "status": "True"}]}}
    cluster.kubectl("patch", "pod", "gated-ready", "--subresource=status", "--type=strategic",
                    "-p", json.dumps(patch))
    pod = cluster.wait_pod("gated-ready", running_and_ready, what="Ready once the gate is True")
    assert any(c["type"] == gate and c["status"] == "True" for c in pod["status"]["conditions"])
    cluster.kubectl("delete", "pod", "gated-ready", "--wait=true")


def test_native_sidecars(cluster: NodeCluster) -> None:
    shared = [{"name": "shared", "mountPath": "/shared"}]
    sidecar = {"name": "logger", "image": cluster.image, "restartPolicy": "Always",
               "command": ["/bin/sh", "-c", "echo up > /shared/sidecar; exec sleep 3600"],
               "volumeMounts": shared}
    setup = {"name": "setup", "image": cluster.image, "volumeMounts": shared,
             # a later init container starts only once the sidecar runs
             "command": ["/bin/sh", "-c", "test -f /shared/sidecar && echo ok > /shared/setup"]}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "with-sidecar"}, "spec": {
        "nodeName": cluster.node, "terminationGracePeriodSeconds": 1,
        "volumes": [{"name": "shared", "emptyDir": {}}],
        "initContainers": [sidecar, setup],
        "containers": [{"name": "app", "image": cluster.image, "volumeMounts": shared,
                        "command": ["/bin/sh", "-c", "cat /shared/setup; exec sleep 3600"]}]}}
    cluster.apply(json.dumps(pod))
    live = cluster.wait_pod("with-sidecar", running_and_ready, what="with-sidecar Ready")
    inits = {s["name"]: s for s in live["status"]["initContainerStatuses"]}
    assert "running" in inits["logger"]["state"] and inits["logger"]["started"]
    assert inits["setup"]["state"]["terminated"]["exitCode"] == 0
    assert cluster.kubectl("logs", "with-sidecar", "-c", "app").stdout == "ok\n"
    # the sidecar is restarted when it dies, the pod keeps running
    container_id = inits["logger"]["containerID"].removeprefix("docker://")
    subprocess.run(["docker", "kill", container_id], check=True, capture_output=True)
    cluster.wait_pod("with-sidecar", lambda p: running_and_ready(p) and next(
        s for s in p["status"]["initContainerStatuses"] if s["name"] == "logger"
    )["restartCount"] >= 1, what="sidecar restarted")
    cluster.kubectl("delete", "pod", "with-sidecar", "--wait=true")

    # a pod that runs to completion finishes though its sidecar never would
    job = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job-with-sidecar"},
           "spec": {"nodeName": cluster.node, "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "initContainers": [{"name": "proxy", "image": cluster.image,
                                        "restartPolicy": "Always",
                                        "command": ["/bin/sh", "-c", "exec sleep 3600"]}],
                    "containers": [{"name": "work", "image": cluster.image,
                                    "command": ["/bin/sh", "-c", "echo done"]}]}}
    cluster.apply(json.dumps(job))
    done = cluster.wait_pod("job-with-sidecar",
                            lambda p: p["status"].get("phase") == "Succeeded", timeout=30,
                            what="Succeeded once its app container finished")
    cluster.wait(lambda: not any(
        "running" in s["state"] for s in (cluster.pod("job-with-sidecar") or done)["status"]
        .get("initContainerStatuses") or []), timeout=20, what="the sidecar stopped")
    cluster.kubectl("delete", "pod", "job-with-sidecar", "--wait=true")


def test_sidecars_stop_after_the_app_containers(cluster: NodeCluster, tmp_path: Any) -> None:
    record = tmp_path / "order"
    record.mkdir()
    mount = [{"name": "record", "mountPath": "/record"}]

    def container(name: str, **extra: Any) -> dict[str, Any]:
        script = (f"trap 'echo {name} >> /record/order; exit 0' TERM; "
                  f"while :; do sleep 0.2; done")
        return {"name": name, "image": cluster.image, "command": ["/bin/sh", "-c", script],
                "volumeMounts": mount, **extra}

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stop-order"}, "spec": {
        "nodeName": cluster.node, "terminationGracePeriodSeconds": 10,
        "volumes": [{"name": "record", "hostPath": {"path": str(record)}}],
        "initContainers": [container("first-sidecar", restartPolicy="Always"),
                           container("second-sidecar", restartPolicy="Always")],
        "containers": [container("app")]}}
    cluster.apply(json.dumps(pod))
    cluster.wait_pod("stop-order", running_and_ready, what="stop-order Ready")
    cluster.kubectl("delete", "pod", "stop-order", "--wait=true")
    assert (record / "order").read_text().split() == ["app", "second-sidecar",
                                                      "first-sidecar"]


def test_kubectl_debug_adds_an_ephemeral_container(cluster: NodeCluster) -> None:
    cluster.apply(simple_pod(cluster, "debuggee", "exec sleep 3600"))
    cluster.wait_pod("debuggee", running_and_ready, what="debuggee Running")
    out = cluster.kubectl("debug", "debuggee", f"--image={cluster.image}",
                          "--image-pull-policy=Never", "--container=dbg", "--target=app",
                          "--", "/bin/sh", "-c", "ps; exec sleep 3600").stdout
    assert "Defaulting debug container name" not in out

    def debugging(p: dict[str, Any]) -> bool:
        statuses = p["status"].get("ephemeralContainerStatuses") or []
        return any(s["name"] == "dbg" and "running" in s["state"] for s in statuses)

    pod = cluster.wait_pod("debuggee", debugging, what="the debug container running")
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["dbg"]
    assert running_and_ready(pod)  # the pod itself is untouched
    # --target: the debug container sees the target's processes
    logs = cluster.wait(lambda: cluster.kubectl("logs", "debuggee", "-c", "dbg").stdout,
                        timeout=10, what="the debug container's output")
    assert "sleep 3600" in logs
    assert cluster.kubectl("exec", "debuggee", "-c", "dbg", "--", "echo", "inside").stdout \
        == "inside\n"
    # ephemeral containers can be added, never changed or removed
    refused = cluster.kubectl("patch", "pod", "debuggee", "--subresource=ephemeralcontainers",
                              "--type=json", "-p", '[{"op": "remove", '
                              '"path": "/spec/ephemeralContainers/0"}]', check=False)
    assert refused.returncode != 0
    assert 'existing ephemeral containers "dbg" may not be removed' in refused.stderr
    cluster.kubectl("delete", "pod", "debuggee", "--wait=true")

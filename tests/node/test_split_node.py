"""A node agent in its own process (``kubeling up --role node``) against a separate control
plane: it joins with the shared secret, and ``kill -9`` of the agent alone, then a restart,
changes nothing that runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeling.testing.cluster import KubelingProcess
from tests.node.conftest import container_status, remove_containers, running_and_ready


class NodeProcess:
    """``kubeling up --role node`` in a subprocess."""

    def __init__(self, data_dir: Path, config: dict[str, Any]) -> None:
        self.data_dir = data_dir
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.log = data_dir / "node.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "node.yaml"
        path.write_text(yaml.safe_dump(self.config))
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kubeling.cli", "up", "--role", "node", "--config",
                 str(path), "--data-dir", str(self.data_dir)],
                stdout=out, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "KUBELING_DOCKER_OFFLINE": "1"})

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def split(tmp_path: Path, images: dict[str, str]) -> Iterator[tuple[KubelingProcess,
                                                                      NodeProcess, str]]:
    node = f"kl-split-{uuid.uuid4().hex[:6]}"
    plane = KubelingProcess(tmp_path / "plane", role="control-plane")
    plane.start()
    agent = NodeProcess(tmp_path / "node", {
        "api": {"server": plane.url},
        "node": {"name": node, "runtime": "docker",
                 "docker": {"pause_image": images["pause"], "offline": True}},
        "kubelet": {"secret_file": str(tmp_path / "plane" / "node-agent.secret"),
                    "status_update_seconds": 2.0},
        # the proxy (and DNS with it) would rewrite the host's packet filter: off here
        "proxy": {"enabled": False}})
    agent.start()
    try:
        yield plane, agent, node
    finally:
        agent.stop()
        plane.stop()
        remove_containers(node)


def wait(predicate: Any, timeout: float, what: str, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} not reached within {timeout}s"
                         + (f"\n{log.read_text()[-3000:]}" if log else ""))


def test_kill9_of_the_agent_alone(split: tuple[KubelingProcess, NodeProcess, str],
                                  images: dict[str, str]) -> None:
    plane, agent, node = split

    def get(*args: str) -> Any:
        result = plane.kubectl("get", *args, "-o", "json")
        return json.loads(result.stdout) if result.returncode == 0 else None

    def ready() -> bool:
        obj = get("node", node)
        return bool(obj) and any(c["type"] == "Ready" and c["status"] == "True"
                                 for c in obj["status"]["conditions"])

    wait(ready, 40, "the node Ready", agent.log)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "steady"},
           "spec": {"nodeName": node, "containers": [{
               "name": "app", "image": images["busybox"],
               "command": ["sh", "-c", "while true; do sleep 1; done"]}]}}
    plane.kubectl("apply", "-f", "-", input=json.dumps(pod), check=True)
    before = wait(lambda: (p := get("pod", "steady")) and running_and_ready(p) and p, 40,
                  "steady Running", agent.log)
    assert plane.kubectl("exec", "steady", "--", "cat", "/etc/hostname").stdout == "steady\n"
    manifest = agent.data_dir / "manifests" / "gone.yaml"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "Pod",
                                    "metadata": {"name": "gone"}, "spec": {"containers": [{
                                        "name": "c", "image": images["busybox"],
                                        "command": ["sleep", "3600"]}]}}))
    mirror = f"gone-{node}"
    wait(lambda: (p := get("pod", mirror)) and running_and_ready(p), 40, "static pod Running",
         agent.log)
    agent.kill9()
    manifest.unlink()  # removed while no agent runs
    time.sleep(1)
    cid = container_status(before)["containerID"].removeprefix("docker://")
    state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", cid],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert state == "true"  # the pod outlives its agent
    agent.start()

    def settled() -> Any:
        p = get("pod", "steady")
        endpoint = (get("node", node) or {}).get("metadata", {}).get("annotations", {})
        return p if p and running_and_ready(p) and endpoint else None

    time.sleep(3)
    after = wait(settled, 40, "steady settled after the restart", agent.log)
    assert container_status(after)["containerID"] == container_status(before)["containerID"]
    assert container_status(after)["restartCount"] == 0
    assert after["status"]["podIP"] == before["status"]["podIP"]
    # the static pod whose manifest went away is gone, mirror and containers
    wait(lambda: get("pod", mirror) is None, 20, "the stale mirror pod deleted", agent.log)
    ids = wait(lambda: (found := subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=io.kubeling.node={node}"],
        capture_output=True, text=True, check=True).stdout.split()) and len(found) == 2
        and found, 20, "the static pod's containers removed", agent.log)
    assert len(ids) == 2  # the sandbox and the app container of steady, nothing new
    # the restarted agent (on a new port) serves exec again
    assert wait(lambda: plane.kubectl("exec", "steady", "--", "cat", "/etc/hostname").stdout
                == "steady\n", 20, "exec through the restarted agent")

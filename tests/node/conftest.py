"""Fixtures for the node tests: a real dockerd, a locally built busybox image, and
``kubeling up`` clusters whose node and containers are this test run's own."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeling.testing.cluster import KubelingProcess

BUSYBOX = Path("/bin/busybox")


def docker_available() -> str | None:
    """None when dockerd answers, else why not."""
    try:
        from kubeling_runtime_docker import DockerRuntime, DockerSettings
    except ImportError:
        return "kubeling-runtime-docker is not installed"
    from kubeling.runtime import RuntimeUnavailableError

    try:
        DockerRuntime(DockerSettings()).check_available()
    except RuntimeUnavailableError as exc:
        return str(exc)
    if not BUSYBOX.exists():
        return "busybox-static is not installed"
    if shutil.which("kubectl") is None:
        return "kubectl is not installed"
    return None


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def images(run_id: str) -> Iterator[dict[str, str]]:
    """A busybox image and a pause image of this run (built locally, removed at the end)."""
    reason = docker_available()
    if reason:
        pytest.skip(f"no container runtime for node tests: {reason}")
    from kubeling_runtime_docker import DockerRuntime, DockerSettings
    from kubeling_runtime_docker.images import busybox_rootfs

    names = {"busybox": f"kubeling-test/busybox:{run_id}",
             "pause": f"kubeling-test/pause:{run_id}"}

    async def build() -> None:
        rt = DockerRuntime(DockerSettings())
        await rt.import_image(names["busybox"], busybox_rootfs(BUSYBOX), cmd=["/bin/sh"])
        await rt.close()

    async def remove() -> None:
        rt = DockerRuntime(DockerSettings())
        for image in names.values():
            await rt.remove_image(image)
        await rt.close()

    asyncio.run(build())
    yield names
    asyncio.run(remove())


def remove_containers(node: str) -> None:
    """Remove every container of a test node (what its agent left running)."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=io.kubeling.node={node}"],
                         capture_output=True, text=True, check=False).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


class NodeCluster:
    """A ``kubeling up`` with a node of its own, and kubectl helpers."""

    def __init__(self, data_dir: Path, images: dict[str, str], node: str,
                 extra: dict[str, Any] | None = None,
                 sections: dict[str, Any] | None = None) -> None:
        self.node = node
        self.images = images
        self.image = images["busybox"]
        config: dict[str, Any] = {
            "node": {"name": node, "runtime": "docker",
                     "docker": {"pause_image": images["pause"], "offline": True}},
            "kubelet": {"status_update_seconds": 2.0, **(extra or {})},
            **(sections or {}),
        }
        self.proc = KubelingProcess(data_dir, config=config)
        self.data_dir = data_dir

    def start(self) -> None:
        self.proc.start()
        self.wait(lambda: self.node_ready(), timeout=30, what=f"node {self.node} Ready")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = self.proc.kubectl(*args, input=input, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}{result.stderr}\n--- kubeling up:\n"
                                 + "".join(self.proc.output[-30:]))
        return result

    def apply(self, manifest: str, namespace: str = "default") -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)

    def get(self, kind: str, name: str | None = None, namespace: str = "default",
            *selector: str) -> Any:
        args = ["get", kind, *([name] if name else []), "-n", namespace, "-o", "json",
                *selector]
        result = self.kubectl(*args, check=False)
        if result.returncode != 0:
            return None
        return json.loads(result.stdout)

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return self.get("pod", name, namespace)

    def node_ready(self) -> bool:
        node = self.get("node", self.node)
        if not node:
            return False
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in node["status"].get("conditions") or [])

    def wait(self, predicate: Callable[[], Any], *, timeout: float = 30, interval: float = 0.25,
             what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"{what} not reached within {timeout}s; kubeling up said:\n"
                             + "".join(self.proc.output[-40:]))

    def wait_pod(self, name: str, check: Callable[[dict[str, Any]], bool], *,
                 namespace: str = "default", timeout: float = 30,
                 what: str = "pod state") -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            pod = self.pod(name, namespace)
            return pod if pod is not None and check(pod) else None
        try:
            return self.wait(probe, timeout=timeout, what=what)
        except AssertionError as exc:
            pod = self.pod(name, namespace)
            raise AssertionError(f"{exc}\npod {name}: {json.dumps((pod or {}).get('status'))}") \
                from None

    def stop(self) -> None:
        self.proc.stop()
        remove_containers(self.node)
        from kubeling_kubelet.volumes import mounts_under

        for path in mounts_under(self.data_dir):  # memory-backed emptyDirs left mounted
            subprocess.run(["umount", str(path)], capture_output=True, check=False)


def running_and_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])


def container_status(pod: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for s in statuses:
        if name is None or s["name"] == name:
            return dict(s)
    return {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, images: dict[str, str],
            run_id: str) -> Iterator[NodeCluster]:
    """One ``kubeling up`` with a Docker node for the whole test module."""
    node = f"kl-{run_id}-{uuid.uuid4().hex[:4]}"
    c = NodeCluster(tmp_path_factory.mktemp("node-cluster"), images, node)
    c.start()
    yield c
    c.stop()

"""Pod startup latency: create -> Running (seen through a watch), beside bare `docker run`.

Starts ``kubeling up`` with the kubelet on the local dockerd, creates 30 busybox pods one
after another (bound with ``spec.nodeName``, so the time is the node's), and for each takes
the time from just before the create request to the watch event showing it Running.  In
the same run it times 30 ``docker run -d`` of the same image (the CLI returns once the
container is started).  Prints p50/p99 of both and their ratio.  Everything it creates
(containers, images, the cluster's data) is removed at the end.

    .venv/bin/python bench/pod_startup.py [--pods 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from kubeling.testing.cluster import KubelingProcess


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def build_images(busybox: str, pause: str) -> None:
    from kubeling_runtime_docker import DockerRuntime, DockerSettings
    from kubeling_runtime_docker.images import busybox_rootfs

    rt = DockerRuntime(DockerSettings(pause_image=pause))
    await rt.import_image(busybox, busybox_rootfs(Path("/bin/busybox")), cmd=["/bin/sh"])
    await rt._ensure_pause_image()
    await rt.close()


async def remove_images(*images: str) -> None:
    from kubeling_runtime_docker import DockerRuntime, DockerSettings

    rt = DockerRuntime(DockerSettings())
    for image in images:
        await rt.remove_image(image)
    await rt.close()


async def pod_latencies(url: str, node: str, image: str, count: int, first: int = 0
                        ) -> list[float]:
    base = f"{url}/api/v1/namespaces/default/pods"
    running: dict[str, float] = {}
    waiters: dict[str, asyncio.Event] = {}
    async with aiohttp.ClientSession() as session:
        async with session.get(base) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]

        async def watch() -> None:
            params = {"watch": "true", "resourceVersion": rv}
            async with session.get(base, params=params,
                                   timeout=aiohttp.ClientTimeout(total=None)) as resp:
                async for line in resp.content:
                    event = json.loads(line)
                    pod = event["object"]
                    name = pod["metadata"]["name"]
                    if (pod.get("status") or {}).get("phase") == "Running" and \
                            name not in running:
                        running[name] = time.perf_counter()
                        if name in waiters:
                            waiters[name].set()

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.2)
        latencies = []
        for i in range(first, first + count):
            name = f"bench-{i}"
            waiters[name] = asyncio.Event()
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                    "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                             "containers": [{"name": "app", "image": image,
                                             "command": ["sleep", "3600"]}]}}
            started = time.perf_counter()
            async with session.post(base, json=body) as resp:
                if resp.status != 201:
                    raise SystemExit(f"creating {name} failed: {await resp.text()}")
            await asyncio.wait_for(waiters[name].wait(), 60)
            latencies.append(running[name] - started)
        watcher.cancel()
    return latencies


def docker_run_latencies(image: str, label: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run(["docker", "run", "-d", "--label", label, image, "sleep", "3600"],
                       check=True, capture_output=True)
        out.append(time.perf_counter() - started)
    return out


def cleanup_containers(label: str) -> None:
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"],
                         capture_output=True, text=True, check=False).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=30)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    busybox, pause = f"kubeling-bench/busybox:{run}", f"kubeling-bench/pause:{run}"
    node = f"bench-{run}"
    docker_label = f"io.kubeling.bench={run}"
    asyncio.run(build_images(busybox, pause))
    with tempfile.TemporaryDirectory() as tmp:
        proc = KubelingProcess(Path(tmp), config={
            "node": {"name": node, "runtime": "docker",
                     "docker": {"pause_image": pause, "offline": True}},
            "logging": {"level": "warning"}})
        try:
            proc.start()
            deadline = time.monotonic() + 30
            while "Ready" not in proc.kubectl("get", "node", node).stdout:
                if time.monotonic() > deadline:
                    raise SystemExit("the node did not become Ready:\n" + "".join(proc.output))
                time.sleep(0.2)
            # warm-up: the first pod pays for caches; measured rounds interleave with docker
            asyncio.run(pod_latencies(proc.url, node, busybox, 1, first=1000))
            docker_run_latencies(busybox, docker_label, 1)
            pods, docker = [], []
            rounds = 3  # interleaved, so both see the machine in the same state
            for r in range(rounds):
                share = args.pods // rounds + (1 if r < args.pods % rounds else 0)
                pods += asyncio.run(pod_latencies(proc.url, node, busybox, share,
                                                  first=len(pods)))
                docker += docker_run_latencies(busybox, docker_label, share)
        finally:
            proc.stop()
            cleanup_containers(f"io.kubeling.node={node}")
            cleanup_containers(docker_label)
            asyncio.run(remove_images(busybox, pause))

    def ms(v: float) -> str:
        return f"{v * 1000:7.1f} ms"

    p50, p99 = percentile(pods, 50), percentile(pods, 99)
    d50, d99 = percentile(docker, 50), percentile(docker, 99)
    print(f"pod startup, create -> Running via watch ({len(pods)} pods, one at a time)")
    print(f"  kubeling pod   p50 {ms(p50)}   p99 {ms(p99)}   mean {ms(statistics.mean(pods))}")
    print(f"  docker run -d  p50 {ms(d50)}   p99 {ms(d99)}   mean {ms(statistics.mean(docker))}")
    print(f"  ratio pod/docker: p50 {p50 / d50:.2f}x   p99 {p99 / d99:.2f}x "
          f"(goal: p99 under 2x; Kubernetes' SLO is 5 s)")


if __name__ == "__main__":
    sys.exit(main())

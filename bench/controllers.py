"""Controller throughput: a 5,000-replica Deployment on stand-in nodes, then a rolling update.

Runs in one process, as ``kubeling up`` does: SQLite storage, the API server, the
controller manager with every default controller, and stand-in nodes (``--nodes`` of them,
from :mod:`kubeling_controllers_default.testing`: they bind pending pods and mark them
Running and Ready through the API, as the scheduler and node agents would).

Measured:

* **scale-up**: from creating the Deployment to ``Available`` with every replica updated
  and available (what ``kubectl rollout status`` waits for), in pods/s, with the times
  at which all pods were created, bound and running;
* **rolling update**: from changing the image to the rollout being complete again
  (``maxSurge`` 25 %, ``maxUnavailable`` 25 %, the defaults), in replaced pods/s;
* **baseline**: the same API writes the pods need (create, bind, status) made directly by
  one client with 64 requests in flight and no controllers -- the rate the API server
  and storage allow; the ratios say how much the control loops cost on top.

Where the time goes: reconciles, retries and time inside reconcile per controller, the
stand-in's writes, the process's CPU time, and with ``--profile`` CPU time by package
(API server, storage, controllers, client and informers, stand-in nodes, other).

With ``--mode hollow`` the same Deployment runs in a real ``kubeling up`` process with the
real scheduler and the ``hollow_nodes`` component instead of stand-ins (the node agent,
proxy and DNS components off); its CPU time is read from ``/proc``.

Usage: ``python bench/controllers.py [--replicas 5000] [--nodes 100] [--profile]
[--mode standin|hollow|both]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from kubeling_controllers_default.testing import StandInNodes, controller_cluster

from kubeling.client import Client
from kubeling.client.resources import DEPLOYMENTS, NODES, PODS

NAMESPACE = "default"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": "bench"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "bench:1"}],
                                           "terminationGracePeriodSeconds": 0}}}}


def rolled_out(d: dict[str, Any]) -> bool:
    status = d.get("status") or {}
    want = d["spec"]["replicas"]
    return status.get("observedGeneration", 0) >= d["metadata"]["generation"] and \
        status.get("updatedReplicas") == want and status.get("replicas") == want and \
        status.get("availableReplicas") == want


class Milestones:
    """Watches the pods (through the stand-in's informer) and notes when counts are hit."""

    def __init__(self, nodes: StandInNodes, replicas: int, image: str) -> None:
        self.nodes = nodes
        self.replicas = replicas
        self.image = image
        self.times: dict[str, float] = {}

    async def run(self, started: float) -> None:
        while True:
            self.sample(started)
            await asyncio.sleep(0.5)

    def sample(self, started: float) -> None:
        """Count the pods of the new template now; note counts reached."""
        created = bound = running = 0
        for pod in self.nodes.pods.list():
            if pod["spec"]["containers"][0]["image"] != self.image or \
                    pod["metadata"].get("deletionTimestamp"):
                continue
            created += 1
            if pod["spec"].get("nodeName"):
                bound += 1
            if (pod.get("status") or {}).get("phase") == "Running":
                running += 1
        now = time.perf_counter() - started
        for name, count in (("created", created), ("bound", bound),
                            ("running", running)):
            if count >= self.replicas and name not in self.times:
                self.times[name] = now


async def wait_rolled_out(client: Client, timeout: float) -> dict[str, Any]:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        d = await client.get(DEPLOYMENTS, "bench", NAMESPACE)
        if rolled_out(d):
            return d
        await asyncio.sleep(0.1)
    raise TimeoutError("the rollout did not finish in time")


def controller_report(manager: Any) -> list[str]:
    lines = []
    for name, controller in sorted(manager.controllers.items()):
        reconciles = getattr(controller, "reconciles", 0)
        if not reconciles:
            continue
        lines.append(f"    {name:<20} {reconciles:>7} reconciles {controller.failures:>5} "
                     f"retried  {controller.busy_seconds:7.1f} s inside reconcile")
    return lines


async def measured(cluster: Any, nodes: StandInNodes, replicas: int, image: str,
                   change: Any, timeout: float) -> tuple[float, dict[str, float], float]:
    """Run ``change()``, wait for the rollout; (seconds, milestones, CPU seconds)."""
    milestones = Milestones(nodes, replicas, image)
    cpu = cpu_seconds()
    started = time.perf_counter()
    watcher = asyncio.create_task(milestones.run(started))
    await change()
    await wait_rolled_out(cluster.client, timeout)
    elapsed = time.perf_counter() - started
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    milestones.sample(started)
    return elapsed, milestones.times, cpu_seconds() - cpu


async def controllers_run(data: Path, replicas: int, node_count: int, timeout: float
                          ) -> dict[str, Any]:
    settings = {"workers": 5, "events_burst": 25}
    async with controller_cluster(data, settings=settings) as cluster:
        nodes = await cluster.nodes(lease_interval=10.0, workers=64)
        await asyncio.gather(*(nodes.add(f"node-{i:04d}", pods=replicas)
                               for i in range(node_count)))
        client = cluster.client

        async def create() -> None:
            await client.create(DEPLOYMENTS, deployment(replicas), NAMESPACE)

        up = await measured(cluster, nodes, replicas, "bench:1", create, timeout)
        up_report = controller_report(cluster.manager)
        writes_up = (nodes.binds, nodes.status_updates, nodes.finalized)

        async def update() -> None:
            await client.patch(DEPLOYMENTS, "bench", {"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "bench:2"}]}}}}, NAMESPACE,
                type="strategic")

        roll = await measured(cluster, nodes, replicas, "bench:2", update, timeout)
        return {"up": up, "roll": roll, "up_report": up_report,
                "report": controller_report(cluster.manager), "writes_up": writes_up,
                "writes": (nodes.binds, nodes.status_updates, nodes.finalized)}


async def baseline_run(data: Path, replicas: int, node_count: int) -> tuple[float, float]:
    """Create, bind and mark Running ``replicas`` pods directly (no controllers)."""
    async with controller_cluster(data, controllers=[]) as cluster:
        client = cluster.client
        nodes = StandInNodes(client, bind=False)
        for i in range(node_count):
            await nodes.add(f"node-{i:04d}", pods=replicas)
        template = deployment(replicas)["spec"]["template"]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(replicas):
            queue.put_nowait(i)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                name = f"base-{i:05d}"
                pod = {"metadata": {"name": name, "labels": dict(template["metadata"]["labels"])},
                       "spec": template["spec"]}
                await client.create(PODS, pod, NAMESPACE)
                await client.create(PODS, {"apiVersion": "v1", "kind": "Binding",
                                           "metadata": {"name": name},
                                           "target": {"kind": "Node",
                                                      "name": f"node-{i % node_count:04d}"}},
                                    NAMESPACE, name=name, subresource="binding")
                await client.patch(PODS, name, {"status": {
                    "phase": "Running", "podIP": f"10.1.{i // 250}.{i % 250 + 1}",
                    "conditions": [{"type": "Ready", "status": "True",
                                    "lastTransitionTime": now}]}}, NAMESPACE,
                    subresource="status")

        cpu = cpu_seconds()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(64)))
        return time.perf_counter() - started, cpu_seconds() - cpu


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def hollow_run(data: Path, replicas: int, node_count: int, timeout: float
                     ) -> dict[str, Any]:
    """The Deployment in ``kubeling up`` with the scheduler and hollow nodes."""
    from kubeling.client import HttpTransport
    from kubeling.testing.cluster import KubelingProcess

    per_node = max(110, 2 * replicas // max(node_count, 1) + 10)
    config = {"hollow_nodes": {"count": node_count, "pods": per_node},
              "components": {"disabled": ["kubelet", "proxy", "dns"]}}
    proc = await asyncio.to_thread(KubelingProcess(data, config=config).start, 120.0)
    client = Client(HttpTransport(proc.url))
    try:
        while True:  # wait for the nodes to register
            nodes = await client.list(NODES)
            if len(nodes["items"]) >= node_count:
                break
            await asyncio.sleep(0.5)
        out: dict[str, Any] = {}
        for phase, change in (("up", None), ("roll", "bench:2")):
            cpu = process_cpu(proc.pid)
            started = time.perf_counter()
            if change is None:
                await client.create(DEPLOYMENTS, deployment(replicas), NAMESPACE)
            else:
                await client.patch(DEPLOYMENTS, "bench", {"spec": {"template": {"spec": {
                    "containers": [{"name": "c", "image": change}]}}}}, NAMESPACE,
                    type="strategic")
            await wait_rolled_out(client, timeout)
            out[phase] = (time.perf_counter() - started, process_cpu(proc.pid) - cpu)
        return out
    finally:
        await client.close()
        await asyncio.to_thread(proc.stop)


PACKAGES = (("API server", ("kubeling/api/",)), ("storage", ("kubeling_storage_sqlite",)),
            ("controllers", ("kubeling_controllers_default/",)),
            ("client+informers", ("kubeling/client/",)),
            ("stand-in nodes", ("kubeling_controllers_default/testing",)),
            ("JSON/schema/models", ("orjson", "kubeling/api/schema", "kubeling/api/objects")),
            ("asyncio", ("asyncio/",)))


def by_package(profile: cProfile.Profile) -> list[tuple[str, float]]:
    stats = pstats.Stats(profile)
    totals: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        group = "other"
        for name, markers in PACKAGES:
            if any(m in filename for m in markers):
                group = name
        if filename.startswith("~"):
            group = "builtins (JSON, SQLite, I/O)"
        totals[group] = totals.get(group, 0.0) + tottime
    return sorted(totals.items(), key=lambda item: -item[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--profile", action="store_true",
                        help="CPU time by package (slows everything down)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--mode", choices=("standin", "hollow", "both"), default="standin")
    args = parser.parse_args()
    if args.mode in ("hollow", "both"):
        with tempfile.TemporaryDirectory(prefix="bench-controllers-") as tmp:
            hollow = asyncio.run(hollow_run(Path(tmp), args.replicas, args.nodes,
                                            args.timeout))
        n = args.replicas
        print(f"kubeling up (scheduler, controller manager, {args.nodes} hollow nodes): "
              f"{n} replicas")
        for phase, label in (("up", "scale-up to Available"), ("roll", "rolling update")):
            seconds, cpu = hollow[phase]
            print(f"  {label:<23} {seconds:8.1f} s  {n / seconds:8.0f} pods/s   "
                  f"(process CPU {cpu:.1f} s)")
        if args.mode == "hollow":
            return
    profile = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="bench-controllers-") as tmp:
        if profile is not None:
            profile.enable()
        result = asyncio.run(controllers_run(Path(tmp) / "c", args.replicas, args.nodes,
                                             args.timeout))
        if profile is not None:
            profile.disable()
        base = None if args.no_baseline else asyncio.run(
            baseline_run(Path(tmp) / "b", args.replicas, args.nodes))
    n = args.replicas
    up_s, up_times, up_cpu = result["up"]
    roll_s, roll_times, roll_cpu = result["roll"]
    print(f"controllers: {n} replicas on {args.nodes} stand-in nodes, one process")
    print(f"  scale-up to Available   {up_s:8.1f} s  {n / up_s:8.0f} pods/s   "
          f"(all created {up_times.get('created', float('nan')):.1f} s, bound "
          f"{up_times.get('bound', float('nan')):.1f} s, running "
          f"{up_times.get('running', float('nan')):.1f} s; CPU {up_cpu:.1f} s of the "
          f"{up_s:.1f} s)")
    print(f"  rolling update          {roll_s:8.1f} s  {n / roll_s:8.0f} pods/s   "
          f"(all new created {roll_times.get('created', float('nan')):.1f} s, running "
          f"{roll_times.get('running', float('nan')):.1f} s; CPU {roll_cpu:.1f} s of the "
          f"{roll_s:.1f} s)")
    print("  (wall time beyond CPU time: waiting for SQLite commits (fsync) and for other "
          "processes on the machine)")
    if base is not None:
        base_s, base_cpu = base
        print(f"  baseline: direct create+bind+status, 64 in flight "
              f"{base_s:6.1f} s  {n / base_s:8.0f} pods/s  (CPU {base_cpu:.1f} s)")
        print(f"  ratio scale-up / baseline   {(n / up_s) / (n / base_s):.2f}")
        print(f"  ratio rolling / baseline    {(n / roll_s) / (n / base_s):.2f}")
    binds, statuses, finalized = result["writes_up"]
    print(f"  stand-in writes during scale-up: {binds} binds, {statuses} status updates")
    print("  controllers during scale-up:")
    print("\n".join(result["up_report"]))
    binds, statuses, finalized = result["writes"]
    print(f"  stand-in writes in total: {binds} binds, {statuses} status updates, "
          f"{finalized} deletions finished")
    print("  controllers in total:")
    print("\n".join(result["report"]))
    if profile is not None:
        print("  CPU time by package (profiled run, scale-up and rolling update):")
        total = sum(t for _, t in by_package(profile))
        for group, seconds in by_package(profile):
            print(f"    {group:<30} {seconds:7.1f} s  {100 * seconds / total:5.1f} %")


if __name__ == "__main__":
    main()

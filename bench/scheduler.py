"""Scheduler throughput: 10,000 pods onto 1,000 and 5,000 hollow nodes.

Two workloads, as in Kubernetes' scheduler_perf:

* ``basic``: mixed cpu/memory requests;
* ``affinity``: the same, each pod in an app of 50 replicas with required pod
  anti-affinity by hostname and a DoNotSchedule zone topology spread (maxSkew 1, 10 zones).

Two ways of running them:

* **algorithm only**: the framework and cache in this process, no API: schedule + assume;
* **end to end** through the API server:

  - ``split``: API server (``kubeling up`` with every component off), the scheduler and
    ``kubeling simulate nodes`` each in their own process; the pods are created first,
    then the scheduler starts and the time to bind them all is measured;
  - ``all-in-one``: one ``kubeling up`` with the scheduler and hollow-node components
    in it (what a user runs); pods are created while it schedules (like scheduler_perf).

Reported: pods/s, the ratio algorithm-only / end-to-end, CPU seconds per process (where the
time goes), and with ``--profile`` the scheduler process's hottest functions.  Hollow nodes
turn bound pods Running unless ``--no-run-pods``.

Usage: ``python bench/scheduler.py [--pods 10000] [--nodes 1000,5000]
[--workloads basic,affinity] [--modes algo,split,all-in-one] [--profile]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubeling.client import Client, HttpTransport, InformerFactory
from kubeling.client.resources import NODES, PODS
from kubeling.testing.cluster import KubelingProcess

ZONES = 10
APP_SIZE = 50
CLK = os.sysconf("SC_CLK_TCK")


# -- workload ---------------------------------------------------------------------------------


def make_pod(i: int, workload: str, rng: random.Random, namespace: str = "default") -> dict:
    app = f"app-{i // APP_SIZE}"
    requests = {"cpu": f"{rng.choice([50, 100, 200, 300])}m",
                "memory": f"{rng.choice([64, 128, 256, 512])}Mi"}
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "registry.local/app:1",
                                            "resources": {"requests": requests}}]}
    if workload == "affinity":
        selector = {"matchLabels": {"app": app}}
        spec["affinity"] = {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}]}}
        spec["topologySpreadConstraints"] = [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
             "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{i:05d}", "namespace": namespace,
                         "labels": {"app": app}, "uid": f"uid-{i}"},
            "spec": spec, "status": {}}


# -- algorithm only ---------------------------------------------------------------------------


def algorithm_only(nodes: int, pods: int, workload: str, profile: bool) -> dict:
    from kubeling_hollow_nodes import HollowNodes
    from kubeling_scheduler_default.cache import Cache
    from kubeling_scheduler_default.config import Profile
    from kubeling_scheduler_default.framework import CycleState, FitError, Framework, Handle
    from kubeling_scheduler_default.plugins import default_registry
    from kubeling_scheduler_default.podinfo import PodInfo

    fleet = HollowNodes(None, count=nodes, zones=ZONES)
    cache = Cache()
    for name in fleet.names:
        node = fleet.node_object(name)
        node["status"] = fleet.node_status(name)
        cache.add_node(node)
    fw = Framework(Profile(), default_registry(), Handle(cache), rng=random.Random(1))
    rng = random.Random(42)
    infos = [PodInfo(make_pod(i, workload, rng)) for i in range(pods)]
    prof = cProfile.Profile() if profile else None
    failed = 0
    began = time.perf_counter()
    if prof:
        prof.enable()
    for pi in infos:
        try:
            result = fw.schedule(CycleState(), pi)
        except FitError:
            failed += 1
            continue
        cache.assume_pod(pi, result.node)
    if prof:
        prof.disable()
    elapsed = time.perf_counter() - began
    out = {"pods_per_s": (pods - failed) / elapsed, "failed": failed, "seconds": elapsed}
    if prof:
        out["profile"] = _top(prof, 15)
    return out


def _top(prof: cProfile.Profile, n: int, sort: str = "tottime") -> str:
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats(sort).print_stats(n)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start:start + n + 1])


# -- processes ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK


def component_names() -> list[str]:
    out = subprocess.run([sys.executable, "-m", "kubeling.cli", "plugins", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return sorted({name for row in json.loads(out)
                   for name in row["registered"].get("component", [])})


async def wait_nodes(client: Client, count: int, timeout: float = 600) -> None:
    async with asyncio.timeout(timeout):
        while True:
            items = (await client.list(NODES))["items"]
            ready = [n for n in items if (n.get("status") or {}).get("allocatable")]
            if len(ready) >= count:
                return
            await asyncio.sleep(0.5)


async def create_pods(client: Client, pods: int, workload: str, concurrency: int = 64) -> float:
    rng = random.Random(42)
    bodies = [make_pod(i, workload, rng) for i in range(pods)]
    for body in bodies:
        body["metadata"].pop("uid")
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker() -> None:
        while not queue.empty():
            await client.create(PODS, queue.get_nowait(), "default")

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return pods / (time.perf_counter() - began)


async def watch_binds(client: Client, pods: int, timeout: float) -> tuple[float, float, int]:
    """(first bind time, last bind time, bound) from a watch on pods."""
    listing = await client.list(PODS, "default")
    bound = {p["metadata"]["name"] for p in listing["items"] if p["spec"].get("nodeName")}
    rv = listing["metadata"]["resourceVersion"]
    first = last = time.perf_counter() if bound else 0.0
    try:
        async with asyncio.timeout(timeout):
            while len(bound) < pods:
                async for event in client.watch(PODS, "default", resource_version=rv,
                                                timeout_seconds=int(timeout)):
                    obj = event.object
                    rv = obj["metadata"].get("resourceVersion", rv)
                    if event.type == "BOOKMARK":
                        continue
                    if (obj.get("spec") or {}).get("nodeName"):
                        name = obj["metadata"]["name"]
                        if name not in bound:
                            bound.add(name)
                            last = time.perf_counter()
                            first = first or last
                            if len(bound) >= pods:
                                break
    except TimeoutError:
        pass
    return first, last, len(bound)


def start_simulate(url: str, nodes: int, run_pods: bool) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "kubeling.cli", "simulate", "nodes", str(nodes), "--server",
           url, "--zones", str(ZONES), "--renew-interval", "60",
           "--run-pods" if run_pods else "--no-run-pods"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            text=True)


def start_scheduler_process(url: str, profile_out: Path | None) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "--child-scheduler", url]
    if profile_out is not None:
        cmd += ["--profile-out", str(profile_out)]
    if TIMELINE is not None:
        cmd += ["--timeline-out", str(TIMELINE)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- end to end ---------------------------------------------------------------------------------


SYNCHRONOUS = "FULL"
TIMELINE: Path | None = None
SPY_API = False
API_ENV: dict[str, str] = {}


def summarize_py_spy(path: Path, top: int = 25) -> str:
    """Samples of a ``py-spy record -f raw`` file: by leaf function (self) and by
    function anywhere on the stack (inclusive), in percent of the samples."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                  + ")" for f in stack.split(";")]
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    out = [f"{total} samples (idle included)", "self:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in
            sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    out.append("inclusive:")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in
            sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]]
    return "\n".join(out)


async def split(nodes: int, pods: int, workload: str, run_pods: bool, profile: bool,
                root: Path) -> dict:
    config = {"components": {"disabled": component_names()},
              "api": {"compaction_interval_seconds": 0},
              "storage": {"sqlite": {"synchronous": SYNCHRONOUS}},
              "logging": {"level": "warning"}}
    with KubelingProcess(root / f"split-{nodes}-{workload}", config=config,
                         env=API_ENV) as api:
        client = Client(HttpTransport(api.url))
        sim = start_simulate(api.url, nodes, run_pods)
        try:
            await wait_nodes(client, nodes)
            create_rate = await create_pods(client, pods, workload)
            out_path = root / f"profile-{nodes}-{workload}.txt" if profile else None
            cpu0 = {"api": cpu_seconds(api.pid), "nodes": cpu_seconds(sim.pid)}
            began = time.perf_counter()
            sched = start_scheduler_process(api.url, out_path)
            spy = None
            if SPY_API:
                spy_out = root / f"api-{nodes}-{workload}.txt"
                spy = subprocess.Popen(["py-spy", "record", "-p", str(api.pid), "-f", "raw",
                                        "-r", "200", "--gil", "-o", str(spy_out), "-d", "600"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                first, last, bound = await watch_binds(client, pods, timeout=900)
                done = time.perf_counter()
                cpu = {"api server": cpu_seconds(api.pid) - cpu0["api"],
                       "scheduler": cpu_seconds(sched.pid),
                       "hollow nodes": cpu_seconds(sim.pid) - cpu0["nodes"]}
            finally:
                stop(sched)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(60)
            result = {"pods_per_s": bound / (last - first) if last > first else 0.0,
                      "with_startup_pods_per_s": bound / (done - began), "bound": bound,
                      "create_per_s": create_rate, "cpu_seconds": cpu}
            if out_path is not None and out_path.exists():
                result["profile"] = out_path.read_text()
            if spy is not None and spy_out.exists():
                result["api_profile"] = summarize_py_spy(spy_out)
            return result
        finally:
            stop(sim)
            await client.close()


async def all_in_one(nodes: int, pods: int, workload: str, run_pods: bool, root: Path) -> dict:
    disabled = [c for c in component_names() if c not in ("scheduler", "hollow-nodes")]
    config = {"components": {"disabled": disabled},
              "api": {"compaction_interval_seconds": 0},
              "storage": {"sqlite": {"synchronous": SYNCHRONOUS}},
              "logging": {"level": "warning"},
              "hollow_nodes": {"count": nodes, "zones": ZONES, "renew_interval_seconds": 60,
                               "run_pods": run_pods}}
    with KubelingProcess(root / f"aio-{nodes}-{workload}", config=config) as proc:
        client = Client(HttpTransport(proc.url))
        try:
            await wait_nodes(client, nodes)
            await asyncio.sleep(1.0)  # let the scheduler's informers catch up
            cpu0 = cpu_seconds(proc.pid)
            began = time.perf_counter()
            watcher = asyncio.create_task(watch_binds(client, pods, timeout=900))
            create_rate = await create_pods(client, pods, workload)
            _first, last, bound = await watcher
            return {"pods_per_s": bound / (last - began) if last > began else 0.0,
                    "bound": bound, "create_per_s": create_rate,
                    "cpu_seconds": {"kubeling up": cpu_seconds(proc.pid) - cpu0}}
        finally:
            await client.close()


# -- the scheduler child process -----------------------------------------------------------------


def child_scheduler(url: str, profile_out: str | None, timeline_out: str | None = None
                    ) -> None:
    from kubeling_scheduler_default.config import SchedulerSettings
    from kubeling_scheduler_default.scheduler import Scheduler

    from kubeling.plugins import PluginHost

    host = PluginHost()
    host.load()
    host.collect()
    registry = {n: c.value for n, c in host.contributions.family("scheduler-plugin").items()}
    prof = cProfile.Profile() if profile_out else None

    async def run() -> None:
        client = Client(HttpTransport(url), user_agent="bench-scheduler")
        sched = Scheduler(client=client, settings=SchedulerSettings(), registry=registry,
                          informers=InformerFactory(client))
        cycles: list[float] = []
        binds: list[float] = []
        original = sched.schedule_one

        def schedule_one(q: Any) -> Any:
            cycles.append(time.perf_counter())
            return original(q)

        sched.schedule_one = schedule_one  # type: ignore[method-assign]
        sched.on_bound = lambda pod, node: binds.append(time.perf_counter())
        task = asyncio.create_task(sched.run())
        stopped = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
        await stopped.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sched.close()
        await client.close()
        if cycles and timeline_out:
            start = cycles[0]
            lines = [f"cycle time in the framework {sched.cycle_seconds:.2f}s for "
                     f"{len(cycles)} cycles; bind errors {sched.bind_errors}",
                     "t(s)  cycles  binds  (per 0.5 s)"]
            end = max(cycles[-1], binds[-1] if binds else start)
            t = 0.0
            while start + t <= end:
                c = sum(1 for x in cycles if start + t <= x < start + t + 0.5)
                b = sum(1 for x in binds if start + t <= x < start + t + 0.5)
                lines.append(f"{t:4.1f} {c:7d} {b:6d}")
                t += 0.5
            Path(timeline_out).write_text("\n".join(lines))

    from kubeling.cli import tune_gc

    tune_gc()  # as ``kubeling up`` does for its process
    if prof:
        prof.enable()
    asyncio.run(run())
    if prof and profile_out:
        prof.disable()
        Path(profile_out).write_text(_top(prof, 25) + "\n\nby cumulative time:\n"
                                     + _top(prof, 40, "cumulative"))


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--nodes", default="1000,5000")
    parser.add_argument("--workloads", default="basic,affinity")
    parser.add_argument("--modes", default="algo,split,all-in-one")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-run-pods", action="store_true",
                        help="hollow nodes leave bound pods Pending (as scheduler_perf has no "
                             "kubelets)")
    parser.add_argument("--spy-api", action="store_true",
                        help="sample the API server with py-spy during the split runs")
    parser.add_argument("--timeline", help="write the scheduler's cycles/binds per 0.5 s here")
    parser.add_argument("--synchronous", default="FULL",
                        help="SQLite synchronous mode of the API server's storage")
    parser.add_argument("--child-scheduler", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--timeline-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_scheduler:
        child_scheduler(args.child_scheduler, args.profile_out, args.timeline_out)
        return
    global SYNCHRONOUS, TIMELINE, SPY_API
    SYNCHRONOUS = args.synchronous.upper()
    SPY_API = args.spy_api
    if args.timeline:
        TIMELINE = Path(args.timeline)
    modes = args.modes.split(",")
    run_pods = not args.no_run_pods
    rows = []
    with tempfile.TemporaryDirectory(prefix="kubeling-bench-sched-") as tmp:
        root = Path(tmp)
        for nodes in (int(n) for n in args.nodes.split(",")):
            for workload in args.workloads.split(","):
                row: dict[str, Any] = {"nodes": nodes, "workload": workload}
                if "algo" in modes:
                    row["algo"] = algorithm_only(nodes, args.pods, workload, args.profile)
                    print(f"{nodes} nodes, {workload}: algorithm only "
                          f"{row['algo']['pods_per_s']:.0f} pods/s", flush=True)
                if "split" in modes:
                    row["split"] = asyncio.run(split(nodes, args.pods, workload, run_pods,
                                                     args.profile, root))
                    print(f"{nodes} nodes, {workload}: end to end (split) "
                          f"{row['split']['pods_per_s']:.0f} pods/s", flush=True)
                if "all-in-one" in modes:
                    row["aio"] = asyncio.run(all_in_one(nodes, args.pods, workload, run_pods,
                                                        root))
                    print(f"{nodes} nodes, {workload}: end to end (all-in-one) "
                          f"{row['aio']['pods_per_s']:.0f} pods/s", flush=True)
                rows.append(row)
    print()
    print(f"{args.pods} pods; hollow nodes {'run' if run_pods else 'do not run'} the pods; "
          f"{os.cpu_count()} cores")
    header = f"{'nodes':>6} {'workload':>9} {'algo':>8} {'split':>8} {'all-in-1':>8} " \
             f"{'algo/split':>10} {'algo/aio':>9}"
    print(header)
    for row in rows:
        algo = row.get("algo", {}).get("pods_per_s", 0)
        sp = row.get("split", {}).get("pods_per_s", 0)
        aio = row.get("aio", {}).get("pods_per_s", 0)
        print(f"{row['nodes']:>6} {row['workload']:>9} {algo:>8.0f} {sp:>8.0f} {aio:>8.0f} "
              f"{(algo / sp if sp else 0):>10.1f} {(algo / aio if aio else 0):>9.1f}")
    for row in rows:
        for mode in ("split", "aio"):
            data = row.get(mode)
            if data:
                cpu = ", ".join(f"{k} {v:.1f}s" for k, v in data["cpu_seconds"].items())
                print(f"{row['nodes']} nodes {row['workload']} {mode}: bound {data['bound']}, "
                      f"creates {data['create_per_s']:.0f}/s, cpu: {cpu}")
    for row in rows:
        text = row.get("split", {}).get("api_profile")
        if text:
            print(f"\n-- API server (py-spy): {row['nodes']} nodes, {row['workload']}, split --")
            print(text)
        for mode in ("algo", "split"):
            text = row.get(mode, {}).get("profile")
            if text:
                print(f"\n-- profile: {row['nodes']} nodes, {row['workload']}, {mode} --")
                print(text)


if __name__ == "__main__":
    main()

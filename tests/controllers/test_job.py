"""The Job and TTL-after-finished controllers through the API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from kubeling_controllers_default.resources import JOBS
from kubeling_controllers_default.testing import Outcome, controller_cluster, eventually

from kubeling.client import ApiError
from kubeling.client.resources import PODS

FAST = {"job_backoff_base_seconds": 0.05, "job_backoff_max_seconds": 0.2}


def outcome(pod: dict[str, Any]) -> Outcome:
    """What the pod's ``outcome`` annotation says: succeed (after a delay), fail, run."""
    text = (pod["metadata"].get("annotations") or {}).get("outcome", "succeed:0.2")
    what, _, after = text.partition(":")
    if what == "run":
        return Outcome("Running")
    return Outcome("Succeeded" if what == "succeed" else "Failed", after=float(after or 0),
                   exit_code=0 if what == "succeed" else 1)


def job(name: str, *, result: str = "succeed:0.2", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": {"annotations": {"outcome": result}},
                                  "spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "i"}]}},
                     **spec}}


async def get(client: Any, name: str) -> dict[str, Any]:
    return await client.get(JOBS, name, "default")


def condition(job: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (job.get("status") or {}).get("conditions") or []
                 if c["type"] == kind), {})


async def done(client: Any, name: str, kind: str) -> dict[str, Any] | None:
    got = await get(client, name)
    return got if condition(got, kind).get("status") == "True" else None


async def pods_of(client: Any, name: str) -> list[dict[str, Any]]:
    return (await client.list(PODS, "default",
                              label_selector=f"batch.kubernetes.io/job-name={name}"))["items"]


async def test_completions_with_bounded_parallelism(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        await cluster.nodes("n1", outcome=outcome)
        created = await client.create(JOBS, job("work", completions=5, parallelism=2),
                                      "default")
        peak = [0]
        running: dict[str, bool] = {}

        async def watch() -> None:
            async for ev in client.watch(PODS, "default",
                                         label_selector="batch.kubernetes.io/job-name=work",
                                         resource_version=created["metadata"][
                                             "resourceVersion"]):
                phase = ev.object["status"].get("phase")
                running[ev.object["metadata"]["uid"]] = ev.type != "DELETED" and \
                    phase not in ("Succeeded", "Failed")
                peak[0] = max(peak[0], sum(running.values()))

        watcher = asyncio.create_task(watch())
        finished = await eventually(lambda: done(client, "work", "Complete"), timeout=15)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        status = finished["status"]
        assert status["succeeded"] == 5 and "failed" not in status
        assert status["completionTime"] and status["startTime"]
        assert status["uncountedTerminatedPods"] == {}
        assert condition(finished, "SuccessCriteriaMet")["status"] == "True"
        assert condition(finished, "Complete")["reason"] == "CompletionsReached"
        assert peak[0] == 2
        pods = await pods_of(client, "work")
        assert len(pods) == 5
        assert all("batch.kubernetes.io/job-tracking" not in
                   (p["metadata"].get("finalizers") or []) for p in pods)
        assert pods[0]["metadata"]["ownerReferences"][0]["kind"] == "Job"


async def test_backoff_limit_fails_the_job(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        await cluster.nodes("n1", outcome=outcome)
        await client.create(JOBS, job("flaky", result="fail:0", backoffLimit=2), "default")
        failed = await eventually(lambda: done(client, "flaky", "Failed"), timeout=15)
        assert failed["status"]["failed"] == 3
        assert condition(failed, "Failed")["reason"] == "BackoffLimitExceeded"
        assert condition(failed, "FailureTarget")["status"] == "True"
        assert "Complete" not in {c["type"] for c in failed["status"]["conditions"]}
        await asyncio.sleep(0.3)
        assert len(await pods_of(client, "flaky")) == 3  # no more after failing


async def test_active_deadline_stops_running_pods(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        await cluster.nodes("n1", outcome=outcome)
        await client.create(JOBS, job("slow", result="run", parallelism=2, completions=2,
                                      activeDeadlineSeconds=1), "default")
        failed = await eventually(lambda: done(client, "slow", "Failed"), timeout=10)
        assert condition(failed, "Failed")["reason"] == "DeadlineExceeded"
        assert condition(failed, "Failed")["message"] == \
            "Job was active longer than specified deadline"
        assert not failed["status"].get("active")

        async def pods_stopped() -> bool:
            return all(p["metadata"].get("deletionTimestamp") or
                       p["status"].get("phase") in ("Succeeded", "Failed")
                       for p in await pods_of(client, "slow"))

        await eventually(pods_stopped)


async def test_finished_jobs_are_deleted_after_their_ttl(cluster: Any) -> None:
    client = cluster.client
    await cluster.nodes("n1", outcome=outcome)
    await client.create(JOBS, job("brief", result="succeed:0", ttlSecondsAfterFinished=1),
                        "default")
    await eventually(lambda: done(client, "brief", "Complete"))

    async def gone() -> bool:
        try:
            await get(client, "brief")
            return False
        except ApiError as exc:
            return exc.code == 404 and not await pods_of(client, "brief")

    await eventually(gone, timeout=10)


async def test_indexed_job_and_suspend(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        await cluster.nodes("n1", outcome=outcome)
        await client.create(JOBS, job("idx", completions=3, parallelism=3,
                                      completionMode="Indexed", suspend=True), "default")
        suspended = await eventually(lambda: done(client, "idx", "Suspended"))
        assert condition(suspended, "Suspended")["reason"] == "JobSuspended"
        assert not await pods_of(client, "idx")
        await client.patch(JOBS, "idx", {"spec": {"suspend": False}}, "default")
        finished = await eventually(lambda: done(client, "idx", "Complete"), timeout=15)
        assert finished["status"]["completedIndexes"] == "0-2"
        assert condition(finished, "Suspended")["status"] == "False"
        pods = await pods_of(client, "idx")
        indexes = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                         for p in pods)
        assert indexes == ["0", "1", "2"]
        assert {p["spec"]["hostname"] for p in pods} == {"idx-0", "idx-1", "idx-2"}
        env = pods[0]["spec"]["containers"][0]["env"]
        assert env[-1]["name"] == "JOB_COMPLETION_INDEX"


async def test_a_deleted_running_pod_counts_once_as_failed_and_is_replaced(
        tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        nodes = await cluster.nodes("n1", outcome=outcome)
        await client.create(JOBS, job("once", result="run"), "default")

        async def one_running() -> dict[str, Any] | None:
            pods = [p for p in await pods_of(client, "once")
                    if p["status"].get("phase") == "Running"]
            return pods[0] if len(pods) == 1 else None

        pod = await eventually(one_running)
        assert pod["metadata"]["finalizers"] == ["batch.kubernetes.io/job-tracking"]
        nodes.outcome = lambda p: Outcome("Succeeded", after=0.1)
        await client.delete(PODS, pod["metadata"]["name"], "default")
        finished = await eventually(lambda: done(client, "once", "Complete"), timeout=10)
        assert finished["status"]["failed"] == 1
        assert finished["status"]["succeeded"] == 1

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


INDEX = "batch.kubernetes.io/job-completion-index"


def index_of(pod: dict[str, Any]) -> int:
    return int(pod["metadata"]["annotations"][INDEX])


def fails(code: int, after: float = 0.1) -> Outcome:
    return Outcome("Failed", after=after, exit_code=code)


def exit_codes(operator: str, *values: int, container: str | None = None) -> dict[str, Any]:
    requirement: dict[str, Any] = {"operator": operator, "values": list(values)}
    if container is not None:
        requirement["containerName"] = container
    return {"onExitCodes": requirement}


async def test_a_fail_job_rule_fails_the_job_at_once(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        first: list[str] = []

        def outcome(pod: dict[str, Any]) -> Outcome:
            first.append(first[0] if first else pod["metadata"]["name"])
            return fails(42, 0.2) if pod["metadata"]["name"] == first[0] else Outcome()

        await cluster.nodes("n1", outcome=outcome)
        await client.create(JOBS, job("fatal", completions=4, parallelism=2, podFailurePolicy={
            "rules": [{"action": "FailJob", **exit_codes("In", 42, container="c")}]}),
            "default")
        failed = await eventually(lambda: done(client, "fatal", "Failed"), timeout=10)
        message = (f"Container c for pod default/{first[0]} failed with exit code 42 "
                   "matching FailJob rule at index 0")
        for kind in ("FailureTarget", "Failed"):
            assert (condition(failed, kind)["reason"], condition(failed, kind)["message"]) \
                == ("PodFailurePolicy", message)
        kinds = [c["type"] for c in failed["status"]["conditions"]]
        assert kinds.index("FailureTarget") < kinds.index("Failed")
        # the failed pod, and the running one the failure stopped; no replacement
        assert failed["status"]["failed"] == 2 and not failed["status"].get("active")
        await asyncio.sleep(0.3)
        assert [p["metadata"]["name"] for p in await pods_of(client, "fatal")] == [first[0]]


async def test_an_ignored_disruption_is_not_counted_and_replaced_once_failed(
        tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        nodes = await cluster.nodes("n1", outcome=lambda p: Outcome())
        await client.create(JOBS, job("calm", backoffLimit=0, podFailurePolicy={"rules": [
            {"action": "Ignore",
             "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}),
            "default")

        async def running() -> dict[str, Any] | None:
            pods = await pods_of(client, "calm")
            return pods[0] if len(pods) == 1 and pods[0]["status"].get("phase") == \
                "Running" else None

        pod = await eventually(running)
        name = pod["metadata"]["name"]
        await client.create(PODS, {"apiVersion": "policy/v1", "kind": "Eviction",
                                   "metadata": {"name": name}}, "default", name=name,
                            subresource="eviction")
        # terminating, not yet Failed: neither judged nor replaced
        terminating = await eventually(
            lambda: _with(get(client, "calm"), lambda j: j["status"].get("terminating") == 1))
        assert not terminating["status"].get("failed")
        await asyncio.sleep(0.3)
        assert [p["metadata"]["name"] for p in await pods_of(client, "calm")] == [name]
        # the node agent stops it: Failed, with the condition the eviction added
        nodes.outcome = lambda p: Outcome("Succeeded", after=0.1)
        evicted = await client.get(PODS, name, "default")
        assert condition(evicted, "DisruptionTarget")["reason"] == "EvictionByEvictionAPI"
        await client.patch(PODS, name, {"status": {
            "phase": "Failed", "conditions": evicted["status"]["conditions"],
            "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": False,
                                   "restartCount": 0, "state": {"terminated": {
                                       "exitCode": 137, "reason": "Error"}}}]}},
            "default", subresource="status")
        finished = await eventually(lambda: done(client, "calm", "Complete"), timeout=10)
        assert finished["status"]["succeeded"] == 1 and "failed" not in finished["status"]
        # the evicted pod, released uncounted, finished its deletion; its replacement ran
        pods = await pods_of(client, "calm")
        assert len(pods) == 1 and pods[0]["metadata"]["name"] != name


async def _with(value: Any, check: Any) -> Any:
    got = await value
    return got if check(got) else None


async def test_failure_policy_rules_apply_in_order(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        order: list[str] = []

        def outcome(pod: dict[str, Any]) -> Outcome:
            if pod["metadata"]["name"] not in order:
                order.append(pod["metadata"]["name"])
            return fails(5 if order.index(pod["metadata"]["name"]) < 2 else 6)

        await cluster.nodes("n1", outcome=outcome)
        await client.create(JOBS, job("ordered", backoffLimit=1, podFailurePolicy={"rules": [
            {"action": "Ignore", **exit_codes("In", 5)},
            {"action": "Count", **exit_codes("NotIn", 5, 7)},
            {"action": "FailJob", **exit_codes("In", 5, 6, 7)}]}), "default")
        failed = await eventually(lambda: done(client, "ordered", "Failed"), timeout=15)
        # two failures ignored (exit 5), two counted (exit 6): over backoffLimit 1
        assert condition(failed, "Failed")["reason"] == "BackoffLimitExceeded"
        assert failed["status"]["failed"] == 2
        assert len(await pods_of(client, "ordered")) == 4


async def test_fail_index_and_backoff_limit_per_index(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        by_index = {0: fails(42), 1: fails(1), 2: Outcome("Succeeded", after=0.1)}
        await cluster.nodes("n1", outcome=lambda p: by_index[index_of(p)])
        await client.create(JOBS, job("per-index", completions=3, parallelism=3,
                                      completionMode="Indexed", backoffLimitPerIndex=1,
                                      podFailurePolicy={"rules": [
                                          {"action": "FailIndex", **exit_codes("In", 42)}]}),
                            "default")
        failed = await eventually(lambda: done(client, "per-index", "Failed"), timeout=15)
        status = failed["status"]
        assert (condition(failed, "Failed")["reason"], condition(failed, "Failed")["message"]) \
            == ("FailedIndexes", "Job has failed indexes")
        assert (status["failedIndexes"], status["completedIndexes"]) == ("0-1", "2")
        assert (status["failed"], status["succeeded"]) == (3, 1)
        counts = sorted((index_of(p), p["metadata"]["annotations"][
            "batch.kubernetes.io/job-index-failure-count"])
            for p in await pods_of(client, "per-index"))
        # index 0 failed at once (FailIndex); index 1 was retried once
        assert counts == [(0, "0"), (1, "0"), (1, "1"), (2, "0")]


async def test_max_failed_indexes_fails_the_job(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        await cluster.nodes("n1", outcome=lambda p: fails(1) if index_of(p) == 0
                            else Outcome("Succeeded", after=0.1))
        await client.create(JOBS, job("fragile", completions=4, parallelism=1,
                                      completionMode="Indexed", backoffLimitPerIndex=0,
                                      maxFailedIndexes=0), "default")
        failed = await eventually(lambda: done(client, "fragile", "Failed"), timeout=10)
        assert (condition(failed, "Failed")["reason"], condition(failed, "Failed")["message"]) \
            == ("MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes")
        assert failed["status"]["failedIndexes"] == "0" and failed["status"]["failed"] == 1
        await asyncio.sleep(0.3)
        assert len(await pods_of(client, "fragile")) == 1  # no other index was started


async def test_success_policy_succeeded_indexes_complete_the_job(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        await cluster.nodes("n1", outcome=lambda p: Outcome("Succeeded", after=0.1)
                            if index_of(p) in (0, 1) else Outcome())
        await client.create(JOBS, job("leaders", completions=5, parallelism=5,
                                      completionMode="Indexed", successPolicy={
                                          "rules": [{"succeededIndexes": "0-1"}]}), "default")
        finished = await eventually(lambda: done(client, "leaders", "Complete"), timeout=10)
        for kind in ("SuccessCriteriaMet", "Complete"):
            assert (condition(finished, kind)["reason"], condition(finished, kind)["message"]) \
                == ("SuccessPolicy", "Matched rules at index 0")
        kinds = [c["type"] for c in finished["status"]["conditions"]]
        assert kinds.index("SuccessCriteriaMet") < kinds.index("Complete")
        status = finished["status"]
        assert (status["completedIndexes"], status["succeeded"]) == ("0-1", 2)
        assert status["completionTime"] and not status.get("active")
        assert not status.get("terminating")
        # the pods still running when the policy was met are gone
        assert sorted(index_of(p) for p in await pods_of(client, "leaders")) == [0, 1]


async def test_success_policy_rules_apply_in_order(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, settings=FAST) as cluster:
        client = cluster.client
        await cluster.nodes("n1", outcome=lambda p: Outcome("Succeeded", after=0.1)
                            if index_of(p) in (2, 3) else Outcome())
        await client.create(JOBS, job("quorum", completions=4, parallelism=4,
                                      completionMode="Indexed", successPolicy={"rules": [
                                          {"succeededIndexes": "0,2"},
                                          {"succeededIndexes": "1-3", "succeededCount": 2},
                                          {"succeededCount": 2}]}), "default")
        finished = await eventually(lambda: done(client, "quorum", "Complete"), timeout=10)
        assert condition(finished, "Complete")["message"] == "Matched rules at index 1"
        assert finished["status"]["completedIndexes"] == "2-3"

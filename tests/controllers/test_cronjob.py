"""The CronJob controller with a clock the test moves forward."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

from kubeling_controllers_default.resources import CRONJOBS, JOBS
from kubeling_controllers_default.testing import (
    OffsetClock,
    Outcome,
    controller_cluster,
    eventually,
)

SETTINGS = {"cronjob_check_seconds": 0.1, "job_backoff_base_seconds": 0.05}


def outcome(pod: dict[str, Any]) -> Outcome:
    if (pod["metadata"].get("annotations") or {}).get("outcome") == "run":
        return Outcome("Running")
    return Outcome("Succeeded")


def cronjob(name: str, *, result: str = "succeed", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": "* * * * *", **spec, "jobTemplate": {
                "metadata": {"labels": {"cron": name}},
                "spec": {"template": {"metadata": {"annotations": {"outcome": result}},
                                      "spec": {"restartPolicy": "Never",
                                               "containers": [{"name": "c", "image": "i"}]}}}}}}


async def jobs_of(client: Any, name: str) -> list[dict[str, Any]]:
    items = (await client.list(JOBS, "default", label_selector=f"cron={name}"))["items"]
    return sorted((j for j in items if not j["metadata"].get("deletionTimestamp")),
                  key=lambda j: j["metadata"]["name"])


def half_past(obj: dict[str, Any]) -> datetime.datetime:
    """Half a minute past the minute ``obj`` was created in: no run is due yet."""
    created = datetime.datetime.fromisoformat(
        obj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    return created.replace(second=30)


def complete(job: dict[str, Any]) -> bool:
    return any(c["type"] == "Complete" and c["status"] == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


async def test_runs_on_schedule_records_success_and_keeps_history(tmp_path: Path) -> None:
    clock = OffsetClock()
    async with controller_cluster(tmp_path, settings=SETTINGS, clock=clock) as cluster:
        client = cluster.client
        await cluster.nodes("n1", outcome=outcome)
        cj = await client.create(CRONJOBS, cronjob("tick", successfulJobsHistoryLimit=2),
                                 "default")
        clock.set(half_past(cj))
        await asyncio.sleep(0.3)
        assert await jobs_of(client, "tick") == []  # the first minute has not come yet
        seen: set[str] = set()
        for run in range(1, 4):
            clock.advance(60)

            async def ran(n: int = run) -> bool:
                # this run's Job, not only as many Jobs as the last run left
                jobs = await jobs_of(client, "tick")
                return len(jobs) == min(n, 2) and all(complete(j) for j in jobs) and \
                    jobs[-1]["metadata"]["name"] not in seen

            await eventually(ran, timeout=10)
            seen.update(j["metadata"]["name"] for j in await jobs_of(client, "tick"))
        jobs = await jobs_of(client, "tick")
        job = jobs[-1]
        assert job["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]
        minute = int(job["metadata"]["name"].rsplit("-", 1)[1])
        stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        assert stamp.endswith(":00Z")

        async def recorded() -> Any:
            got = await client.get(CRONJOBS, "tick", "default")
            status = got.get("status") or {}
            return got if status.get("lastSuccessfulTime") and not status.get("active") \
                else None

        got = await eventually(recorded)
        assert got["status"]["lastScheduleTime"] == stamp
        assert minute * 60 == int(datetime.datetime.fromisoformat(
            stamp.replace("Z", "+00:00")).timestamp())


async def test_concurrency_policies_and_suspend(tmp_path: Path) -> None:
    clock = OffsetClock()
    async with controller_cluster(tmp_path, settings=SETTINGS, clock=clock) as cluster:
        client = cluster.client
        await cluster.nodes("n1", outcome=outcome)
        first = await client.create(CRONJOBS, cronjob("forbid", result="run",
                                                      concurrencyPolicy="Forbid"), "default")
        clock.set(half_past(first))
        await client.create(CRONJOBS, cronjob("replace", result="run",
                                              concurrencyPolicy="Replace"), "default")
        await client.create(CRONJOBS, cronjob("paused", suspend=True), "default")
        clock.advance(60)

        async def first_runs() -> bool:
            return len(await jobs_of(client, "forbid")) == 1 and \
                len(await jobs_of(client, "replace")) == 1

        await eventually(first_runs)
        first_replace = (await jobs_of(client, "replace"))[0]["metadata"]["name"]
        # the Job can show up before the CronJob's status lists it
        active = await eventually(lambda: _active(client, "forbid"))
        assert [a["kind"] for a in active] == ["Job"]
        clock.advance(60)

        async def replaced() -> bool:
            jobs = await jobs_of(client, "replace")
            return len(jobs) == 1 and jobs[0]["metadata"]["name"] != first_replace

        await eventually(replaced)
        await asyncio.sleep(0.3)
        assert len(await jobs_of(client, "forbid")) == 1
        assert await jobs_of(client, "paused") == []


async def _active(client: Any, name: str) -> list[dict[str, Any]]:
    return ((await client.get(CRONJOBS, name, "default")).get("status") or {}).get(
        "active") or []

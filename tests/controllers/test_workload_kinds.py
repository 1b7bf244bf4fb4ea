"""The API kinds the controllers serve: DaemonSet, ControllerRevision, Job, CronJob
(defaults, validation, update rules) and the cron schedule grammar."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from kubeling_controllers_default.resources import (
    CONTROLLERREVISIONS,
    CRONJOBS,
    DAEMONSETS,
    JOBS,
)

from kubeling.api.kinds.batch_v1 import CronError, CronSchedule
from kubeling.client import ApiError

POD = {"containers": [{"name": "c", "image": "i"}]}


async def invalid(call: Any) -> str:
    with pytest.raises(ApiError) as info:
        await call
    assert info.value.code == 422, info.value.message
    return info.value.message


async def test_daemonset_defaults_and_validation(api: Any) -> None:
    client = api.client()
    ds = await client.create(DAEMONSETS, {
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}}, "spec": POD}}},
        "default")
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10
    assert ds["status"]["desiredNumberScheduled"] == 0
    assert ds["metadata"]["generation"] == 1
    message = await invalid(client.create(DAEMONSETS, {
        "metadata": {"name": "bad"},
        "spec": {"selector": {"matchLabels": {"app": "x"}},
                 "updateStrategy": {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
                 "template": {"metadata": {"labels": {"app": "y"}}, "spec": POD}}},
        "default"))
    assert "`selector` does not match template `labels`" in message
    assert "may not be 0 when `maxSurge` is 0" in message
    ds["spec"]["selector"] = {"matchLabels": {"app": "agent", "x": "y"}}
    ds["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    message = await invalid(client.update(DAEMONSETS, ds))
    assert "spec.selector: Invalid value" in message and "field is immutable" in message


async def test_controller_revision_data_is_immutable(api: Any) -> None:
    client = api.client()
    rev = await client.create(CONTROLLERREVISIONS, {
        "metadata": {"name": "agent-1"}, "revision": 1, "data": {"spec": {"a": 1}}},
        "default")
    rev["data"] = {"spec": {"a": 2}}
    assert "data: field is immutable" in await invalid(client.update(CONTROLLERREVISIONS,
                                                                     rev))
    await invalid(client.create(CONTROLLERREVISIONS, {"metadata": {"name": "x"}}, "default"))


async def test_job_gets_a_generated_selector_and_defaults(api: Any) -> None:
    client = api.client()
    job = await client.create(JOBS, {
        "metadata": {"name": "pi"},
        "spec": {"template": {"spec": {**POD, "restartPolicy": "Never"}}}}, "default")
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi",
        "controller-uid": uid, "job-name": "pi"}
    spec = job["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    message = await invalid(client.create(JOBS, {
        "metadata": {"name": "always"}, "spec": {"template": {"spec": POD}}}, "default"))
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always"' in message
    job["spec"]["completions"] = 3
    message = await invalid(client.update(JOBS, job))
    assert "spec.completions" in message


async def test_cronjob_schedule_and_time_zone_are_validated(api: Any) -> None:
    client = api.client()

    def cronjob(name: str, schedule: str, **spec: Any) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {
            "schedule": schedule, **spec,
            "jobTemplate": {"spec": {"template": {"spec": {**POD,
                                                           "restartPolicy": "OnFailure"}}}}}}

    cj = await client.create(CRONJOBS, cronjob("tick", "*/5 * * * *"), "default")
    spec = cj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    message = await invalid(client.create(CRONJOBS, cronjob("bad", "61 * * * *"), "default"))
    assert "spec.schedule" in message and "minute out of range" in message
    message = await invalid(client.create(
        CRONJOBS, cronjob("tz", "@daily", timeZone="Mars/Olympus"), "default"))
    assert "unknown time zone Mars/Olympus" in message
    await client.create(CRONJOBS, cronjob("paris", "0 9 * * MON-FRI",
                                          timeZone="Europe/Paris"), "default")


def test_cron_grammar_and_next_times() -> None:
    utc = datetime.UTC
    t = datetime.datetime(2024, 1, 31, 23, 59, 30, tzinfo=utc)
    assert CronSchedule.parse("* * * * *").next_after(t) == \
        datetime.datetime(2024, 2, 1, 0, 0, tzinfo=utc)
    assert CronSchedule.parse("@hourly").next_after(t) == \
        datetime.datetime(2024, 2, 1, 0, 0, tzinfo=utc)
    assert CronSchedule.parse("30 2 29 2 *").next_after(t) == \
        datetime.datetime(2024, 2, 29, 2, 30, tzinfo=utc)
    # both day fields restricted: either matches
    either = CronSchedule.parse("0 0 13 * FRI")
    assert either.next_after(datetime.datetime(2024, 9, 1, tzinfo=utc)) == \
        datetime.datetime(2024, 9, 6, tzinfo=utc)
    steps = CronSchedule.parse("5-20/5 */6 * JAN,jul ?")
    assert sorted(steps.minutes) == [5, 10, 15, 20] and sorted(steps.hours) == [0, 6, 12, 18]
    assert sorted(steps.months) == [1, 7]
    assert CronSchedule.parse("@every 90s").next_after(t) == t + datetime.timedelta(
        seconds=90)
    paris = datetime.datetime(2024, 3, 30, 12, 0, tzinfo=__import__("zoneinfo").ZoneInfo(
        "Europe/Paris"))
    assert CronSchedule.parse("0 9 * * *").next_after(paris).hour == 9
    for bad in ("* * * *", "60 * * * *", "* * * * 8", "5-1 * * * *", "@fortnightly",
                "TZ=UTC * * * * *", "*/0 * * * *"):
        with pytest.raises(CronError):
            CronSchedule.parse(bad)

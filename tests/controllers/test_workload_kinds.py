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


def indexed_job(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"completionMode": "Indexed", "completions": 4, "parallelism": 2,
                     "template": {"spec": {**POD, "restartPolicy": "Never"}}, **spec}}


async def test_pod_failure_policy_is_validated_as_in_kubernetes(api: Any) -> None:
    client = api.client()
    good = await client.create(JOBS, indexed_job("good", backoffLimitPerIndex=1, podFailurePolicy={
        "rules": [{"action": "FailJob", "onExitCodes": {"containerName": "c",
                                                        "operator": "In", "values": [1, 42]}},
                  {"action": "FailIndex", "onExitCodes": {"operator": "NotIn",
                                                          "values": [0, 3]}},
                  {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget",
                                                            "status": "True"}]}]}),
        "default")
    assert good["spec"]["podReplacementPolicy"] == "Failed"
    assert good["spec"]["backoffLimit"] == 2**31 - 1
    message = await invalid(client.create(JOBS, {"metadata": {"name": "bad"}, "spec": {
        "template": {"spec": {**POD, "restartPolicy": "OnFailure"}},
        "podReplacementPolicy": "TerminatingOrFailed",
        "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "nope", "operator": "In",
                                                  "values": [3, 0, 3]}},
            {"action": "FailIndex", "onExitCodes": {"operator": "Between", "values": []}},
            {"action": "Retry", "onPodConditions": [{"type": "Bad Type", "status": "Maybe"}]},
            {"action": "Count"},
            {"onExitCodes": {"operator": "NotIn", "values": [1]},
             "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]}}}, "default"))
    rules = "spec.podFailurePolicy.rules"
    for expected in (
            f'{rules}[0].onExitCodes.containerName: Invalid value: "nope": must be one of the '
            "container or initContainer names in the pod template",
            f"{rules}[0].onExitCodes.values[1]: Invalid value: 0: must not be 0 for the In "
            "operator",
            f"{rules}[0].onExitCodes.values[2]: Duplicate value: 3",
            f"{rules}[0].onExitCodes.values: Invalid value: []int32{{3, 0, 3}}: must be "
            "ordered",
            f'{rules}[1].action: Invalid value: "FailIndex": requires the '
            "backoffLimitPerIndex to be set",
            f'{rules}[1].onExitCodes.operator: Unsupported value: "Between": supported '
            'values: "In", "NotIn"',
            f"{rules}[1].onExitCodes.values: Invalid value: []int32{{}}: at least one value "
            "is required",
            f'{rules}[2].action: Unsupported value: "Retry": supported values: "Count", '
            '"FailIndex", "FailJob", "Ignore"',
            f'{rules}[2].onPodConditions[0].type: Invalid value: "Bad Type"',
            f'{rules}[2].onPodConditions[0].status: Unsupported value: "Maybe"',
            f"{rules}[3]: Invalid value: specifying one of OnExitCodes and OnPodConditions "
            "is required",
            f"{rules}[4]: Invalid value: specifying both OnExitCodes and OnPodConditions is "
            "not supported",
            f'{rules}[4].action: Required value: valid values: ["Count" "FailIndex" '
            '"FailJob" "Ignore"]',
            f'{rules}[4].onPodConditions[0].status: Required value: valid values: ["False" '
            '"True" "Unknown"]',
            'spec.podReplacementPolicy: Unsupported value: "TerminatingOrFailed": supported '
            'values: "Failed"',
            'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is '
            "supported when podFailurePolicy is specified"):
        assert expected in message, (expected, message)
    many = [{"action": "Count", "onExitCodes": {"operator": "In", "values": [i + 1]}}
            for i in range(21)]
    message = await invalid(client.create(JOBS, indexed_job(
        "many", podFailurePolicy={"rules": many}), "default"))
    assert "spec.podFailurePolicy.rules: Too many: 21: must have at most 20 items" in message
    message = await invalid(client.create(JOBS, {"metadata": {"name": "plain"}, "spec": {
        "backoffLimitPerIndex": 1, "maxFailedIndexes": 1,
        "template": {"spec": {**POD, "restartPolicy": "Never"}}}}, "default"))
    assert "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode" \
        in message
    assert "spec.maxFailedIndexes: Invalid value: 1: requires indexed completion mode" \
        in message
    message = await invalid(client.create(JOBS, indexed_job("most", maxFailedIndexes=5),
                                          "default"))
    assert "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified" \
        in message
    assert "spec.maxFailedIndexes: Invalid value: 5: must be less than or equal to " \
        "completions" in message
    good["spec"]["podFailurePolicy"]["rules"].pop()
    message = await invalid(client.update(JOBS, good))
    assert "spec.podFailurePolicy: Invalid value" in message and "field is immutable" in message
    # a CronJob's job template is held to the same rules
    message = await invalid(client.create(CRONJOBS, {"metadata": {"name": "cj"}, "spec": {
        "schedule": "@daily", "jobTemplate": {"spec": {
            "podFailurePolicy": {"rules": [{"action": "Ignore"}]},
            "template": {"spec": {**POD, "restartPolicy": "Never"}}}}}}, "default"))
    assert "spec.jobTemplate.spec.podFailurePolicy.rules[0]: Invalid value: specifying one " \
        "of OnExitCodes and OnPodConditions is required" in message


async def test_success_policy_is_validated_as_in_kubernetes(api: Any) -> None:
    client = api.client()
    good = await client.create(JOBS, indexed_job("good", successPolicy={"rules": [
        {"succeededIndexes": "0-1,3", "succeededCount": 2}, {"succeededCount": 4}]}),
        "default")
    assert good["spec"]["successPolicy"]["rules"][0] == {"succeededIndexes": "0-1,3",
                                                         "succeededCount": 2}
    message = await invalid(client.create(JOBS, {"metadata": {"name": "plain"}, "spec": {
        "successPolicy": {"rules": [{"succeededCount": 1}]},
        "template": {"spec": {**POD, "restartPolicy": "Never"}}}}, "default"))
    assert 'spec.successPolicy: Invalid value: {"rules":[{"succeededCount":1}]}: requires ' \
        "indexed completion mode" in message
    message = await invalid(client.create(JOBS, indexed_job("bad", successPolicy={"rules": [
        {},
        {"succeededCount": 5},
        {"succeededIndexes": "0-2", "succeededCount": 4},
        {"succeededIndexes": "1,0"},
        {"succeededIndexes": "2-4"},
        {"succeededIndexes": "1-a"},
        {"succeededIndexes": "1-2-3"},
        {"succeededIndexes": "2-1"},
        {"succeededCount": -1},
    ]}), "default"))
    rules = "spec.successPolicy.rules"
    for expected in (
            f"{rules}[0]: Required value: at least one of succeededCount or succeededIndexes "
            "must be specified",
            f"{rules}[1].succeededCount: Invalid value: 5: must be less than or equal to 4 "
            "(the number of specified completions)",
            f"{rules}[2].succeededCount: Invalid value: 4: must be less than or equal to 3 "
            "(the number of indexes in the specified succeededIndexes field)",
            f'{rules}[3].succeededIndexes: Invalid value: "1,0": error parsing '
            "succeededIndexes: non-increasing order, previous: 1, current: 0",
            f'{rules}[4].succeededIndexes: Invalid value: "2-4": error parsing '
            'succeededIndexes: too large index: "4"',
            f'{rules}[5].succeededIndexes: Invalid value: "1-a": error parsing '
            'succeededIndexes: cannot convert string to integer for index: "a"',
            f'{rules}[6].succeededIndexes: Invalid value: "1-2-3": error parsing '
            'succeededIndexes: the fragment "1-2-3" violates the requirement that an index '
            "interval can have at most two parts separated by '-'",
            f'{rules}[7].succeededIndexes: Invalid value: "2-1": error parsing '
            "succeededIndexes: non-increasing order, previous: 2, current: 1",
            f"{rules}[8].succeededCount: Invalid value: -1: must be greater than or equal "
            "to 0"):
        assert expected in message, (expected, message)
    message = await invalid(client.create(JOBS, indexed_job(
        "none", successPolicy={"rules": []}), "default"))
    assert f"{rules}: Required value: at least one rules must be specified when the " \
        "successPolicy is specified" in message
    message = await invalid(client.create(JOBS, indexed_job(
        "many", successPolicy={"rules": [{"succeededCount": 1}] * 21}), "default"))
    assert f"{rules}: Too many: 21: must have at most 20 items" in message
    good["spec"]["successPolicy"] = {"rules": [{"succeededCount": 1}]}
    message = await invalid(client.update(JOBS, good))
    assert "spec.successPolicy: Invalid value" in message and "field is immutable" in message

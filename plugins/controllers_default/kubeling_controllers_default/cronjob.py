"""The CronJob controller: create Jobs on a cron schedule.

Per CronJob: forget finished or vanished Jobs in ``status.active`` (recording
``lastSuccessfulTime``), delete finished Jobs beyond ``successfulJobsHistoryLimit`` /
``failedJobsHistoryLimit``, then -- unless suspended -- find the most recent scheduled
time since ``lastScheduleTime`` (or creation) that has not run.  A start missed by more
than ``startingDeadlineSeconds`` is skipped; ``concurrencyPolicy`` ``Forbid`` skips a run
while a Job is active and ``Replace`` deletes the active ones first.  The Job is named
``<cronjob>-<scheduled minute since the epoch>`` (so a run is never created twice),
labelled and annotated from ``jobTemplate`` and owned by the CronJob.  The schedule is
evaluated in ``timeZone`` (UTC by default).
"""

from __future__ import annotations

import datetime
from typing import Any

from kubeling.api.kinds.batch_v1 import CronError, CronSchedule, schedule_zone
from kubeling.client import ApiError
from kubeling_controllers_default.base import Controller, ControllerContext
from kubeling_controllers_default.indexes import BY_CONTROLLER, by_controller
from kubeling_controllers_default.job import finished
from kubeling_controllers_default.resources import CRONJOBS, JOBS
from kubeling_controllers_default.util import (
    condition,
    controller_ref,
    fmt_time,
    meta,
    ns_name,
    owner_ref,
    parse_time,
)

__all__ = ["CronJobController", "most_recent_schedule"]

Obj = dict[str, Any]

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100


def most_recent_schedule(schedule: CronSchedule, earliest: datetime.datetime,
                         now: datetime.datetime) -> tuple[datetime.datetime | None, int,
                                                          datetime.datetime | None]:
    """(the latest scheduled time in ``(earliest, now]``, how many were missed, the next
    scheduled time after ``now``)."""
    latest = None
    missed = 0
    t = schedule.next_after(earliest)
    while t is not None and t <= now:
        latest = t
        missed += 1
        if missed > MAX_MISSED * 10:
            # far behind: jump close to now instead of walking every time
            t = schedule.next_after(now - datetime.timedelta(minutes=1, seconds=1))
            while t is not None and t <= now:
                latest = t
                t = schedule.next_after(t)
            break
        t = schedule.next_after(t)
    return latest, missed, t


class CronJobController(Controller):
    """batch/v1 CronJobs."""

    name = "cronjob"
    component = "cronjob-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.recorder = ctx.recorder(self.component)
        self.cronjobs = self.informer(CRONJOBS)
        self.jobs = self.informer(JOBS)
        self.jobs_by_controller = ctx.index(JOBS, BY_CONTROLLER, by_controller)
        self.cronjobs.add_handler(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n))
        self.jobs.add_handler(on_add=self._job_changed,
                              on_update=lambda _o, n: self._job_changed(n),
                              on_delete=self._job_changed)

    def _job_changed(self, job: Obj) -> None:
        ref = controller_ref(job)
        if ref is not None and ref.get("kind") == "CronJob":
            self.enqueue(f"{meta(job).get('namespace')}/{ref.get('name')}")

    async def reconcile(self, key: str) -> None:
        cj = self.cronjobs.get(key)
        if cj is None:
            return
        m = meta(cj)
        jobs = self.jobs_by_controller.get(str(m.get("uid")))
        status = dict(cj.get("status") or {})
        spec = cj.get("spec") or {}
        active_refs = list(status.get("active") or [])
        by_uid = {meta(j).get("uid"): j for j in jobs}
        kept = []
        for ref in active_refs:
            job = by_uid.get(ref.get("uid"))
            if job is None:
                self.recorder.normal(cj, "MissingJob",
                                     f"Active job went missing: {ref.get('name')}")
                continue
            if finished(job) is not None:
                self.recorder.normal(cj, "SawCompletedJob",
                                     f"Saw completed job: {meta(job)['name']}, condition: "
                                     f"{finished(job)}")
                continue
            kept.append(ref)
        known = {r.get("uid") for r in kept}
        for job in jobs:
            if finished(job) is None and meta(job).get("uid") not in known and \
                    meta(job).get("deletionTimestamp") is None:
                kept.append(self._ref(job))
        status["active"] = kept
        successes = [parse_time((j.get("status") or {}).get("completionTime")) for j in jobs
                     if finished(j) == "Complete"]
        successes = [s for s in successes if s is not None]
        if successes:
            latest = max(successes)
            current = parse_time(status.get("lastSuccessfulTime"))
            if current is None or latest > current:
                status["lastSuccessfulTime"] = fmt_time(latest)
        await self._cleanup(cj, jobs)
        if m.get("deletionTimestamp") is not None:
            await self._write(cj, status)
            return
        if not status["active"]:
            status.pop("active")
        try:
            schedule = CronSchedule.parse(str(spec.get("schedule") or ""))
            zone = schedule_zone(spec.get("timeZone"))
        except (CronError, ValueError) as exc:
            self.recorder.warning(cj, "UnparseableSchedule", f"unparseable schedule: {exc}")
            await self._write(cj, status)
            return
        if spec.get("suspend"):
            await self._write(cj, status)
            return
        now = self.clock.now().astimezone(zone)
        earliest = parse_time(status.get("lastScheduleTime")) or \
            parse_time(m.get("creationTimestamp")) or now
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - datetime.timedelta(seconds=int(deadline)))
        scheduled, missed, upcoming = most_recent_schedule(schedule, earliest.astimezone(zone),
                                                           now)
        if missed > MAX_MISSED:
            self.recorder.warning(cj, "TooManyMissedTimes",
                                  "too many missed start times. Set or decrease "
                                  ".spec.startingDeadlineSeconds or check clock skew")
        if scheduled is not None:
            cj = await self._run(cj, status, scheduled, now, jobs)
            status = dict(cj.get("status") or {})
        await self._write(cj, status)
        if upcoming is not None:
            wait = (upcoming - now).total_seconds()
            self.enqueue_after(key, max(min(wait, self.settings.cronjob_check_seconds), 0.01))

    async def _run(self, cj: Obj, status: Obj, scheduled: datetime.datetime,
                   now: datetime.datetime, jobs: list[Obj]) -> Obj:
        spec = cj.get("spec") or {}
        m = meta(cj)
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and (now - scheduled).total_seconds() > int(deadline):
            self.recorder.warning(cj, "MissSchedule",
                                  f"Missed scheduled time to start a job: "
                                  f"{fmt_time(scheduled)}")
            return cj
        policy = spec.get("concurrencyPolicy") or "Allow"
        active = status.get("active") or []
        if active and policy == "Forbid":
            self.recorder.normal(cj, "JobAlreadyActive",
                                 "Not starting job because prior execution is running and "
                                 "concurrency policy is Forbid")
            return cj
        if active and policy == "Replace":
            for ref in active:
                try:
                    await self.client.delete(JOBS, ref["name"], m["namespace"],
                                             propagation_policy="Background")
                    self.recorder.normal(cj, "SuccessfulDelete",
                                         f"Deleted job {ref['name']}")
                except ApiError as exc:
                    if exc.code != 404:
                        raise
            status["active"] = []
        name = f"{m['name']}-{int(scheduled.timestamp()) // 60}"
        template = spec.get("jobTemplate") or {}
        tmeta = template.get("metadata") or {}
        body = {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": m["namespace"],
                         "labels": dict(tmeta.get("labels") or {}),
                         "annotations": {**(tmeta.get("annotations") or {}),
                                         SCHEDULED_TIMESTAMP: scheduled.isoformat().replace(
                                             "+00:00", "Z")},
                         "ownerReferences": [owner_ref(cj)]},
            "spec": template.get("spec") or {},
        }
        try:
            job = await self.client.create(JOBS, body, m["namespace"])
            self.recorder.normal(cj, "SuccessfulCreate", f"Created job {name}")
        except ApiError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                job = await self.client.get(JOBS, name, m["namespace"])
                if (controller_ref(job) or {}).get("uid") != m.get("uid"):
                    raise
            elif exc.code == 403 and "being terminated" in exc.message:
                return cj
            else:
                self.recorder.warning(cj, "FailedCreate", f"Error creating job: {exc.message}")
                raise
        if finished(job) is None and all(r.get("uid") != meta(job).get("uid")
                                          for r in status.get("active") or []):
            status["active"] = [*(status.get("active") or []), self._ref(job)]
        status["lastScheduleTime"] = fmt_time(scheduled)
        return await self._write(cj, status)

    @staticmethod
    def _ref(job: Obj) -> Obj:
        m = meta(job)
        return {"kind": "Job", "namespace": m.get("namespace"), "name": m.get("name"),
                "uid": m.get("uid"), "apiVersion": "batch/v1",
                "resourceVersion": m.get("resourceVersion")}

    async def _cleanup(self, cj: Obj, jobs: list[Obj]) -> None:
        spec = cj.get("spec") or {}
        for kind, key in (("Complete", "successfulJobsHistoryLimit"),
                          ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(key)
            if limit is None:
                continue
            done = [j for j in jobs if finished(j) == kind and
                    meta(j).get("deletionTimestamp") is None]
            excess = len(done) - int(limit)
            if excess <= 0:
                continue
            done.sort(key=lambda j: (parse_time((condition(j, kind) or {}).get(
                "lastTransitionTime")) or parse_time(meta(j).get("creationTimestamp"))
                or datetime.datetime.min.replace(tzinfo=datetime.UTC), ns_name(j)))
            for job in done[:excess]:
                try:
                    await self.client.delete(JOBS, meta(job)["name"], meta(job)["namespace"],
                                             propagation_policy="Background")
                    self.recorder.normal(cj, "SuccessfulDelete",
                                         f"Deleted job {meta(job)['name']}")
                except ApiError as exc:
                    if exc.code != 404:
                        raise

    async def _write(self, cj: Obj, status: Obj) -> Obj:
        if status == (cj.get("status") or {}):
            return cj
        try:
            return await self.client.update_status(CRONJOBS, {**cj, "status": status})
        except ApiError as exc:
            if exc.code == 404:
                return cj
            raise

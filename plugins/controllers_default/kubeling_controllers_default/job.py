"""The Job controller and the TTL-after-finished controller.

:class:`JobController` runs a Job's pods to completion, as Kubernetes' does:

* up to ``parallelism`` pods at once, until ``completions`` succeeded (or, without
  ``completions``, until one succeeded and the rest finished); ``Indexed`` Jobs give each
  pod a completion index (label, annotation, hostname ``<job>-<index>``,
  ``JOB_COMPLETION_INDEX``) and track ``completedIndexes``;
* failed pods are replaced after an exponential backoff (``job_backoff_base_seconds``
  doubling up to ``job_backoff_max_seconds``); more failures than ``backoffLimit`` (pod
  restarts count with ``restartPolicy: OnFailure``) or running longer than
  ``activeDeadlineSeconds`` fails the Job (``FailureTarget``, then ``Failed`` with reason
  ``BackoffLimitExceeded``/``DeadlineExceeded``) and deletes its running pods;
* a ``podFailurePolicy`` decides about each failed pod by its first matching rule (exit
  codes or pod conditions): ``FailJob`` fails the Job at once (reason
  ``PodFailurePolicy``), ``Ignore`` replaces the pod without counting the failure,
  ``FailIndex`` fails the pod's index, ``Count`` counts it; with a policy (or
  ``podReplacementPolicy: Failed``) a terminating pod is replaced, and judged, only once
  it is ``Failed``;
* ``backoffLimitPerIndex`` (Indexed Jobs) retries each index that many times, counting
  in the pods' ``batch.kubernetes.io/job-index-failure-count`` annotation; an index out
  of retries goes to ``failedIndexes`` and is not run again; more than
  ``maxFailedIndexes`` of them fails the Job (``MaxFailedIndexesExceeded``), as does
  finishing every index with some failed (``FailedIndexes``);
* success is ``SuccessCriteriaMet`` then ``Complete`` with ``completionTime``: all
  completions, or (Indexed Jobs) the first ``successPolicy`` rule met (reason
  ``SuccessPolicy``), after which the remaining pods are deleted;
  ``suspend`` deletes the running pods and holds the Job (``Suspended``);
* every pod carries the ``batch.kubernetes.io/job-tracking`` finalizer: a finished pod is
  first recorded in ``status.uncountedTerminatedPods``, then its finalizer is removed, then
  it is counted in ``succeeded``/``failed`` -- so each pod is counted exactly once even if
  it is deleted meanwhile or the controller restarts.

:class:`TTLAfterFinishedController` deletes finished Jobs ``ttlSecondsAfterFinished`` after
they finished (with their pods, in the foreground).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubeling.client import ApiError
from kubeling_controllers_default.base import Controller, ControllerContext
from kubeling_controllers_default.expectations import UIDTrackingExpectations
from kubeling_controllers_default.indexes import (
    BY_CONTROLLER,
    BY_NAMESPACE,
    by_controller,
    by_namespace,
    claim_candidates,
    orphans_key,
)
from kubeling_controllers_default.jobpolicy import (
    FailureVerdict,
    match_pod_failure_policy,
    match_success_policy,
)
from kubeling_controllers_default.pods import PodControl, can_adopt, claim, slow_start_batch
from kubeling_controllers_default.resources import JOBS, PODS
from kubeling_controllers_default.util import (
    condition,
    controller_ref,
    fmt_time,
    is_pod_ready,
    meta,
    ns_name,
    parse_time,
    pod_from_template,
    selector_of,
)

__all__ = ["TRACKING_FINALIZER", "JobController", "TTLAfterFinishedController",
           "format_indexes", "parse_indexes"]

Obj = dict[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"


def format_indexes(indexes: set[int]) -> str:
    """``completedIndexes`` notation: ``1,3-5,7``."""
    out: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def parse_indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        try:
            out.update(range(int(a), int(b or a) + 1))
        except ValueError:
            continue
    return out


def finished(job: Obj) -> str | None:
    """``Complete`` or ``Failed`` when the Job is done, else None."""
    for kind in ("Complete", "Failed"):
        cond = condition(job, kind)
        if cond is not None and cond.get("status") == "True":
            return kind
    return None


def _pod_index(pod: Obj) -> int | None:
    text = (meta(pod).get("annotations") or {}).get(COMPLETION_INDEX) or \
        (meta(pod).get("labels") or {}).get(COMPLETION_INDEX)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _is_failed(pod: Obj, *, only_terminal: bool = False) -> bool:
    """Failed; or, unless ``only_terminal``, deleted before it succeeded (it will not
    succeed any more)."""
    if _phase(pod) == "Failed":
        return True
    return not only_terminal and _phase(pod) != "Succeeded" and \
        meta(pod).get("deletionTimestamp") is not None


def _true(job: Obj, kind: str) -> Any:
    """The Job's condition ``kind`` when it is True, else None."""
    cond = condition(job, kind)
    return cond if cond is not None and cond.get("status") == "True" else None


def _only_replace_failed(spec: Obj) -> bool:
    """Whether terminating pods are replaced only once they failed
    (``podReplacementPolicy: Failed``, always so with a ``podFailurePolicy``); they are
    then counted as failed only once Failed, when the failure policy can read them."""
    return spec.get("podReplacementPolicy") == "Failed" or bool(spec.get("podFailurePolicy"))


def _per_index(spec: Obj) -> bool:
    """Whether the Job limits retries per index (``backoffLimitPerIndex``)."""
    return spec.get("completionMode") == "Indexed" and \
        spec.get("backoffLimitPerIndex") is not None


def _index_counts(pod: Obj) -> tuple[int, int]:
    """(counted, ignored) failures of the pod's index before it, from its annotations."""
    annotations = meta(pod).get("annotations") or {}
    counts = []
    for key in (INDEX_FAILURE_COUNT, INDEX_IGNORED_FAILURE_COUNT):
        try:
            counts.append(int(annotations.get(key) or 0))
        except ValueError:
            counts.append(0)
    return counts[0], counts[1]


def _failed_indexes(spec: Obj, failed: list[Obj],
                    verdicts: dict[str, FailureVerdict]) -> set[int]:
    """The indexes that the counted ``failed`` pods fail for good: a ``FailIndex`` rule
    matched, or the index used up ``backoffLimitPerIndex`` retries."""
    limit = int(spec.get("backoffLimitPerIndex") or 0)
    out: set[int] = set()
    for pod in failed:
        index = _pod_index(pod)
        if index is not None and (verdicts[meta(pod)["uid"]].action == "FailIndex"
                                  or _index_counts(pod)[0] >= limit):
            out.add(index)
    return out


def _last_failed_by_index(pods: list[Obj]) -> dict[int, Obj]:
    """Each index's latest failed pod (the one its replacement takes the counts from)."""
    out: dict[int, Obj] = {}
    for pod in pods:
        index = _pod_index(pod)
        if index is None or not _is_failed(pod):
            continue
        best = out.get(index)
        if best is None or (sum(_index_counts(pod)), str(meta(pod).get("creationTimestamp"))) \
                > (sum(_index_counts(best)), str(meta(best).get("creationTimestamp"))):
            out[index] = pod
    return out


def _index_failure_annotations(policy: Obj | None, replaced: Obj | None) -> dict[str, str]:
    """The failure-count annotations of a pod replacing ``replaced`` (None: the first)."""
    failures, ignored = _index_counts(replaced) if replaced is not None else (0, 0)
    if replaced is not None:
        if match_pod_failure_policy(policy, replaced).counted:
            failures += 1
        else:
            ignored += 1
    out = {INDEX_FAILURE_COUNT: str(failures)}
    if ignored:
        out[INDEX_IGNORED_FAILURE_COUNT] = str(ignored)
    return out


def _fail_job_message(policy: Obj | None, pods: list[Obj]) -> str | None:
    """The message of the first failed pod matching a ``FailJob`` rule, if any."""
    if not policy:
        return None
    for pod in pods:
        if _phase(pod) == "Failed":
            verdict = match_pod_failure_policy(policy, pod)
            if verdict.action == "FailJob":
                return verdict.message
    return None


def _success(job: Obj, succeeded: int, completed: set[int],
             active: list[Obj]) -> tuple[str, str] | None:
    """(reason, message) of the Job's success, or None: ``SuccessCriteriaMet`` already
    set, a ``successPolicy`` rule met (Indexed Jobs), or the completions reached."""
    met = _true(job, "SuccessCriteriaMet")
    if met is not None:
        return str(met.get("reason")), str(met.get("message"))
    spec = job.get("spec") or {}
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed":
        message = match_success_policy(spec.get("successPolicy"), int(completions or 0),
                                       completed)
        if message is not None:
            return "SuccessPolicy", message
        done = completions is not None and len(completed) >= int(completions)
    elif completions is not None:
        done = succeeded >= int(completions)
    else:
        done = succeeded > 0 and not active
    return ("CompletionsReached", "Reached expected number of succeeded pods") if done \
        else None


class JobController(Controller):
    """batch/v1 Jobs."""

    name = "job"
    component = "job-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.recorder = ctx.recorder(self.component)
        self.pod_control = PodControl(self.client, self.recorder)
        self.expectations = UIDTrackingExpectations(ctx.settings.expectations_timeout_seconds,
                                                    clock=ctx.clock.monotonic)
        self.jobs = self.informer(JOBS)
        self.pods = self.informer(PODS)
        self.jobs_by_ns = ctx.index(JOBS, BY_NAMESPACE, by_namespace)
        self.pods_by_controller = ctx.index(PODS, BY_CONTROLLER, by_controller)
        self.released: set[str] = set()
        """Uids of pods whose tracking finalizer we removed but the cache may still show
        (they must not be counted twice)."""
        self.backoff: dict[str, tuple[int, float]] = {}
        """job key -> (failures since the last success, when the last one was seen)."""
        self.jobs.add_handler(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n),
                              on_delete=self._job_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_gone)

    # -- handlers --------------------------------------------------------------------------

    def _job_deleted(self, job: Obj) -> None:
        key = ns_name(job)
        self.expectations.delete(key)
        self.backoff.pop(key, None)
        self.enqueue(key)  # its pods' finalizers still need removing

    def _resolve(self, pod: Obj) -> Obj | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job":
            return None
        job = self.jobs.get(f"{meta(pod).get('namespace')}/{ref.get('name')}")
        if job is None or meta(job).get("uid") != ref.get("uid"):
            return None
        return job

    def _orphan_of_gone_job(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is not None and ref.get("kind") == "Job" and \
                TRACKING_FINALIZER in (meta(pod).get("finalizers") or []):
            self.enqueue(f"{meta(pod).get('namespace')}/{ref.get('name')}")

    def _pod_added(self, pod: Obj) -> None:
        if meta(pod).get("deletionTimestamp") is not None:
            self._pod_deleted(pod)
            return
        job = self._resolve(pod)
        if job is not None:
            self.expectations.creation_observed(ns_name(job))
            self.enqueue(job)
            return
        if controller_ref(pod) is None:
            labels = meta(pod).get("labels") or {}
            for job in self.jobs_by_ns.get(str(meta(pod).get("namespace") or "")):
                selector = selector_of(job)
                if selector is not None and selector.matches(labels):
                    self.enqueue(job)
        else:
            self._orphan_of_gone_job(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        if TRACKING_FINALIZER not in (meta(new).get("finalizers") or []):
            self.released.discard(meta(new).get("uid") or "")
        if meta(new).get("deletionTimestamp") is not None and \
                meta(old).get("deletionTimestamp") is None:
            self._pod_deleted(new)
            return
        job = self._resolve(new)
        if job is not None:
            self.enqueue(job)
        else:
            self._orphan_of_gone_job(new)

    def _pod_gone(self, pod: Obj) -> None:
        self.released.discard(meta(pod).get("uid") or "")
        self._pod_deleted(pod)

    def _pod_deleted(self, pod: Obj) -> None:
        job = self._resolve(pod)
        if job is not None:
            self.expectations.deletion_observed_of(ns_name(job), ns_name(pod))
            self.enqueue(job)

    # -- reconcile -------------------------------------------------------------------------

    async def _can_adopt(self, job: Obj) -> bool:
        return await can_adopt(self.client, JOBS, job)

    async def _remove_finalizers(self, pods: list[Obj]) -> None:
        async def remove(pod: Obj) -> None:
            m = meta(pod)
            patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER],
                                  "uid": m.get("uid")}}
            try:
                await self.client.patch(PODS, m["name"], patch, m["namespace"],
                                        type="strategic")
            except ApiError as exc:
                if exc.code != 404:
                    raise

        self.released.update(meta(p)["uid"] for p in pods)
        results = await asyncio.gather(*(remove(p) for p in pods), return_exceptions=True)
        for pod, result in zip(pods, results, strict=True):
            if isinstance(result, Exception):
                self.released.discard(meta(pod)["uid"])
                raise result

    async def reconcile(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None:
            # the Job is gone: release whatever pods still carry our finalizer
            namespace, _, name = key.partition("/")
            leftovers = [p for p in self.pods_by_controller.get(orphans_key(namespace))]
            leftovers += [p for uid in self.pods_by_controller.indexed_values()
                          if not uid.startswith("orphan:")
                          for p in self.pods_by_controller.get(uid)
                          if meta(p).get("namespace") == namespace and
                          (controller_ref(p) or {}).get("name") == name and
                          (controller_ref(p) or {}).get("kind") == "Job"]
            await self._remove_finalizers([p for p in leftovers if TRACKING_FINALIZER in
                                           (meta(p).get("finalizers") or [])])
            return
        selector = selector_of(job)
        if selector is None:
            return
        m = meta(job)
        candidates = claim_candidates(self.pods_by_controller, job)
        pods = await claim(job, selector, candidates,
                           adopt=lambda p: self.pod_control.adopt(p, job),
                           release=lambda p: self.pod_control.release(p, job),
                           can_adopt=lambda: self._can_adopt(job))
        done = finished(job)
        if done is not None or m.get("deletionTimestamp") is not None:
            await self._remove_finalizers([p for p in pods if TRACKING_FINALIZER in
                                           (meta(p).get("finalizers") or [])])
            return
        await self._sync(key, job, pods)

    async def _sync(self, key: str, job: Obj, pods: list[Obj]) -> None:
        spec = job.get("spec") or {}
        now = self.clock.now()
        stamp = fmt_time(now)
        job, status = await self._track(key, job, pods)
        succeeded = int(status.get("succeeded") or 0)
        failed = int(status.get("failed") or 0)
        completed = parse_indexes(status.get("completedIndexes"))
        failed_indexes = parse_indexes(status.get("failedIndexes"))
        active = [p for p in pods if _phase(p) not in ("Succeeded", "Failed")
                  and meta(p).get("deletionTimestamp") is None]
        terminating = [p for p in pods if meta(p).get("deletionTimestamp") is not None
                       and _phase(p) not in ("Succeeded", "Failed")]
        restarts = 0
        if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
            restarts = sum(int(c.get("restartCount") or 0) for p in active
                           for c in (p.get("status") or {}).get("containerStatuses") or [])
        suspended = bool(spec.get("suspend"))
        if not suspended and not status.get("startTime"):
            status["startTime"] = stamp
        failure = self._failure(job, status, pods, failed + restarts, completed,
                                failed_indexes, now)
        success = None if failure is not None else _success(job, succeeded, completed,
                                                             active)
        conditions = list(status.get("conditions") or [])
        if failure is not None or success is not None:
            # the pods still running stop; the terminal condition waits for them
            await self._delete_pods(job, active, key)
            terminating, active = terminating + active, []
        if failure is not None:
            conditions = _set(conditions, "FailureTarget", "True", *failure, stamp)
            if not terminating:
                if condition({"status": {"conditions": conditions}}, "Failed") is None:
                    self.recorder.warning(job, failure[0], failure[1])
                conditions = _set(conditions, "Failed", "True", *failure, stamp)
        elif success is not None:
            conditions = _set(conditions, "SuccessCriteriaMet", "True", *success, stamp)
            if not terminating:
                conditions = _set(conditions, "Complete", "True", *success, stamp)
                status["completionTime"] = stamp
                self.recorder.normal(job, "Completed", "Job completed")
        else:
            active = await self._manage(key, job, active, terminating, pods, succeeded,
                                        completed | failed_indexes, suspended)
            was = condition(job, "Suspended")
            if suspended and (was is None or was.get("status") != "True"):
                conditions = _set(conditions, "Suspended", "True", "JobSuspended",
                                  "Job suspended", stamp)
                self.recorder.normal(job, "Suspended", "Job suspended")
            elif not suspended and was is not None and was.get("status") == "True":
                conditions = _set(conditions, "Suspended", "False", "JobResumed",
                                  "Job resumed", stamp)
                status["startTime"] = stamp
                self.recorder.normal(job, "Resumed", "Job resumed")
        if conditions:
            status["conditions"] = conditions
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if is_pod_ready(p))
        status["terminating"] = len(terminating)
        status["succeeded"] = succeeded
        status["failed"] = failed
        for zero in ("succeeded", "failed", "active"):
            if not status.get(zero):
                status.pop(zero, None)
        status.setdefault("uncountedTerminatedPods", {})
        await self._write_status(job, status)
        deadline = spec.get("activeDeadlineSeconds")
        start = parse_time(status.get("startTime"))
        if deadline and start is not None and failure is None and success is None:
            left = int(deadline) - (now - start).total_seconds()
            self.enqueue_after(key, max(left, 0) + 0.05)

    async def _track(self, key: str, job: Obj, pods: list[Obj]) -> tuple[Obj, Obj]:
        """Count the Job's newly finished pods exactly once: record them in
        ``uncountedTerminatedPods`` (with the indexes they complete or fail), remove
        their finalizers, then add them to ``succeeded``/``failed``.

        Failures the pod failure policy ignores, and pods terminated after the success
        criteria were met, lose their finalizer without being counted.

        :returns: the Job as written and its status with the counts updated.
        """
        spec = job.get("spec") or {}
        status = dict(job.get("status") or {})
        policy = spec.get("podFailurePolicy")
        failing = _true(job, "FailureTarget") is not None
        only_terminal = _only_replace_failed(spec) and not failing
        uncounted = status.get("uncountedTerminatedPods") or {}
        uncounted_ok = set(uncounted.get("succeeded") or [])
        uncounted_failed = set(uncounted.get("failed") or [])
        tracked = [p for p in pods if TRACKING_FINALIZER in (meta(p).get("finalizers") or [])
                   and meta(p)["uid"] not in self.released]
        new_ok = [p for p in tracked if _phase(p) == "Succeeded"
                  and meta(p)["uid"] not in uncounted_ok]
        failures = [p for p in tracked if _is_failed(p, only_terminal=only_terminal)
                    and meta(p)["uid"] not in uncounted_failed]
        verdicts = {meta(p)["uid"]: match_pod_failure_policy(policy, p) for p in failures}
        new_failed = [p for p in failures if verdicts[meta(p)["uid"]].counted]
        uncounted_free = [p for p in failures if not verdicts[meta(p)["uid"]].counted]
        if _true(job, "SuccessCriteriaMet") is not None:
            uncounted_free += [p for p in tracked if meta(p).get("deletionTimestamp")
                               and _phase(p) not in ("Succeeded", "Failed")
                               and meta(p)["uid"] not in verdicts]
        if failures:
            self.backoff[key] = (self.backoff.get(key, (0, 0.0))[0] + len(failures),
                                 self.clock.monotonic())
        if new_ok:
            self.backoff.pop(key, None)
        if _per_index(spec):
            failed_indexes = parse_indexes(status.get("failedIndexes"))
            failed_indexes |= _failed_indexes(spec, new_failed, verdicts) - parse_indexes(
                status.get("completedIndexes"))
            status["failedIndexes"] = format_indexes(failed_indexes)
        # step 1: record finished pods before their finalizers go
        if new_ok or new_failed:
            status["uncountedTerminatedPods"] = {
                "succeeded": sorted(uncounted_ok | {meta(p)["uid"] for p in new_ok}),
                "failed": sorted(uncounted_failed | {meta(p)["uid"] for p in new_failed})}
            if spec.get("completionMode") == "Indexed":
                completed = parse_indexes(status.get("completedIndexes"))
                completed |= {i for p in new_ok if (i := _pod_index(p)) is not None}
                status["completedIndexes"] = format_indexes(completed)
            job = await self._write_status(job, status)
            status = dict(job.get("status") or {})
            uncounted = status.get("uncountedTerminatedPods") or {}
            uncounted_ok = set(uncounted.get("succeeded") or [])
            uncounted_failed = set(uncounted.get("failed") or [])
        # step 2: remove their finalizers; step 3: count them
        recorded = uncounted_ok | uncounted_failed
        release = [p for p in tracked if meta(p)["uid"] in recorded] + uncounted_free
        if release:
            await self._remove_finalizers(release)
        if recorded:
            status["succeeded"] = int(status.get("succeeded") or 0) + len(uncounted_ok)
            status["failed"] = int(status.get("failed") or 0) + len(uncounted_failed)
            status["uncountedTerminatedPods"] = {}
        return job, status

    def _failure(self, job: Obj, status: Obj, pods: list[Obj], failed: int,
                 completed: set[int], failed_indexes: set[int],
                 now: Any) -> tuple[str, str] | None:
        """(reason, message) of the Job's failure, or None: in Kubernetes' order, a
        ``FailureTarget`` already set, a pod matching a ``FailJob`` rule, too many
        failures, the deadline passed, too many failed indexes, every index done with some
        failed.  Never once ``SuccessCriteriaMet`` is set."""
        target = _true(job, "FailureTarget")
        if target is not None:
            return str(target.get("reason")), str(target.get("message"))
        if _true(job, "SuccessCriteriaMet") is not None:
            return None
        spec = job.get("spec") or {}
        message = _fail_job_message(spec.get("podFailurePolicy"), pods)
        if message is not None:
            return "PodFailurePolicy", message
        limit = spec.get("backoffLimit")
        if failed > int(limit if limit is not None else 6):
            return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        if self._past_deadline(job, status, now):
            return "DeadlineExceeded", "Job was active longer than specified deadline"
        if _per_index(spec):
            most = spec.get("maxFailedIndexes")
            if most is not None and len(failed_indexes) > int(most):
                return ("MaxFailedIndexesExceeded",
                        "Job has exceeded the specified maximal number of failed indexes")
            if failed_indexes and len(failed_indexes | completed) >= int(
                    spec.get("completions") or 0):
                return "FailedIndexes", "Job has failed indexes"
        return None

    def _past_deadline(self, job: Obj, status: Obj, now: Any) -> bool:
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        start = parse_time(status.get("startTime"))
        if not deadline or start is None or (job.get("spec") or {}).get("suspend"):
            return False
        return (now - start).total_seconds() >= int(deadline)

    async def _delete_pods(self, job: Obj, pods: list[Obj], key: str) -> None:
        if not pods:
            return
        self.expectations.expect_deletions_of(key, [ns_name(p) for p in pods])
        results = await asyncio.gather(*(self.pod_control.delete(p, job) for p in pods),
                                       return_exceptions=True)
        for pod, result in zip(pods, results, strict=True):
            if isinstance(result, Exception):
                self.expectations.deletion_observed_of(key, ns_name(pod))
                raise result

    async def _manage(self, key: str, job: Obj, active: list[Obj], terminating: list[Obj],
                      pods: list[Obj], succeeded: int, done: set[int],
                      suspended: bool) -> list[Obj]:
        """Create or delete pods towards the wanted number active; the active pods after.

        :param terminating: pods being deleted; with ``podReplacementPolicy: Failed`` they
            are replaced only once they failed.
        :param done: the indexes completed or failed (Indexed Jobs), not to run again.
        """
        if not self.expectations.satisfied(key):
            return active
        spec = job.get("spec") or {}
        parallelism = int(spec.get("parallelism") if spec.get("parallelism") is not None
                          else 1)
        completions = spec.get("completions")
        indexed = spec.get("completionMode") == "Indexed"
        occupied = active + terminating if _only_replace_failed(spec) else active
        if suspended:
            want = 0
        elif completions is None:
            want = len(active) if succeeded > 0 else parallelism
        else:
            left = int(completions) - (len(done) if indexed else succeeded)
            want = min(parallelism, max(left, 0))
        if len(active) > want:
            extra = sorted(active, key=lambda p: (is_pod_ready(p),
                                                  str(meta(p).get("creationTimestamp"))),
                           reverse=False)[:len(active) - want]
            await self._delete_pods(job, extra, key)
            return [p for p in active if p not in extra]
        count = min(want - len(occupied), self.settings.burst_replicas)
        if count <= 0:
            return active
        failures, last = self.backoff.get(key, (0, 0.0))
        if failures:
            delay = min(self.settings.job_backoff_base_seconds * 2 ** (failures - 1),
                        self.settings.job_backoff_max_seconds)
            wait = last + delay - self.clock.monotonic()
            if wait > 0:
                self.enqueue_after(key, wait)
                return active
        indexes: list[int | None] = [None] * count
        if indexed:
            busy = {_pod_index(p) for p in occupied}
            pending = [i for i in range(int(completions or 0))
                       if i not in done and i not in busy]
            indexes = list(pending[:count])
            count = len(indexes)
        replaced = _last_failed_by_index(pods) if _per_index(spec) else None
        template = spec.get("template") or {}
        namespace = meta(job)["namespace"]
        self.expectations.expect_creations(key, count)

        async def create(i: int) -> None:
            index = indexes[i]
            extra = {COMPLETION_INDEX: str(index)} if index is not None else {}
            notes = dict(extra)
            if replaced is not None and index is not None:
                notes.update(_index_failure_annotations(spec.get("podFailurePolicy"),
                                                        replaced.get(index)))
            pod = pod_from_template(template, job, generate_name=f"{meta(job)['name']}-",
                                    extra_labels=extra, extra_annotations=notes,
                                    finalizers=[TRACKING_FINALIZER])
            if index is not None:
                pod_spec = pod["spec"]
                pod_spec.setdefault("hostname", f"{meta(job)['name']}-{index}")
                for container in pod_spec.get("containers") or []:
                    env = [e for e in container.get("env") or []
                           if e.get("name") != "JOB_COMPLETION_INDEX"]
                    env.append({"name": "JOB_COMPLETION_INDEX", "value": str(index)})
                    container["env"] = env
            if await self.pod_control.create(namespace, pod, job) is None:
                self.expectations.creation_observed(key)

        created, error = await slow_start_batch(count, create)
        if created < count:
            self.expectations.lower(key, add=count - created)
        if error is not None:
            raise error
        return active

    async def _write_status(self, job: Obj, status: Obj) -> Obj:
        if status == (job.get("status") or {}):
            return job
        return await self.client.update_status(JOBS, {**job, "status": status})


def _set(conditions: list[Obj], kind: str, state: str, reason: str, message: str,
         now: str) -> list[Obj]:
    current = next((c for c in conditions if c.get("type") == kind), None)
    if current is not None and current.get("status") == state:
        return conditions
    new = {"type": kind, "status": state, "reason": reason, "message": message,
           "lastProbeTime": now, "lastTransitionTime": now}
    return [c for c in conditions if c.get("type") != kind] + [new]


class TTLAfterFinishedController(Controller):
    """Deletes finished Jobs ``ttlSecondsAfterFinished`` after they finished."""

    name = "ttl-after-finished"
    component = "ttl-after-finished-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.jobs = self.informer(JOBS)
        self.jobs.add_handler(on_add=self._changed, on_update=lambda _o, n: self._changed(n))

    def _changed(self, job: Obj) -> None:
        if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None and \
                finished(job) is not None and meta(job).get("deletionTimestamp") is None:
            self.enqueue(job)

    @staticmethod
    def _finish_time(job: Obj) -> Any:
        kind = finished(job)
        if kind is None:
            return None
        cond = condition(job, kind) or {}
        return parse_time(cond.get("lastTransitionTime")) or \
            parse_time((job.get("status") or {}).get("completionTime"))

    async def reconcile(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None or meta(job).get("deletionTimestamp") is not None:
            return
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        done = self._finish_time(job)
        if ttl is None or done is None:
            return
        left = done.timestamp() + int(ttl) - self.clock.now().timestamp()
        if left > 0:
            self.enqueue_after(key, left)
            return
        m = meta(job)
        try:
            fresh = await self.client.get(JOBS, m["name"], m["namespace"])
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        if meta(fresh).get("uid") != m.get("uid") or \
                (fresh.get("spec") or {}).get("ttlSecondsAfterFinished") != ttl:
            self.enqueue(key)
            return
        try:
            await self.client.delete(JOBS, m["name"], m["namespace"],
                                     propagation_policy="Foreground",
                                     preconditions={"uid": m.get("uid"),
                                                    "resourceVersion": meta(fresh)[
                                                        "resourceVersion"]})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

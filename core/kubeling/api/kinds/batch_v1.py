"""Strategies of the batch/v1 kinds: Job and CronJob, and the cron schedule grammar.

A Job gets a generated selector on create (``batch.kubernetes.io/controller-uid: <uid>``,
also added to its template's labels with ``batch.kubernetes.io/job-name``) unless it sets
``manualSelector``; its template must restart ``OnFailure`` or ``Never``.  A CronJob's
``schedule`` is standard cron (five fields, names, ranges, steps, lists, ``@hourly`` and
friends) evaluated in ``timeZone`` (UTC by default); :class:`CronSchedule` parses it and
finds the next run, for validation here and for the CronJob controller.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from typing import Any

import attrs

from kubeling.api.errors import Cause
from kubeling.api.kinds._common import (
    AGE,
    BuiltinStrategy,
    Obj,
    as_dict,
    as_list,
    ensure_dict,
    field_str,
    format_age,
    human_duration,
    is_int,
    label_name_causes,
    label_selector_causes,
    meta,
    non_negative,
    parse_time,
    selector_is_empty,
    selector_matches,
    selector_string,
    sub,
)
from kubeling.api.kinds._podspec import default_pod_template, validate_pod_template
from kubeling.api.strategy import TableColumn

__all__ = ["CronError", "CronJobStrategy", "CronSchedule", "JobStrategy", "job_status"]

CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
MAX_INT32 = 2**31 - 1


# =====================================================================================
# cron schedules
# =====================================================================================


class CronError(ValueError):
    """A schedule that is not valid cron."""


_MONTHS = {name: i + 1 for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_DAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_BOUNDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 6, _DAYS))
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def _value(text: str, names: dict[str, int], field: str) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}: invalid {field}")
    return int(text)


def _parse_field(text: str, index: int) -> tuple[frozenset[int], bool]:
    """(the values a field allows, whether it was ``*``/``?``)."""
    low, high, names = _BOUNDS[index]
    field = _FIELD_NAMES[index]
    values: set[int] = set()
    star = False
    for part in text.split(","):
        if not part:
            raise CronError(f"empty {field} field")
        range_part, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"invalid step {step_text!r} in {field}")
            step = int(step_text)
        if range_part in ("*", "?"):
            start, end = low, high
            star = star or not step_text
        elif "-" in range_part:
            a, _, b = range_part.partition("-")
            start, end = _value(a, names, field), _value(b, names, field)
        else:
            start = _value(range_part, names, field)
            end = high if step_text else start
        if start < low or end > high:
            raise CronError(f"{field} out of range ({low}-{high}): {part}")
        if start > end:
            raise CronError(f"beginning of range ({start}) beyond end of range ({end}): "
                            f"{part}")
        values.update(range(start, end + 1, step))
    return frozenset(values), star


@attrs.frozen
class CronSchedule:
    """A parsed cron schedule (or ``@every <duration>``)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_star: bool
    weekdays_star: bool
    every: datetime.timedelta | None = None

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """Parse ``text``; raises :class:`CronError` saying what is wrong."""
        spec = text.strip()
        if spec.startswith(("TZ=", "CRON_TZ=")):
            raise CronError("cannot use TZ or CRON_TZ in schedule, use timeZone field "
                            "instead")
        if spec.startswith("@every "):
            return cls._every(spec[len("@every "):].strip())
        if spec.startswith("@"):
            if spec not in _DESCRIPTORS:
                raise CronError(f"unrecognized descriptor: {spec}")
            spec = _DESCRIPTORS[spec]
        fields = spec.split()
        if len(fields) != 5:
            raise CronError(f"expected exactly 5 fields, found {len(fields)}: {text}")
        parsed = [_parse_field(f, i) for i, f in enumerate(fields)]
        return cls(parsed[0][0], parsed[1][0], parsed[2][0], parsed[3][0], parsed[4][0],
                   parsed[2][1], parsed[4][1])

    @classmethod
    def _every(cls, text: str) -> CronSchedule:
        match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
        if not text or match is None:
            raise CronError(f"failed to parse duration @every {text}")
        hours, minutes, seconds = (int(g or 0) for g in match.groups())
        every = datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds)
        if every < datetime.timedelta(seconds=1):
            raise CronError(f"@every duration must be at least 1s: {text}")
        everything = frozenset()
        return cls(everything, everything, everything, everything, everything, True, True,
                   every)

    def _day_matches(self, when: datetime.datetime) -> bool:
        dom = when.day in self.days
        dow = (when.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """The first time strictly after ``after`` (an aware datetime, in the zone to
        evaluate in) the schedule fires; None if none within five years."""
        if self.every is not None:
            return after + self.every - datetime.timedelta(microseconds=after.microsecond)
        zone = after.tzinfo
        t = after.replace(second=0, microsecond=0, tzinfo=None) + datetime.timedelta(minutes=1)
        limit = t.year + 5
        while t.year <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + datetime.timedelta(days=32)).replace(
                    day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + datetime.timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + datetime.timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += datetime.timedelta(minutes=1)
                continue
            return t.replace(tzinfo=zone)
        return None


def schedule_zone(name: str | None) -> datetime.tzinfo:
    """The zone a CronJob's ``timeZone`` names (UTC when unset)."""
    if not name:
        return datetime.UTC
    return zoneinfo.ZoneInfo(name)


# =====================================================================================
# Job
# =====================================================================================


# -- pod failure policy, per-index backoff, success policy (Kubernetes' limits and messages)

MAX_POLICY_RULES = 20
MAX_EXIT_CODES = 255
MAX_CONDITION_PATTERNS = 20
MAX_FAILED_INDEXES = 100_000
MAX_SUCCEEDED_INDEXES_LENGTH = 64 * 1024
FAILURE_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
EXIT_CODE_OPERATORS = ("In", "NotIn")
CONDITION_STATUSES = ("False", "True", "Unknown")
REPLACEMENT_POLICIES = ("Failed", "TerminatingOrFailed")
_ATOI = re.compile(r"[+-]?[0-9]+")


def _valid_values(values: tuple[str, ...]) -> str:
    """Go's ``fmt.Sprintf("valid values: %q", list)``."""
    return "valid values: [" + " ".join(f'"{v}"' for v in values) + "]"


def _int32s(values: Any) -> str:
    """Go's ``%#v`` of an ``[]int32``, as Kubernetes prints an invalid exit code list."""
    if values is None:
        return "[]int32(nil)"
    return "[]int32{" + ", ".join(str(v) for v in as_list(values)) + "}"


def _exit_codes_causes(req: Obj, path: str, containers: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    operator = req.get("operator")
    if not operator:
        causes.append(Cause.required(f"{path}.operator", _valid_values(EXIT_CODE_OPERATORS)))
    elif operator not in EXIT_CODE_OPERATORS:
        causes.append(Cause.not_supported(f"{path}.operator", operator, EXIT_CODE_OPERATORS))
    name = req.get("containerName")
    if name is not None and name not in containers:
        causes.append(Cause.invalid(f"{path}.containerName", name, "must be one of the "
                                    "container or initContainer names in the pod template"))
    values = as_list(req.get("values"))
    if not values:
        causes.append(Cause.invalid_omitted(f"{path}.values", _int32s(req.get("values")) +
                                            ": at least one value is required"))
    elif len(values) > MAX_EXIT_CODES:
        causes.append(Cause.too_many(f"{path}.values", len(values), MAX_EXIT_CODES))
    seen: set[int] = set()
    ordered = True
    for j, value in enumerate(values):
        if not is_int(value):
            causes.append(Cause.invalid(f"{path}.values[{j}]", value, "must be an integer"))
            continue
        if operator == "In" and value == 0:
            causes.append(Cause.invalid(f"{path}.values[{j}]", value,
                                        "must not be 0 for the In operator"))
        if value in seen:
            causes.append(Cause.duplicate(f"{path}.values[{j}]", value))
        seen.add(value)
        if j > 0 and is_int(values[j - 1]) and values[j - 1] > value:
            ordered = False
    if not ordered:
        causes.append(Cause.invalid_omitted(f"{path}.values",
                                            _int32s(values) + ": must be ordered"))
    return causes


def _pod_conditions_causes(patterns: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    if len(patterns) > MAX_CONDITION_PATTERNS:
        causes.append(Cause.too_many(path, len(patterns), MAX_CONDITION_PATTERNS))
    for j, pattern in enumerate(patterns):
        pattern = as_dict(pattern)
        causes.extend(label_name_causes(f"{path}[{j}].type", pattern.get("type") or ""))
        status = pattern.get("status")
        if not status:
            causes.append(Cause.required(f"{path}[{j}].status",
                                         _valid_values(CONDITION_STATUSES)))
        elif status not in CONDITION_STATUSES:
            causes.append(Cause.not_supported(f"{path}[{j}].status", status,
                                              CONDITION_STATUSES))
    return causes


def _failure_rule_causes(spec: Obj, rule: Obj, path: str, containers: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    action = rule.get("action")
    if not action:
        causes.append(Cause.required(f"{path}.action", _valid_values(FAILURE_ACTIONS)))
    elif action == "FailIndex":
        if spec.get("backoffLimitPerIndex") is None:
            causes.append(Cause.invalid(f"{path}.action", action,
                                        "requires the backoffLimitPerIndex to be set"))
    elif action not in FAILURE_ACTIONS:
        causes.append(Cause.not_supported(f"{path}.action", action, FAILURE_ACTIONS))
    on_exit = rule.get("onExitCodes")
    on_conditions = as_list(rule.get("onPodConditions"))
    if on_exit is not None:
        causes.extend(_exit_codes_causes(as_dict(on_exit), f"{path}.onExitCodes", containers))
    if on_conditions:
        causes.extend(_pod_conditions_causes(on_conditions, f"{path}.onPodConditions"))
    if on_exit is not None and on_conditions:
        causes.append(Cause.invalid_omitted(
            path, "specifying both OnExitCodes and OnPodConditions is not supported"))
    if on_exit is None and not on_conditions:
        causes.append(Cause.invalid_omitted(
            path, "specifying one of OnExitCodes and OnPodConditions is required"))
    return causes


def _pod_failure_policy_causes(spec: Obj, path: str) -> list[Cause]:
    """``validatePodFailurePolicy``: at most 20 rules, each with an action and exactly one
    of ``onExitCodes`` (operator, known container, sorted unique values, no 0 with In) and
    ``onPodConditions`` (qualified type, True/False/Unknown)."""
    rules = as_list(as_dict(spec.get("podFailurePolicy")).get("rules"))
    causes: list[Cause] = []
    if len(rules) > MAX_POLICY_RULES:
        causes.append(Cause.too_many(f"{path}.rules", len(rules), MAX_POLICY_RULES))
    pod_spec = as_dict(sub(spec, "template", "spec"))
    containers = {str(as_dict(c).get("name")) for key in ("containers", "initContainers")
                  for c in as_list(pod_spec.get(key))}
    for i, rule in enumerate(rules):
        causes.extend(_failure_rule_causes(spec, as_dict(rule), f"{path}.rules[{i}]",
                                           containers))
    return causes


def _index_interval(text: str, completions: int) -> tuple[int, int]:
    """``parseIndexInterval``: ``x`` or ``x-y`` below ``completions``."""
    bounds = text.split("-")
    if len(bounds) > 2:
        raise ValueError(f'the fragment "{text}" violates the requirement that an index '
                         "interval can have at most two parts separated by '-'")
    numbers = []
    for bound in bounds:
        if not _ATOI.fullmatch(bound):
            raise ValueError(f'cannot convert string to integer for index: "{bound}"')
        if int(bound) >= completions:
            raise ValueError(f'too large index: "{bound}"')
        numbers.append(int(bound))
    if len(numbers) == 2 and numbers[0] >= numbers[1]:
        raise ValueError(f"non-increasing order, previous: {numbers[0]}, current: "
                         f"{numbers[1]}")
    return numbers[0], numbers[-1]


def indexes_total(text: str, completions: int) -> int:
    """How many indexes ``text`` (``1,3-5``: increasing, each below ``completions``)
    names; raises ValueError with Kubernetes' message when it is malformed."""
    if not text:
        return 0
    last: int | None = None
    total = 0
    for part in text.split(","):
        first, end = _index_interval(part, completions)
        if last is not None and last >= first:
            raise ValueError(f"non-increasing order, previous: {last}, current: {first}")
        total += end - first + 1
        last = end
    return total


def _success_rule_causes(rule: Obj, path: str, completions: int) -> list[Cause]:
    causes: list[Cause] = []
    indexes = rule.get("succeededIndexes")
    count = rule.get("succeededCount")
    if count is None and indexes is None:
        causes.append(Cause.required(path, "at least one of succeededCount or "
                                           "succeededIndexes must be specified"))
    total = 0
    if indexes is not None:
        text = str(indexes)
        if len(text) > MAX_SUCCEEDED_INDEXES_LENGTH:
            causes.append(Cause.too_long(f"{path}.succeededIndexes",
                                         MAX_SUCCEEDED_INDEXES_LENGTH))
        try:
            total = indexes_total(text, completions)
        except ValueError as exc:
            causes.append(Cause.invalid(f"{path}.succeededIndexes", text,
                                        f"error parsing succeededIndexes: {exc}"))
    if count is not None:
        causes.extend(non_negative(f"{path}.succeededCount", count))
        if is_int(count) and count > completions:
            causes.append(Cause.invalid(
                f"{path}.succeededCount", count, f"must be less than or equal to "
                f"{completions} (the number of specified completions)"))
        if is_int(count) and indexes is not None and count > total:
            causes.append(Cause.invalid(
                f"{path}.succeededCount", count, f"must be less than or equal to {total} "
                "(the number of indexes in the specified succeededIndexes field)"))
    return causes


def _success_policy_causes(spec: Obj, path: str) -> list[Cause]:
    """``validateSuccessPolicy``: Indexed Jobs only; 1 to 20 rules, each with
    ``succeededIndexes`` (within ``completions``) and/or ``succeededCount``."""
    policy = spec.get("successPolicy")
    if (spec.get("completionMode") or "NonIndexed") != "Indexed":
        return [Cause.invalid(path, policy, "requires indexed completion mode")]
    rules = as_list(as_dict(policy).get("rules"))
    causes: list[Cause] = []
    if not rules:
        causes.append(Cause.required(f"{path}.rules", "at least one rules must be specified "
                                                      "when the successPolicy is specified"))
    if len(rules) > MAX_POLICY_RULES:
        causes.append(Cause.too_many(f"{path}.rules", len(rules), MAX_POLICY_RULES))
    completions = spec.get("completions")
    if not is_int(completions):
        return causes
    for i, rule in enumerate(rules):
        causes.extend(_success_rule_causes(as_dict(rule), f"{path}.rules[{i}]", completions))
    return causes


def _per_index_causes(spec: Obj, path: str) -> list[Cause]:
    """``backoffLimitPerIndex`` and ``maxFailedIndexes``: Indexed Jobs only, the latter
    with the former and at most ``completions``."""
    causes: list[Cause] = []
    per_index = spec.get("backoffLimitPerIndex")
    most = spec.get("maxFailedIndexes")
    causes.extend(non_negative(f"{path}.backoffLimitPerIndex", per_index))
    causes.extend(non_negative(f"{path}.maxFailedIndexes", most))
    if most is not None and per_index is None:
        causes.append(Cause.required(f"{path}.backoffLimitPerIndex",
                                     "when maxFailedIndexes is specified"))
    if (spec.get("completionMode") or "NonIndexed") != "Indexed":
        for key, value in (("backoffLimitPerIndex", per_index), ("maxFailedIndexes", most)):
            if value is not None:
                causes.append(Cause.invalid(f"{path}.{key}", value,
                                            "requires indexed completion mode"))
        return causes
    completions = spec.get("completions")
    if is_int(most) and is_int(completions) and most > completions:
        causes.append(Cause.invalid(f"{path}.maxFailedIndexes", most,
                                    "must be less than or equal to completions"))
    if is_int(most) and most > MAX_FAILED_INDEXES:
        causes.append(Cause.invalid(f"{path}.maxFailedIndexes", most,
                                    f"must be less than or equal to {MAX_FAILED_INDEXES}"))
    return causes


def _replacement_policy_causes(spec: Obj, path: str) -> list[Cause]:
    value = spec.get("podReplacementPolicy")
    if value is None:
        return []
    if spec.get("podFailurePolicy") is not None:
        return [] if value == "Failed" else [Cause.not_supported(path, value, ("Failed",))]
    if value not in REPLACEMENT_POLICIES:
        return [Cause.not_supported(path, value, REPLACEMENT_POLICIES)]
    return []


def _template_restart_causes(template: Any, path: str, *, failure_policy: bool) -> list[Cause]:
    restart = sub(template, "spec", "restartPolicy")
    if restart not in ("OnFailure", "Never"):
        return [Cause.not_supported(f"{path}.spec.restartPolicy", restart,
                                    ("OnFailure", "Never"))]
    if failure_policy and restart != "Never":
        return [Cause.invalid(f"{path}.spec.restartPolicy", restart,
                              'only "Never" is supported when podFailurePolicy is specified')]
    return []


def _job_spec_causes(spec: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        causes.extend(non_negative(f"{path}.{key}", spec.get(key)))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not is_int(deadline) or deadline <= 0):
        causes.append(Cause.invalid(f"{path}.activeDeadlineSeconds", deadline,
                                    "must be greater than 0"))
    mode = spec.get("completionMode") or "NonIndexed"
    if mode not in ("NonIndexed", "Indexed"):
        causes.append(Cause.not_supported(f"{path}.completionMode", mode,
                                          ("NonIndexed", "Indexed")))
    elif mode == "Indexed" and spec.get("completions") is None:
        causes.append(Cause.required(f"{path}.completions",
                                     "when completion mode is Indexed"))
    causes.extend(_per_index_causes(spec, path))
    if spec.get("podFailurePolicy") is not None:
        causes.extend(_pod_failure_policy_causes(spec, f"{path}.podFailurePolicy"))
    if spec.get("successPolicy") is not None:
        causes.extend(_success_policy_causes(spec, f"{path}.successPolicy"))
    causes.extend(_replacement_policy_causes(spec, f"{path}.podReplacementPolicy"))
    template = spec.get("template")
    causes.extend(validate_pod_template(template, f"{path}.template"))
    causes.extend(_template_restart_causes(template, f"{path}.template",
                                           failure_policy=spec.get("podFailurePolicy")
                                           is not None))
    return causes


def job_status(job: Obj) -> str:
    """The STATUS column of ``kubectl get jobs``."""
    conditions = {as_dict(c).get("type"): as_dict(c).get("status")
                  for c in as_list(sub(job, "status", "conditions"))}
    for kind, text in (("Failed", "Failed"), ("Complete", "Complete"),
                       ("FailureTarget", "FailureTarget"),
                       ("SuccessCriteriaMet", "SuccessCriteriaMet"),
                       ("Suspended", "Suspended")):
        if conditions.get(kind) == "True":
            return text
    if sub(job, "status", "terminating"):
        return "Terminating"
    return "Running"


def _job_duration(job: Obj) -> str:
    start = parse_time(sub(job, "status", "startTime"))
    if start is None:
        return ""
    end = parse_time(sub(job, "status", "completionTime"))
    if end is None:
        return format_age(sub(job, "status", "startTime"))
    return human_duration((end - start).total_seconds())


class JobStrategy(BuiltinStrategy):
    """Jobs: pods run to completion; a generated selector unless ``manualSelector``."""

    tracks_generation = True
    field_selectors = ("status.successful",)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}
        spec = ensure_dict(obj, "spec")
        if spec.get("manualSelector") is True:
            return
        m = ensure_dict(obj, "metadata")
        uid, name = m.get("uid") or "", m.get("name") or ""
        template = ensure_dict(spec, "template")
        tmeta = ensure_dict(template, "metadata")
        labels = ensure_dict(tmeta, "labels")
        labels.update({CONTROLLER_UID: uid, JOB_NAME: name, LEGACY_CONTROLLER_UID: uid,
                       LEGACY_JOB_NAME: name})
        spec["selector"] = {"matchLabels": {CONTROLLER_UID: uid}}

    def default(self, obj: Obj) -> None:
        spec = ensure_dict(obj, "spec")
        if spec.get("completions") is None and spec.get("parallelism") is None:
            spec["completions"] = 1
        if spec.get("parallelism") is None:
            spec["parallelism"] = 1
        if spec.get("backoffLimit") is None:
            spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None \
                else 6
        if not spec.get("completionMode"):
            spec["completionMode"] = "NonIndexed"
        if spec.get("suspend") is None:
            spec["suspend"] = False
        if spec.get("manualSelector") is None:
            spec.pop("manualSelector", None)
        if not spec.get("podReplacementPolicy"):
            spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") \
                else "TerminatingOrFailed"
        default_pod_template(spec.get("template"))

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes = _job_spec_causes(spec, "spec")
        selector = spec.get("selector")
        if selector is None:
            causes.append(Cause.required("spec.selector"))
            return causes
        causes.extend(label_selector_causes(selector, "spec.selector"))
        labels = sub(spec, "template", "metadata", "labels")
        if selector_is_empty(selector) or not selector_matches(selector, labels):
            causes.append(Cause.invalid("spec.template.metadata.labels", labels,
                                        "`selector` does not match template `labels`"))
        return causes

    def validate_immutable(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for key in ("selector", "completionMode", "completions", "podFailurePolicy",
                    "backoffLimitPerIndex", "successPolicy"):
            if sub(new, "spec", key) != sub(old, "spec", key):
                causes.append(Cause.immutable(f"spec.{key}", sub(new, "spec", key)))
        if sub(new, "spec", "template") != sub(old, "spec", "template"):
            causes.append(Cause.immutable("spec.template", sub(new, "spec", "template")))
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = as_dict(new.get("status"))
        causes: list[Cause] = []
        for key in ("active", "succeeded", "failed", "ready", "terminating"):
            causes.extend(non_negative(f"status.{key}", status.get(key)))
        return causes

    def kind_fields(self, obj: Obj) -> dict[str, str]:
        return {"status.successful": field_str(sub(obj, "status", "succeeded") or 0)}

    def table_columns(self) -> list[TableColumn]:
        def completions(o: Obj) -> str:
            done = sub(o, "status", "succeeded") or 0
            want = sub(o, "spec", "completions")
            if want is None:
                parallelism = sub(o, "spec", "parallelism") or 0
                return f"{done}/1 of {parallelism}" if parallelism > 1 else f"{done}/1"
            return f"{done}/{want}"

        return [
            TableColumn("Status", job_status, description="Status of the job."),
            TableColumn("Completions", completions,
                        description="Desired and successful completions."),
            TableColumn("Duration", _job_duration, description="How long the job ran."),
            AGE,
            TableColumn("Containers", lambda o: ",".join(
                str(as_dict(c).get("name") or "")
                for c in as_list(sub(o, "spec", "template", "spec", "containers"))),
                priority=1, description="Names of each container in the template."),
            TableColumn("Images", lambda o: ",".join(
                str(as_dict(c).get("image") or "")
                for c in as_list(sub(o, "spec", "template", "spec", "containers"))),
                priority=1, description="Images referenced by each container."),
            TableColumn("Selector", lambda o: selector_string(sub(o, "spec", "selector")),
                        priority=1, description="The label query over the job's pods."),
        ]


# =====================================================================================
# CronJob
# =====================================================================================


class CronJobStrategy(BuiltinStrategy):
    """CronJobs: create Jobs from ``jobTemplate`` on a cron ``schedule``."""

    tracks_generation = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}

    def default(self, obj: Obj) -> None:
        spec = ensure_dict(obj, "spec")
        if not spec.get("concurrencyPolicy"):
            spec["concurrencyPolicy"] = "Allow"
        if spec.get("suspend") is None:
            spec["suspend"] = False
        if spec.get("successfulJobsHistoryLimit") is None:
            spec["successfulJobsHistoryLimit"] = 3
        if spec.get("failedJobsHistoryLimit") is None:
            spec["failedJobsHistoryLimit"] = 1
        template = sub(spec, "jobTemplate", "spec")
        if isinstance(template, dict):
            default_pod_template(template.get("template"))

    def validate_spec(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes: list[Cause] = []
        name = meta(obj).get("name") or ""
        if len(name) > 52:
            causes.append(Cause.invalid("metadata.name", name,
                                        "must be no more than 52 characters"))
        schedule = spec.get("schedule")
        if not schedule:
            causes.append(Cause.required("spec.schedule"))
        elif not isinstance(schedule, str):
            causes.append(Cause.invalid("spec.schedule", schedule, "must be a string"))
        else:
            try:
                CronSchedule.parse(schedule)
            except CronError as exc:
                causes.append(Cause.invalid("spec.schedule", schedule, str(exc)))
        zone = spec.get("timeZone")
        if zone is not None:
            try:
                if not isinstance(zone, str) or not zone or zone.startswith(("/", ".")):
                    raise zoneinfo.ZoneInfoNotFoundError(zone)
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                causes.append(Cause.invalid("spec.timeZone", zone,
                                            "unknown time zone " + str(zone)))
        policy = spec.get("concurrencyPolicy")
        if policy not in ("Allow", "Forbid", "Replace"):
            causes.append(Cause.not_supported("spec.concurrencyPolicy", policy,
                                              ("Allow", "Forbid", "Replace")))
        for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit",
                    "failedJobsHistoryLimit"):
            causes.extend(non_negative(f"spec.{key}", spec.get(key)))
        job_spec = sub(spec, "jobTemplate", "spec")
        if not isinstance(job_spec, dict):
            causes.append(Cause.required("spec.jobTemplate.spec"))
        else:
            causes.extend(_job_spec_causes(job_spec, "spec.jobTemplate.spec"))
            selector = job_spec.get("selector")
            if selector is not None:
                causes.extend(label_selector_causes(selector, "spec.jobTemplate.spec.selector"))
        return causes

    def table_columns(self) -> list[TableColumn]:
        return [
            TableColumn("Schedule", lambda o: sub(o, "spec", "schedule") or "",
                        description="The schedule in cron format."),
            TableColumn("Timezone", lambda o: sub(o, "spec", "timeZone") or "<none>",
                        description="The time zone of the schedule."),
            TableColumn("Suspend", lambda o: "True" if sub(o, "spec", "suspend") else "False",
                        description="Whether new jobs are held back."),
            TableColumn("Active", lambda o: len(as_list(sub(o, "status", "active"))),
                        type="integer", description="Jobs running now."),
            TableColumn("Last Schedule", lambda o: format_age(
                sub(o, "status", "lastScheduleTime")) if sub(o, "status", "lastScheduleTime")
                else "<none>", description="When the last job was scheduled."),
            AGE,
        ]

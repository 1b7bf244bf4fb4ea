"""A Job's ``podFailurePolicy`` and ``successPolicy``, as Kubernetes' Job controller reads
them (``pod_failure_policy.go``, ``success_policy.go``).

Pure functions over JSON-shaped objects, so the controller calls them per pod without
hooks or I/O:

* :func:`match_pod_failure_policy` tells what the first rule matching a failed pod says:
  its action, whether the failure counts towards ``backoffLimit`` (not for ``Ignore``)
  and, for ``FailJob``, the message the Job's ``Failed`` condition carries;
* :func:`match_success_policy` tells whether the succeeded indexes of an ``Indexed`` Job
  meet one of its success rules (the message of ``SuccessCriteriaMet``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = ["FailureVerdict", "match_pod_failure_policy", "match_success_policy",
           "rule_indexes"]

Obj = Mapping[str, Any]

_NUMBER = re.compile(r"\+?[0-9]+")


@attrs.frozen
class FailureVerdict:
    """What the pod failure policy says about one failed pod."""

    action: str | None = None
    """The matching rule's action (``FailJob``, ``FailIndex``, ``Ignore``, ``Count``);
    None when no rule matched (the failure is counted)."""
    counted: bool = True
    """Whether the failure counts towards ``backoffLimit`` (and ``status.failed``)."""
    message: str | None = None
    """For ``FailJob``: the message of the Job's ``FailureTarget``/``Failed`` condition."""


COUNTED = FailureVerdict()
"""No policy, or no rule matched: the failure counts."""


def _terminated(status: Obj) -> Obj | None:
    return ((status.get("state") or {}).get("terminated")) or None


def _exit_code_matches(code: int, requirement: Obj) -> bool:
    values = requirement.get("values") or []
    operator = requirement.get("operator")
    if operator == "In":
        return code in values
    if operator == "NotIn":
        return code not in values
    return False


def _matching_container(pod: Obj, requirement: Obj) -> Obj | None:
    """The first terminated container (then init container) whose non-zero exit code meets
    ``requirement``."""
    status = pod.get("status") or {}
    name = requirement.get("containerName")
    for key in ("containerStatuses", "initContainerStatuses"):
        for container in status.get(key) or []:
            terminated = _terminated(container)
            if terminated is None or (name is not None and container.get("name") != name):
                continue
            code = int(terminated.get("exitCode") or 0)
            if code != 0 and _exit_code_matches(code, requirement):
                return container
    return None


def _matching_condition(pod: Obj, patterns: Sequence[Obj]) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        for pattern in patterns:
            if cond.get("type") == pattern.get("type") and \
                    cond.get("status") == pattern.get("status"):
                return cond
    return None


def _verdict(action: str, message: str) -> FailureVerdict | None:
    if action == "Ignore":
        return FailureVerdict("Ignore", counted=False)
    if action == "Count":
        return FailureVerdict("Count")
    if action == "FailJob":
        return FailureVerdict("FailJob", message=message)
    if action == "FailIndex":
        return FailureVerdict("FailIndex")
    return None  # an action we do not know: the rule is skipped


def match_pod_failure_policy(policy: Obj | None, pod: Obj) -> FailureVerdict:
    """Evaluate ``policy``'s rules in order against the failed ``pod``; the first that
    matches decides.

    :param policy: the Job's ``spec.podFailurePolicy`` (None: every failure counts).
    :param pod: a failed pod of the Job.
    :returns: the verdict (:data:`COUNTED` when no rule matched).
    """
    if not policy:
        return COUNTED
    m = pod.get("metadata") or {}
    where = f"{m.get('namespace')}/{m.get('name')}"
    for index, rule in enumerate(policy.get("rules") or []):
        action = str(rule.get("action") or "")
        verdict: FailureVerdict | None = None
        if rule.get("onExitCodes") is not None:
            container = _matching_container(pod, rule["onExitCodes"])
            if container is not None:
                code = (_terminated(container) or {}).get("exitCode")
                verdict = _verdict(action, f"Container {container.get('name')} for pod "
                                           f"{where} failed with exit code {code} matching "
                                           f"{action} rule at index {index}")
        elif rule.get("onPodConditions"):
            cond = _matching_condition(pod, rule["onPodConditions"])
            if cond is not None:
                verdict = _verdict(action, f"Pod {where} has condition {cond.get('type')} "
                                           f"matching {action} rule at index {index}")
        if verdict is not None:
            return verdict
    return COUNTED


def rule_indexes(text: str, completions: int) -> set[int] | None:
    """The indexes a success rule's ``succeededIndexes`` names (``0-2,5``), those below
    ``completions``; None when the text does not parse."""
    out: set[int] = set()
    for part in text.split(","):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(_NUMBER.fullmatch(b) for b in bounds):
            return None
        first, last = int(bounds[0]), int(bounds[-1])
        out.update(range(first, min(last, completions - 1) + 1))
    return out


def match_success_policy(policy: Obj | None, completions: int,
                         succeeded: set[int]) -> str | None:
    """Whether the ``succeeded`` indexes meet one of ``policy``'s rules (in order).

    A rule with ``succeededIndexes`` is met when all of them succeeded, or, with
    ``succeededCount`` too, when that many of them did; a rule with only
    ``succeededCount`` when that many indexes succeeded.

    :param policy: the Job's ``spec.successPolicy``.
    :param completions: the Job's ``spec.completions``.
    :param succeeded: the indexes that succeeded.
    :returns: the ``SuccessCriteriaMet`` message (``Matched rules at index N``), or None.
    """
    if not policy or not succeeded:
        return None
    for index, rule in enumerate(policy.get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            wanted = rule_indexes(str(rule["succeededIndexes"]), completions)
            if not wanted:
                continue
            done = len(wanted & succeeded)
            met = done == len(wanted) or (count is not None and done >= int(count))
        else:
            met = count is not None and len(succeeded) >= int(count)
        if met:
            return f"Matched rules at index {index}"
    return None

"""Small helpers over JSON-shaped objects that several controllers share.

Objects from informer caches are shared: every helper here reads them and builds new
dicts; none changes its argument.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from kubeling.api.selectors import LabelSelector, SelectorError, label_selector_from_dict

__all__ = [
    "condition",
    "controller_ref",
    "fmt_time",
    "is_pod_active",
    "is_pod_available",
    "is_pod_ready",
    "parse_time",
    "pod_ready_since",
    "safe_encode",
    "selector_of",
]

Obj = dict[str, Any]

_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return meta(obj).get("labels") or {}


def ns_name(obj: Mapping[str, Any]) -> str:
    m = meta(obj)
    return f"{m.get('namespace')}/{m.get('name')}" if m.get("namespace") else str(m.get("name"))


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return namespace or None, name


def fmt_time(when: datetime.datetime) -> str:
    """``metav1.Time``: RFC 3339, seconds, UTC."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_micro(when: datetime.datetime) -> str:
    """``metav1.MicroTime``: RFC 3339 with microseconds, UTC."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime.datetime | None:
    """A ``metav1.Time``/``MicroTime`` string as an aware datetime (None if unset/bad)."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The status condition of type ``kind``, if any."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def set_condition(conditions: list[Obj], new: Obj, now: str) -> list[Obj]:
    """``conditions`` with ``new`` in place of the same type; lastTransitionTime kept when
    the status did not change.  Returns a new list."""
    out: list[Obj] = []
    replaced = False
    for cond in conditions:
        if cond.get("type") == new["type"]:
            merged = dict(new)
            if cond.get("status") == new.get("status") and cond.get("lastTransitionTime"):
                merged["lastTransitionTime"] = cond["lastTransitionTime"]
            else:
                merged.setdefault("lastTransitionTime", now)
            out.append(merged)
            replaced = True
        else:
            out.append(cond)
    if not replaced:
        merged = dict(new)
        merged.setdefault("lastTransitionTime", now)
        out.append(merged)
    return out


def selector_of(obj: Mapping[str, Any]) -> LabelSelector | None:
    """``spec.selector`` of a workload as a selector; None when it is invalid."""
    try:
        return label_selector_from_dict((obj.get("spec") or {}).get("selector"))
    except SelectorError:
        return None


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref(owner: Mapping[str, Any], *, controller: bool = True,
              block: bool = True) -> Obj:
    """An ownerReference pointing at ``owner``."""
    m = meta(owner)
    return {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"),
            "name": m.get("name"), "uid": m.get("uid"), "controller": controller,
            "blockOwnerDeletion": block}


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def pod_ready_since(pod: Mapping[str, Any]) -> datetime.datetime | None:
    cond = condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime"))


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int,
                     now: datetime.datetime) -> bool:
    """Ready for at least ``min_ready_seconds``."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_since(pod)
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def is_pod_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """Neither finished nor being deleted (Kubernetes' ``IsPodActive``)."""
    return not is_pod_terminal(pod) and meta(pod).get("deletionTimestamp") is None


def safe_encode(data: bytes, length: int = 10) -> str:
    """A short DNS-safe string from ``data`` (no vowels, so no words)."""
    number = int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
    out = []
    for _ in range(length):
        number, digit = divmod(number, len(_SAFE))
        out.append(_SAFE[digit])
    return "".join(out)


def deep_copy(value: Any) -> Any:
    return copy.deepcopy(value)


def pod_from_template(template: Mapping[str, Any], owner: Mapping[str, Any], *,
                      generate_name: str, extra_labels: Mapping[str, str] | None = None,
                      extra_annotations: Mapping[str, str] | None = None,
                      finalizers: Iterable[str] = ()) -> Obj:
    """A new pod for ``owner`` from its pod template (Kubernetes' ``GetPodFromTemplate``)."""
    tmeta = template.get("metadata") or {}
    pod_labels = dict(tmeta.get("labels") or {})
    pod_labels.update(extra_labels or {})
    annotations = dict(tmeta.get("annotations") or {})
    annotations.update(extra_annotations or {})
    pod_meta: Obj = {"generateName": generate_name, "labels": pod_labels,
                     "ownerReferences": [owner_ref(owner)]}
    if annotations:
        pod_meta["annotations"] = annotations
    pod_finalizers = [*(tmeta.get("finalizers") or []), *finalizers]
    if pod_finalizers:
        pod_meta["finalizers"] = pod_finalizers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """An absolute number from an int-or-percent (``"25%"``) of ``total``."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.endswith("%"):
        try:
            percent = int(text[:-1])
        except ValueError:
            return 0
        scaled = percent * total
        return -(-scaled // 100) if round_up else scaled // 100
    try:
        return int(text)
    except ValueError:
        return 0


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether some toleration tolerates ``taint`` (Kubernetes' ``ToleratesTaint``)."""
    return any(toleration_matches(t, taint) for t in tolerations)


def toleration_matches(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def node_selector_term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """One ``NodeSelectorTerm`` (matchExpressions on labels, matchFields on the name)."""
    node_labels = labels(node)
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    for expr in expressions:
        if not _node_requirement(expr, node_labels.get(expr.get("key", "")),
                                 expr.get("key", "") in node_labels):
            return False
    for expr in fields:
        if expr.get("key") != "metadata.name":
            return False
        if not _node_requirement(expr, meta(node).get("name"), True):
            return False
    return True


def _node_requirement(expr: Mapping[str, Any], value: Any, present: bool) -> bool:
    operator = expr.get("operator")
    values = expr.get("values") or []
    if operator == "In":
        return present and value in values
    if operator == "NotIn":
        return not present or value not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and values:
        try:
            have, want = int(value), int(values[0])
        except (TypeError, ValueError):
            return False
        return have > want if operator == "Gt" else have < want
    return False


def node_matches_pod(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """nodeSelector and required node affinity of a pod spec against a node."""
    node_labels = labels(node)
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if node_labels.get(key) != value:
            return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required:
        terms = required.get("nodeSelectorTerms") or []
        if not any(node_selector_term_matches(t, node) for t in terms):
            return False
    return True

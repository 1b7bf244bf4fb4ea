"""Validation helpers shared by every kind: names, labels, annotations, object metadata."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubeling.api.errors import Cause

__all__ = [
    "DNS1035_LABEL_ERROR",
    "DNS1123_LABEL_ERROR",
    "DNS1123_SUBDOMAIN_ERROR",
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "validate_object_meta",
]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

DNS1123_LABEL_ERROR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_LABEL_ERROR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_QUALIFIED_NAME_ERROR = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_ERROR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
TOTAL_ANNOTATION_BYTES = 256 * 1024


def is_dns1123_label(value: str) -> list[str]:
    """Problems with ``value`` as an RFC 1123 label (empty list: valid)."""
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        problems.append(DNS1123_LABEL_ERROR)
    return problems


def is_dns1123_subdomain(value: str) -> list[str]:
    """Problems with ``value`` as an RFC 1123 subdomain (empty list: valid)."""
    problems = []
    if len(value) > 253:
        problems.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        problems.append(DNS1123_SUBDOMAIN_ERROR)
    return problems


def is_dns1035_label(value: str) -> list[str]:
    """Problems with ``value`` as an RFC 1035 label (service names)."""
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.match(value):
        problems.append(DNS1035_LABEL_ERROR)
    return problems


def is_qualified_name(value: str) -> list[str]:
    """Problems with ``value`` as a label/annotation key (``[prefix/]name``)."""
    prefix, slash, name = value.rpartition("/")
    if not slash:
        prefix, name = "", value
    problems = []
    if slash and not prefix:
        problems.append("prefix part must be non-empty")
    elif prefix:
        problems.extend("prefix part " + p for p in is_dns1123_subdomain(prefix))
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_NAME.match(name):
        problems.append(_QUALIFIED_NAME_ERROR)
    return problems


def is_label_value(value: str) -> list[str]:
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(value):
        problems.append(_LABEL_VALUE_ERROR)
    return problems


def validate_labels(labels: Any, field: str) -> list[Cause]:
    causes: list[Cause] = []
    if labels is None:
        return causes
    if not isinstance(labels, Mapping):
        return [Cause.invalid(field, labels, "must be a map of strings")]
    for key, value in labels.items():
        for problem in is_qualified_name(key):
            causes.append(Cause.invalid(field, key, problem))
        if not isinstance(value, str):
            causes.append(Cause.invalid(f"{field}", value, "label values must be strings"))
            continue
        for problem in is_label_value(value):
            causes.append(Cause.invalid(field, value, problem))
    return causes


def validate_annotations(annotations: Any, field: str) -> list[Cause]:
    causes: list[Cause] = []
    if annotations is None:
        return causes
    if not isinstance(annotations, Mapping):
        return [Cause.invalid(field, annotations, "must be a map of strings")]
    total = 0
    for key, value in annotations.items():
        for problem in is_qualified_name(key.lower()):
            causes.append(Cause.invalid(field, key, problem))
        total += len(key) + len(value if isinstance(value, str) else str(value))
    if total > TOTAL_ANNOTATION_BYTES:
        causes.append(Cause.too_long(field, TOTAL_ANNOTATION_BYTES))
    return causes


def validate_object_meta(meta: Mapping[str, Any], *, namespaced: bool,
                         name_check: Any = is_dns1123_subdomain) -> list[Cause]:
    """Checks every kind shares: name (with ``name_check``), namespace, labels, annotations,
    finalizers, owner references."""
    causes: list[Cause] = []
    name = meta.get("name")
    if not name:
        causes.append(Cause.required("metadata.name", "name or generateName is required"))
    elif name_check is not None:
        for problem in name_check(name):
            causes.append(Cause.invalid("metadata.name", name, problem))
    namespace = meta.get("namespace")
    if namespaced:
        if not namespace:
            causes.append(Cause.required("metadata.namespace"))
        else:
            for problem in is_dns1123_label(namespace):
                causes.append(Cause.invalid("metadata.namespace", namespace, problem))
    elif namespace:
        causes.append(Cause.forbidden("metadata.namespace",
                                      "not allowed on this type"))
    causes.extend(validate_labels(meta.get("labels"), "metadata.labels"))
    causes.extend(validate_annotations(meta.get("annotations"), "metadata.annotations"))
    finalizers = meta.get("finalizers") or []
    for i, finalizer in enumerate(finalizers):
        if not isinstance(finalizer, str):
            causes.append(Cause.invalid(f"metadata.finalizers[{i}]", finalizer,
                                        "must be a string"))
            continue
        for problem in is_qualified_name(finalizer):
            causes.append(Cause.invalid(f"metadata.finalizers[{i}]", finalizer, problem))
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        base = f"metadata.ownerReferences[{i}]"
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                causes.append(Cause.required(f"{base}.{key}"))
    controllers = [r for r in meta.get("ownerReferences") or [] if r.get("controller")]
    if len(controllers) > 1:
        causes.append(Cause.invalid("metadata.ownerReferences", controllers,
                                    "Only one reference can have Controller set to true"))
    return causes

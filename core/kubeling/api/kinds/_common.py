"""Helpers the built-in kinds share: field paths, ages, IP checks, selectors, table cells.

Nothing here knows a particular kind; the per-kind modules combine these.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kubeling.api.errors import Cause
from kubeling.api.selectors import SelectorError, label_selector_from_dict
from kubeling.api.strategy import Strategy, TableColumn
from kubeling.api.validation import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    validate_labels,
)

__all__ = [
    "AGE",
    "INVALID_IP",
    "BuiltinStrategy",
    "Obj",
    "age_column",
    "format_age",
    "human_duration",
    "not_found",
]

Obj = dict[str, Any]

INVALID_IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
INVALID_CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
PORT_RANGE = "must be between 1 and 65535, inclusive"
NON_NEGATIVE = "must be greater than or equal to 0"
PROTOCOLS = ("SCTP", "TCP", "UDP")
"""Port protocols, in the (sorted) order Kubernetes lists them in messages."""


# -- small accessors ----------------------------------------------------------------------


def meta(obj: Obj) -> Obj:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def sub(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...``, or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def ensure_dict(parent: Obj, key: str) -> Obj:
    """``parent[key]`` as a dict, created (or replaced if null) when absent."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


def not_found(field: str, value: Any) -> Cause:
    """Kubernetes' ``field.NotFound``: ``Not found: "x"``."""
    shown = '"' + value.replace('"', '\\"') + '"' if isinstance(value, str) else str(value)
    return Cause(field, f"Not found: {shown}", "FieldValueNotFound")


# -- time ----------------------------------------------------------------------------------


def now() -> datetime.datetime:
    """The current time in UTC (one place to patch in tests)."""
    return datetime.datetime.now(datetime.UTC)


def rfc3339(when: datetime.datetime | None = None) -> str:
    """A ``metav1.Time`` string: seconds precision, UTC, ``Z``."""
    return (when or now()).astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime.datetime | None:
    """An RFC 3339 timestamp (``metav1.Time`` or ``MicroTime``), or None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


def human_duration(seconds: float) -> str:
    """How ``kubectl`` shows a duration: ``45s``, ``3m12s``, ``15m``, ``5h4m``, ``2d3h``, ``1y``.

    Follows the rounding steps of Kubernetes' ``HumanDuration``: full precision while short,
    coarser as it grows; a slightly negative value (clock skew) reads ``0s``.
    """
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def format_age(timestamp: Any, when: datetime.datetime | None = None) -> str:
    """Time since ``timestamp`` as ``kubectl`` prints it; ``<unknown>`` when unset."""
    then = parse_time(timestamp)
    if then is None:
        return "<unknown>"
    return human_duration(((when or now()) - then).total_seconds())


def age_column() -> TableColumn:
    """The AGE column: time since ``metadata.creationTimestamp``."""
    return TableColumn("Age", lambda o: format_age(meta(o).get("creationTimestamp")),
                       description="Time since the object was created.")


AGE = age_column()


# -- field checks ----------------------------------------------------------------------------


def name_causes(field: str, value: Any, check: Callable[[str], list[str]]) -> list[Cause]:
    """Each problem ``check`` finds with a string ``value`` as an Invalid cause."""
    if not isinstance(value, str):
        return [Cause.invalid(field, value, "must be a string")]
    return [Cause.invalid(field, value, p) for p in check(value)]


def label_name_causes(field: str, value: Any) -> list[Cause]:
    return name_causes(field, value, is_qualified_name)


def label_value_causes(field: str, value: Any) -> list[Cause]:
    return name_causes(field, value, is_label_value)


def dns_label_causes(field: str, value: Any) -> list[Cause]:
    return name_causes(field, value, is_dns1123_label)


def dns_subdomain_causes(field: str, value: Any) -> list[Cause]:
    return name_causes(field, value, is_dns1123_subdomain)


def non_negative(field: str, value: Any) -> list[Cause]:
    """``ValidateNonnegativeField`` (also rejects a non-integer)."""
    if value is None:
        return []
    if not is_int(value):
        return [Cause.invalid(field, value, "must be an integer")]
    return [Cause.invalid(field, value, NON_NEGATIVE)] if value < 0 else []


def port_number_causes(field: str, value: Any) -> list[Cause]:
    if not is_int(value) or not 1 <= value <= 65535:
        return [Cause.invalid(field, value, PORT_RANGE)]
    return []


_PORT_NAME_CHARS = re.compile(r"^[-a-z0-9]+$")


def port_name_problems(name: str) -> list[str]:
    """Kubernetes' ``IsValidPortName`` (an IANA service name)."""
    problems = []
    if len(name) > 15:
        problems.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARS.match(name):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        problems.append("must contain at least one letter (a-z)")
    if "--" in name:
        problems.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        problems.append("must not begin or end with a hyphen")
    return problems


def port_num_or_name_causes(field: str, value: Any) -> list[Cause]:
    """``ValidatePortNumOrName``: an int-or-string port (``targetPort``, probe ports)."""
    if is_int(value):
        return port_number_causes(field, value)
    if isinstance(value, str):
        return [Cause.invalid(field, value, p) for p in port_name_problems(value)]
    return [Cause.invalid(field, value, "must be an integer or a string")]


def protocol_causes(field: str, value: Any) -> list[Cause]:
    if not value:
        return [Cause.required(field)]
    if value not in PROTOCOLS:
        return [Cause.not_supported(field, value, PROTOCOLS)]
    return []


def parse_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def ip_causes(field: str, value: Any) -> list[Cause]:
    return [] if parse_ip(value) is not None else [Cause.invalid(field, value, INVALID_IP)]


def cidr_causes(field: str, value: Any) -> list[Cause]:
    try:
        ipaddress.ip_network(value, strict=False)
    except (ValueError, TypeError):
        return [Cause.invalid(field, value, INVALID_CIDR)]
    if not isinstance(value, str) or "/" not in value:
        return [Cause.invalid(field, value, INVALID_CIDR)]
    return []


def non_special_ip_causes(field: str, value: str) -> list[Cause]:
    """``ValidateNonSpecialIP``: endpoint addresses may not be unspecified, loopback or
    link-local."""
    ip = parse_ip(value)
    if ip is None:
        return [Cause.invalid(field, value, "must be a valid IP address")]
    causes = []
    if ip.is_unspecified:
        causes.append(Cause.invalid(field, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        causes.append(Cause.invalid(field, value,
                                    "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local and not ip.is_multicast:
        causes.append(Cause.invalid(
            field, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if _is_link_local_multicast(ip):
        causes.append(Cause.invalid(
            field, value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return causes


def _is_link_local_multicast(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv4Address):
        return ip in ipaddress.ip_network("224.0.0.0/24")
    return ip in ipaddress.ip_network("ff02::/16")


def base64_problem(value: Any) -> str | None:
    """Why ``value`` is not standard padded base64 (what ``[]byte`` fields carry), or None."""
    if not isinstance(value, str):
        return "must be a base64-encoded string"
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        position = next((i for i, ch in enumerate(value)
                         if not (ch.isascii() and (ch.isalnum() or ch in "+/="))), None)
        if position is None:
            position = len(value) - len(value) % 4 if len(value) % 4 else \
                max(value.find("="), 0)
        return f"illegal base64 data at input byte {position}"
    return None


# -- label selectors ----------------------------------------------------------------------------


def label_selector_causes(selector: Any, field: str) -> list[Cause]:
    """``ValidateLabelSelector`` of a ``metav1.LabelSelector`` dict (strict values)."""
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return [Cause.invalid(field, selector, "must be an object")]
    causes = validate_labels(selector.get("matchLabels"), f"{field}.matchLabels")
    for i, expr in enumerate(as_list(selector.get("matchExpressions"))):
        path = f"{field}.matchExpressions[{i}]"
        expr = as_dict(expr)
        operator = expr.get("operator")
        values = as_list(expr.get("values"))
        if operator in ("In", "NotIn"):
            if not values:
                causes.append(Cause.required(
                    f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                causes.append(Cause.forbidden(
                    f"{path}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(Cause.invalid(f"{path}.operator", operator,
                                        "not a valid selector operator"))
        causes.extend(label_name_causes(f"{path}.key", expr.get("key", "")))
        for j, value in enumerate(values):
            causes.extend(label_value_causes(f"{path}.values[{j}]", value))
    return causes


def selector_parses(selector: Any) -> bool:
    """Whether a ``metav1.LabelSelector`` dict converts to a selector at all."""
    try:
        label_selector_from_dict(selector)
    except SelectorError:
        return False
    return True


def selector_matches(selector: Any, labels: Mapping[str, str] | None) -> bool:
    """Whether a ``metav1.LabelSelector`` dict selects ``labels`` (None selects nothing)."""
    try:
        return label_selector_from_dict(selector).matches(labels or {})
    except SelectorError:
        return False


def selector_is_empty(selector: Any) -> bool:
    sel = as_dict(selector)
    return not sel.get("matchLabels") and not sel.get("matchExpressions")


def selector_string(selector: Any) -> str:
    """``kubectl``'s rendering of a ``metav1.LabelSelector`` (``app=web,tier in (a,b)``)."""
    if selector is None:
        return ""
    try:
        return str(label_selector_from_dict(selector))
    except SelectorError:
        return "<invalid>"


def format_labels(labels: Any) -> str:
    """``k=v,k2=v2`` sorted by key, or ``<none>``."""
    if not isinstance(labels, Mapping) or not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def join_limited(items: Iterable[str], total: int, limit: int = 3, empty: str = "") -> str:
    """The first ``limit`` items joined with commas, then `` + N more...``."""
    shown = list(items)[:limit]
    text = ",".join(shown)
    if total > limit:
        return f"{text} + {total - limit} more..."
    return text or empty


# -- the strategy base the built-in kinds share ----------------------------------------------


class BuiltinStrategy(Strategy):
    """A :class:`Strategy` that also knows its kind's selectable fields.

    ``selectable_fields`` is what Kubernetes calls a kind's field set (``GetAttrs``): the
    values a field selector compares against, rendered as strings (``"true"``/``"false"``
    for booleans, ``""`` for unset).  ``field_selectors`` names them for the kind's
    :class:`~kubeling.api.registry.KindInfo`.
    """

    field_selectors: tuple[str, ...] = ()
    return_deleted_object: bool = False
    """A delete that removes the object at once answers with the object, not a Status."""

    def selectable_fields(self, obj: Obj) -> dict[str, str]:
        """Field name -> value for field selectors (``metadata.name`` and friends first)."""
        m = meta(obj)
        fields = {"metadata.name": str(m.get("name") or "")}
        if m.get("namespace") is not None:
            fields["metadata.namespace"] = str(m.get("namespace") or "")
        fields.update(self.kind_fields(obj))
        return fields

    def kind_fields(self, obj: Obj) -> dict[str, str]:
        """The kind-specific part of :meth:`selectable_fields`."""
        return {}


def field_str(value: Any) -> str:
    """A field selector value: booleans as ``true``/``false``, None as ``""``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

"""API errors as Kubernetes ``Status`` objects.

Every error the API server returns is an :class:`ApiError`, rendered as a ``Status`` with
the code, reason and message Kubernetes uses for the same situation, so that ``kubectl``
prints ``Error from server (NotFound): pods "nope" not found`` as it does against a real
cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

__all__ = ["ApiError", "Cause", "resource_name"]


@attrs.frozen
class Cause:
    """One reason a request is invalid (``details.causes[]`` of a Status)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    # constructors matching Kubernetes' field error types
    @classmethod
    def required(cls, field: str, detail: str = "") -> Cause:
        msg = "Required value" + (f": {detail}" if detail else "")
        return cls(field, msg, "FieldValueRequired")

    @classmethod
    def invalid(cls, field: str, value: Any, detail: str) -> Cause:
        return cls(field, f"Invalid value: {_render(value)}: {detail}", "FieldValueInvalid")

    @classmethod
    def not_supported(cls, field: str, value: Any, supported: Iterable[str]) -> Cause:
        values = ", ".join(f'"{v}"' for v in supported)
        return cls(field, f"Unsupported value: {_render(value)}: supported values: {values}",
                   "FieldValueNotSupported")

    @classmethod
    def invalid_omitted(cls, field: str, detail: str) -> Cause:
        """``field.Invalid`` with the value left out (Kubernetes' ``OmitValueType``)."""
        return cls(field, f"Invalid value: {detail}", "FieldValueInvalid")

    @classmethod
    def too_many(cls, field: str, count: int, limit: int) -> Cause:
        return cls(field, f"Too many: {count}: must have at most {limit} items",
                   "FieldValueTooMany")

    @classmethod
    def duplicate(cls, field: str, value: Any) -> Cause:
        return cls(field, f"Duplicate value: {_render(value)}", "FieldValueDuplicate")

    @classmethod
    def forbidden(cls, field: str, detail: str) -> Cause:
        return cls(field, f"Forbidden: {detail}", "FieldValueForbidden")

    @classmethod
    def too_long(cls, field: str, limit: int) -> Cause:
        return cls(field, f"Too long: may not be more than {limit} bytes", "FieldValueTooLong")

    @classmethod
    def immutable(cls, field: str, value: Any = None) -> Cause:
        prefix = f"Invalid value: {_render(value)}: " if value is not None else "Invalid value: "
        return cls(field, prefix + "field is immutable", "FieldValueInvalid")

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def _render(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, separators=(",", ":"))
    return str(value)


def resource_name(plural: str, group: str) -> str:
    """``pods`` or ``deployments.apps``: how Kubernetes names a resource in messages."""
    return f"{plural}.{group}" if group else plural


class ApiError(Exception):
    """An error the API server answers with, as a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, *,
                 details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status

    # -- constructors, one per Kubernetes StatusReason we use ----------------------

    @classmethod
    def not_found(cls, plural: str, group: str, name: str) -> ApiError:
        res = resource_name(plural, group)
        return cls(404, "NotFound", f'{res} "{name}" not found',
                   details={"name": name, "group": group, "kind": plural} if group else
                   {"name": name, "kind": plural})

    @classmethod
    def already_exists(cls, plural: str, group: str, name: str) -> ApiError:
        res = resource_name(plural, group)
        details = {"name": name, "kind": plural}
        if group:
            details["group"] = group
        return cls(409, "AlreadyExists", f'{res} "{name}" already exists', details=details)

    @classmethod
    def conflict(cls, plural: str, group: str, name: str, detail: str) -> ApiError:
        res = resource_name(plural, group)
        details = {"name": name, "kind": plural}
        if group:
            details["group"] = group
        return cls(409, "Conflict", f'Operation cannot be fulfilled on {res} "{name}": {detail}',
                   details=details)

    @classmethod
    def stale(cls, plural: str, group: str, name: str) -> ApiError:
        return cls.conflict(plural, group, name,
                            "the object has been modified; please apply your changes to the "
                            "latest version and try again")

    @classmethod
    def invalid(cls, kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
        qualified = f"{kind}.{group}" if group else kind
        if len(causes) == 1:
            summary = str(causes[0])
        else:
            summary = "[" + ", ".join(str(c) for c in causes) + "]"
        details: dict[str, Any] = {"name": name, "kind": kind,
                                   "causes": [c.to_dict() for c in causes]}
        if group:
            details["group"] = group
        return cls(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}',
                   details=details)

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def gone(cls, message: str) -> ApiError:
        return cls(410, "Expired", message)

    @classmethod
    def too_large(cls, limit: int) -> ApiError:
        return cls(413, "RequestEntityTooLarge",
                   f"Request entity too large: limit is {limit} bytes")

    @classmethod
    def method_not_allowed(cls, verb: str, what: str) -> ApiError:
        return cls(405, "MethodNotAllowed", f"{verb} is not supported on {what}")

    @classmethod
    def unsupported_media_type(cls, content_type: str, supported: Iterable[str]) -> ApiError:
        return cls(415, "UnsupportedMediaType",
                   f'the body of the request was in an unknown format "{content_type}"; '
                   f"accepted media types include: {', '.join(supported)}")

    @classmethod
    def not_acceptable(cls, accept: str, supported: Iterable[str]) -> ApiError:
        return cls(406, "NotAcceptable",
                   f"only the following media types are accepted: {', '.join(supported)}"
                   f" (asked for {accept!r})")

    @classmethod
    def forbidden(cls, message: str) -> ApiError:
        return cls(403, "Forbidden", message)

    @classmethod
    def unauthorized(cls, message: str = "Unauthorized") -> ApiError:
        return cls(401, "Unauthorized", message)

    @classmethod
    def resource_not_found(cls, path: str) -> ApiError:
        return cls(404, "NotFound", "the server could not find the requested resource",
                   details={"causes": [{"reason": "UnexpectedServerResponse",
                                        "message": f"no resource at {path}"}]})

    @classmethod
    def timeout(cls, message: str) -> ApiError:
        return cls(504, "Timeout", message)

    @classmethod
    def unavailable(cls, message: str) -> ApiError:
        return cls(503, "ServiceUnavailable", message)

    @classmethod
    def internal(cls, message: str) -> ApiError:
        return cls(500, "InternalError", f"Internal error occurred: {message}")

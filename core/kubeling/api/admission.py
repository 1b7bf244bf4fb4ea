"""Admission: plugins that may change (mutating) or refuse (validating) a write."""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from kubeling.api.auth import UserInfo
from kubeling.api.registry import KindInfo

__all__ = ["AdmissionRequest", "Admitter"]


@attrs.define(kw_only=True)
class AdmissionRequest:
    """One write on its way to storage."""

    operation: str
    """CREATE, UPDATE or DELETE."""
    kind: KindInfo
    namespace: str | None
    name: str
    subresource: str | None
    object: dict[str, Any] | None
    """The object as it will be stored; mutating admitters may change it in place."""
    old_object: dict[str, Any] | None
    user: UserInfo
    dry_run: bool = False


class Admitter(Protocol):
    name: str
    mutating: bool
    order: int

    def admit(self, request: AdmissionRequest) -> None:
        """Change ``request.object`` (mutating admitters) or raise ApiError to refuse."""

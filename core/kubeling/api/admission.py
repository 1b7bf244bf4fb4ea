"""Admission: plugins that may change (mutating) or refuse (validating) a write."""

from __future__ import annotations

from collections.abc import Callable
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
    lookup: Callable[[str, str, str | None, str], dict[str, Any] | None] | None = None
    """``lookup(group, plural, namespace, name)``: another object as the API server's watch
    cache holds it (read-only), or None.  E.g. a PriorityClass for a pod's priority."""

    list_objects: Callable[[str, str, str | None], list[dict[str, Any]]] | None = None
    """``list_objects(group, plural, namespace)``: every cached object of a kind."""

    def get(self, group: str, plural: str, namespace: str | None, name: str
            ) -> dict[str, Any] | None:
        """Read another object from the server's cache (None when absent or unknown kind)."""
        return self.lookup(group, plural, namespace, name) if self.lookup else None

    def list(self, group: str, plural: str, namespace: str | None = None
             ) -> list[dict[str, Any]]:
        """Every object of a kind (in one namespace) from the server's cache; read-only."""
        return self.list_objects(group, plural, namespace) if self.list_objects else []


class Admitter(Protocol):
    name: str
    mutating: bool
    order: int

    def admit(self, request: AdmissionRequest) -> None:
        """Change ``request.object`` (mutating admitters) or raise ApiError to refuse."""

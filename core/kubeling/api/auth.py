"""Who is asking and may they: the user of a request and its authorization attributes."""

from __future__ import annotations

from typing import Protocol

import attrs

__all__ = ["ADMIN", "Authenticator", "Authorizer", "RequestAttributes", "UserInfo"]


@attrs.frozen(kw_only=True)
class UserInfo:
    """An authenticated user (Kubernetes' user.Info)."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = attrs.field(factory=dict)


ADMIN = UserInfo(name="system:admin", groups=("system:masters", "system:authenticated"))
"""The user of every request when no authenticator is configured."""


@attrs.frozen(kw_only=True)
class RequestAttributes:
    """What an authorizer decides on (Kubernetes' authorizer.Attributes)."""

    user: UserInfo
    verb: str
    """get, list, watch, create, update, patch, delete, deletecollection (or the HTTP verb,
    lower-cased, for non-resource requests)."""
    resource_request: bool
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


class Authenticator(Protocol):
    def authenticate(self, headers: dict[str, str]) -> UserInfo | None:
        """The user the request's headers prove, None to let the next one try; raise
        ApiError(401) for credentials that are present but wrong."""


class Authorizer(Protocol):
    def authorize(self, attributes: RequestAttributes) -> str:
        """``"allow"``, ``"deny"`` or ``"no-opinion"``."""

"""The transport-neutral request and response of the API server.

The HTTP front (aiohttp) and the in-process client transport both build an
:class:`ApiRequest` and run it through the same :meth:`ApiServer.handle`, so in-process
components exercise exactly the handler stack that kubectl does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import attrs
import orjson

from kubeling.api.auth import UserInfo

__all__ = ["ApiRequest", "ApiResponse"]

JSON = "application/json"


@attrs.define(kw_only=True)
class ApiRequest:
    method: str
    path: str
    query: Mapping[str, str] = attrs.field(factory=dict)
    """Query parameters (the last value of a repeated one)."""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    """Header names in lower case."""
    body: bytes = b""
    user: UserInfo | None = None

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


@attrs.define(kw_only=True)
class ApiResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = attrs.field(factory=dict)
    stream: AsyncIterator[bytes] | None = None
    """For watches: chunks to send as they come (the body is then empty)."""
    upgrade: Callable[[Any], Awaitable[Any]] | None = None
    """For connection upgrades (exec, attach, port-forward over WebSocket): the HTTP front
    calls it with its own request object and returns what it returns."""

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None
             ) -> ApiResponse:
        return cls(status=status, body=orjson.dumps(data), headers=headers or {})

    @classmethod
    def raw(cls, body: bytes, status: int = 200, headers: dict[str, str] | None = None
            ) -> ApiResponse:
        return cls(status=status, body=body, headers=headers or {})

    def decoded(self) -> Any:
        return orjson.loads(self.body) if self.body else None

"""How the client reaches an API server: over HTTP, or in process through the same handler.

Both transports return an :class:`~kubeling.api.request.ApiResponse`; a watch response
carries a ``stream`` of byte chunks holding newline-separated JSON events.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Protocol

import aiohttp

from kubeling.api.request import ApiRequest, ApiResponse

if TYPE_CHECKING:
    from kubeling.api.server import ApiServer

__all__ = ["HttpTransport", "InProcessTransport", "Transport"]


class Transport(Protocol):
    async def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                      body: bytes = b"", headers: Mapping[str, str] | None = None,
                      stream: bool = False) -> ApiResponse:
        """Send one request; with ``stream`` the response body arrives as ``stream``."""

    async def close(self) -> None:
        """Release connections."""


class InProcessTransport:
    """Calls :meth:`ApiServer.handle` directly: no sockets, the same handler stack."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server

    async def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                      body: bytes = b"", headers: Mapping[str, str] | None = None,
                      stream: bool = False) -> ApiResponse:
        req = ApiRequest(method=method, path=path, query=dict(query or {}),
                         headers={k.lower(): v for k, v in (headers or {}).items()}, body=body)
        return await self.server.handle(req)

    async def close(self) -> None:
        return None


class HttpTransport:
    """aiohttp against a server URL, with optional bearer token and TLS settings."""

    def __init__(self, base_url: str, *, token: str | None = None,
                 ssl_context: ssl.SSLContext | None = None, limit: int = 100) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.ssl_context = ssl_context
        self.limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.limit, ssl=self.ssl_context or False)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None, connect=10))
        return self._session

    async def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                      body: bytes = b"", headers: Mapping[str, str] | None = None,
                      stream: bool = False) -> ApiResponse:
        hdrs = dict(headers or {})
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        resp = await self._sess().request(method, self.base_url + path, params=dict(query or {}),
                                          data=body or None, headers=hdrs)
        if stream and resp.status == 200:
            return ApiResponse(status=resp.status,
                               content_type=resp.headers.get("Content-Type", ""),
                               headers=dict(resp.headers), stream=_chunks(resp))
        try:
            data = await resp.read()
        finally:
            resp.release()
        return ApiResponse(status=resp.status, body=data,
                           content_type=resp.headers.get("Content-Type", ""),
                           headers=dict(resp.headers))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _chunks(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
    finally:
        resp.release()
        resp.close()

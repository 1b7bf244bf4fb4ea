"""The HTTP front of the API server, on aiohttp.

aiohttp is the well-kept asyncio HTTP stack of the Python world: streaming responses for
watches, chunked transfer, WebSocket upgrades (exec/attach/port-forward), and a client we
reuse in :mod:`kubeling.client`.  This module only translates between aiohttp and the
transport-neutral :class:`~kubeling.api.request.ApiRequest`/``ApiResponse``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

from aiohttp import web

from kubeling.api.errors import ApiError
from kubeling.api.request import ApiRequest, ApiResponse
from kubeling.api.server import ApiServer

log = logging.getLogger(__name__)

__all__ = ["HttpFront", "parse_listen"]


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:6443`` for IPv6) -> (host, port); ValueError when malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep:
        raise ValueError(f"{listen!r}: expected HOST:PORT, e.g. 127.0.0.1:6443")
    host = host.strip("[]") or "0.0.0.0"
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{listen!r}: the port must be a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{listen!r}: the port must be between 0 and 65535")
    return host, number


class HttpFront:
    """Serves an :class:`ApiServer` over HTTP."""

    def __init__(self, server: ApiServer, listen: str) -> None:
        self.server = server
        self.host, self.port = parse_listen(listen)
        self._runner: web.AppRunner | None = None
        self.extra_routes: list[tuple[str, str, Any]] = []
        """(method, path, aiohttp handler) added by components (exec/log proxies)."""

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        limit = self.server.settings.max_request_bytes
        app = web.Application(client_max_size=limit + 1)
        for method, path, handler in self.extra_routes:
            app.router.add_route(method, path, handler)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that goes away (Ctrl-C on `kubectl logs -f`)
        # cancels its handler, which closes the watch or the link to the node agent
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        limit = self.server.settings.max_request_bytes
        length = request.content_length
        if length is not None and length > limit:
            return _status_response(ApiError.too_large(limit))
        body = b""
        if request.can_read_body:
            try:
                body = await _read_limited(request, limit)
            except ApiError as exc:
                return _status_response(exc)
        req = ApiRequest(
            method=request.method,
            path=request.path,
            query={k: v for k, v in request.query.items()},
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        resp = await self.server.handle(req)
        if resp.upgrade is not None:
            return await resp.upgrade(request)
        if resp.stream is None:
            return web.Response(status=resp.status, body=resp.body,
                                headers={"Content-Type": resp.content_type, **resp.headers})
        return await _stream(request, resp)


async def _read_limited(request: web.Request, limit: int) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise ApiError.too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _status_response(err: ApiError) -> web.Response:
    import orjson

    return web.Response(status=err.code, body=orjson.dumps(err.to_status()),
                        headers={"Content-Type": "application/json"})


async def _stream(request: web.Request, resp: ApiResponse) -> web.StreamResponse:
    out = web.StreamResponse(status=resp.status,
                             headers={"Content-Type": resp.content_type, **resp.headers})
    out.enable_chunked_encoding()
    await out.prepare(request)
    stream = resp.stream
    assert stream is not None
    try:
        async for chunk in stream:
            await out.write(chunk)
    except ConnectionResetError:
        return out
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await out.write_eof()
    return out

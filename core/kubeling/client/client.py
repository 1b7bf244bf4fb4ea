"""An async client for the Kubernetes API as kubeling serves it.

Objects are JSON-shaped dicts; errors are :class:`~kubeling.api.errors.ApiError` built from
the server's ``Status``, so ``exc.code == 404`` and ``exc.reason == "NotFound"`` read as they
do server-side.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs
import orjson

from kubeling.api.errors import ApiError
from kubeling.api.registry import Resource
from kubeling.client.transport import Transport

__all__ = ["Client", "WatchEvent"]

Obj = dict[str, Any]

_PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


@attrs.frozen
class WatchEvent:
    type: str
    """ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""
    object: Obj


def _raise_for(status: int, body: bytes) -> None:
    if status < 400:
        return
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        raise ApiError(int(data.get("code") or status), data.get("reason") or "Unknown",
                       data.get("message") or "", details=data.get("details"))
    text = body.decode(errors="replace")[:500]
    raise ApiError(status, "Unknown", text or f"HTTP {status}")


def _ns(resource: Resource, namespace: str | None, obj: Obj | None = None) -> str | None:
    if not resource.namespaced:
        return None
    if namespace:
        return namespace
    if obj is not None:
        return (obj.get("metadata") or {}).get("namespace") or "default"
    return None


class Client:
    """get/list/watch/create/update/patch/delete over a :class:`Transport`."""

    def __init__(self, transport: Transport, *, user_agent: str = "kubeling") -> None:
        self.transport = transport
        self.user_agent = user_agent

    async def close(self) -> None:
        await self.transport.close()

    async def _call(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                    body: Any = None, content_type: str = "application/json") -> Any:
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        data = b""
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        q = {k: _qv(v) for k, v in (query or {}).items() if v is not None}
        resp = await self.transport.request(method, path, query=q, body=data, headers=headers)
        _raise_for(resp.status, resp.body)
        return orjson.loads(resp.body) if resp.body else None

    async def raw(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                  body: Any = None, content_type: str = "application/json") -> Any:
        """Any request by path; decoded JSON back."""
        return await self._call(method, path, query=query, body=body, content_type=content_type)

    # -- verbs ------------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, namespace: str | None = None,
                  *, subresource: str | None = None) -> Obj:
        return await self._call("GET", resource.path(_ns(resource, namespace), name,
                                                     subresource))

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None) -> Obj:
        query = {"labelSelector": label_selector, "fieldSelector": field_selector,
                 "limit": limit, "continue": continue_, "resourceVersion": resource_version}
        return await self._call("GET", resource.path(_ns(resource, namespace)), query=query)

    async def list_all(self, resource: Resource, namespace: str | None = None, *,
                       page: int = 500, **kw: Any) -> list[Obj]:
        """Every item, following ``continue`` tokens."""
        items: list[Obj] = []
        token = None
        while True:
            result = await self.list(resource, namespace, limit=page, continue_=token, **kw)
            items.extend(result.get("items") or [])
            token = (result.get("metadata") or {}).get("continue")
            if not token:
                return items

    async def create(self, resource: Resource, obj: Obj, namespace: str | None = None, *,
                     dry_run: bool = False, subresource: str | None = None,
                     name: str | None = None) -> Obj:
        path = resource.path(_ns(resource, namespace, obj), name, subresource)
        return await self._call("POST", path, body=obj,
                                query={"dryRun": "All" if dry_run else None})

    async def update(self, resource: Resource, obj: Obj, *, subresource: str | None = None,
                     dry_run: bool = False) -> Obj:
        meta = obj.get("metadata") or {}
        path = resource.path(_ns(resource, None, obj), meta["name"], subresource)
        return await self._call("PUT", path, body=obj,
                                query={"dryRun": "All" if dry_run else None})

    async def update_status(self, resource: Resource, obj: Obj) -> Obj:
        return await self.update(resource, obj, subresource="status")

    async def patch(self, resource: Resource, name: str, patch: Any,
                    namespace: str | None = None, *, type: str = "merge",
                    subresource: str | None = None, dry_run: bool = False) -> Obj:
        path = resource.path(_ns(resource, namespace), name, subresource)
        return await self._call("PATCH", path, body=patch, content_type=_PATCH_TYPES[type],
                                query={"dryRun": "All" if dry_run else None})

    async def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None,
                     propagation_policy: str | None = None,
                     preconditions: Obj | None = None, dry_run: bool = False) -> Obj:
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = preconditions
        if dry_run:
            options["dryRun"] = ["All"]
        return await self._call("DELETE", resource.path(_ns(resource, namespace), name),
                                body=options)

    async def watch(self, resource: Resource, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True) -> AsyncIterator[WatchEvent]:
        """Events after ``resource_version`` until the server ends the watch.

        An ``ERROR`` event (e.g. 410 Gone) is raised as :class:`ApiError`.
        """
        query = {"watch": "true", "resourceVersion": resource_version,
                 "labelSelector": label_selector, "fieldSelector": field_selector,
                 "timeoutSeconds": timeout_seconds,
                 "allowWatchBookmarks": "true" if allow_bookmarks else None}
        q = {k: _qv(v) for k, v in query.items() if v is not None}
        resp = await self.transport.request("GET", resource.path(_ns(resource, namespace)),
                                            query=q, headers={"Accept": "application/json"},
                                            stream=True)
        if resp.stream is None:
            _raise_for(resp.status, resp.body)
            return
        stream = resp.stream
        buffer = b""
        try:
            async for chunk in stream:
                buffer += chunk
                while True:
                    cut = buffer.find(b"\n")
                    if cut < 0:
                        break
                    line, buffer = buffer[:cut], buffer[cut + 1:]
                    if not line.strip():
                        continue
                    event = orjson.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        raise ApiError(int(status.get("code") or 500),
                                       status.get("reason") or "Unknown",
                                       status.get("message") or "watch error")
                    yield WatchEvent(event["type"], event["object"])
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]

    async def wait_for(self, resource: Resource, name: str, namespace: str | None,
                       condition: Any, *, timeout: float = 30.0) -> Obj:
        """Poll-free wait: watch until ``condition(obj)`` is true; returns the object."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    obj = await self.get(resource, name, namespace)
                except ApiError as exc:
                    if exc.code != 404:
                        raise
                    obj = None
                if obj is not None and condition(obj):
                    return obj
                rv = obj["metadata"]["resourceVersion"] if obj else None
                async for event in self.watch(resource, namespace, resource_version=rv,
                                              field_selector=f"metadata.name={name}",
                                              timeout_seconds=int(timeout) + 1):
                    if event.type in ("ADDED", "MODIFIED") and condition(event.object):
                        return event.object


def _qv(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

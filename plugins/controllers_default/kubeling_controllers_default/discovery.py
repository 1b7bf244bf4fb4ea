"""Which resources the API server serves, from its discovery documents.

The garbage collector watches every resource that can carry ownerReferences and the
namespace controller empties every namespaced resource; both find them here, so kinds a
plugin adds are covered too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from kubeling.api.registry import Resource
from kubeling.client import Client

__all__ = ["ApiResource", "discover"]


@attrs.frozen
class ApiResource:
    """One served resource (no subresources) and its verbs."""

    resource: Resource
    verbs: frozenset[str]

    def can(self, *verbs: str) -> bool:
        return all(v in self.verbs for v in verbs)


def _entries(doc: Any, group: str, version: str) -> list[ApiResource]:
    out = []
    for entry in (doc or {}).get("resources") or []:
        name = entry.get("name") or ""
        if "/" in name:
            continue
        out.append(ApiResource(
            Resource(group=group, version=version, plural=name, kind=entry.get("kind") or "",
                     namespaced=bool(entry.get("namespaced"))),
            frozenset(entry.get("verbs") or ())))
    return out


async def discover(client: Client) -> list[ApiResource]:
    """Every resource of every group's preferred version."""
    found: list[ApiResource] = []
    core = await client.raw("GET", "/api")
    groups = await client.raw("GET", "/apis")
    calls = [("", v, f"/api/{v}") for v in (core or {}).get("versions") or []]
    for group in (groups or {}).get("groups") or []:
        preferred = (group.get("preferredVersion") or {}).get("version")
        if not preferred:
            versions = group.get("versions") or []
            if not versions:
                continue
            preferred = versions[0].get("version")
        calls.append((group["name"], preferred, f"/apis/{group['name']}/{preferred}"))
    docs = await asyncio.gather(*(client.raw("GET", path) for _, _, path in calls))
    for (group, version, _), doc in zip(calls, docs, strict=True):
        found.extend(_entries(doc, group, version))
    return found

"""Creating, deleting, adopting and releasing pods for a workload controller.

Shared by the ReplicaSet, Job and DaemonSet controllers, as Kubernetes shares its
``PodControl`` and ``ControllerRefManager``: pods are created from the owner's template
with a controller ownerReference, in slow-start batches; orphans matching the selector are
adopted and owned pods that stop matching are released, by patching ownerReferences.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from kubeling.api.registry import Resource
from kubeling.api.selectors import LabelSelector
from kubeling.client import ApiError, Client
from kubeling.client.resources import PODS
from kubeling_controllers_default.events import EventRecorder
from kubeling_controllers_default.util import controller_ref, meta, owner_ref

log = logging.getLogger(__name__)

__all__ = ["PodControl", "can_adopt", "claim", "slow_start_batch"]

Obj = dict[str, Any]

SLOW_START_INITIAL_BATCH = 1


async def slow_start_batch(count: int, call: Callable[[int], Awaitable[None]],
                           initial: int = SLOW_START_INITIAL_BATCH) -> tuple[int, Exception | None]:
    """Call ``call(i)`` ``count`` times in batches of 1, 2, 4, ... run concurrently, stopping
    after the first batch with a failure (so a broken template costs one call, not 500).

    :returns: (successes, the first error or None).
    """
    done = 0
    batch = min(count, initial)
    while batch > 0:
        results = await asyncio.gather(*(call(done + i) for i in range(batch)),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for error in errors:
            if isinstance(error, asyncio.CancelledError):
                raise error
        done += batch - len(errors)
        if errors:
            first = errors[0]
            return done, first if isinstance(first, Exception) else Exception(str(first))
        batch = min(2 * batch, count - done)
    return done, None


def namespace_terminating(exc: ApiError) -> bool:
    return exc.code == 403 and "being terminated" in exc.message


class PodControl:
    """Writes pods on behalf of a controller, recording events about it."""

    def __init__(self, client: Client, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder

    async def create(self, namespace: str, pod: Obj, owner: Obj) -> Obj | None:
        """Create ``pod``; None when the namespace is terminating (nothing to do)."""
        try:
            created = await self.client.create(PODS, pod, namespace)
        except ApiError as exc:
            if namespace_terminating(exc):
                return None
            self.recorder.warning(owner, "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.recorder.normal(owner, "SuccessfulCreate",
                             f"Created pod: {created['metadata']['name']}")
        return created

    async def delete(self, pod: Obj, owner: Obj) -> None:
        """Delete ``pod`` (gracefully, the pod's own period); gone already is fine."""
        m = meta(pod)
        try:
            await self.client.delete(PODS, m["name"], m.get("namespace"),
                                     preconditions={"uid": m.get("uid")})
        except ApiError as exc:
            if exc.code == 404:
                return
            if exc.code == 409 and "Precondition" in exc.message:
                return
            self.recorder.warning(owner, "FailedDelete",
                                  f"Error deleting: {exc.message}")
            raise
        self.recorder.normal(owner, "SuccessfulDelete", f"Deleted pod: {m['name']}")

    async def adopt(self, pod: Obj, owner: Obj) -> Obj | None:
        """Add ``owner`` as controller of the orphan ``pod``; the patched pod, or None if it
        is gone."""
        m = meta(pod)
        patch = {"metadata": {"ownerReferences": [owner_ref(owner)], "uid": m.get("uid")}}
        try:
            return await self.client.patch(PODS, m["name"], patch, m.get("namespace"),
                                           type="strategic")
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def release(self, pod: Obj, owner: Obj) -> None:
        """Remove ``owner``'s ownerReference from ``pod``."""
        m = meta(pod)
        patch = {"metadata": {"ownerReferences": [
            {"$patch": "delete", "uid": meta(owner).get("uid")}], "uid": m.get("uid")}}
        try:
            await self.client.patch(PODS, m["name"], patch, m.get("namespace"),
                                    type="strategic")
        except ApiError as exc:
            if exc.code in (404, 422):
                return
            raise


async def can_adopt(client: Client, resource: Resource, owner: Obj) -> bool:
    """Kubernetes' adoption recheck: a fresh read shows the owner still exists, is the same
    object (uid) and is not being deleted."""
    m = meta(owner)
    try:
        fresh = await client.get(resource, m["name"], m.get("namespace"))
    except ApiError as exc:
        if exc.code == 404:
            return False
        raise
    return meta(fresh).get("uid") == m.get("uid") and \
        meta(fresh).get("deletionTimestamp") is None


async def claim(owner: Obj, selector: LabelSelector, candidates: Iterable[Obj], *,
                adopt: Callable[[Obj], Awaitable[Obj | None]],
                release: Callable[[Obj], Awaitable[None]],
                can_adopt: Callable[[], Awaitable[bool]]) -> list[Obj]:
    """Kubernetes' ``ClaimObjects``: the candidates ``owner`` controls after adopting
    matching orphans and releasing owned objects that no longer match.

    ``can_adopt`` is asked once, before the first adoption (a fresh read proving the owner
    still exists and is not being deleted).
    """
    owner_meta = meta(owner)
    uid = owner_meta.get("uid")
    deleting = owner_meta.get("deletionTimestamp") is not None
    claimed: list[Obj] = []
    to_adopt: list[Obj] = []
    to_release: list[Obj] = []
    for obj in candidates:
        ref = controller_ref(obj)
        matches = selector.matches(meta(obj).get("labels") or {})
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches:
                claimed.append(obj)
            elif not deleting:
                to_release.append(obj)
            continue
        if deleting or not matches or meta(obj).get("deletionTimestamp") is not None:
            continue
        if owner_meta.get("namespace") and \
                meta(obj).get("namespace") != owner_meta.get("namespace"):
            continue
        to_adopt.append(obj)
    if to_adopt and await can_adopt():
        adopted = await asyncio.gather(*(adopt(o) for o in to_adopt), return_exceptions=True)
        for result in adopted:
            if isinstance(result, dict):
                claimed.append(result)
            elif isinstance(result, Exception):
                log.info("adoption by %s/%s failed: %s", owner_meta.get("namespace"),
                         owner_meta.get("name"), result)
    if to_release:
        await asyncio.gather(*(release(o) for o in to_release), return_exceptions=True)
    return claimed


def filter_owned(objs: Sequence[Obj], uid: str) -> list[Obj]:
    return [o for o in objs if (controller_ref(o) or {}).get("uid") == uid]

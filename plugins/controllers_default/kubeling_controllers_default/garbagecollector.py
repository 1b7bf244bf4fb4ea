"""The garbage collector: deletes objects whose owners are gone, as Kubernetes' does.

It watches every served resource that supports list, watch and delete (found through
discovery, refreshed every 30 s) and keeps a graph of ownerReferences by uid.  Work items:

* ``delete:<uid>`` -- *attempt to delete*: read the object; if it has owners, look each up.
  With at least one live owner it stays (dangling references, and references to owners
  being deleted in the foreground, are removed from it); with none it is deleted, with the
  propagation its own finalizers ask for.  An object in foreground deletion
  (``foregroundDeletion`` finalizer) loses that finalizer once no dependent with
  ``blockOwnerDeletion`` is left; until then its dependents are deleted.
* ``orphan:<uid>`` -- an object deleted with ``propagationPolicy: Orphan`` (``orphan``
  finalizer): its dependents lose their ownerReference to it, then the finalizer goes.

Owners referenced but never seen get a *virtual* node; if the API says they do not exist,
their dependents are collected (dangling dependents).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import attrs

from kubeling.api.registry import Resource
from kubeling.client import ApiError, Informer
from kubeling_controllers_default.base import Controller, ControllerContext
from kubeling_controllers_default.discovery import discover
from kubeling_controllers_default.util import meta

__all__ = ["GarbageCollector"]

Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
IGNORED = {("", "events"), ("events.k8s.io", "events")}
REDISCOVERY_SECONDS = 30.0


@attrs.define(eq=False)
class _Node:
    uid: str
    api_version: str
    kind: str
    namespace: str | None
    name: str
    owners: list[Obj] = attrs.field(factory=list)
    dependents: set[str] = attrs.field(factory=set)
    being_deleted: bool = False
    deleting_dependents: bool = False
    virtual: bool = False


def _group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


class GarbageCollector(Controller):
    """Ownership-based cascading deletion (Background, Foreground, Orphan)."""

    name = "garbagecollector"
    component = "garbage-collector-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.graph: dict[str, _Node] = {}
        self.resources: dict[tuple[str, str], Resource] = {}
        """(group, kind) -> resource, for every watched resource."""
        self._watched: set[Resource] = set()
        self._absent: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.deleted = 0

    # -- discovery and informers -----------------------------------------------------------

    async def _sync_resources(self) -> list[Informer]:
        added = []
        for found in await discover(self.client):
            res = found.resource
            if (res.group, res.plural) in IGNORED:
                continue
            self.resources.setdefault((res.group, res.kind), res)
            if not found.can("list", "watch", "delete") or res in self._watched:
                continue
            self._watched.add(res)
            informer = self.ctx.informer(res)
            informer.add_handler(on_add=self._observe, on_update=self._observe_update,
                                 on_delete=self._observe_delete)
            added.append(informer)
        return added

    async def run(self) -> None:
        """Discover, fill the graph, then collect garbage until cancelled."""
        while True:
            try:
                informers = await self._sync_resources()
                break
            except ApiError as exc:
                self.log.warning("discovery failed: %s; retrying", exc)
                await asyncio.sleep(1.0)
        self.synced.extend(informers)
        await super().run()

    async def on_synced(self) -> None:
        for node in list(self.graph.values()):
            if node.virtual:
                self.queue.add(f"delete:{node.uid}")

    async def background(self) -> None:
        while True:
            await asyncio.sleep(REDISCOVERY_SECONDS)
            try:
                for informer in await self._sync_resources():
                    await informer.wait_synced()
            except ApiError as exc:
                self.log.info("rediscovery failed: %s", exc)

    def resource_for(self, api_version: str, kind: str) -> Resource | None:
        return self.resources.get((_group_of(api_version), kind))

    # -- the graph -------------------------------------------------------------------------

    def _observe_update(self, old: Obj, new: Obj) -> None:
        self._observe(new)

    def _observe(self, obj: Obj) -> None:
        m = meta(obj)
        uid = m.get("uid")
        if not uid:
            return
        owners = [r for r in m.get("ownerReferences") or [] if r.get("uid")]
        node = self.graph.get(uid)
        if node is None:
            node = _Node(uid, obj.get("apiVersion") or "", obj.get("kind") or "",
                         m.get("namespace"), m.get("name") or "")
            self.graph[uid] = node
            self._add_owners(node, owners)
        else:
            if node.virtual:
                node.virtual = False
                node.api_version = obj.get("apiVersion") or node.api_version
                node.kind = obj.get("kind") or node.kind
                node.namespace = m.get("namespace")
                node.name = m.get("name") or node.name
            self._update_owners(node, owners)
        finalizers = m.get("finalizers") or []
        deleting = m.get("deletionTimestamp") is not None
        node.being_deleted = deleting
        if deleting and ORPHAN in finalizers:
            self.queue.add(f"orphan:{uid}")
        waiting = deleting and FOREGROUND in finalizers
        if waiting and not node.deleting_dependents:
            for dependent in node.dependents:
                self.queue.add(f"delete:{dependent}")
        node.deleting_dependents = waiting
        if waiting:
            self.queue.add(f"delete:{uid}")

    def _add_owners(self, node: _Node, owners: list[Obj]) -> None:
        node.owners = owners
        for ref in owners:
            owner = self.graph.get(ref["uid"])
            if owner is None:
                owner = _Node(ref["uid"], ref.get("apiVersion") or "", ref.get("kind") or "",
                              None, ref.get("name") or "", virtual=True)
                res = self.resource_for(owner.api_version, owner.kind)
                if res is None or res.namespaced:
                    owner.namespace = node.namespace
                self.graph[owner.uid] = owner
                self.queue.add(f"delete:{owner.uid}")
            owner.dependents.add(node.uid)
            if owner.uid in self._absent:
                self.queue.add(f"delete:{node.uid}")

    def _update_owners(self, node: _Node, owners: list[Obj]) -> None:
        before = {r["uid"]: r for r in node.owners}
        after = {r["uid"]: r for r in owners}
        if before == after:
            return
        for uid, ref in before.items():
            if uid in after and bool(after[uid].get("blockOwnerDeletion")) == \
                    bool(ref.get("blockOwnerDeletion")):
                continue
            owner = self.graph.get(uid)
            if owner is None:
                continue
            if uid not in after:
                owner.dependents.discard(node.uid)
            if owner.deleting_dependents:
                self.queue.add(f"delete:{uid}")
        self._add_owners(node, [after[u] for u in after if u not in before])
        node.owners = owners

    def _observe_delete(self, obj: Obj) -> None:
        uid = meta(obj).get("uid")
        node = self.graph.pop(uid, None) if uid else None
        if node is None:
            return
        self._remember_absent(node.uid)
        for ref in node.owners:
            owner = self.graph.get(ref["uid"])
            if owner is None:
                continue
            owner.dependents.discard(node.uid)
            if owner.deleting_dependents or owner.virtual:
                self.queue.add(f"delete:{owner.uid}")
        for dependent in node.dependents:
            self.queue.add(f"delete:{dependent}")
        if node.dependents:
            # keep the dependents' link: a virtual owner node the workers will find absent
            ghost = _Node(node.uid, node.api_version, node.kind, node.namespace, node.name,
                          dependents=set(node.dependents), virtual=True)
            self.graph[node.uid] = ghost

    def _remember_absent(self, uid: str) -> None:
        self._absent[uid] = None
        while len(self._absent) > 10_000:
            self._absent.popitem(last=False)

    # -- work ------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        action, _, uid = key.partition(":")
        node = self.graph.get(uid)
        if node is None:
            return
        if action == "orphan":
            await self._orphan_dependents(node)
        else:
            await self._attempt_to_delete(node)

    async def _get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.client.get(resource, name,
                                         namespace if resource.namespaced else None)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def _latest(self, node: _Node) -> Obj | None:
        """The object of ``node`` as stored now (None if gone or replaced)."""
        res = self.resource_for(node.api_version, node.kind)
        if res is None:
            raise ApiError(503, "ServiceUnavailable",
                           f"no resource known for {node.api_version} {node.kind}")
        obj = await self._get(res, node.namespace, node.name)
        if obj is None or meta(obj).get("uid") != node.uid:
            return None
        return obj

    def _forget_virtual(self, node: _Node) -> None:
        """A virtual owner turned out not to exist: collect its dependents."""
        self._remember_absent(node.uid)
        if self.graph.get(node.uid) is node:
            del self.graph[node.uid]
        for dependent in node.dependents:
            self.queue.add(f"delete:{dependent}")

    async def _attempt_to_delete(self, node: _Node) -> None:
        latest = await self._latest(node)
        if latest is None:
            if node.virtual:
                self._forget_virtual(node)
            return
        if node.virtual:
            return  # it exists after all; its real events will arrive
        m = meta(latest)
        finalizers = m.get("finalizers") or []
        deleting = m.get("deletionTimestamp") is not None
        if deleting and FOREGROUND not in finalizers:
            return
        if deleting:
            await self._process_deleting_dependents(node, latest)
            return
        owners = [r for r in m.get("ownerReferences") or [] if r.get("uid")]
        if not owners:
            return
        solid, dangling, waiting = await self._classify(node, owners)
        if solid:
            if not dangling and not waiting:
                return
            remove = [r["uid"] for r in (*dangling, *waiting)]
            await self._patch_owner_refs(node, latest,
                                         [{"$patch": "delete", "uid": u} for u in remove])
            return
        if waiting and node.dependents:
            for dep_uid in node.dependents:
                dep = self.graph.get(dep_uid)
                if dep is not None and dep.deleting_dependents:
                    # a cycle: stop blocking our owners, or nobody can finish
                    await self._patch_owner_refs(node, latest, [
                        {**r, "blockOwnerDeletion": False} for r in waiting])
                    break
            await self._delete(node, "Foreground")
            return
        if ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        await self._delete(node, policy)

    async def _classify(self, node: _Node, owners: list[Obj]
                        ) -> tuple[list[Obj], list[Obj], list[Obj]]:
        solid: list[Obj] = []
        dangling: list[Obj] = []
        waiting: list[Obj] = []
        for ref in owners:
            if ref["uid"] in self._absent:
                dangling.append(ref)
                continue
            res = self.resource_for(ref.get("apiVersion") or "", ref.get("kind") or "")
            if res is None:
                raise ApiError(503, "ServiceUnavailable",
                               f"owner kind {ref.get('apiVersion')} {ref.get('kind')} is "
                               f"not served")
            if res.namespaced and not node.namespace:
                dangling.append(ref)  # a cluster-scoped object cannot have namespaced owners
                continue
            owner = await self._get(res, node.namespace, ref.get("name") or "")
            if owner is None or meta(owner).get("uid") != ref["uid"]:
                self._remember_absent(ref["uid"])
                dangling.append(ref)
                continue
            om = meta(owner)
            if om.get("deletionTimestamp") is not None and \
                    FOREGROUND in (om.get("finalizers") or []):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def _process_deleting_dependents(self, node: _Node, latest: Obj) -> None:
        blocking = []
        for dep_uid in node.dependents:
            dep = self.graph.get(dep_uid)
            if dep is None or dep.virtual:
                continue
            ref = next((r for r in dep.owners if r.get("uid") == node.uid), None)
            if ref is not None and ref.get("blockOwnerDeletion"):
                blocking.append(dep)
        if not blocking:
            await self._remove_finalizer(node, FOREGROUND)
            return
        for dep in blocking:
            if not dep.being_deleted:
                self.queue.add(f"delete:{dep.uid}")

    async def _orphan_dependents(self, node: _Node) -> None:
        latest = await self._latest(node)
        if latest is None or ORPHAN not in (meta(latest).get("finalizers") or []):
            return
        errors = []
        for dep_uid in list(node.dependents):
            dep = self.graph.get(dep_uid)
            if dep is None or dep.virtual:
                continue
            try:
                await self._patch_owner_refs(dep, None,
                                             [{"$patch": "delete", "uid": node.uid}])
            except ApiError as exc:
                if exc.code != 404:
                    errors.append(exc)
        if errors:
            raise errors[0]
        await self._remove_finalizer(node, ORPHAN)

    async def _patch_owner_refs(self, node: _Node, latest: Obj | None,
                                refs: list[Obj]) -> None:
        res = self.resource_for(node.api_version, node.kind)
        if res is None:
            return
        patch = {"metadata": {"ownerReferences": refs, "uid": node.uid}}
        try:
            await self.client.patch(res, node.name, patch,
                                    node.namespace if res.namespaced else None,
                                    type="strategic")
        except ApiError as exc:
            if exc.code != 404:
                raise

    async def _remove_finalizer(self, node: _Node, finalizer: str) -> None:
        res = self.resource_for(node.api_version, node.kind)
        if res is None:
            return
        for _ in range(5):
            latest = await self._latest(node)
            if latest is None:
                return
            m = meta(latest)
            finalizers = m.get("finalizers") or []
            if finalizer not in finalizers:
                return
            patch = {"metadata": {"finalizers": [f for f in finalizers if f != finalizer],
                                  "resourceVersion": m["resourceVersion"]}}
            try:
                await self.client.patch(res, node.name, patch,
                                        node.namespace if res.namespaced else None)
                return
            except ApiError as exc:
                if exc.code == 404:
                    return
                if exc.code != 409:
                    raise
        raise ApiError(409, "Conflict", f"could not remove {finalizer} from {node.name}")

    async def _delete(self, node: _Node, policy: str) -> None:
        res = self.resource_for(node.api_version, node.kind)
        if res is None:
            return
        try:
            await self.client.delete(res, node.name, node.namespace if res.namespaced else None,
                                     propagation_policy=policy,
                                     preconditions={"uid": node.uid})
            self.deleted += 1
        except ApiError as exc:
            if exc.code == 404 or (exc.code == 409 and "Precondition" in exc.message):
                return
            raise

"""Template history in ControllerRevisions, shared by the DaemonSet and StatefulSet
controllers (Kubernetes' ``controller/history`` package).

A revision is named ``<owner>-<hash>`` and labelled with the template's labels plus
``controller-revision-hash: <hash>``; its ``data`` is the patch ``kubectl rollout undo``
applies, ``{"spec": {"template": {..., "$patch": "replace"}}}``, and ``revision`` numbers
grow by one per new template (an old template coming back gets the next number again).
Orphaned revisions matching the owner's selector are adopted, owned ones that stop
matching released.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

from kubeling.api.registry import Resource
from kubeling.client import ApiError, Client
from kubeling_controllers_default.base import Index
from kubeling_controllers_default.deployment import template_hash
from kubeling_controllers_default.indexes import claim_candidates
from kubeling_controllers_default.pods import can_adopt, claim
from kubeling_controllers_default.resources import CONTROLLERREVISIONS
from kubeling_controllers_default.util import controller_ref, meta, owner_ref, selector_of

__all__ = ["REVISION_HASH", "RevisionHistory", "revision_data"]

Obj = dict[str, Any]

REVISION_HASH = "controller-revision-hash"


def revision_data(owner: Obj) -> Obj:
    """The ``data`` of the revision recording ``owner``'s current template."""
    template = (owner.get("spec") or {}).get("template") or {}
    return {"spec": {"template": {**copy.deepcopy(template), "$patch": "replace"}}}


class RevisionHistory:
    """The ControllerRevisions of one kind of owner (``resource``, e.g. DaemonSets)."""

    def __init__(self, client: Client, resource: Resource, by_controller: Index) -> None:
        self.client = client
        self.resource = resource
        self.by_controller = by_controller
        """The ControllerRevisions indexed by controller uid (and orphans by namespace)."""

    async def sync(self, owner: Obj) -> tuple[Obj, list[Obj]]:
        """(the revision of the owner's current template, the other revisions), creating
        the current one or renumbering it to the newest when needed."""
        candidates = claim_candidates(self.by_controller, owner)
        selector = selector_of(owner)
        assert selector is not None
        revisions = await claim(owner, selector, candidates,
                                adopt=lambda r: self._patch_owner(r, owner, adopt=True),
                                release=lambda r: self._patch_owner(r, owner, adopt=False),
                                can_adopt=lambda: self.can_adopt(owner))
        data = revision_data(owner)
        current = [r for r in revisions if r.get("data") == data]
        others = [r for r in revisions if r.get("data") != data]
        top = max((int(r.get("revision") or 0) for r in revisions), default=0)
        if current:
            current.sort(key=lambda r: int(r.get("revision") or 0))
            chosen = current[-1]
            for dup in current[:-1]:
                await self.delete(dup)
            if int(chosen.get("revision") or 0) < top:
                chosen = await self.client.update(CONTROLLERREVISIONS,
                                                  {**chosen, "revision": top + 1})
            return chosen, others
        return await self._create(owner, data, top + 1), others

    async def _create(self, owner: Obj, data: Obj, number: int) -> Obj:
        m = meta(owner)
        template = (owner.get("spec") or {}).get("template") or {}
        collisions = int((owner.get("status") or {}).get("collisionCount") or 0)
        digest = template_hash(template, collisions)
        labels = {**(((template.get("metadata") or {}).get("labels")) or {}),
                  REVISION_HASH: digest}
        body = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": f"{m['name']}-{digest}", "namespace": m["namespace"],
                             "labels": labels, "ownerReferences": [owner_ref(owner)]},
                "data": data, "revision": number}
        try:
            return await self.client.create(CONTROLLERREVISIONS, body, m["namespace"])
        except ApiError as exc:
            if exc.code != 409 or exc.reason != "AlreadyExists":
                raise
            found = await self.client.get(CONTROLLERREVISIONS, body["metadata"]["name"],
                                          m["namespace"])
            if found.get("data") == data and \
                    (controller_ref(found) or {}).get("uid") == m.get("uid"):
                return found
            # a different template hashed to the same name: count the collision, so the
            # next attempt hashes differently
            await self.client.update_status(self.resource, {**owner, "status": {
                **(owner.get("status") or {}), "collisionCount": collisions + 1}})
            raise

    async def can_adopt(self, owner: Obj) -> bool:
        """A fresh read: the owner still exists, is the same object and is not being
        deleted."""
        return await can_adopt(self.client, self.resource, owner)

    async def _patch_owner(self, obj: Obj, owner: Obj, *, adopt: bool) -> Obj | None:
        m = meta(obj)
        refs = [owner_ref(owner)] if adopt else [{"$patch": "delete",
                                                  "uid": meta(owner)["uid"]}]
        try:
            return await self.client.patch(CONTROLLERREVISIONS, m["name"],
                                           {"metadata": {"ownerReferences": refs,
                                                         "uid": m.get("uid")}},
                                           m["namespace"], type="strategic")
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def delete(self, revision: Obj) -> None:
        """Delete one revision (gone already, or replaced, is fine)."""
        m = meta(revision)
        try:
            await self.client.delete(CONTROLLERREVISIONS, m["name"], m["namespace"],
                                     preconditions={"uid": m.get("uid")})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    async def truncate(self, owner: Obj, old: list[Obj], in_use: Collection[str]) -> None:
        """Delete the oldest of ``old`` beyond ``revisionHistoryLimit``, except revisions
        named in ``in_use`` (by name or by hash: what live pods still run)."""
        limit = int((owner.get("spec") or {}).get("revisionHistoryLimit") or 0)
        excess = len(old) - limit
        if excess <= 0:
            return
        removable = [r for r in old if meta(r).get("name") not in in_use
                     and (meta(r).get("labels") or {}).get(REVISION_HASH) not in in_use]
        removable.sort(key=lambda r: int(r.get("revision") or 0))
        for revision in removable[:excess]:
            await self.delete(revision)

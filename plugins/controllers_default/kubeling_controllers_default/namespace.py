"""The namespace controller and the ServiceAccount controller.

:class:`NamespaceController` empties a namespace being deleted: every namespaced resource
the server serves (found through discovery) is deleted collection by collection; while
something remains (pods finishing, objects held by finalizers) the namespace's status
conditions say what and it is checked again; once empty, the ``kubernetes`` finalizer is
removed through the ``namespaces/<name>/finalize`` subresource and the API server deletes
the namespace.

:class:`ServiceAccountController` makes sure every active namespace has a ``default``
ServiceAccount (and puts it back if deleted).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubeling.client import ApiError
from kubeling_controllers_default.base import Controller, ControllerContext, Requeue
from kubeling_controllers_default.discovery import ApiResource, discover
from kubeling_controllers_default.resources import NAMESPACES, SERVICEACCOUNTS
from kubeling_controllers_default.util import fmt_time, meta

__all__ = ["NamespaceController", "ServiceAccountController"]

Obj = dict[str, Any]

FINALIZER = "kubernetes"


class NamespaceController(Controller):
    """Deletes the content of terminating namespaces, then finalizes them."""

    name = "namespace"
    component = "namespace-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.namespaces = self.informer(NAMESPACES)
        self.namespaces.add_handler(on_add=self._changed,
                                    on_update=lambda _o, n: self._changed(n))

    def _changed(self, ns: Obj) -> None:
        if meta(ns).get("deletionTimestamp") is not None:
            self.enqueue(ns)

    async def reconcile(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or meta(ns).get("deletionTimestamp") is None:
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        try:
            resources = [r for r in await discover(self.client)
                         if r.resource.namespaced and r.can("list", "delete")]
        except ApiError as exc:
            await self._set_conditions(ns, {"NamespaceDeletionDiscoveryFailure":
                                            ("DiscoveryFailed", str(exc.message))})
            raise
        failures = await self._delete_content(key, resources)
        remaining, finalizers = await self._remaining(key, resources)
        conditions: dict[str, tuple[str, str] | None] = {
            "NamespaceDeletionDiscoveryFailure": None,
            "NamespaceDeletionContentFailure":
                ("ContentDeletionFailed", "; ".join(failures)) if failures else None,
            "NamespaceContentRemaining":
                ("SomeResourcesRemain", "Some resources are remaining: " + ", ".join(
                    f"{plural} has {count} resource instances"
                    for plural, count in sorted(remaining.items()))) if remaining else None,
            "NamespaceFinalizersRemaining":
                ("SomeFinalizersRemain", "Some content in the namespace has finalizers "
                 "remaining: " + ", ".join(f"{name} in {count} resource instances"
                                           for name, count in sorted(finalizers.items())))
                if finalizers else None,
        }
        await self._set_conditions(ns, conditions)
        if remaining:
            raise Requeue(self.settings.namespace_retry_seconds)
        await self._finalize(key)

    async def _delete_content(self, namespace: str, resources: list[ApiResource]
                              ) -> list[str]:
        async def delete_one(res: Any, item: Obj) -> None:
            try:
                await self.client.delete(res, meta(item)["name"], namespace,
                                         propagation_policy="Background")
            except ApiError as exc:
                if exc.code != 404:
                    raise

        async def delete(found: ApiResource) -> str | None:
            # list and delete one by one rather than deletecollection: the API server's
            # deletecollection waits (up to 3 s) for the kind's watch cache to catch up
            # with the newest revision, which an idle kind's cache never does by itself
            res = found.resource
            try:
                items = [i for i in await self.client.list_all(res, namespace)
                         if meta(i).get("deletionTimestamp") is None]
                await asyncio.gather(*(delete_one(res, i) for i in items))
                return None
            except ApiError as exc:
                if exc.code in (404, 405):
                    return None
                return f"{res.plural}: {exc.message}"

        results = await asyncio.gather(*(delete(r) for r in resources))
        return [r for r in results if r]

    async def _remaining(self, namespace: str, resources: list[ApiResource]
                         ) -> tuple[dict[str, int], dict[str, int]]:
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}

        async def count(found: ApiResource) -> None:
            res = found.resource
            try:
                items = (await self.client.list(res, namespace)).get("items") or []
            except ApiError:
                return
            if items:
                name = f"{res.plural}.{res.group}" if res.group else res.plural
                remaining[name] = len(items)
                for item in items:
                    for finalizer in meta(item).get("finalizers") or []:
                        finalizers[finalizer] = finalizers.get(finalizer, 0) + 1

        await asyncio.gather(*(count(r) for r in resources if r.can("list")))
        return remaining, finalizers

    async def _set_conditions(self, ns: Obj,
                              wanted: dict[str, tuple[str, str] | None]) -> None:
        status = dict(ns.get("status") or {})
        current = {c.get("type"): c for c in status.get("conditions") or []}
        now = fmt_time(self.clock.now())
        out = []
        for kind, value in wanted.items():
            state = "True" if value is not None else "False"
            reason, message = value if value is not None else (
                {"NamespaceDeletionDiscoveryFailure": "ResourcesDiscovered",
                 "NamespaceDeletionContentFailure": "ContentDeleted",
                 "NamespaceContentRemaining": "ContentRemoved",
                 "NamespaceFinalizersRemaining": "ContentHasNoFinalizers"}[kind],
                {"NamespaceDeletionDiscoveryFailure": "All resources successfully discovered",
                 "NamespaceDeletionContentFailure": "All content successfully deleted, may "
                                                    "be waiting on finalization",
                 "NamespaceContentRemaining": "All content successfully removed",
                 "NamespaceFinalizersRemaining": "All content-preserving finalizers "
                                                 "finished"}[kind])
            old = current.get(kind)
            changed = old is None or old.get("status") != state
            out.append({"type": kind, "status": state, "reason": reason, "message": message,
                        "lastTransitionTime": now if changed else old.get(
                            "lastTransitionTime")})
        for kind, cond in current.items():
            if kind not in wanted:
                out.append(cond)
        if out == (status.get("conditions") or []):
            return
        status["conditions"] = out
        try:
            await self.client.update_status(NAMESPACES, {**ns, "status": status})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    async def _finalize(self, name: str) -> None:
        for _ in range(5):
            try:
                ns = await self.client.get(NAMESPACES, name)
            except ApiError as exc:
                if exc.code == 404:
                    return
                raise
            spec = ns.get("spec") or {}
            finalizers = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
            body = {**ns, "spec": {**spec, "finalizers": finalizers}}
            try:
                await self.client.update(NAMESPACES, body, subresource="finalize")
                return
            except ApiError as exc:
                if exc.code == 404:
                    return
                if exc.code != 409:
                    raise


class ServiceAccountController(Controller):
    """A ``default`` ServiceAccount in every active namespace."""

    name = "serviceaccount"
    component = "service-account-controller"
    account = "default"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.namespaces = self.informer(NAMESPACES)
        self.accounts = self.informer(SERVICEACCOUNTS)
        self.namespaces.add_handler(on_add=self.enqueue,
                                    on_update=lambda _o, n: self.enqueue(n))
        self.accounts.add_handler(on_delete=self._deleted)

    def _deleted(self, sa: Obj) -> None:
        if meta(sa).get("name") == self.account and meta(sa).get("namespace"):
            self.enqueue(str(meta(sa)["namespace"]))

    async def reconcile(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or meta(ns).get("deletionTimestamp") is not None or \
                (ns.get("status") or {}).get("phase") == "Terminating":
            return
        if self.accounts.get(f"{key}/{self.account}") is not None:
            return
        try:
            await self.client.create(SERVICEACCOUNTS, {
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": self.account, "namespace": key}}, key)
        except ApiError as exc:
            if exc.code == 409 or exc.code == 403 or exc.code == 404:
                return
            raise

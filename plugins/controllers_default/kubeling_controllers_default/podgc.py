"""The pod garbage collector (Kubernetes' PodGC), run every ``pod_gc_period_seconds``:

* finished pods beyond ``terminated_pod_gc_threshold`` are deleted, oldest first;
* pods bound to a node that no longer exists (for ``orphaned_pod_quarantine_seconds``,
  confirmed by a fresh read) are force-deleted;
* terminating pods that were never scheduled are force-deleted (no node will finish them);
* terminating pods on a not-ready node tainted ``node.kubernetes.io/out-of-service`` are
  force-deleted (the operator said the node is gone for good).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubeling.client import ApiError
from kubeling_controllers_default.base import Controller, ControllerContext
from kubeling_controllers_default.resources import NODES, PODS
from kubeling_controllers_default.util import fmt_time, meta, parse_time

__all__ = ["PodGCController"]

Obj = dict[str, Any]

OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"


class PodGCController(Controller):
    """Deletes pods nobody else will: orphaned, unscheduled terminating, too many finished."""

    name = "podgc"
    component = "pod-garbage-collector"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.workers = 0
        self.client = ctx.client(f"kubeling-controller-manager/{self.component}")
        self.recorder = ctx.recorder(self.component)
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self._absent_since: dict[str, float] = {}
        self.deleted = 0

    async def background(self) -> None:
        while True:
            await asyncio.sleep(max(self.settings.pod_gc_period_seconds, 0.05))
            try:
                await self.collect()
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                self.log.info("pod gc: %s", exc)
            except Exception:
                self.log.exception("pod gc failed")

    async def collect(self) -> None:
        """One garbage collection pass."""
        pods = self.pods.list()
        await self._terminated(pods)
        await self._orphaned(pods)
        await self._unscheduled_terminating(pods)
        await self._out_of_service(pods)

    async def _delete(self, pod: Obj, *, force: bool, reason: str | None = None) -> None:
        m = meta(pod)
        try:
            if reason is not None:
                conditions = [c for c in (pod.get("status") or {}).get("conditions") or []
                              if c.get("type") != "DisruptionTarget"]
                conditions.append({"type": "DisruptionTarget", "status": "True",
                                   "reason": "DeletionByPodGC", "message": reason,
                                   "lastTransitionTime": fmt_time(self.clock.now()),
                                   "lastProbeTime": None})
                status: Obj = {"conditions": conditions}
                if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    status["phase"] = "Failed"
                await self.client.patch(PODS, m["name"], {"status": status}, m["namespace"],
                                        subresource="status")
            await self.client.delete(PODS, m["name"], m["namespace"],
                                     grace_period_seconds=0 if force else None,
                                     preconditions={"uid": m.get("uid")})
            self.deleted += 1
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    async def _terminated(self, pods: list[Obj]) -> None:
        threshold = self.settings.terminated_pod_gc_threshold
        if threshold <= 0:
            return
        done = [p for p in pods if (p.get("status") or {}).get("phase") in
                ("Succeeded", "Failed") and meta(p).get("deletionTimestamp") is None]
        excess = len(done) - threshold
        if excess <= 0:
            return
        done.sort(key=lambda p: (parse_time(meta(p).get("creationTimestamp"))
                                 or parse_time("1970-01-01T00:00:00Z")))
        await asyncio.gather(*(self._delete(p, force=False) for p in done[:excess]))

    async def _orphaned(self, pods: list[Obj]) -> None:
        known = {meta(n)["name"] for n in self.nodes.list()}
        now = self.clock.monotonic()
        missing = {(p.get("spec") or {}).get("nodeName") for p in pods} - known - {None, ""}
        for name in list(self._absent_since):
            if name not in missing:
                del self._absent_since[name]
        for name in missing:
            self._absent_since.setdefault(name, now)
        expired = {n for n, since in self._absent_since.items()
                   if now - since >= self.settings.orphaned_pod_quarantine_seconds}
        gone = set()
        for name in expired:
            try:
                await self.client.get(NODES, name)
            except ApiError as exc:
                if exc.code == 404:
                    gone.add(name)
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") in gone:
                await self._delete(pod, force=True, reason="PodGC: node no longer exists")

    async def _unscheduled_terminating(self, pods: list[Obj]) -> None:
        for pod in pods:
            if meta(pod).get("deletionTimestamp") is not None and \
                    not (pod.get("spec") or {}).get("nodeName"):
                await self._delete(pod, force=True)

    async def _out_of_service(self, pods: list[Obj]) -> None:
        nodes = set()
        for node in self.nodes.list():
            taints = (node.get("spec") or {}).get("taints") or []
            if not any(t.get("key") == OUT_OF_SERVICE for t in taints):
                continue
            ready = next((c for c in (node.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") != "True":
                nodes.add(meta(node)["name"])
        for pod in pods:
            if meta(pod).get("deletionTimestamp") is not None and \
                    (pod.get("spec") or {}).get("nodeName") in nodes:
                await self._delete(pod, force=True,
                                   reason="PodGC: node is out of service")

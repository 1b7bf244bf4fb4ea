"""Static pods: pod manifests in a directory on the node, with mirror pods in the API.

Each ``*.yaml``/``*.yml``/``*.json`` file holds one Pod.  The agent runs it without asking
the API server, and creates a *mirror pod* (annotation ``kubernetes.io/config.mirror``,
named ``<name>-<node>``) so that kubectl shows it; the mirror carries the pod's status.
The directory is watched with watchfiles: a new file starts a pod, a changed file replaces
it, a removed file stops it and deletes the mirror.  Deleting the mirror pod through the
API only recreates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kubeling.api.errors import ApiError
from kubeling.api.kinds._podspec import default_pod_spec, pod_qos_class, validate_pod_spec
from kubeling.client.resources import PODS

if TYPE_CHECKING:
    from kubeling_kubelet.agent import Kubelet
    from kubeling_kubelet.worker import PodWorker

log = logging.getLogger(__name__)

__all__ = ["StaticPods", "parse_manifest"]

Obj = dict[str, Any]
MIRROR = "kubernetes.io/config.mirror"
HASH = "kubernetes.io/config.hash"
SOURCE = "kubernetes.io/config.source"
SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    """A manifest is not a valid Pod (the message names the file and the problem)."""


def parse_manifest(path: Path, node_name: str) -> Obj:
    """A static pod from a manifest file, defaulted, with a uid derived from its content.

    :raises ManifestError: unreadable, not YAML, not a Pod, or invalid.
    """
    try:
        text = path.read_text()
        doc = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"{path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Pod":
        raise ManifestError(f"{path}: expected a Pod manifest (kind: Pod)")
    pod = copy.deepcopy(doc)
    meta = pod.setdefault("metadata", {})
    if not meta.get("name"):
        raise ManifestError(f"{path}: metadata.name is required")
    meta.setdefault("namespace", "default")
    spec = pod.setdefault("spec", {})
    if not isinstance(spec, dict):
        raise ManifestError(f"{path}: spec must be a mapping")
    spec["nodeName"] = node_name
    default_pod_spec(spec, pod=True)
    causes = validate_pod_spec(spec, "spec")
    if causes:
        raise ManifestError(f"{path}: " + "; ".join(f"{c.field}: {c.message}"
                                                     for c in causes))
    digest = hashlib.md5(json.dumps([node_name, doc], sort_keys=True).encode(),
                         usedforsecurity=False).hexdigest()
    meta["uid"] = str(uuid.UUID(digest))
    meta["name"] = f"{meta['name']}-{node_name}"
    annotations = meta.setdefault("annotations", {})
    annotations[HASH] = digest
    annotations[SOURCE] = "file"
    pod["apiVersion"] = "v1"
    pod["kind"] = "Pod"
    pod["status"] = {"phase": "Pending", "qosClass": pod_qos_class(pod)}
    return pod


class StaticPods:
    """The static pod source of one agent."""

    def __init__(self, agent: Kubelet, directory: Path) -> None:
        self.agent = agent
        self.directory = directory
        self.by_file: dict[Path, PodWorker] = {}
        self._lock = asyncio.Lock()

    def knows(self, uid: str) -> bool:
        return any(w.uid == uid for w in self.by_file.values())

    async def load(self, mirrors: Sequence[Obj] = ()) -> None:
        """Start the static pods of the directory, and delete ``mirrors`` (the mirror pods
        the API has for this node) whose manifest went away while no agent ran."""
        self.directory.mkdir(parents=True, exist_ok=True)
        await self.rescan()
        current = {(w.pod["metadata"]["namespace"], w.mirror_name,
                    w.pod["metadata"]["annotations"].get(HASH)) for w in self.by_file.values()}
        for mirror in mirrors:
            meta = mirror.get("metadata") or {}
            key = (meta.get("namespace"), meta.get("name"),
                   (meta.get("annotations") or {}).get(MIRROR))
            if key not in current:
                log.info("deleting mirror pod %s/%s: its manifest is gone", key[0], key[1])
                with contextlib.suppress(ApiError):
                    await self.agent.client.delete(PODS, meta["name"], meta["namespace"],
                                                   grace_period_seconds=0,
                                                   preconditions={"uid": meta.get("uid")})

    async def watch(self) -> None:
        import watchfiles

        # rust_timeout: stop within half a second when cancelled (see kubeling.app)
        async for _ in watchfiles.awatch(self.directory, debounce=200, step=50,
                                         recursive=False, rust_timeout=500):
            try:
                await self.rescan()
            except Exception:
                log.exception("reading static pod manifests failed")

    async def rescan(self) -> None:
        async with self._lock:
            present = sorted(p for p in self.directory.iterdir()
                             if p.suffix in SUFFIXES and not p.name.startswith("."))
            for path in present:
                try:
                    pod = parse_manifest(path, self.agent.node_name)
                except ManifestError as exc:
                    log.error("static pod not started: %s", exc)
                    continue
                worker = self.by_file.get(path)
                if worker is not None and worker.uid == pod["metadata"]["uid"]:
                    continue
                if worker is not None:
                    log.info("static pod manifest %s changed; replacing the pod", path)
                    await self._remove(path)
                await self._add(path, pod)
            for path in list(self.by_file):
                if path not in present:
                    log.info("static pod manifest %s removed", path)
                    await self._remove(path)

    async def _add(self, path: Path, pod: Obj) -> None:
        worker = self.agent.add_worker(pod, static=True)
        worker.mirror_name = pod["metadata"]["name"]
        self.by_file[path] = worker
        await self._ensure_mirror(worker)

    async def _remove(self, path: Path) -> None:
        worker = self.by_file.pop(path)
        worker.deleted = True
        worker.wake()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                await worker.finished.wait()
        meta = worker.pod["metadata"]
        with contextlib.suppress(ApiError):
            await self.agent.client.delete(PODS, meta["name"], meta["namespace"],
                                           grace_period_seconds=0)

    def _mirror_body(self, worker: PodWorker) -> Obj:
        pod = copy.deepcopy(worker.pod)
        meta = pod["metadata"]
        annotations = dict(meta.get("annotations") or {})
        annotations[MIRROR] = annotations.get(HASH, "")
        body_meta = {"name": meta["name"], "namespace": meta["namespace"],
                     "labels": meta.get("labels") or {}, "annotations": annotations,
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                          "name": self.agent.node_name,
                                          "uid": self.agent.node_uid, "controller": True}]}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": body_meta,
                "spec": pod["spec"]}

    async def _ensure_mirror(self, worker: PodWorker) -> None:
        body = self._mirror_body(worker)
        meta = body["metadata"]
        try:
            await self.agent.client.create(PODS, body, meta["namespace"])
        except ApiError as exc:
            if exc.code != 409:
                log.warning("creating the mirror pod %s failed: %s", meta["name"], exc.message)
                return
            try:
                existing = await self.agent.client.get(PODS, meta["name"], meta["namespace"])
            except ApiError:
                return
            ann = (existing["metadata"].get("annotations") or {})
            if ann.get(MIRROR) != meta["annotations"][MIRROR]:
                with contextlib.suppress(ApiError):
                    await self.agent.client.delete(PODS, meta["name"], meta["namespace"],
                                                   grace_period_seconds=0)
                with contextlib.suppress(ApiError):
                    await self.agent.client.create(PODS, body, meta["namespace"])
        worker._last_status = None
        worker.wake()

    def _worker_of_mirror(self, mirror: Obj) -> PodWorker | None:
        meta = mirror.get("metadata") or {}
        for worker in self.by_file.values():
            if worker.mirror_name == meta.get("name") and \
                    worker.pod["metadata"]["namespace"] == meta.get("namespace"):
                return worker
        return None

    def on_mirror(self, mirror: Obj) -> None:
        """A mirror pod changed in the API: a deletion request is finished at once (and
        the mirror recreated); the static pod itself keeps running."""
        if (mirror.get("metadata") or {}).get("deletionTimestamp"):
            asyncio.get_running_loop().create_task(self._finish_mirror_delete(mirror))

    async def _finish_mirror_delete(self, mirror: Obj) -> None:
        meta = mirror["metadata"]
        with contextlib.suppress(ApiError):
            await self.agent.client.delete(PODS, meta["name"], meta["namespace"],
                                           grace_period_seconds=0,
                                           preconditions={"uid": meta["uid"]})

    def on_mirror_deleted(self, mirror: Obj) -> None:
        worker = self._worker_of_mirror(mirror)
        if worker is not None and not worker.deleted:
            asyncio.get_running_loop().create_task(self._ensure_mirror(worker))

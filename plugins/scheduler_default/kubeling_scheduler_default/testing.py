"""Builders for tests of scheduler plugins (ours and third parties').

``make_node``/``make_pod`` return API-shaped dicts; ``node_info`` a
:class:`~kubeling_scheduler_default.nodeinfo.NodeInfo` with pods on it;
``framework_with`` a :class:`~kubeling_scheduler_default.framework.Framework` over a cache
filled with nodes and pods, so a plugin can be run exactly as the scheduler runs it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Mapping
from typing import Any

from kubeling_scheduler_default.cache import Cache
from kubeling_scheduler_default.config import Profile
from kubeling_scheduler_default.framework import Framework, Handle
from kubeling_scheduler_default.nodeinfo import NodeInfo
from kubeling_scheduler_default.plugins import default_registry
from kubeling_scheduler_default.podinfo import PodInfo

__all__ = ["framework_with", "make_node", "make_pod", "node_info", "pod_info"]

Obj = dict[str, Any]
_uids = itertools.count(1)


def make_node(name: str, *, cpu: str = "4", memory: str = "16Gi", pods: int = 110,
              labels: Mapping[str, str] | None = None,
              taints: Iterable[Mapping[str, str]] = (), unschedulable: bool = False,
              images: Iterable[tuple[list[str], int]] = (),
              extended: Mapping[str, str] | None = None) -> Obj:
    alloc = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi",
             **(extended or {})}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **(labels or {})}},
            "spec": {"taints": [dict(t) for t in taints], "unschedulable": unschedulable},
            "status": {"allocatable": alloc, "capacity": dict(alloc),
                       "images": [{"names": names, "sizeBytes": size}
                                  for names, size in images]}}


def make_pod(name: str, *, namespace: str = "default", cpu: str | None = None,
             memory: str | None = None, labels: Mapping[str, str] | None = None,
             node: str | None = None, priority: int | None = None, image: str = "pause",
             requests: Mapping[str, str] | None = None, host_port: int | None = None,
             spec: Mapping[str, Any] | None = None, uid: str | None = None) -> Obj:
    reqs: dict[str, str] = dict(requests or {})
    if cpu is not None:
        reqs["cpu"] = cpu
    if memory is not None:
        reqs["memory"] = memory
    container: Obj = {"name": "c", "image": image, "resources": {"requests": reqs}}
    if host_port:
        container["ports"] = [{"containerPort": host_port, "hostPort": host_port}]
    body: Obj = {"containers": [container], "schedulerName": "default-scheduler",
                 **(spec or {})}
    if node:
        body["nodeName"] = node
    if priority is not None:
        body["priority"] = priority
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {}),
                         "uid": uid or f"uid-{next(_uids)}",
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": body, "status": {}}


def pod_info(name: str, **kw: Any) -> PodInfo:
    return PodInfo(make_pod(name, **kw))


def node_info(node: Obj, pods: Iterable[Obj] = ()) -> NodeInfo:
    info = NodeInfo(node)
    for pod in pods:
        info.add_pod(PodInfo(pod))
    return info


def framework_with(nodes: Iterable[Obj], pods: Iterable[Obj] = (), *,
                   profile: Profile | None = None,
                   registry: Mapping[str, Any] | None = None, seed: int = 0,
                   namespaces: Mapping[str, Mapping[str, str]] | None = None) -> Framework:
    """A framework over a fresh cache holding ``nodes`` and the bound ``pods``."""
    cache = Cache()
    for name, labels in (namespaces or {}).items():
        cache.set_namespace(name, dict(labels))
    for node in nodes:
        cache.add_node(node)
    for pod in pods:
        cache.add_pod(PodInfo(pod))
    reg = default_registry()
    reg.update(registry or {})
    return Framework(profile or Profile(), reg, Handle(cache), rng=random.Random(seed))

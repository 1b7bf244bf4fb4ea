"""The built-in kinds of core/v1, apps/v1, batch/v1, coordination, discovery, networking
and policy.

:func:`builtin_kinds` returns their :class:`~kubeling.api.registry.KindInfo`: names,
scope, short names, categories, subresources, field selectors and the strategy holding
each kind's defaults, validation, update, delete and table rules.  The attrs models
(``kubeling.api.objects``) are looked up when the list is built, so this package imports
without them.
"""

from __future__ import annotations

import importlib
import logging

from kubeling.api.kinds._common import BuiltinStrategy, age_column, format_age, human_duration
from kubeling.api.kinds.apps_v1 import (
    ControllerRevisionStrategy,
    DaemonSetStrategy,
    DeploymentStrategy,
    ReplicaSetStrategy,
)
from kubeling.api.kinds.apps_v1_statefulset import StatefulSetStrategy
from kubeling.api.kinds.autoscaling_v1 import HorizontalPodAutoscalerStrategy
from kubeling.api.kinds.batch_v1 import CronJobStrategy, JobStrategy
from kubeling.api.kinds.coordination_v1 import LeaseStrategy
from kubeling.api.kinds.core_v1 import (
    ConfigMapStrategy,
    EndpointsStrategy,
    EventStrategy,
    NamespaceStrategy,
    NodeStrategy,
    PodStrategy,
    SecretStrategy,
    ServiceAccountStrategy,
    ServiceStrategy,
)
from kubeling.api.kinds.core_v1_replication import ReplicationControllerStrategy
from kubeling.api.kinds.core_v1_storage import (
    PersistentVolumeClaimStrategy,
    PersistentVolumeStrategy,
)
from kubeling.api.kinds.discovery_v1 import EndpointSliceStrategy
from kubeling.api.kinds.networking_v1 import IngressClassStrategy, IngressStrategy
from kubeling.api.kinds.policy_v1 import PodDisruptionBudgetStrategy
from kubeling.api.registry import KindInfo

__all__ = [
    "BuiltinStrategy",
    "ConfigMapStrategy",
    "ControllerRevisionStrategy",
    "CronJobStrategy",
    "DaemonSetStrategy",
    "DeploymentStrategy",
    "EndpointSliceStrategy",
    "EndpointsStrategy",
    "EventStrategy",
    "HorizontalPodAutoscalerStrategy",
    "IngressClassStrategy",
    "IngressStrategy",
    "JobStrategy",
    "LeaseStrategy",
    "NamespaceStrategy",
    "NodeStrategy",
    "PersistentVolumeClaimStrategy",
    "PersistentVolumeStrategy",
    "PodDisruptionBudgetStrategy",
    "PodStrategy",
    "ReplicaSetStrategy",
    "ReplicationControllerStrategy",
    "SecretStrategy",
    "ServiceAccountStrategy",
    "ServiceStrategy",
    "StatefulSetStrategy",
    "age_column",
    "builtin_kinds",
    "format_age",
    "human_duration",
    "model_ref",
]

log = logging.getLogger(__name__)


def model_ref(module: str, name: str) -> type | None:
    """The attrs model ``kubeling.api.objects.<module>.<name>``, or None if it is not there
    (yet): kinds are served from dicts either way."""
    try:
        return getattr(importlib.import_module(f"kubeling.api.objects.{module}"), name)
    except (ImportError, AttributeError):
        log.debug("no model kubeling.api.objects.%s.%s", module, name)
        return None


def _kind(group: str, version: str, kind: str, plural: str, strategy: BuiltinStrategy, *,
          module: str, namespaced: bool = True, short_names: tuple[str, ...] = (),
          categories: tuple[str, ...] = (), subresources: tuple[str, ...] | None = None
          ) -> KindInfo:
    if subresources is None:
        subresources = ("status",) if strategy.has_status else ()
    return KindInfo(group=group, version=version, kind=kind, plural=plural,
                    singular=kind.lower(), namespaced=namespaced,
                    model=model_ref(module, kind), strategy=strategy,
                    short_names=short_names, categories=categories,
                    subresources=subresources, field_selectors=strategy.field_selectors)


def builtin_kinds() -> list[KindInfo]:
    """The kinds the core serves, each with a fresh strategy."""
    core = ("", "v1")
    apps = ("apps", "v1")
    networking = ("networking.k8s.io", "v1")
    return [
        _kind(*core, "Namespace", "namespaces", NamespaceStrategy(), module="core_v1",
              namespaced=False, short_names=("ns",), subresources=("status", "finalize")),
        _kind(*core, "Node", "nodes", NodeStrategy(), module="core_v1", namespaced=False,
              short_names=("no",)),
        # log, exec, attach and portforward are served by kubeling.api.node_proxy;
        # eviction is to be served later
        _kind(*core, "Pod", "pods", PodStrategy(), module="core_v1", short_names=("po",),
              categories=("all",), subresources=("status", "binding", "eviction", "log",
                                                 "exec", "attach", "portforward",
                                                 "ephemeralcontainers")),
        _kind(*core, "Service", "services", ServiceStrategy(), module="core_v1",
              short_names=("svc",), categories=("all",)),
        _kind(*core, "Endpoints", "endpoints", EndpointsStrategy(), module="core_v1",
              short_names=("ep",)),
        _kind(*core, "ConfigMap", "configmaps", ConfigMapStrategy(), module="core_v1",
              short_names=("cm",)),
        _kind(*core, "Secret", "secrets", SecretStrategy(), module="core_v1"),
        _kind(*core, "ServiceAccount", "serviceaccounts", ServiceAccountStrategy(),
              module="core_v1", short_names=("sa",)),
        _kind(*core, "Event", "events", EventStrategy(), module="core_v1",
              short_names=("ev",)),
        # claims and volumes are API objects only: nothing binds or provisions them
        _kind(*core, "PersistentVolumeClaim", "persistentvolumeclaims",
              PersistentVolumeClaimStrategy(), module="core_v1", short_names=("pvc",)),
        _kind(*core, "PersistentVolume", "persistentvolumes", PersistentVolumeStrategy(),
              module="core_v1", namespaced=False, short_names=("pv",)),
        _kind(*core, "ReplicationController", "replicationcontrollers",
              ReplicationControllerStrategy(), module="core_v1", short_names=("rc",),
              categories=("all",), subresources=("status", "scale")),
        _kind(*apps, "ReplicaSet", "replicasets", ReplicaSetStrategy(), module="apps_v1",
              short_names=("rs",), categories=("all",), subresources=("status", "scale")),
        _kind(*apps, "Deployment", "deployments", DeploymentStrategy(), module="apps_v1",
              short_names=("deploy",), categories=("all",),
              subresources=("status", "scale")),
        _kind(*apps, "DaemonSet", "daemonsets", DaemonSetStrategy(), module="apps_v1",
              short_names=("ds",), categories=("all",)),
        _kind(*apps, "ControllerRevision", "controllerrevisions",
              ControllerRevisionStrategy(), module="apps_v1"),
        _kind(*apps, "StatefulSet", "statefulsets", StatefulSetStrategy(), module="apps_v1",
              short_names=("sts",), categories=("all",), subresources=("status", "scale")),
        _kind("batch", "v1", "Job", "jobs", JobStrategy(), module="batch_v1",
              categories=("all",)),
        _kind("batch", "v1", "CronJob", "cronjobs", CronJobStrategy(), module="batch_v1",
              short_names=("cj",), categories=("all",)),
        _kind("coordination.k8s.io", "v1", "Lease", "leases", LeaseStrategy(),
              module="coordination_v1"),
        _kind("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
              EndpointSliceStrategy(), module="discovery_v1"),
        _kind(*networking, "Ingress", "ingresses", IngressStrategy(), module="networking_v1",
              short_names=("ing",)),
        _kind(*networking, "IngressClass", "ingressclasses", IngressClassStrategy(),
              module="networking_v1", namespaced=False),
        _kind("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets",
              PodDisruptionBudgetStrategy(), module="policy_v1", short_names=("pdb",)),
        _kind("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
              HorizontalPodAutoscalerStrategy(), module="autoscaling_v1",
              short_names=("hpa",), categories=("all",)),
    ]

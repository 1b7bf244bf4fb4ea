"""How the controllers address the kinds not in :mod:`kubeling.client.resources`."""

from __future__ import annotations

from kubeling.api.registry import Resource
from kubeling.client.resources import (
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    EVENTS,
    LEASES,
    NAMESPACES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    SERVICEACCOUNTS,
    SERVICES,
    STATEFULSETS,
)

__all__ = [
    "CONTROLLERREVISIONS",
    "CRONJOBS",
    "DAEMONSETS",
    "DEPLOYMENTS",
    "ENDPOINTS",
    "ENDPOINTSLICES",
    "EVENTS",
    "JOBS",
    "LEASES",
    "NAMESPACES",
    "NODES",
    "PERSISTENTVOLUMECLAIMS",
    "PERSISTENTVOLUMES",
    "PODDISRUPTIONBUDGETS",
    "PODS",
    "REPLICASETS",
    "REPLICATIONCONTROLLERS",
    "SERVICEACCOUNTS",
    "SERVICES",
    "STATEFULSETS",
]

DAEMONSETS = Resource(group="apps", version="v1", plural="daemonsets", kind="DaemonSet",
                      namespaced=True)
CONTROLLERREVISIONS = Resource(group="apps", version="v1", plural="controllerrevisions",
                               kind="ControllerRevision", namespaced=True)
JOBS = Resource(group="batch", version="v1", plural="jobs", kind="Job", namespaced=True)
CRONJOBS = Resource(group="batch", version="v1", plural="cronjobs", kind="CronJob",
                    namespaced=True)

"""How to address the built-in kinds from a client."""

from __future__ import annotations

from kubeling.api.registry import Resource

__all__ = [
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "ENDPOINTS",
    "ENDPOINTSLICES",
    "EVENTS",
    "LEASES",
    "NAMESPACES",
    "NODES",
    "PERSISTENTVOLUMECLAIMS",
    "PERSISTENTVOLUMES",
    "PODDISRUPTIONBUDGETS",
    "PODS",
    "REPLICASETS",
    "REPLICATIONCONTROLLERS",
    "SECRETS",
    "SERVICEACCOUNTS",
    "SERVICES",
    "STATEFULSETS",
]


def _core(plural: str, kind: str, namespaced: bool = True) -> Resource:
    return Resource(group="", version="v1", plural=plural, kind=kind, namespaced=namespaced)


NAMESPACES = _core("namespaces", "Namespace", namespaced=False)
NODES = _core("nodes", "Node", namespaced=False)
PODS = _core("pods", "Pod")
SERVICES = _core("services", "Service")
ENDPOINTS = _core("endpoints", "Endpoints")
CONFIGMAPS = _core("configmaps", "ConfigMap")
SECRETS = _core("secrets", "Secret")
SERVICEACCOUNTS = _core("serviceaccounts", "ServiceAccount")
EVENTS = _core("events", "Event")
PERSISTENTVOLUMECLAIMS = _core("persistentvolumeclaims", "PersistentVolumeClaim")
PERSISTENTVOLUMES = _core("persistentvolumes", "PersistentVolume", namespaced=False)
REPLICATIONCONTROLLERS = _core("replicationcontrollers", "ReplicationController")
REPLICASETS = Resource(group="apps", version="v1", plural="replicasets", kind="ReplicaSet",
                       namespaced=True)
STATEFULSETS = Resource(group="apps", version="v1", plural="statefulsets", kind="StatefulSet",
                        namespaced=True)
DEPLOYMENTS = Resource(group="apps", version="v1", plural="deployments", kind="Deployment",
                       namespaced=True)
LEASES = Resource(group="coordination.k8s.io", version="v1", plural="leases", kind="Lease",
                  namespaced=True)
ENDPOINTSLICES = Resource(group="discovery.k8s.io", version="v1", plural="endpointslices",
                          kind="EndpointSlice", namespaced=True)
PODDISRUPTIONBUDGETS = Resource(group="policy", version="v1", plural="poddisruptionbudgets",
                                kind="PodDisruptionBudget", namespaced=True)
